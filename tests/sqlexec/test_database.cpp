#include <catch2/catch.hpp>

#include <atomic>
#include <filesystem>
#include <thread>

#include "common/status.hpp"
#include "sqlexec/database.hpp"
#include "tests/sqlexec/fixture.hpp"
#include "tests/support.hpp"

using namespace t2s::sqlexec;
using t2s::test::TempDir;

namespace {

struct Fixture {
  TempDir dir{"sqlexec"};
  std::string path = dir.file("concert.sqlite");
  uint64_t hash_before;
  Fixture() {
    t2s::test::build_concert_db(path);
    hash_before = t2s::test::file_hash(path);
  }
  // The folder must hold only the database file: no journal, WAL or attached file appeared.
  void check_untouched() const {
    CHECK(t2s::test::file_hash(path) == hash_before);
    size_t files = 0;
    for (const auto& e : std::filesystem::directory_iterator(dir.path())) {
      (void)e;
      ++files;
    }
    CHECK(files == 1);
  }
};

ExecResult run(const Database& db, const std::string& sql) {
  ExecResult r = db.execute(sql);
  INFO(sql << " -> " << error_class_name(r.error) << ": " << r.message);
  return r;
}

}  // namespace

TEST_CASE("a plain query returns typed values and column names", "[sqlexec]") {
  Fixture f;
  auto db = Database::open(f.path);
  auto r = run(*db, "SELECT name, age, price, NULL AS none_here, x'0102' FROM singer JOIN concert USING (singer_id) "
                    "WHERE concert_id = 10;");
  REQUIRE(r.ok());
  REQUIRE(r.result.columns == std::vector<std::string>{"name", "age", "price", "none_here", "x'0102'"});
  REQUIRE(r.result.rows.size() == 1);
  const auto& row = r.result.rows[0];
  CHECK(std::get<std::string>(row[0]) == "Joe Sharp");
  CHECK(std::get<int64_t>(row[1]) == 52);
  CHECK(std::get<double>(row[2]) == 9.5);
  CHECK(std::holds_alternative<std::monostate>(row[3]));
  CHECK(std::get<Blob>(row[4]).bytes == std::string("\x01\x02", 2));
  CHECK(render_value(row[3]) == "NULL");
  CHECK(render_value(row[4]) == "X'0102'");
  CHECK(render_value(Value{12.0}) == "12.0");
  CHECK(render_value(Value{0.1}) == "0.1");
  CHECK(r.elapsed_s >= 0);
  f.check_untouched();
}

TEST_CASE("open rejects missing and non-SQLite files with their path", "[sqlexec]") {
  TempDir dir("sqlexec");
  std::string missing = dir.file("nope.sqlite");
  CHECK_THROWS_WITH(Database::open(missing), Catch::Contains(missing));
  std::string text = dir.file("text.sqlite");
  std::ofstream(text) << "this is not a database, just some text that is long enough to have a header\n";
  CHECK_THROWS_AS(Database::open(text), t2s::InputError);
  CHECK_THROWS_WITH(Database::open(text), Catch::Contains(text));
  CHECK_THROWS_WITH(Database::open(dir.path().string()), Catch::Contains("not a regular file"));
}

