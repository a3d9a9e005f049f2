#pragma once
//! Where the agent's SQL runs: a real SQLite database (sqlexec), or — when a workload has no database files
//! (BIRD mini-dev in the shared data) — a schema-only SQLite that finds real syntax and name errors while the
//! result's correctness comes from the oracle's knowledge of the gold query.
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "sqlexec/compare.hpp"
#include "sqlexec/database.hpp"
#include "sqlexec/schema.hpp"
#include "workloads/workload.hpp"

namespace t2s::agents {

//! One execution of a candidate as the agent sees it.
struct ExecOutcome {
  sqlexec::ErrorClass error = sqlexec::ErrorClass::none;
  std::string message;                        //!< SQLite's error text (empty on success)
  std::vector<std::string> columns;           //!< result columns
  std::vector<std::vector<std::string>> rows; //!< result rows rendered as text (capped by the backend)
  size_t row_count = 0;                       //!< rows returned (before the cap)
  bool empty = false;                         //!< ran and returned no rows (never set when simulated)
  bool all_null = false;                      //!< ran and every returned value is NULL (suspicious)
  bool simulated = false;                     //!< the result is a label from the oracle, not a real execution
  std::string signature;                      //!< equal for results the agent should treat as the same answer
  double elapsed_s = 0;                       //!< measured time
  //! True when the statement ran.
  bool ok() const { return error == sqlexec::ErrorClass::none; }
};

//! A value found in the database that matches a question keyword (for schema linking).
struct ValueMatch {
  std::string table, column, value, keyword;
};

//! Executes candidates and supplies the schema of a question's database.
class ExecutionBackend {
 public:
  virtual ~ExecutionBackend() = default;
  //! The schema of `db_id` (throws InputError naming it when unknown).
  virtual const sqlexec::Schema& schema(const std::string& db_id) = 0;
  //! Runs `sql` for `question`.
  virtual ExecOutcome execute(const workloads::Question& question, std::string_view sql) = 0;
  //! Database values containing one of `keywords` (case-insensitive), at most `limit`.
  virtual std::vector<ValueMatch> match_values(const std::string& db_id, const std::vector<std::string>& keywords,
                                               size_t limit) = 0;
  //! Whether `sql` answers `question` (execution match against gold; nullopt without gold).
  virtual std::optional<bool> correct(const workloads::Question& question, std::string_view sql) = 0;
  //! True when outcomes are simulated from the oracle's labels.
  virtual bool simulated() const = 0;
};

//! Real execution on the workload's SQLite files (schema by sqlexec introspection, values by a distinct-value
//! index of TEXT columns built on first use). `metric` picks the comparator for correctness.
std::unique_ptr<ExecutionBackend> make_sqlite_backend(const workloads::Workload& workload, sqlexec::Metric metric,
                                                      sqlexec::Limits limits = {});
//! Simulated execution: schemas from `schemas` (e.g. BIRD's dev_tables.json as the workload loader read it), statements prepared on an empty
//! in-memory database with that schema (real SQLite errors), success outcomes labelled by comparing the
//! normalised query with the gold query (what the oracle knows).
std::unique_ptr<ExecutionBackend> make_simulated_backend(std::map<std::string, sqlexec::Schema> schemas);

//! The schema a workload knows without the database file (from tables.json), as sqlexec's Schema.
sqlexec::Schema schema_from_database_info(const workloads::DatabaseInfo& db);
//! A query normalised for textual comparison: lower case outside quotes, whitespace collapsed, no trailing `;`.
std::string normalize_sql(std::string_view sql);

}  // namespace t2s::agents
