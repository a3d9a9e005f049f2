#pragma once
//! Per-stage call-length distributions of the agentic CHESS workflow, fitted to the paper's hexgen traces.
#include <cstdint>
#include <string>
#include <vector>

#include "agents/llm_call.hpp"
#include "common/rng.hpp"

namespace t2s::agents {

//! A clamped log-normal length distribution (tokens).
struct LengthDistribution {
  double mu = 0;      //!< mean of log(length)
  double sigma = 0;   //!< standard deviation of log(length)
  int min = 1;        //!< smallest length observed
  int max = 1 << 20;  //!< largest length observed (the generation cap in the traces)
  //! One draw, clamped to [min, max].
  int draw(Rng& rng) const;
  //! The mean of the clamped distribution (numerically, deterministic).
  double mean() const;
  //! The q-quantile (clamped).
  double quantile(double q) const;
};

//! Fitted lengths of one stage kind.
struct StageLengths {
  StageKind kind = StageKind::other;
  LengthDistribution prompt;  //!< prompt tokens (as the paper's prompts are; ours are built for real)
  LengthDistribution output;  //!< output tokens
};

//! The fitted per-stage distributions, from all 309 queries of the four files in data/hexgen_traces
//! (log-normal maximum-likelihood fit of each step's lengths; see docs/agents.md for the numbers and command).
const StageLengths& trace_fitted_lengths(StageKind kind);

//! Per-question structure of the traces: how many calls of the variable-count stages a question makes.
struct TraceShape {
  std::vector<double> revise_rounds_pmf;    //!< P(revise calls = k), k = 0…10
  std::vector<double> evaluation_calls_pmf; //!< P(evaluate calls = k), k = 0…11
  double keyword_extraction_prob = 0;       //!< P(a keyword-extraction call)
  double unit_test_generation_prob = 0;     //!< P(a unit-test-generation call)
  int tool_picker_calls = 7;                //!< tool-picker calls per question (4 retriever + 3 unit-tester)
};
//! The shape fitted to the same 309 queries.
const TraceShape& trace_fitted_shape();

//! A small deterministic hash of a string (FNV-1a), for seeding per-question streams.
uint64_t stable_hash(std::string_view text);

}  // namespace t2s::agents