TEST_CASE("error classes carry SQLite's message and the name involved", "[sqlexec]") {
  Fixture f;
  auto db = Database::open(f.path);
  struct Case {
    std::string sql;
    ErrorClass cls;
    std::string detail;
    std::string message_part;
  };
  std::vector<Case> cases = {
      {"SELEC name FROM singer", ErrorClass::syntax, "", "syntax error"},
      {"SELECT name FROM", ErrorClass::syntax, "", "incomplete input"},
      {"SELECT name FROM singer UNION SELECT name, age FROM singer", ErrorClass::syntax, "",
       "same number of result columns"},
      {"SELECT * FROM singers", ErrorClass::no_such_table, "singers", "no such table: singers"},
      {"SELECT nam FROM singer", ErrorClass::no_such_column, "nam", "no such column: nam"},
      {"SELECT T1.nam FROM singer AS T1", ErrorClass::no_such_column, "T1.nam", "no such column"},
      {"SELECT singer_id FROM singer JOIN concert ON singer.singer_id = concert.singer_id",
       ErrorClass::ambiguous_column, "singer_id", "ambiguous column name: singer_id"},
      {"SELECT name FROM singer WHERE count(*) > 1", ErrorClass::type_misuse, "count()", "misuse of aggregate"},
      {"SELECT abs(1, 2)", ErrorClass::type_misuse, "abs()", "wrong number of arguments"},
      {"SELECT nosuchfn(age) FROM singer", ErrorClass::type_misuse, "nosuchfn", "no such function"},
      {"SELECT name FROM singer WHERE (age, name) = 1", ErrorClass::type_misuse, "", "row value misused"},
      {"SELECT name FROM singer WHERE age IN (SELECT age, name FROM singer)", ErrorClass::type_misuse, "",
       "sub-select returns 2 columns"},
      {"SELECT 1; SELECT 2", ErrorClass::syntax, "", "one statement at a time"},
      {"  -- only a comment", ErrorClass::syntax, "", "empty statement"},
      {"SELECT 'caf\xC3", ErrorClass::syntax, "", "not valid UTF-8"},
      {std::string("SELECT 1\0 ; DELETE FROM singer", 31), ErrorClass::syntax, "", "not valid UTF-8"},
      {"SELECT name FROM singer WHERE name = '\xff\xfe'", ErrorClass::syntax, "", "not valid UTF-8 (byte 38)"},
  };
  for (const auto& c : cases) {
    auto r = run(*db, c.sql);
    CHECK(r.error == c.cls);
    CHECK(r.detail == c.detail);
    CHECK_THAT(r.message, Catch::Contains(c.message_part));
    CHECK(r.result.rows.empty());
  }
  // A trailing semicolon and trailing comments are one statement.
  CHECK(run(*db, "SELECT 1; -- done\n").ok());
  CHECK(run(*db, "SELECT 1;;").ok());
  CHECK(run(*db, "SELECT 'caf\xC3\xA9'").ok());
  f.check_untouched();
}

TEST_CASE("the sandbox refuses everything but reading", "[sqlexec]") {
  Fixture f;
  auto db = Database::open(f.path);
  std::string attached = f.dir.file("other.sqlite");
  struct Case {
    std::string sql;
    std::string detail;
  };
  std::vector<Case> cases = {
      {"DELETE FROM singer", "DELETE"},
      {"INSERT INTO singer VALUES (9, 'x', 'y', 1)", "INSERT"},
      {"UPDATE singer SET age = 0", "UPDATE"},
      {"DROP TABLE singer", "DROP TABLE"},
      {"CREATE TABLE t (a)", "CREATE TABLE"},
      {"CREATE TEMP TABLE t (a)", "CREATE TEMP TABLE"},
      {"CREATE TEMP TRIGGER tr AFTER INSERT ON singer BEGIN SELECT 1; END", "CREATE TEMP TRIGGER"},
      {"CREATE TEMP VIEW v AS SELECT 1", "CREATE TEMP VIEW"},
      {"ALTER TABLE singer ADD COLUMN z", "ALTER TABLE"},
      {"ATTACH '" + attached + "' AS other", "ATTACH"},
      {"ATTACH ':memory:' AS other", "ATTACH"},
      {"DETACH main", "DETACH"},
      {"PRAGMA writable_schema = 1", "PRAGMA writable_schema"},
      {"PRAGMA writable_schema", "PRAGMA writable_schema"},
      {"PRAGMA query_only = 0", "PRAGMA query_only"},
      {"PRAGMA journal_mode = WAL", "PRAGMA journal_mode"},
      {"SELECT load_extension('/usr/lib/x86_64-linux-gnu/libsqlite3.so.0')", "function load_extension"},
      {"SELECT LOAD_EXTENSION('x')", "function load_extension"},
      {"BEGIN", "TRANSACTION"},
      {"SAVEPOINT s", "SAVEPOINT"},
      {"ANALYZE", "CREATE TABLE"},  // SQLite first asks to create sqlite_stat1
      {"REINDEX", "REINDEX"},
      {"VACUUM INTO '" + f.dir.file("copy.sqlite") + "'", "write"},
      {"VACUUM", "write"},
      {"CREATE VIRTUAL TABLE v USING fts5(a)", "CREATE VIRTUAL TABLE"},
  };
  for (const auto& c : cases) {
    auto r = run(*db, c.sql);
    CHECK(r.error == ErrorClass::forbidden);
    CHECK(r.detail == c.detail);
    CHECK_FALSE(r.message.empty());
  }
  for (std::string sql : {"UPDATE sqlite_master SET sql = 'x'", "WITH x AS (SELECT 1) UPDATE singer SET age = 1",
                          "WITH x AS (SELECT 1) DELETE FROM singer", "SELECT * FROM pragma_writable_schema",
                          "REPLACE INTO singer VALUES (1, 'x', 'y', 1)"})
    CHECK(run(*db, sql).error == ErrorClass::forbidden);
  // Schema-describing pragmas stay available, and the data is still all there.
  CHECK(run(*db, "PRAGMA table_info(singer)").result.rows.size() == 4);
  CHECK(run(*db, "SELECT count(*) FROM pragma_table_info('concert')").ok());
  auto count = run(*db, "SELECT count(*) FROM singer");
  REQUIRE(count.ok());
  CHECK(std::get<int64_t>(count.result.rows[0][0]) == 4);
  f.check_untouched();
}

