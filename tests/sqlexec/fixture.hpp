#pragma once
//! Fixture databases for the sqlexec tests, built with the raw SQLite API in a TempDir.
#include <sqlite3.h>

#include <cstdint>
#include <fstream>
#include <iterator>
#include <stdexcept>
#include <string>

namespace t2s::test {

//! Runs `sql` (several statements allowed) on a fresh writable database at `path`.
inline void build_db(const std::string& path, const std::string& sql) {
  sqlite3* db = nullptr;
  if (sqlite3_open(path.c_str(), &db) != SQLITE_OK) throw std::runtime_error("cannot create " + path);
  char* err = nullptr;
  int rc = sqlite3_exec(db, sql.c_str(), nullptr, nullptr, &err);
  std::string msg = err ? err : "";
  sqlite3_free(err);
  sqlite3_close(db);
  if (rc != SQLITE_OK) throw std::runtime_error("fixture SQL failed: " + msg);
}

//! A small concert database: singer, concert (with a foreign key), and `big` with 2000 rows for hostile joins.
inline void build_concert_db(const std::string& path) {
  build_db(path, R"(
    CREATE TABLE singer (singer_id INTEGER PRIMARY KEY, name TEXT NOT NULL, country TEXT, age INT);
    CREATE TABLE concert (concert_id INT PRIMARY KEY, singer_id INT REFERENCES singer(singer_id),
                          year INT, price REAL, FOREIGN KEY (concert_id) REFERENCES singer);
    CREATE TABLE "odd name" ("a col" TEXT, b BLOB, PRIMARY KEY ("a col", b));
    CREATE TABLE big (n INT);
    INSERT INTO singer VALUES (1, 'Joe Sharp', 'Netherlands', 52), (2, 'Timbaland', 'United States', 32),
                              (3, 'Justin Brown', 'France', 29), (4, 'Rose White', 'France', 41);
    INSERT INTO concert VALUES (10, 1, 2014, 9.5), (11, 2, 2014, 12.0), (12, 2, 2015, NULL), (13, 4, 2015, 20.25);
    INSERT INTO "odd name" VALUES ('it''s', x'00ff');
    WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 2000) INSERT INTO big SELECT x FROM c;
  )");
}

//! FNV-1a 64-bit hash of the file's bytes (to show a file did not change).
inline uint64_t file_hash(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  uint64_t h = 1469598103934665603ull;
  for (unsigned char c : bytes) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h ^ bytes.size();
}

}  // namespace t2s::test
