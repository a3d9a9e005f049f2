// Database files that go wrong under a running server: truncated, corrupt inside, locked by a writer, deleted after
// opening. Each gives a clear error naming the problem (or, for a lock, the committed data at once), other
// databases keep working, and no file changes.
#include <catch2/catch.hpp>

#include <sqlite3.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "common/status.hpp"
#include "sqlexec/database.hpp"
#include "tests/sqlexec/fixture.hpp"
#include "tests/support.hpp"

using namespace t2s::sqlexec;
using t2s::test::TempDir;

namespace {

// A database with a few small pages of schema and 200 rows of 200-byte text spread over many more pages.
void build_rows_db(const std::string& path) {
  t2s::test::build_db(path, R"(
    CREATE TABLE t (id INTEGER PRIMARY KEY, v TEXT);
    WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 200)
    INSERT INTO t(v) SELECT printf('%200d', x) FROM c;
  )");
}

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream(path, std::ios::binary) << bytes;
}

// A writable connection of the test's own (the "other process" holding the file).
struct Writer {
  sqlite3* db = nullptr;
  explicit Writer(const std::string& path) { REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK); }
  ~Writer() { sqlite3_close(db); }
  int exec(const std::string& sql) { return sqlite3_exec(db, sql.c_str(), nullptr, nullptr, nullptr); }
};

}  // namespace

TEST_CASE("a truncated database is refused at open naming the file; a database corrupt inside fails the statements "
          "that read the damage, with SQLite's reason, and nothing else",
          "[sqlexec][faults]") {
  TempDir dir("sqlexec-faults");
  const std::string good = dir.file("good.sqlite"), cut = dir.file("cut.sqlite"), hurt = dir.file("hurt.sqlite");
  build_rows_db(good);
  const std::string bytes = read_file(good);
  REQUIRE(bytes.size() >= 8 * 4096);
  write_file(cut, bytes.substr(0, bytes.size() / 2));  // a copy that stopped half way
  std::string damaged = bytes;
  for (size_t i = 3 * 4096; i < 6 * 4096; ++i) damaged[i] = static_cast<char>(i * 7919 % 251);  // data pages only
  write_file(hurt, damaged);
  const uint64_t cut_hash = t2s::test::file_hash(cut), hurt_hash = t2s::test::file_hash(hurt);

  CHECK_THROWS_AS(Database::open(cut), t2s::InputError);
  CHECK_THROWS_WITH(Database::open(cut), Catch::Contains(cut) && Catch::Contains("malformed"));

  auto db = Database::open(hurt);  // the schema page is intact
  auto r = db->execute("SELECT max(length(v)) FROM t");
  CHECK(r.error == ErrorClass::other);
  CHECK(r.message.find("malformed") != std::string::npos);
  CHECK(db->execute("SELECT 1 + 1").ok());  // the connection is still usable
  auto g = Database::open(good);
  auto rg = g->execute("SELECT count(*) FROM t");
  REQUIRE(rg.ok());
  CHECK(std::get<int64_t>(rg.result.rows[0][0]) == 200);
  CHECK(t2s::test::file_hash(cut) == cut_hash);
  CHECK(t2s::test::file_hash(hurt) == hurt_hash);
}

TEST_CASE("a database locked by a writer (exclusive or reserved, uncommitted rows) is read at once as committed",
          "[sqlexec][faults]") {
  TempDir dir("sqlexec-faults");
  const std::string path = dir.file("locked.sqlite");
  build_rows_db(path);
  auto db = Database::open(path);
  for (const char* begin : {"BEGIN EXCLUSIVE", "BEGIN IMMEDIATE"}) {
    INFO(begin);
    Writer w(path);
    REQUIRE(w.exec(begin) == SQLITE_OK);
    REQUIRE(w.exec("INSERT INTO t(v) VALUES ('uncommitted')") == SQLITE_OK);
    // The sandbox opens files immutable: it takes no lock, so it neither waits for the writer nor sees its rows.
    auto t0 = std::chrono::steady_clock::now();
    auto r = db->execute("SELECT count(*) FROM t");
    CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 1.0);
    REQUIRE(r.ok());
    CHECK(std::get<int64_t>(r.result.rows[0][0]) == 200);
    auto fresh = Database::open(path);  // a new open while locked works too
    CHECK(fresh->execute("SELECT count(*) FROM t").ok());
    REQUIRE(w.exec("ROLLBACK") == SQLITE_OK);
  }
}

TEST_CASE("a database deleted after opening: connections already open keep reading it, a new one fails naming the "
          "file, and reopening says it does not exist",
          "[sqlexec][faults]") {
  TempDir dir("sqlexec-faults");
  const std::string path = dir.file("gone.sqlite");
  build_rows_db(path);
  auto db = Database::open(path);
  REQUIRE(db->execute("SELECT count(*) FROM t").ok());
  std::filesystem::remove(path);
  CHECK(db->execute("SELECT count(*) FROM t").ok());  // this thread's pooled connection holds the file open
  // While the pooled connection runs a statement (an endless one, stopped by its 1 s deadline), another needs a
  // connection of its own, which cannot open the deleted file.
  std::thread busy([&] { CHECK(db->execute("WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
                                           "SELECT count(*) FROM c", 1.0).error == ErrorClass::timeout); });
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  CHECK_THROWS_WITH(db->execute("SELECT count(*) FROM t"), Catch::Contains("cannot open") && Catch::Contains(path));
  busy.join();
  CHECK_THROWS_WITH(Database::open(path), Catch::Contains("does not exist") && Catch::Contains(path));
}
