#pragma once
//! Policy knobs (HexGen's α, t2s's knobs) chosen by simulation: replay a window of load (given arrivals, or
//! arrivals made at given rates) for candidate values and keep the best. Used by `t2s tune` and, periodically on
//! the observed window, by `serve`.
#include <cmath>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "harness/replay.hpp"

namespace t2s::scheduler {

//! One knob and the values to try.
struct TuneAxis {
  std::string param;           //!< PolicyContext param name ("alpha", "chunk", …)
  std::vector<double> values;  //!< candidates, tried in order
};

//! What to tune and how.
struct TuneSpec {
  std::string policy = "hexgen";        //!< registry name
  std::vector<TuneAxis> axes;           //!< empty = default_tune_axes(policy)
  std::map<std::string, double> fixed;  //!< knobs held fixed (start point for the others)
  //! Coordinate passes: each pass tunes one axis at a time holding the others at their best so far (a single axis
  //! is a plain grid search).
  int passes = 1;
  //! Each window's attainment counts up to this SLO target: past it, the SLO is met and latency decides (a config
  //! at 97% on the busiest window is not traded for one at 99.6% with a far worse tail). 1 = raw attainment.
  double slo_target = 0.95;
};

//! The score of one candidate on the window (higher counted attainment wins; within 0.5 points, lower P95 wins).
struct TuneScore {
  double slo_attainment = 0;  //!< mean over the window's runs
  double latency_p95_s = 0;   //!< mean over the window's runs
  double counted_attainment = NAN;  //!< what is ranked: each run's attainment capped at the SLO target, mean (NaN:
                                    //!< slo_attainment)
  //! The attainment that is ranked.
  double ranked_attainment() const { return std::isnan(counted_attainment) ? slo_attainment : counted_attainment; }
  //! True when this score is better than `o`.
  bool better_than(const TuneScore& o) const;
};

//! One evaluated candidate.
struct TuneTrial {
  std::map<std::string, double> params;
  TuneScore score;
};

//! The result: the best knobs and every trial in evaluation order.
struct TuneResult {
  std::map<std::string, double> best;
  TuneScore best_score;
  std::vector<TuneTrial> trials;
};

//! The default axes: α ∈ {0, 0.1, …, 1} for hexgen and balanced-fcfs; for t2s its continuous knobs (chunk,
//! remaining_q, hopeless_frac). Throws InputError for a policy with nothing to tune.
std::vector<TuneAxis> default_tune_axes(const std::string& policy);

//! Parses "alpha=0,0.25,0.5" (one axis); throws InputError on malformed text.
TuneAxis parse_tune_axis(const std::string& text);

//! Scores the policy with `params` on explicit arrivals (deadlines set), e.g. the window `serve` observed.
TuneScore score_window(const ReplaySetup& setup, const std::vector<workloads::Arrival>& arrivals,
                       const PolicyRegistry& registry, const std::string& policy,
                       const std::map<std::string, double>& params);

//! Tunes on explicit arrivals (the observed window).
TuneResult tune_on_window(const ReplaySetup& setup, const std::vector<workloads::Arrival>& arrivals,
                          const PolicyRegistry& registry, const TuneSpec& spec);

//! Tunes on arrivals made by the setup at each of `rates` (same seeds for every candidate); the score is the mean
//! over the rates.
TuneResult tune_at_rates(const ReplaySetup& setup, const std::vector<double>& rates, const PolicyRegistry& registry,
                         const TuneSpec& spec);

}  // namespace t2s::scheduler
