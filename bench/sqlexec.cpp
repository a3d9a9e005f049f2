// bench_sqlexec: executions/s of the Spider dev gold queries through the sandboxed Database on 1 and 2 threads,
// against raw SQLite (same queries, same value copying, no authorizer, deadline or caps) measured in the same run.
#include <sqlite3.h>

#include <CLI/CLI.hpp>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <functional>
#include <map>
#include <memory>
#include <thread>

#include "common/json.hpp"
#include "sqlexec/database.hpp"

using namespace t2s;
using Clock = std::chrono::steady_clock;

namespace {

struct Query {
  std::string db_path;
  std::string sql;
};

// The peer: one plain read-only connection per (thread, database), values copied out as the sandbox does.
// With `immutable` it opens the file as the sandbox does (no locks, no change checks), isolating the cost of
// the authorizer, the deadline handler and the caps.
class RawRunner {
 public:
  explicit RawRunner(bool immutable) : immutable_(immutable) {}
  ~RawRunner() {
    for (auto& [path, db] : dbs_) sqlite3_close_v2(db);
  }
  bool run(const Query& q) {
    sqlite3*& db = dbs_[q.db_path];
    std::string name = immutable_ ? "file:" + q.db_path + "?mode=ro&immutable=1" : q.db_path;
    int flags = SQLITE_OPEN_READONLY | SQLITE_OPEN_NOMUTEX | (immutable_ ? SQLITE_OPEN_URI : 0);
    if (!db && sqlite3_open_v2(name.c_str(), &db, flags, nullptr) != SQLITE_OK) return false;
    sqlite3_stmt* stmt = nullptr;
    if (sqlite3_prepare_v2(db, q.sql.c_str(), int(q.sql.size()), &stmt, nullptr) != SQLITE_OK) return false;
    int ncol = sqlite3_column_count(stmt);
    std::vector<std::vector<sqlexec::Value>> rows;
    int rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
      auto& row = rows.emplace_back();
      for (int i = 0; i < ncol; ++i) {
        switch (sqlite3_column_type(stmt, i)) {
          case SQLITE_INTEGER: row.emplace_back(int64_t(sqlite3_column_int64(stmt, i))); break;
          case SQLITE_FLOAT: row.emplace_back(sqlite3_column_double(stmt, i)); break;
          case SQLITE_TEXT:
            row.emplace_back(std::string(reinterpret_cast<const char*>(sqlite3_column_text(stmt, i)),
                                         size_t(sqlite3_column_bytes(stmt, i))));
            break;
          default: row.emplace_back(std::monostate{}); break;
        }
      }
    }
    sqlite3_finalize(stmt);
    return rc == SQLITE_DONE;
  }

 private:
  bool immutable_;
  std::map<std::string, sqlite3*> dbs_;
};

// Runs `passes` passes over `queries` on each of `threads` threads (thread t starts at a different offset);
// returns executions per second over all threads, or -1 when any execution failed.
double measure(int threads, int passes, const std::vector<Query>& queries,
               const std::function<std::function<bool(const Query&)>()>& make_worker) {
  std::atomic<bool> failed{false};
  std::vector<std::thread> pool;
  auto start = Clock::now();
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      auto work = make_worker();
      size_t n = queries.size();
      for (int p = 0; p < passes; ++p)
        for (size_t i = 0; i < n; ++i)
          if (!work(queries[(i + size_t(t) * n / size_t(threads)) % n])) failed = true;
    });
  for (auto& th : pool) th.join();
  double s = std::chrono::duration<double>(Clock::now() - start).count();
  return failed ? -1 : double(threads) * double(passes) * double(queries.size()) / s;
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_sqlexec: executions/s of the Spider dev gold queries, sandboxed vs raw SQLite"};
  std::string shared = T2S_SHARED_DIR_DEFAULT;
  int passes = 5;
  app.add_option("--shared", shared, "the shared folder (holds data/spider)")->capture_default_str();
  app.add_option("--passes", passes, "passes over the 778 queries per thread and setting")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  CLI11_PARSE(app, argc, argv);
  try {
    std::string base = shared + "/data/spider/";
    auto dev = json::parse_file(base + "dev.json");
    std::vector<Query> queries;
    std::map<std::string, std::shared_ptr<sqlexec::Database>> dbs;
    for (rapidjson::SizeType i = 0; i < dev.Size(); ++i) {
      std::string where = "dev.json[" + std::to_string(i) + "]";
      std::string db_id = json::get_string(dev[i], "db_id", where);
      std::string path = base + "database/" + db_id + "/" + db_id + ".sqlite";
      if (!dbs.count(path)) dbs[path] = sqlexec::Database::open(path);
      queries.push_back({path, json::get_string(dev[i], "query", where)});
    }
    auto sandboxed = [&] {
      return std::function<bool(const Query&)>([&](const Query& q) { return dbs.at(q.db_path)->execute(q.sql).ok(); });
    };
    auto raw_runner = [](bool immutable) {
      return [immutable] {
        auto runner = std::make_shared<RawRunner>(immutable);
        return std::function<bool(const Query&)>([runner](const Query& q) { return runner->run(q); });
      };
    };
    auto raw = raw_runner(false), raw_immutable = raw_runner(true);
    measure(1, 1, queries, sandboxed);  // warm the page cache and the connection pools
    measure(1, 1, queries, raw);
    std::printf("bench_sqlexec: %zu Spider dev gold queries on %zu databases, %d passes per thread\n", queries.size(),
                dbs.size(), passes);
    std::printf("%-14s %8s %10s %10s %14s %8s\n", "runner", "threads", "exec/s", "vs raw", "vs immutable", "vs 1T");
    double raw1 = measure(1, passes, queries, raw);
    double raw2 = measure(2, passes, queries, raw);
    double im1 = measure(1, passes, queries, raw_immutable);
    double im2 = measure(2, passes, queries, raw_immutable);
    double sb1 = measure(1, passes, queries, sandboxed);
    double sb2 = measure(2, passes, queries, sandboxed);
    if (raw1 < 0 || raw2 < 0 || im1 < 0 || im2 < 0 || sb1 < 0 || sb2 < 0) {
      std::fprintf(stderr, "bench_sqlexec: some gold query failed to execute\n");
      return 1;
    }
    auto row = [&](const char* name, int threads, double v, double one_thread) {
      std::printf("%-14s %8d %10.0f %10.3f %14.3f %8.3f\n", name, threads, v, v / (threads == 1 ? raw1 : raw2),
                  v / (threads == 1 ? im1 : im2), v / one_thread);
    };
    row("raw", 1, raw1, raw1);
    row("raw", 2, raw2, raw1);
    row("raw-immutable", 1, im1, im1);
    row("raw-immutable", 2, im2, im1);
    row("sandboxed", 1, sb1, sb1);
    row("sandboxed", 2, sb2, sb1);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_sqlexec: %s\n", e.what());
    return 2;
  }
  return 0;
}
