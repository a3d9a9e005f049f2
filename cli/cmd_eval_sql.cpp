// `t2s eval-sql`: execution match of a predicted query against a gold query on one SQLite database.
#include <iostream>

#include "cli/commands.hpp"
#include "sqlexec/compare.hpp"

namespace t2s::cli {

void add_eval_sql_command(CLI::App& app) {
  struct Options {
    std::string db, pred, gold, metric = "spider";
    double timeout_s = 5.0;
    bool keep_distinct = false;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "eval-sql",
      "Execution match of --pred against --gold on --db; prints {\"match\": bool, \"pred_error\": string|null, "
      "\"gold_error\": string|null}");
  cmd->add_option("--db", opt->db, "SQLite database file (opened read-only)")->required();
  cmd->add_option("--pred", opt->pred, "predicted SQL")->required();
  cmd->add_option("--gold", opt->gold, "gold SQL")->required();
  cmd->add_option("--metric", opt->metric,
                  "spider: official test-suite rule (multiset of rows, order when the gold has ORDER BY, predicted "
                  "columns may be permuted, DISTINCT dropped); bird: set(pred rows) == set(gold rows), 30 s timeout")
      ->check(CLI::IsMember({"spider", "bird"}))
      ->capture_default_str();
  cmd->add_option("--timeout", opt->timeout_s, "per-statement deadline in seconds for the spider metric")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_flag("--keep-distinct", opt->keep_distinct,
                "spider metric: keep DISTINCT in both queries (the official evaluator's --keep_distinct)");
  cmd->callback([opt] {
    sqlexec::Metric metric = sqlexec::parse_metric(opt->metric);
    sqlexec::Limits limits;
    limits.timeout_s = opt->timeout_s;
    auto db = sqlexec::Database::open(opt->db, limits);
    auto outcome = sqlexec::execution_match(*db, opt->pred, opt->gold, metric, opt->keep_distinct);
    std::cout << sqlexec::to_json(outcome) << "\n";
  });
}

}  // namespace t2s::cli
