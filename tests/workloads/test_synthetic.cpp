#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <set>

#include "common/json.hpp"
#include "tests/support.hpp"
#include "workloads/hardness.hpp"
#include "workloads/synthetic.hpp"

using namespace t2s::workloads;
using t2s::test::TempDir;

namespace {

// Runs `sql` independently of the generator and returns (rows, any non-NULL value).
std::pair<size_t, bool> run(const std::string& db, const std::string& sql) {
  sqlite3* h = nullptr;
  REQUIRE(sqlite3_open_v2(db.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
  sqlite3_stmt* st = nullptr;
  int rc = sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr);
  INFO(sql << ": " << sqlite3_errmsg(h));
  REQUIRE(rc == SQLITE_OK);
  size_t n = 0;
  bool non_null = false;
  while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
    ++n;
    for (int i = 0; i < sqlite3_column_count(st); ++i) non_null |= sqlite3_column_type(st, i) != SQLITE_NULL;
  }
  CHECK(rc == SQLITE_DONE);
  sqlite3_finalize(st);
  sqlite3_close(h);
  return {n, non_null};
}

std::string bytes(const std::string& path) { return t2s::json::read_file(path); }

}  // namespace

TEST_CASE("synthetic set: valid gold SQL, all levels, determinism, reuse", "[workloads]") {
  TempDir a("t2s-syn"), b("t2s-syn");
  SyntheticOptions o;
  o.seed = 11;
  o.scale = 0.03;
  o.questions_per_db = 24;
  Workload w = generate_synthetic(a.path().string(), o);
  REQUIRE(w.questions.size() == 24 * synthetic_domains().size());
  std::map<Difficulty, int> mix;
  std::set<std::string> texts;
  for (const auto& q : w.questions) {
    INFO(q.id << ": " << q.question << " | " << q.gold_sql);
    auto [rows, non_null] = run(w.databases.at(q.db_id).path, q.gold_sql);
    CHECK(rows > 0);
    CHECK(non_null);
    CHECK(q.difficulty == sql_hardness(q.gold_sql));
    CHECK(q.question.find('%') == std::string::npos);  // every placeholder filled
    texts.insert(q.question);
    mix[q.difficulty]++;
  }
  CHECK(texts.size() == w.questions.size());
  for (auto d : {Difficulty::easy, Difficulty::medium, Difficulty::hard, Difficulty::extra}) CHECK(mix[d] > 0);
  for (const auto& [id, db] : w.databases) {
    CHECK(db.tables.size() >= 3);
    CHECK(db.tables.size() <= 12);
    CHECK_FALSE(db.foreign_keys.empty());
  }

  // Same seed elsewhere: identical bytes.
  Workload w2 = generate_synthetic(b.path().string(), o);
  for (const auto& [id, db] : w.databases) CHECK(bytes(db.path) == bytes(w2.databases.at(id).path));
  CHECK(bytes(a.file("questions.json")) == bytes(b.file("questions.json")));

  // Reuse: the manifest matches, nothing is rewritten.
  auto stamp = std::filesystem::last_write_time(w.databases.begin()->second.path);
  Workload w3 = generate_synthetic(a.path().string(), o);
  CHECK(std::filesystem::last_write_time(w.databases.begin()->second.path) == stamp);
  REQUIRE(w3.questions.size() == w.questions.size());
  CHECK(w3.questions[5].gold_sql == w.questions[5].gold_sql);

  // Another seed: different data.
  o.seed = 12;
  Workload w4 = generate_synthetic(b.path().string(), o);
  CHECK(bytes(w4.databases.at("retail").path) != bytes(w.databases.at("retail").path));
}

TEST_CASE("default synthetic set generates within 10 s", "[workloads][slow]") {
  TempDir dir("t2s-syn");
  WorkloadSpec spec;
  spec.kind = "synthetic";
  spec.cache_dir = dir.path().string();
  auto t0 = std::chrono::steady_clock::now();
  Workload w = load_workload(spec);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  std::map<Difficulty, int> mix;
  for (const auto& q : w.questions) mix[q.difficulty]++;
  WARN("default synthetic generation: " << s << " s, " << w.questions.size() << " questions; easy/medium/hard/extra = "
                                        << mix[Difficulty::easy] << "/" << mix[Difficulty::medium] << "/"
                                        << mix[Difficulty::hard] << "/" << mix[Difficulty::extra]);
  CHECK(s < 10.0);
  for (const auto& q : w.questions) {
    INFO(q.gold_sql);
    CHECK(run(w.databases.at(q.db_id).path, q.gold_sql).first > 0);
  }
}