TEST_CASE("hostile statements stop at their limit with their class", "[sqlexec]") {
  Fixture f;
  Limits limits;
  limits.timeout_s = 0.3;
  limits.max_rows = 5000;
  limits.max_bytes = 1 << 20;
  auto db = Database::open(f.path, limits);
  const double slack = 0.5;
  struct Case {
    std::string sql;
    ErrorClass cls;
  };
  std::vector<Case> cases = {
      {"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
       ErrorClass::timeout},
      {"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT x FROM c", ErrorClass::too_many_rows},
      {"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT max(x) FROM c ORDER BY 1",
       ErrorClass::timeout},
      {"SELECT count(*) FROM big a, big b, big c", ErrorClass::timeout},
      {"SELECT a.n, b.n FROM big a, big b ORDER BY a.n * b.n DESC", ErrorClass::timeout},
      {"SELECT a.n, b.n FROM big a CROSS JOIN big b", ErrorClass::too_many_rows},
      {"SELECT zeroblob(10 * 1024 * 1024)", ErrorClass::too_large},
      {"SELECT randomblob(10 * 1024 * 1024)", ErrorClass::too_large},
      {"SELECT length(zeroblob(10 * 1024 * 1024))", ErrorClass::too_large},
      {"SELECT replace(hex(zeroblob(600000)), '0', 'ab')", ErrorClass::too_large},
      {"SELECT group_concat(hex(randomblob(1000))) FROM big", ErrorClass::too_large},
      {"SELECT hex(randomblob(500)) FROM big", ErrorClass::too_large},  // 2000 rows × 1000 bytes > max_bytes
      {"SELECT 'a' LIKE '%' || replace(hex(zeroblob(1000)), '0', '%a') || 'b'", ErrorClass::too_large},
      {"SELECT count(*) FROM big WHERE replace(hex(zeroblob(60000 + n % 2)), '0', 'a') LIKE '%' || "
       "replace(hex(zeroblob(490)), '0', '%a') || 'b'",
       ErrorClass::timeout},
      {"SELECT count(*) FROM big WHERE instr(replace(hex(zeroblob(60000 + n % 2)), '0', 'a'), "
       "replace(hex(zeroblob(30000)), '0', 'a') || 'b')",
       ErrorClass::timeout},
  };
  for (const auto& c : cases) {
    // Statements that must hit a cap get a roomy deadline, so a loaded machine (or ASan) cannot turn
    // them into timeouts; the ones that must time out get the short one.
    double deadline = c.cls == ErrorClass::timeout ? limits.timeout_s : 5.0;
    ExecResult r = db->execute(c.sql, deadline);
    INFO(c.sql << " -> " << error_class_name(r.error) << ": " << r.message);
    CHECK(r.error == c.cls);
    CHECK(r.elapsed_s < deadline + slack);
    CHECK(r.result.rows.empty());
  }
  auto t = run(*db, "SELECT count(*) FROM big a, big b, big c");
  CHECK_THAT(t.message, Catch::Contains("interrupted") && Catch::Contains("deadline"));
  // The per-call deadline overrides the database's.
  auto quick = db->execute("SELECT count(*) FROM big a, big b, big c", 0.05);
  CHECK(quick.error == ErrorClass::timeout);
  CHECK(quick.elapsed_s < 0.05 + slack);
  // The connection stays usable after every kind of failure.
  CHECK(run(*db, "SELECT count(*) FROM big").ok());
  f.check_untouched();
}

