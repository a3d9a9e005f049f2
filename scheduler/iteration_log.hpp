#pragma once
//! Measured iterations as JSON lines (`iterations.jsonl` of a recorded run, `t2s cost-model --fit`, `t2s replay
//! --fit`): one object per iteration, and the per-instance fit of the linear iteration model.
#include <map>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "scheduler/cost_model.hpp"

namespace t2s::scheduler {

//! One measured iteration of one instance.
struct IterationRecord {
  std::string instance;   //!< instance name ("" in files written before names were recorded)
  double t_s = 0;         //!< clock time it was reported, seconds after the run's start
  IterationSample sample;  //!< its shape and measured seconds
};

//! One JSON line (no newline): `{"instance", "t_s", "prefill_tokens", "prefill_attn", "decode_seqs",
//! "decode_context", "seconds"}`.
std::string format_iteration_line(const IterationRecord& record);

//! Reads JSON lines of iterations (blank lines skipped); `instance` and `t_s` are optional, `seconds` required and
//! every field is checked (non-negative counts, finite positive seconds). Errors name the file and line.
std::vector<IterationRecord> load_iteration_log(const std::string& path);

//! Fits the linear iteration model to one instance's samples. The embedded engine reports every attended
//! position (prefill attention included) as decode context and no prefill_attn; when no sample has prefill_attn
//! but some prefill, the attention coefficient is set to the context one, so a simulator that separates the two
//! prices them alike.
Expected<LinearIterationModel> fit_instance_iterations(const std::vector<IterationSample>& samples);

//! The samples of `records` grouped by instance name.
std::map<std::string, std::vector<IterationSample>> samples_by_instance(const std::vector<IterationRecord>& records);

}  // namespace t2s::scheduler
