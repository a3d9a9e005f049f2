#pragma once
//! Capacity measures that a finite run cannot inflate: the max sustained rate (SLO attainment among the last
//! arrivals of a run long enough that any rate above the delivered throughput must fail) and the smallest SLO scale
//! a policy meets at a fixed rate (HexAGenT, arXiv 2605.16637).
#include <cstddef>
#include <optional>
#include <string>

#include "harness/replay.hpp"

namespace t2s::scheduler {

//! How a rate is judged sustainable.
struct SustainedOptions {
  double target = 0.95;           //!< attainment among the tail arrivals that counts as meeting the SLO
  double overload_margin = 0.05;  //!< a rate this much above the delivered throughput must fail (sets run length)
  size_t max_workflows = 20000;   //!< run length cap (the length actually used is reported)
  int steps = 6;                  //!< bisection runs
};

//! One policy's sustained capacity.
struct SustainedRate {
  double rate = 0;          //!< the highest rate found sustainable (0: not even the lowest)
  size_t workflows = 0;     //!< arrivals per run at that rate (at the lowest rate tried when rate is 0)
  double delivered_wf_per_s = 0;  //!< throughput of the run at the top of the range (what the policy delivers)
  bool length_capped = false;  //!< some run hit max_workflows, so the overload guarantee is weaker than asked
};

//! Arrivals a run at `rate` needs so that, were the rate `overload_margin` above what the cluster delivers, the
//! backlog at the start of the tail (≈ margin × its arrival time, in seconds of delay) would exceed the longest
//! relative deadline of the run: n ≥ rate × D_max / ((1 − kTailArrivalFraction) × margin), and at least the setup's own count.
size_t sustained_workflows(const ReplaySetup& setup, double rate, const std::string& slo, const SustainedOptions& opt);

//! The highest rate in [lo, hi] whose tail attainment (RunMetrics::slo_attainment_tail on a run of
//! sustained_workflows arrivals) meets opt.target, by bisection; `hi` is run first and gives delivered_wf_per_s.
SustainedRate max_sustained_rate(const ReplaySetup& setup, const PolicyRegistry& registry, const std::string& policy,
                                 double lo, double hi, const std::string& slo, const SustainedOptions& opt);

//! The smallest relative SLO scale in [lo, hi] at which `policy` meets `target` attainment at `rate` (bisection on
//! a log scale, `steps` runs; attainment grows with the scale); nullopt when even `hi` misses.
std::optional<double> min_slo_scale(const ReplaySetup& setup, const PolicyRegistry& registry,
                                    const std::string& policy, double rate, double lo, double hi, double target,
                                    int steps = 6);

}  // namespace t2s::scheduler