TEST_CASE("classify_error maps SQLite messages", "[sqlexec]") {
  std::string d;
  CHECK(classify_error(1, "no such column: \"x\" - should this be a string literal in single-quotes?", &d) ==
        ErrorClass::no_such_column);
  CHECK(d == "\"x\"");
  CHECK(classify_error(9, "interrupted", &d) == ErrorClass::timeout);
  CHECK(classify_error(18, "string or blob too big", &d) == ErrorClass::too_large);
  CHECK(classify_error(7, "out of memory", &d) == ErrorClass::too_large);
  CHECK(classify_error(23, "not authorized", &d) == ErrorClass::forbidden);
  CHECK(classify_error(8, "attempt to write a readonly database", &d) == ErrorClass::forbidden);
  CHECK(classify_error(1, "something new", &d) == ErrorClass::other);
  CHECK(error_class_name(ErrorClass::no_such_table) == "no_such_table");
  CHECK(error_class_name(ErrorClass::too_many_rows) == "too_many_rows");
}

TEST_CASE("the process heap limit turns a huge allocation into too_large", "[sqlexec]") {
  Fixture f;
  Limits limits;
  limits.max_value_bytes = 200 << 20;  // let SQLite try to build the value: the heap limit must stop it
  auto db = Database::open(f.path, limits);
  int64_t before = set_process_heap_limit(-1);
  set_process_heap_limit(16 << 20);
  auto r = run(*db, "SELECT length(randomblob(64 * 1024 * 1024))");
  set_process_heap_limit(before);
  CHECK(set_process_heap_limit(-1) == before);
  CHECK(r.error == ErrorClass::too_large);
  CHECK(run(*db, "SELECT count(*) FROM big").ok());
  f.check_untouched();
}

TEST_CASE("execute is thread-safe with one pooled connection per thread", "[sqlexec]") {
  Fixture f;
  auto db = Database::open(f.path);
  std::atomic<int> wrong{0};
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int i = 0; i < 100; ++i) {
        int n = 1 + (t * 100 + i) % 2000;
        auto r = db->execute("SELECT n * 2 FROM big WHERE n = " + std::to_string(n));
        if (!r.ok() || r.result.rows.size() != 1 || std::get<int64_t>(r.result.rows[0][0]) != 2 * n) ++wrong;
      }
    });
  for (auto& th : threads) th.join();
  CHECK(wrong == 0);
  CHECK(db->connections_opened() >= 1);
  CHECK(db->connections_opened() <= 4);
  f.check_untouched();
}

TEST_CASE("concurrent deadlines interrupt only their own statements", "[sqlexec]") {
  Fixture f;
  auto db = Database::open(f.path);
  const std::vector<double> deadlines = {0.6, 0.2, 0.4};
  std::vector<ExecResult> slow(deadlines.size());
  std::atomic<int> quick_failures{0};
  std::atomic<bool> slow_done{false};
  std::vector<std::thread> threads;
  for (size_t i = 0; i < deadlines.size(); ++i)
    threads.emplace_back([&, i] { slow[i] = db->execute("SELECT count(*) FROM big a, big b, big c", deadlines[i]); });
  // Quick statements keep running on another connection while the slow ones are interrupted around them.
  threads.emplace_back([&] {
    for (int k = 0; k < 100 || !slow_done; ++k) {
      auto r = db->execute("SELECT sum(n) FROM big", 5.0);
      if (!r.ok() || std::get<int64_t>(r.result.rows[0][0]) != 2001000) ++quick_failures;
      if (k > 100000) break;
    }
  });
  for (size_t i = 0; i < deadlines.size(); ++i) threads[i].join();
  slow_done = true;
  threads.back().join();
  for (size_t i = 0; i < deadlines.size(); ++i) {
    INFO("deadline " << deadlines[i] << " s: " << error_class_name(slow[i].error) << " after " << slow[i].elapsed_s);
    CHECK(slow[i].error == ErrorClass::timeout);
    CHECK(slow[i].elapsed_s >= deadlines[i]);
    CHECK(slow[i].elapsed_s < deadlines[i] + 0.5);
  }
  CHECK(quick_failures == 0);
  CHECK(db->connections_opened() <= 4);
  f.check_untouched();
}

