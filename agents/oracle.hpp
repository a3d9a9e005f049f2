#pragma once
//! The oracle responder: answers Text-to-SQL calls from the gold SQL with calibrated, seeded imperfection.
#include <array>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agents/responder.hpp"
#include "common/rng.hpp"
#include "workloads/workload.hpp"

namespace t2s::agents {

//! Parameters of the oracle (documented with the accuracy they produce in docs/agents.md).
struct OracleOptions {
  uint64_t seed = 42;          //!< base seed; answers are a function of (seed, question, call role)
  double error_scale = 1.0;    //!< 0: never errs; 1: the calibrated rates below
  //! P(a candidate is wrong) by difficulty easy, medium, hard, extra (BIRD: simple, moderate, challenging).
  std::array<double, 4> p_wrong = {0.12, 0.22, 0.35, 0.45};
  double q_fix = 0.6;          //!< P(a revise round fixes a wrong query)
  double judge_error = 0.15;   //!< P(a judge call misjudges one candidate)
  //! Relative weights of the mutations of a wrong query: misspelled column, syntax slip, missing join condition,
  //! wrong aggregate, wrong condition (each used only where it applies).
  std::array<double, 5> mutation_weights = {0.3, 0.15, 0.15, 0.2, 0.2};
};

//! The kinds of realistic mistakes the oracle makes.
enum class Mutation { misspelled_column, syntax_slip, missing_join_condition, wrong_aggregate, wrong_condition };
//! "misspelled_column", …
std::string_view mutation_name(Mutation m);
//! Applies `m` to `sql` if it applies (nullopt otherwise). `columns` lists column names of the schema (used to
//! pick a column to misspell and to make sure the misspelling is not another column); empty: any identifier.
std::optional<std::string> mutate_sql(const std::string& sql, Mutation m, const std::vector<std::string>& columns,
                                      Rng& rng);
//! A wrong variant of `gold` by a mutation drawn with `weights` among those that apply, and which one.
std::pair<std::string, Mutation> wrong_variant(const std::string& gold, const std::array<double, 5>& weights,
                                               const std::vector<std::string>& columns, Rng& rng);

//! The oracle for a workload's questions (Spider, BIRD, synthetic: anything with gold SQL).
std::unique_ptr<Responder> make_oracle_responder(const workloads::Workload& workload, OracleOptions options = {});

}  // namespace t2s::agents
