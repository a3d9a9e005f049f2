#include <catch2/catch.hpp>

#include <algorithm>
#include <filesystem>
#include <map>
#include <set>

#include "common/json.hpp"
#include "sqlexec/compare.hpp"
#include "sqlexec/schema.hpp"
#include "tests/sqlexec/fixture.hpp"
#include "tests/support.hpp"

using namespace t2s::sqlexec;

namespace {

std::string spider_db(const std::string& db_id) {
  return t2s::test::shared_data("spider/database/" + db_id + "/" + db_id + ".sqlite");
}

std::string lower(std::string s) {
  for (char& c : s)
    if (c >= 'A' && c <= 'Z') c = char(c - 'A' + 'a');
  return s;
}

}  // namespace

TEST_CASE("every Spider dev gold query executes and matches itself", "[sqlexec][shared]") {
  auto dev = t2s::json::parse_file(t2s::test::shared_data("spider/dev.json"));
  REQUIRE(dev.IsArray());
  REQUIRE(dev.Size() == 778);
  std::map<std::string, std::shared_ptr<Database>> dbs;
  std::map<std::string, uint64_t> hashes;
  size_t ordered = 0, nonempty = 0;
  uint64_t max_steps = 0;
  for (rapidjson::SizeType i = 0; i < dev.Size(); ++i) {
    std::string where = "dev.json[" + std::to_string(i) + "]";
    std::string db_id = t2s::json::get_string(dev[i], "db_id", where);
    std::string gold = t2s::json::get_string(dev[i], "query", where);
    auto& db = dbs[db_id];
    if (!db) {
      hashes[db_id] = t2s::test::file_hash(spider_db(db_id));
      // The limits simulated runs use: every gold query must pass under its step budget.
      db = Database::open(spider_db(db_id), simulated_limits());
    }
    INFO(where << " " << db_id << ": " << gold);
    ExecResult r = db->execute(gold);
    INFO(error_class_name(r.error) << ": " << r.message);
    REQUIRE(r.ok());
    max_steps = std::max(max_steps, r.vm_steps);
    bool order = spider_order_matters(gold);
    ordered += order;
    nonempty += !r.result.rows.empty();
    CHECK(spider_match(r.result, r.result, order));
    CHECK(bird_match(r.result, r.result));
    auto m = execution_match(*db, gold, gold, Metric::spider);
    CHECK(m.match);
    CHECK_FALSE(m.pred_error);
    CHECK_FALSE(m.gold_error);
  }
  CHECK(ordered > 100);
  CHECK(nonempty > 700);
  // The budget leaves a wide margin over the costliest gold query (docs/sqlexec.md has the figures).
  INFO("most VM steps of a Spider dev gold query: " << max_steps);
  CHECK(max_steps > 0);
  CHECK(max_steps * 20 <= simulated_limits().max_vm_steps);
  for (const auto& [db_id, h] : hashes) CHECK(t2s::test::file_hash(spider_db(db_id)) == h);
}

TEST_CASE("introspection agrees with Spider's tables.json", "[sqlexec][shared]") {
  auto tables = t2s::json::parse_file(t2s::test::shared_data("spider/tables.json"));
  REQUIRE(tables.Size() == 19);
  size_t pk_agree = 0, pk_total = 0;
  for (const auto& entry : tables.GetArray()) {
    std::string db_id = t2s::json::get_string(entry, "db_id", "tables.json");
    INFO(db_id);
    auto db = Database::open(spider_db(db_id));
    Schema s = introspect(*db);
    // Spider's column list: [table index, name]; index -1 is the "*" pseudo column.
    std::set<std::string> expected_tables, actual_tables;
    // world_1 lists SQLite's internal sqlite_sequence, which introspection leaves out on purpose.
    auto internal = [](const std::string& t) { return t.rfind("sqlite_", 0) == 0; };
    for (const auto& t : entry["table_names_original"].GetArray())
      if (!internal(lower(t.GetString()))) expected_tables.insert(lower(t.GetString()));
    std::map<std::string, std::vector<std::string>> actual_cols;
    for (const auto& t : s.tables) {
      actual_tables.insert(lower(t.name));
      for (const auto& c : t.columns) actual_cols[lower(t.name)].push_back(lower(c.name));
    }
    for (const auto& t : expected_tables) CHECK(actual_tables.count(t) == 1);
    const auto& names = entry["table_names_original"];
    for (const auto& c : entry["column_names_original"].GetArray()) {
      int ti = c[0].GetInt();
      if (ti < 0) continue;
      std::string t = lower(names[rapidjson::SizeType(ti)].GetString());
      if (internal(t)) continue;
      const auto& cols = actual_cols[t];
      INFO(t << "." << c[1].GetString());
      CHECK(std::find(cols.begin(), cols.end(), lower(c[1].GetString())) != cols.end());
    }
    for (const auto& pk : entry["primary_keys"].GetArray()) {
      const auto& c = entry["column_names_original"][pk.GetUint()];
      std::string t = lower(names[rapidjson::SizeType(c[0].GetInt())].GetString());
      ++pk_total;
      for (const auto& table : s.tables)
        if (lower(table.name) == t)
          for (const auto& col : table.columns)
            if (lower(col.name) == lower(c[1].GetString()) && col.primary_key) ++pk_agree;
    }
    std::string prompt = schema_prompt(s);
    CHECK(estimate_tokens(prompt) > 0);
  }
  // tables.json was annotated by hand; most but not all of its primary keys are declared in the DDL.
  INFO(pk_agree << "/" << pk_total);
  CHECK(pk_agree * 10 >= pk_total * 9);
}

