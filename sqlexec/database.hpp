#pragma once
//! Sandboxed, read-only SQLite execution with deadlines, result caps and classified errors.
#include <cstddef>
#include <cstdint>
#include <chrono>
#include <condition_variable>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <string_view>
#include <thread>
#include <variant>
#include <vector>

struct sqlite3;

namespace t2s::sqlexec {

//! What went wrong with a statement, in classes a self-correcting agent can act on.
enum class ErrorClass {
  none,              //!< success
  syntax,            //!< parse error, unknown token, malformed compound, invalid UTF-8 or several statements
  no_such_table,     //!< a table name that the database lacks (detail: the name)
  no_such_column,    //!< a column name that no table in scope has (detail: the name as written)
  ambiguous_column,  //!< a column name that several tables in scope have (detail: the name)
  type_misuse,       //!< aggregate/window/function misuse, wrong arity, unknown function, row-value misuse
  timeout,           //!< the statement ran past its deadline or its VM step budget
  too_many_rows,     //!< the result has more rows than Limits::max_rows
  too_large,         //!< a value or the result is bigger than the byte caps, or SQLite ran out of memory
  forbidden,         //!< the sandbox refused the statement (writes, ATTACH, state-changing PRAGMA, ...)
  other,             //!< anything else (the message says what)
};

//! The lower-case name of `c` ("none", "syntax", "no_such_table", ...).
std::string_view error_class_name(ErrorClass c);

//! A BLOB value (kept apart from TEXT because SQL and the comparators treat them differently).
struct Blob {
  std::string bytes;  //!< the raw bytes
  //! Byte-wise equality.
  bool operator==(const Blob&) const = default;
};

//! One SQLite value: NULL, INTEGER, REAL, TEXT or BLOB.
using Value = std::variant<std::monostate, int64_t, double, std::string, Blob>;

//! A value as text: NULL → "NULL", REAL in shortest round-trip form, BLOB as X'hex'.
std::string render_value(const Value& v);

//! Column names and rows of a query result.
struct ResultSet {
  std::vector<std::string> columns;       //!< result column names, as SQLite reports them
  std::vector<std::vector<Value>> rows;   //!< rows in the order SQLite returned them
};

//! The outcome of one statement.
struct ExecResult {
  ErrorClass error = ErrorClass::none;  //!< none on success
  std::string message;                  //!< SQLite's own error text (or the sandbox's, for caps and refusals)
  std::string detail;                   //!< the name involved (missing table/column, refused action), if any
  ResultSet result;                     //!< the rows (empty on error)
  double elapsed_s = 0;                 //!< wall time spent preparing and stepping
  uint64_t vm_steps = 0;                //!< SQLite VM instructions the statement ran (deterministic, unlike time)
  //! True when the statement succeeded.
  bool ok() const { return error == ErrorClass::none; }
};

//! Per-statement limits.
struct Limits {
  double timeout_s = 5.0;                //!< wall-clock deadline per statement (BIRD uses 30 s)
  size_t max_rows = 100000;              //!< more rows → too_many_rows
  size_t max_bytes = 64 << 20;           //!< total bytes of returned values; more → too_large
  size_t max_value_bytes = 256 << 10;    //!< largest TEXT/BLOB value SQLite may build or read (SQLITE_LIMIT_LENGTH)
  size_t max_like_pattern = 2000;        //!< longest LIKE/GLOB pattern (SQLITE_LIMIT_LIKE_PATTERN_LENGTH)
  //! VM instruction budget per statement, counted in quanta of kVmStepQuantum (0 = none); past it → timeout.
  //! Unlike the wall deadline its outcome does not depend on machine load, so simulated runs are reproducible.
  uint64_t max_vm_steps = 0;
  //! How much SQLite's heap may grow while the statement runs (0 = no cap); past it → too_large. The heap is the
  //! process's, so concurrent statements count too; the cap is far above what any gold query takes.
  int64_t max_heap_growth = int64_t(256) << 20;
};

//! How many VM instructions run between two budget/deadline checks; a step budget is enforced to this grain.
inline constexpr uint64_t kVmStepQuantum = 1000;

//! Limits for simulated (replayed) execution: a VM step budget far above what any Spider dev, BIRD mini-dev or
//! synthetic gold query takes (docs/sqlexec.md gives the measured figures) decides, so outcomes do not depend on
//! machine load; a generous wall deadline stays only as a safety net.
Limits simulated_limits();

//! A read-only, sandboxed SQLite database; `execute` is thread-safe (one pooled connection per calling thread).
class Database {
 public:
  //! Opens `path` read-only and immutable; throws t2s::InputError naming the path when missing, unreadable or not SQLite.
  static std::shared_ptr<Database> open(const std::string& path, Limits limits = {});
  ~Database();
  Database(const Database&) = delete;
  Database& operator=(const Database&) = delete;

  //! Runs one statement (a trailing `;` is fine) under the sandbox and limits; never throws for bad SQL.
  ExecResult execute(std::string_view sql) const;
  //! Like `execute` with a different deadline (seconds) for this statement only.
  ExecResult execute(std::string_view sql, double timeout_s) const;
  //! The file this database reads.
  const std::string& path() const { return path_; }
  //! The limits every statement runs under.
  const Limits& limits() const { return limits_; }
  //! How many connections the pool has opened so far (one per concurrently executing thread).
  size_t connections_opened() const;

 private:
  struct Key {};

 public:
  //! Use Database::open.
  Database(Key, std::string path, Limits limits);

 private:
  struct Connection;
  std::unique_ptr<Connection> open_connection() const;
  std::unique_ptr<Connection> acquire() const;
  void release(std::unique_ptr<Connection> c) const;
  void watch(Connection* c) const;
  void unwatch(Connection* c) const;
  void watchdog_loop();

  void read_schema();

  std::string path_;
  std::string uri_;
  Limits limits_;
  std::set<std::string> schema_names_;    // lower-case tables and views: the only tables a statement may read
  std::vector<std::string> schema_modules_;  // virtual-table modules the schema uses: the only ones kept
  mutable std::mutex mu_;
  mutable std::vector<std::unique_ptr<Connection>> idle_;
  mutable size_t opened_ = 0;
  // The watchdog interrupts statements at their deadline. The progress handler alone is not enough: a
  // statement that spends long in few VM instructions (an expensive function per row) would overrun it.
  mutable std::mutex watch_mu_;
  mutable std::condition_variable watch_cv_;
  mutable std::multimap<std::chrono::steady_clock::time_point, Connection*> running_;
  std::chrono::steady_clock::time_point watch_wakeup_ = std::chrono::steady_clock::time_point::min();
  bool stopping_ = false;
  std::thread watchdog_;
};

//! Sets SQLite's process-wide hard heap limit (sqlite3_hard_heap_limit64; 0 = none); returns the previous limit.
int64_t set_process_heap_limit(int64_t bytes);

//! Classifies an SQLite error (primary result code `rc` and message) into an ErrorClass and the name it involves.
ErrorClass classify_error(int rc, std::string_view message, std::string* detail);

}  // namespace t2s::sqlexec