TEST_CASE("a VM step budget stops runaway statements deterministically, whatever the wall time", "[sqlexec]") {
  Fixture f;
  Limits limits;
  limits.max_vm_steps = 200 * kVmStepQuantum;
  limits.timeout_s = 600;  // far away: only the step budget can stop these
  auto db = Database::open(f.path, limits);
  const std::vector<std::string> runaway = {
      "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT count(*) FROM c",
      "SELECT count(*) FROM big a, big b, big c",
  };
  for (const auto& sql : runaway) {
    std::vector<uint64_t> steps;
    for (int rep = 0; rep < 3; ++rep) {
      ExecResult r = db->execute(sql);
      INFO(sql << " -> " << error_class_name(r.error) << ": " << r.message);
      CHECK(r.error == ErrorClass::timeout);
      CHECK_THAT(r.message, Catch::Contains("step budget of 200000 VM steps exceeded"));
      CHECK(r.result.rows.empty());
      // Stopped at the first check past the budget (SQLite checks at loop jumps, so a few instructions later).
      CHECK(r.vm_steps > limits.max_vm_steps);
      CHECK(r.vm_steps <= limits.max_vm_steps + 2 * kVmStepQuantum);
      steps.push_back(r.vm_steps);
    }
    // The same statement stops at the same instruction every time (a wall deadline would not).
    CHECK(steps[0] == steps[1]);
    CHECK(steps[1] == steps[2]);
    // A second connection (its first prepare reads the schema through the VM) stops at the same step too.
    ExecResult other;
    std::thread t([&] { other = db->execute(sql); });
    std::thread u([&] { (void)db->execute("SELECT count(*) FROM big a, big b"); });
    t.join();
    u.join();
    CHECK(other.error == ErrorClass::timeout);
    CHECK(other.vm_steps == steps[0]);
  }
  // A normal query runs to completion, reporting the steps it took (the same every run).
  ExecResult ok1 = run(*db, "SELECT count(*) FROM big WHERE n % 7 = 3");
  ExecResult ok2 = run(*db, "SELECT count(*) FROM big WHERE n % 7 = 3");
  REQUIRE(ok1.ok());
  CHECK(ok1.vm_steps > 0);
  CHECK(ok1.vm_steps < limits.max_vm_steps);
  CHECK(ok1.vm_steps == ok2.vm_steps);
  CHECK(ok1.result.rows == ok2.result.rows);
  // Without a budget the same runaway join runs until the wall deadline instead.
  Limits wall;
  wall.timeout_s = 0.2;
  auto unbudgeted = Database::open(f.path, wall);
  ExecResult w = unbudgeted->execute("SELECT count(*) FROM big a, big b, big c");
  CHECK(w.error == ErrorClass::timeout);
  CHECK_THAT(w.message, Catch::Contains("deadline"));
  CHECK(w.vm_steps > limits.max_vm_steps);
  // simulated_limits() keeps a step budget and a wall deadline as a safety net only.
  CHECK(simulated_limits().max_vm_steps > 0);
  CHECK(simulated_limits().timeout_s >= 60);
  f.check_untouched();
}

