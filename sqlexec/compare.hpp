#pragma once
//! Execution-match comparators: Spider (official test-suite `result_eq`) and BIRD (set equality).
#include <optional>
#include <string>
#include <string_view>

#include "sqlexec/database.hpp"

namespace t2s::sqlexec {

//! Which benchmark's execution-match rule to apply.
enum class Metric { spider, bird };

//! Total order on values consistent with the evaluators' Python equality: NULL < numbers < TEXT < BLOB;
//! an INTEGER and a REAL compare by exact numeric value (1 == 1.0, 2^53+1 != 2^53 as a double).
int compare_values(const Value& a, const Value& b);

//! Spider execution match on two results (pred, gold): bags of rows equal as multisets (as sequences when
//! `order_matters`), after some permutation of the predicted columns; both empty → true.
bool spider_match(const ResultSet& pred, const ResultSet& gold, bool order_matters);

//! True when the gold SQL text contains "order by" (case-insensitive), the official evaluator's rule.
bool spider_order_matters(std::string_view gold_sql);

//! The query text the official Spider evaluator runs: "> =", "< =", "! =" joined, YEAR(CURDATE()) → 2020 and,
//! unless `keep_distinct`, every DISTINCT keyword outside quotes removed (its default).
std::string spider_normalize_sql(std::string_view sql, bool keep_distinct = false);

//! BIRD execution match: set(pred rows) == set(gold rows); column order matters, duplicates and row order do not.
bool bird_match(const ResultSet& pred, const ResultSet& gold);

//! The BIRD evaluator's per-query timeout in seconds.
inline constexpr double kBirdTimeoutS = 30.0;

//! Execution match of two queries on one database; errors are "<class>: <SQLite message>".
struct MatchOutcome {
  bool match = false;                     //!< true when both ran and the results match
  std::optional<std::string> pred_error;  //!< why the predicted query failed, if it did
  std::optional<std::string> gold_error;  //!< why the gold query failed, if it did
};

//! Runs gold and pred on `db` and compares them under `metric`. Spider: the official normalisation
//! (spider_normalize_sql with `keep_distinct`), the database's timeout; BIRD: raw SQL, a 30 s timeout.
MatchOutcome execution_match(const Database& db, std::string_view pred_sql, std::string_view gold_sql, Metric metric,
                             bool keep_distinct = false);

//! The contract's JSON form: {"match": bool, "pred_error": string|null, "gold_error": string|null}.
std::string to_json(const MatchOutcome& outcome);

//! Parses "spider" or "bird"; throws t2s::InputError otherwise.
Metric parse_metric(std::string_view name);

}  // namespace t2s::sqlexec