TEST_CASE("the sandbox accepts every BIRD mini-dev gold query", "[sqlexec][shared]") {
  // The BIRD databases are not in the shared data, so each query runs on an empty database with the
  // schema of dev_tables.json: this checks the authorizer, the classification and the limits accept the
  // real workload (functions, CAST, IIF, STRFTIME, window functions ...), not the results.
  auto tables = t2s::json::parse_file(t2s::test::shared_data("bird_minidev/dev_tables.json"));
  t2s::test::TempDir dir("sqlexec-bird");
  std::map<std::string, std::shared_ptr<Database>> dbs;
  for (const auto& entry : tables.GetArray()) {
    std::string db_id = entry["db_id"].GetString();
    const auto& names = entry["table_names_original"];
    std::vector<std::string> ddl(names.Size());
    const auto& cols = entry["column_names_original"];
    for (rapidjson::SizeType i = 0; i < cols.Size(); ++i) {
      int ti = cols[i][0].GetInt();
      if (ti < 0) continue;
      std::string& d = ddl[rapidjson::SizeType(ti)];
      d += (d.empty() ? "" : ", ") + quote_identifier(cols[i][1].GetString()) + " " +
           entry["column_types"][i].GetString();
    }
    std::string sql;
    for (rapidjson::SizeType t = 0; t < names.Size(); ++t)
      sql += "CREATE TABLE " + quote_identifier(names[t].GetString()) + " (" + ddl[t] + ");\n";
    std::string path = dir.file(db_id + ".sqlite");
    t2s::test::build_db(path, sql);
    dbs[db_id] = Database::open(path);
  }
  std::string gold = t2s::json::read_file(t2s::test::shared_data("bird_minidev/mini_dev_sqlite_gold.sql"));
  size_t n = 0, start = 0;
  while (start < gold.size()) {
    size_t end = gold.find('\n', start);
    if (end == std::string::npos) end = gold.size();
    std::string line = gold.substr(start, end - start);
    start = end + 1;
    if (line.empty()) continue;
    size_t tab = line.rfind('\t');
    REQUIRE(tab != std::string::npos);
    std::string sql = line.substr(0, tab), db_id = line.substr(tab + 1);
    REQUIRE(dbs.count(db_id));
    ExecResult r = dbs[db_id]->execute(sql, kBirdTimeoutS);
    INFO("line " << n + 1 << " " << db_id << ": " << sql << " -> " << error_class_name(r.error) << ": " << r.message);
    CHECK(r.ok());
    ++n;
  }
  CHECK(n == 500);
}

TEST_CASE("execution match of hand-made query pairs on a Spider database follows the official rules",
          "[sqlexec][shared]") {
  // Expected values worked out from the rules (see docs/sqlexec.md) and the data: concert_singer.singer has
  // 6 rows, ages summing to 222 (avg(age) is the REAL 37.0, sum/count the INTEGER 37), 4 of them from France.
  auto db = Database::open(spider_db("concert_singer"));
  struct Pair {
    const char* pred;
    const char* gold;
    bool spider, bird;
  };
  std::vector<Pair> pairs = {
      {"SELECT age, name FROM singer", "SELECT name, age FROM singer", true, false},
      {"SELECT name FROM singer ORDER BY age DESC", "SELECT name FROM singer ORDER BY age", false, true},
      {"SELECT name FROM singer ORDER BY age", "SELECT name FROM singer", true, true},
      {"SELECT sum(age) / count(*) FROM singer", "SELECT avg(age) FROM singer", true, true},
      {"SELECT DISTINCT country FROM singer", "SELECT country FROM singer", true, true},
      {"SELECT country FROM singer GROUP BY country", "SELECT country FROM singer", false, true},
      {"SELECT NULL, count(*) FROM singer", "SELECT NULL, count(*) FROM singer", true, true},
      {"SELECT NULL FROM singer", "SELECT '' FROM singer", false, false},
      {"SELECT name FROM singer WHERE age > 100", "SELECT name FROM stadium WHERE capacity < 0", true, true},
      {"SELECT name, country FROM singer", "SELECT name FROM singer", false, false},
      {"SELECT count(*) FROM singer", "SELECT count(*) FROM singer WHERE country = 'France'", false, false},
      {"SELECT lower(name) FROM singer", "SELECT name FROM singer", false, false},
      {"SELECT CAST(age AS TEXT) FROM singer", "SELECT age FROM singer", false, false},
  };
  for (const auto& p : pairs) {
    INFO(p.pred << "  vs gold  " << p.gold);
    auto s = execution_match(*db, p.pred, p.gold, Metric::spider);
    auto b = execution_match(*db, p.pred, p.gold, Metric::bird);
    CHECK_FALSE(s.pred_error);
    CHECK_FALSE(s.gold_error);
    CHECK(s.match == p.spider);
    CHECK(b.match == p.bird);
  }
  CHECK_FALSE(execution_match(*db, "SELECT DISTINCT country FROM singer", "SELECT country FROM singer",
                              Metric::spider, /*keep_distinct=*/true)
                  .match);
}
