#pragma once
//! Arrival processes (Poisson, bursty Gamma, timestamp replay) and SLO deadlines.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "workloads/workload.hpp"

namespace t2s::workloads {

//! How workflows arrive.
struct ArrivalSpec {
  enum class Kind { poisson, gamma, trace };
  Kind kind = Kind::poisson;
  double rate = 1.0;       //!< workflows per second (poisson, gamma)
  double cv = 1.0;         //!< coefficient of variation of inter-arrival times (gamma; poisson is cv = 1)
  std::string trace_file;  //!< timestamps (trace)

  //! Parses "poisson", "gamma:CV" or "trace:FILE" with a rate; throws InputError on anything else.
  static ArrivalSpec parse(const std::string& text, double rate);
  //! The text form accepted by parse ("poisson", "gamma:2", "trace:path").
  std::string to_string() const;
};

//! Reads arrival timestamps (seconds) from a CSV file (one number per line, or a header naming a column
//! `arrival_s`/`timestamp`/`time`) or JSON lines (objects with `arrival_s`, `timestamp` or `time`); sorted,
//! shifted so the first is 0. Throws InputError naming the file and line.
std::vector<double> read_arrival_timestamps(const std::string& path);

//! `n_workflows` arrivals (a trace gives at most as many as it holds), ids 0..n-1, in time order; question indices
//! walk seeded permutations of [0, n_questions) so every question is used before any repeats. Deadlines unset.
std::vector<Arrival> make_arrivals(const ArrivalSpec& spec, size_t n_workflows, size_t n_questions, uint64_t seed);

//! How deadlines are set.
struct SloSpec {
  double scale = 3.0;                            //!< deadline = arrival + scale × standalone latency
  std::map<Difficulty, double> difficulty_scale;  //!< per-difficulty scale overriding `scale`
  std::optional<double> budget_s;                 //!< absolute budget in seconds for every workflow (overrides scales)

  //! Parses "S" (a scale), "easy=S1,medium=S2,…[,default=S]" or "abs:SECONDS"; throws InputError otherwise.
  static SloSpec parse(const std::string& text);
};

//! Sets `deadline_s` of every arrival: arrival + the SLO budget of its question (the standalone latency given by
//! the caller, e.g. the cost model on the reference instance, times the scale). Latencies are computed once per
//! question. Throws InputError on a question index out of range or a non-positive/non-finite latency.
void assign_deadlines(std::vector<Arrival>& arrivals, const Workload& workload,
                      const std::function<double(const Question&)>& standalone_latency_s, const SloSpec& slo);

}  // namespace t2s::workloads