TEST_CASE("the sandbox calls only listed functions and reads only the schema's tables", "[sqlexec]") {
  Fixture f;
  auto db = Database::open(f.path);
  // Debian's SQLite enables the two-argument fts3_tokenizer(): installing a pointer, then tokenizing with it, was a
  // SIGSEGV; the one-argument form returned the built-in tokenizer's address.
  struct Case {
    std::string sql;
    std::string detail;
  };
  std::vector<Case> refused = {
      {"SELECT fts3_tokenizer('simple')", "function fts3_tokenizer"},
      {"SELECT fts3_tokenizer('simple', x'4141414141414141')", "function fts3_tokenizer"},
      {"SELECT sqlite_compileoption_get(0)", "function sqlite_compileoption_get"},
      {"SELECT Load_Extension('x')", "function load_extension"},
      {"SELECT * FROM pragma_function_list", "table pragma_function_list"},
      {"SELECT * FROM pragma_module_list", "table pragma_module_list"},
      {"SELECT count(*) FROM pragma_function_list", "table pragma_function_list"},
  };
  for (const auto& c : refused) {
    auto r = run(*db, c.sql);
    CHECK(r.error == ErrorClass::forbidden);
    CHECK(r.detail == c.detail);
  }
  // Virtual tables outside the schema do not exist for a statement, however they are named.
  for (std::string sql : {"SELECT token FROM fts3tokenize WHERE input = 'hello'", "SELECT count(*) FROM fts3tokenize",
                          "SELECT * FROM json_each('[1,2]')", "SELECT count(*) FROM dbstat",
                          "SELECT * FROM fts4aux", "SELECT * FROM sqlite_dbpage"}) {
    auto r = run(*db, sql);
    CHECK_FALSE(r.ok());
    CHECK((r.error == ErrorClass::forbidden || r.error == ErrorClass::no_such_table));
  }
  // What benchmark SQL uses still runs, with the built-ins' results.
  struct Allowed {
    std::string sql;
    std::string want;
  };
  std::vector<Allowed> allowed = {
      {"SELECT printf('%05.2f|%-3s|%d', 3.14159, 'ab', 7)", "03.14|ab |7"},
      {"SELECT format('%.*c', 3, 'x')", "xxx"},
      {"SELECT printf('%q', 'it''s')", "it''s"},
      {"SELECT printf('%5.1f%%', 12.345)", " 12.3%"},
      {"SELECT CAST(SUM(IIF(age > 30, 1, 0)) AS REAL) / count(*) FROM singer", "0.75"},
      {"SELECT strftime('%Y', '2014-05-06') || substr('abc', 2) || instr('abc', 'c')", "2014bc3"},
      {"SELECT json_extract('{\"a\": 3}', '$.a') + round(abs(-1.4))", "4.0"},
      {"WITH c(x) AS (SELECT 1 UNION ALL SELECT 2) SELECT count(*) FROM c", "2"},
      {"SELECT count(*) FROM (SELECT name FROM singer) AS s", "4"},
      {"SELECT name FROM singer ORDER BY age LIMIT 1", "Justin Brown"},
  };
  for (const auto& c : allowed) {
    auto r = run(*db, c.sql);
    REQUIRE(r.ok());
    REQUIRE(r.result.rows.size() == 1);
    CHECK(render_value(r.result.rows[0][0]) == c.want);
  }
  CHECK(run(*db, "SELECT printf(NULL, 1)").result.rows[0][0] == Value{});
  CHECK(run(*db, "SELECT count(*) FROM pragma_table_info('singer')").ok());
  f.check_untouched();
}

TEST_CASE("printf widths and precisions past the value cap fail at once", "[sqlexec]") {
  Fixture f;
  auto db = Database::open(f.path);
  // The built-in loops once per unit of precision even after failing: 2^31 - 1 took minutes in one call.
  for (std::string sql : {"SELECT printf('%.*c', 2147483647, 'x')", "SELECT format('%.*c', -2147483647, 'x')",
                          "SELECT printf('%2147483647c', 'x')", "SELECT printf('%s %.2147483647c', 'a', 'x')",
                          "SELECT printf('%d %*.*c', 1, 3, 300000, 'x')", "SELECT printf('%.999999999999d', 1)"}) {
    auto r = db->execute(sql, 5.0);
    INFO(sql << " -> " << error_class_name(r.error) << ": " << r.message);
    CHECK(r.error == ErrorClass::too_large);
    CHECK(r.elapsed_s < 1.0);
  }
  // Below the cap (256 KiB by default) it is the built-in's result.
  auto r = run(*db, "SELECT length(printf('%.*c', 200000, 'x'))");
  REQUIRE(r.ok());
  CHECK(std::get<int64_t>(r.result.rows[0][0]) == 200000);
  CHECK(run(*db, "SELECT printf('%%%d%%', 5)").result.rows[0][0] == Value{std::string("%5%")});
}

TEST_CASE("an aggregate over an endless recursive CTE stops at the heap growth cap", "[sqlexec]") {
  Fixture f;
  Limits limits;
  limits.timeout_s = 60;
  limits.max_heap_growth = 8 << 20;
  auto db = Database::open(f.path, limits);
  // json_group_array builds one value per row and checks the length cap only at the end: it reached 1 GB within
  // the BIRD metric's 30 s before; the heap growth cap stops it with too_large.
  for (std::string sql : {"WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) SELECT json_group_array(x) FROM c",
                          "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                          "SELECT json_group_object(x, 'abcdefgh') FROM c"}) {
    auto r = db->execute(sql);
    INFO(sql << " -> " << error_class_name(r.error) << ": " << r.message);
    CHECK(r.error == ErrorClass::too_large);
    CHECK_THAT(r.message, Catch::Contains("max_heap_growth"));
    CHECK(r.elapsed_s < 30);
  }
  CHECK(run(*db, "SELECT json_group_array(name) FROM singer").ok());
}
