#include <catch2/catch.hpp>

#include <sqlite3.h>

#include "sqlexec/schema.hpp"
#include "tests/sqlexec/fixture.hpp"
#include "tests/support.hpp"

using namespace t2s::sqlexec;

namespace {

const Column& column(const Table& t, const std::string& name) {
  for (const auto& c : t.columns)
    if (c.name == name) return c;
  FAIL("no column " << name << " in " << t.name);
  throw;
}

// Columns (name, type, pk) of every table, as SQLite itself reports them on a database built from `ddl`.
std::vector<std::string> describe_ddl(const std::string& ddl) {
  sqlite3* db = nullptr;
  sqlite3_open(":memory:", &db);
  char* err = nullptr;
  int rc = sqlite3_exec(db, ddl.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  INFO(msg);
  REQUIRE(rc == SQLITE_OK);
  std::vector<std::string> out;
  sqlite3_exec(
      db,
      "SELECT m.name || '.' || p.name || ':' || p.type || ':' || (p.pk > 0) FROM sqlite_master m, "
      "pragma_table_info(m.name) p WHERE m.type = 'table' UNION ALL SELECT m.name || ' fk ' || f.\"from\" || '->' || "
      "f.\"table\" FROM sqlite_master m, pragma_foreign_key_list(m.name) f WHERE m.type = 'table' ORDER BY 1",
      [](void* o, int, char** v, char**) {
        static_cast<std::vector<std::string>*>(o)->push_back(v[0] ? v[0] : "");
        return 0;
      },
      &out, nullptr);
  sqlite3_close(db);
  return out;
}

}  // namespace

TEST_CASE("introspect reads tables, columns, keys and samples", "[sqlexec]") {
  t2s::test::TempDir dir("sqlexec");
  std::string path = dir.file("concert.sqlite");
  t2s::test::build_concert_db(path);
  auto db = Database::open(path);
  Schema s = introspect(*db, 2);
  CHECK(s.db_id == "concert");
  REQUIRE(s.tables.size() == 4);
  CHECK(s.tables[0].name == "singer");
  CHECK(s.tables[2].name == "odd name");
  const auto& singer = s.tables[0];
  REQUIRE(singer.columns.size() == 4);
  CHECK(column(singer, "singer_id").primary_key);
  CHECK(column(singer, "singer_id").type == "INTEGER");
  CHECK_FALSE(column(singer, "name").primary_key);
  CHECK(column(singer, "name").samples == std::vector<std::string>{"Joe Sharp", "Timbaland"});
  CHECK(column(singer, "country").samples.size() == 2);
  CHECK(column(s.tables[1], "price").samples == std::vector<std::string>{"9.5", "12.0"});
  CHECK(column(s.tables[2], "a col").primary_key);
  CHECK(column(s.tables[2], "b").primary_key);
  CHECK(column(s.tables[2], "b").samples.empty());  // BLOBs are not sampled
  REQUIRE(s.foreign_keys.size() == 2);
  bool explicit_fk = false, implicit_fk = false;
  for (const auto& k : s.foreign_keys) {
    if (k.from_column == "singer_id")
      explicit_fk = k.from_table == "concert" && k.to_table == "singer" && k.to_column == "singer_id";
    if (k.from_column == "concert_id") implicit_fk = k.to_table == "singer" && k.to_column == "singer_id";
  }
  CHECK(explicit_fk);
  CHECK(implicit_fk);
}

TEST_CASE("schema_prompt is valid DDL that rebuilds the same schema", "[sqlexec]") {
  t2s::test::TempDir dir("sqlexec");
  std::string path = dir.file("concert.sqlite");
  t2s::test::build_concert_db(path);
  auto db = Database::open(path);
  Schema s = introspect(*db);
  std::string prompt = schema_prompt(s);
  INFO(prompt);
  CHECK_THAT(prompt, Catch::StartsWith("-- Database: concert\n"));
  CHECK_THAT(prompt, Catch::Contains("CREATE TABLE singer (\n  singer_id INTEGER PRIMARY KEY, -- e.g. 1, 2, 3\n"));
  CHECK_THAT(prompt, Catch::Contains("  name TEXT, -- e.g. 'Joe Sharp', 'Timbaland', 'Justin Brown'\n"));
  CHECK_THAT(prompt, Catch::Contains("CREATE TABLE \"odd name\" (\n  \"a col\" TEXT, -- e.g. 'it''s'\n"));
  CHECK_THAT(prompt, Catch::Contains("  PRIMARY KEY (\"a col\", b)\n"));
  CHECK_THAT(prompt, Catch::Contains("FOREIGN KEY (singer_id) REFERENCES singer(singer_id)"));
  // The prompt, run as SQL, creates tables whose columns, types, keys and foreign keys match the original.
  std::string original;
  {
    sqlite3* raw = nullptr;
    sqlite3_open(path.c_str(), &raw);
    sqlite3_exec(
        raw, "SELECT group_concat(sql, ';') FROM sqlite_master WHERE type = 'table'",
        [](void* o, int, char** v, char**) {
          *static_cast<std::string*>(o) = v[0] ? v[0] : "";
          return 0;
        },
        &original, nullptr);
    sqlite3_close(raw);
  }
  CHECK(describe_ddl(prompt) == describe_ddl(original));

  SchemaPromptOptions only;
  only.tables = {"CONCERT"};
  only.columns = {{"concert", {"year"}}};
  only.samples = false;
  std::string small = schema_prompt(s, only);
  CHECK(small ==
        "-- Database: concert\nCREATE TABLE concert (\n  concert_id INT PRIMARY KEY,\n  singer_id INT,\n  year INT\n);\n");
  CHECK(schema_prompt_tokens(s, only) < schema_prompt_tokens(s));
  CHECK(schema_prompt_tokens(s, only, [](std::string_view t) { return int(t.size()); }) == int(small.size()));
}

TEST_CASE("estimate_tokens tracks cl100k_base counts", "[sqlexec]") {
  // Reference counts: OpenAI's cl100k_base tokenizer (js-tiktoken 1.0.21), measured once for these strings.
  struct Ref {
    std::string text;
    int cl100k;
  };
  std::vector<Ref> refs = {
      {"SELECT count(*) FROM singer", 5},
      {"SELECT T2.name ,  count(*) FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id  =  T2.stadium_id GROUP BY "
       "T1.stadium_id",
       39},
      {"How many singers do we have?", 7},
      {"What are the names and release years for all the songs of the youngest singer?", 16},
      {"CREATE TABLE singer (\n  Singer_ID INT PRIMARY KEY, -- e.g. 1, 2, 3\n  Name TEXT, -- e.g. 'Joe Sharp', "
       "'Timbaland', 'Justin Brown'\n  Country TEXT, -- e.g. 'Netherlands', 'United States', 'France'\n  Age INT -- "
       "e.g. 52, 32, 29\n);\n",
       81},
      {"SELECT avg(age) ,  min(age) ,  max(age) FROM singer WHERE country  =  'France'", 24},
  };
  int total_est = 0, total_ref = 0;
  for (const auto& r : refs) {
    int e = estimate_tokens(r.text);
    INFO(r.text << ": estimate " << e << ", cl100k " << r.cl100k);
    CHECK(std::abs(e - r.cl100k) <= std::max(2, r.cl100k * 3 / 10));
    total_est += e;
    total_ref += r.cl100k;
  }
  CHECK(std::abs(total_est - total_ref) * 10 <= total_ref);
  CHECK(estimate_tokens("") == 0);
}
