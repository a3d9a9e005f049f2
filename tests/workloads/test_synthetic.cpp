#include <catch2/catch.hpp>
#include <sqlite3.h>

#include <chrono>
#include <ctime>
#include <filesystem>
#include <map>
#include <optional>
#include <set>

#include "common/json.hpp"
#include "sqlexec/database.hpp"
#include "sqlexec/schema.hpp"
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

  // Each database keeps Spider dev's mix: 24 questions → 6 easy, 10 medium, 4 hard, 4 extra.
  for (const auto& id : synthetic_domains()) {
    std::map<Difficulty, int> m;
    for (const auto& q : w.questions)
      if (q.db_id == id) m[q.difficulty]++;
    INFO(id);
    CHECK(m[Difficulty::easy] == 6);
    CHECK(m[Difficulty::medium] == 10);
    CHECK(m[Difficulty::hard] == 4);
    CHECK(m[Difficulty::extra] == 4);
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
  std::clock_t c0 = std::clock();
  Workload w = load_workload(spec);
  double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
  std::map<Difficulty, int> mix;
  for (const auto& q : w.questions) mix[q.difficulty]++;
  WARN("default synthetic generation: " << s << " s wall, " << cpu << " s CPU, " << w.questions.size() << " questions; easy/medium/hard/extra = "
                                        << mix[Difficulty::easy] << "/" << mix[Difficulty::medium] << "/"
                                        << mix[Difficulty::hard] << "/" << mix[Difficulty::extra]);
  // CPU time, not wall time: the shared build machine is often loaded several times over.
  CHECK(cpu < 10.0);
  for (const auto& q : w.questions) {
    INFO(q.gold_sql);
    CHECK(run(w.databases.at(q.db_id).path, q.gold_sql).first > 0);
  }
}

TEST_CASE("synthetic gold runs in the sandboxed executor and the declared schema matches the file",
          "[workloads]") {
  TempDir dir("t2s-syn");
  SyntheticOptions o;
  o.seed = 3;
  o.scale = 0.02;
  o.questions_per_db = 12;
  Workload w = generate_synthetic(dir.path().string(), o);
  for (const auto& [id, info] : w.databases) {
    auto db = t2s::sqlexec::Database::open(info.path);
    auto schema = t2s::sqlexec::introspect(*db, 0);
    REQUIRE(schema.tables.size() == info.tables.size());
    for (size_t t = 0; t < info.tables.size(); ++t) {
      CHECK(schema.tables[t].name == info.tables[t].name);
      REQUIRE(schema.tables[t].columns.size() == info.tables[t].columns.size());
      for (size_t c = 0; c < info.tables[t].columns.size(); ++c) {
        CHECK(schema.tables[t].columns[c].name == info.tables[t].columns[c].name);
        CHECK(schema.tables[t].columns[c].primary_key == info.tables[t].columns[c].primary_key);
      }
    }
    CHECK(schema.foreign_keys.size() == info.foreign_keys.size());
    for (const auto& q : w.questions) {
      if (q.db_id != id) continue;
      auto r = db->execute(q.gold_sql);
      INFO(q.gold_sql << ": " << r.message);
      CHECK(r.ok());
      CHECK_FALSE(r.result.rows.empty());
    }
  }
}

TEST_CASE("synthetic ORDER BY … LIMIT k answers do not depend on tie order", "[workloads]") {
  TempDir dir("t2s-syn");
  SyntheticOptions o;
  o.seed = 5;
  o.scale = 0.02;
  o.questions_per_db = 24;
  Workload w = generate_synthetic(dir.path().string(), o);
  size_t checked = 0;
  for (const auto& q : w.questions) {
    auto limit = q.gold_sql.rfind(" LIMIT ");
    auto order = q.gold_sql.rfind(" ORDER BY ");
    if (limit == std::string::npos || order == std::string::npos) continue;
    // Independently: the k-th and (k+1)-th sort keys, via a window-free rewrite with OFFSET.
    std::string by = q.gold_sql.substr(order + 10, limit - order - 10);
    std::string expr = by.substr(0, by.rfind(' '));
    long k = std::stol(q.gold_sql.substr(limit + 7));
    std::string base = "SELECT " + expr + q.gold_sql.substr(q.gold_sql.find(" FROM "), limit - q.gold_sql.find(" FROM "));
    std::string kth = base + " LIMIT 1 OFFSET " + std::to_string(k - 1);
    std::string next = base + " LIMIT 1 OFFSET " + std::to_string(k);
    sqlite3* h = nullptr;
    REQUIRE(sqlite3_open_v2(w.databases.at(q.db_id).path.c_str(), &h, SQLITE_OPEN_READONLY, nullptr) == SQLITE_OK);
    auto one = [&](const std::string& sql) -> std::optional<double> {
      sqlite3_stmt* st = nullptr;
      REQUIRE(sqlite3_prepare_v2(h, sql.c_str(), -1, &st, nullptr) == SQLITE_OK);
      std::optional<double> v;
      if (sqlite3_step(st) == SQLITE_ROW) v = sqlite3_column_double(st, 0);
      sqlite3_finalize(st);
      return v;
    };
    auto a = one(kth), b = one(next);
    INFO(q.gold_sql);
    REQUIRE(a.has_value());
    if (b) CHECK(*a != *b);
    sqlite3_close(h);
    ++checked;
  }
  CHECK(checked >= 5);
}
