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
  for (rapidjson::SizeType i = 0; i < dev.Size(); ++i) {
    std::string where = "dev.json[" + std::to_string(i) + "]";
    std::string db_id = t2s::json::get_string(dev[i], "db_id", where);
    std::string gold = t2s::json::get_string(dev[i], "query", where);
    auto& db = dbs[db_id];
    if (!db) {
      hashes[db_id] = t2s::test::file_hash(spider_db(db_id));
      db = Database::open(spider_db(db_id));
    }
    INFO(where << " " << db_id << ": " << gold);
    ExecResult r = db->execute(gold);
    INFO(error_class_name(r.error) << ": " << r.message);
    REQUIRE(r.ok());
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
