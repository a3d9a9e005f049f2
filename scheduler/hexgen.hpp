#pragma once
//! The HexGen-Text2SQL scheduler (arXiv 2505.05286), reproduced: the workload-balanced global dispatcher with
//! weight α and the local urgency queue, plus its two ablations (`rr-urgency`, `balanced-fcfs`).
//! Formulas and deviations are documented in docs/scheduling.md.
#include <cstdint>
#include <memory>
#include <vector>

#include "scheduler/policy.hpp"

namespace t2s::scheduler {

//! A call's standalone service time on one instance as a linear function of its lengths, read off the instance's
//! cost model once: t = overhead + prompt·prefill_per_token + (output − 1)·decode_per_token. This is the
//! paper's "profiled per-GPU latency of a call type": batch- and context-blind by design.
struct CallTimeProfile {
  const CostModel* source = nullptr;  //!< the cost model it was read from (re-read when the pointer changes)
  double overhead_s = 0;              //!< fixed per-call cost (incl. the first prefill iteration's fixed part)
  double prefill_per_token_s = 0;     //!< seconds per prompt token (chunked, at a typical context)
  double decode_per_token_s = 0;      //!< seconds per output token, alone (batch 1, typical context)
  //! Seconds for a call of these lengths with `cached` prompt tokens already resident.
  double seconds(int prompt, int output, int cached = 0) const {
    const int todo = prompt - cached > 1 ? prompt - cached : 1;
    return overhead_s + todo * prefill_per_token_s + (output > 1 ? output - 1 : 0) * decode_per_token_s;
  }
};

//! Reads the profile off `cost` (a few iteration evaluations).
CallTimeProfile profile_call_time(const CostModel& cost);

//! Per-instance profiles cached by cost-model pointer (policy state; cleared by reset()).
class ProfileCache {
 public:
  //! The profile of instance `inst` (re-read when its cost model object changed).
  const CallTimeProfile& get(const InstanceState& inst);
  //! Forgets everything.
  void clear() { profiles_.clear(); }

 private:
  std::vector<CallTimeProfile> profiles_;
};

//! Seconds until `inst` has drained its queued and running work, counted from `now` (live: decremented as work
//! completes, unlike the published simulator's cumulative counter).
double live_queue_s(const InstanceState& inst, double now);

//! HexGen's global dispatcher. For call c and instance j, with t_comp(c,j) the profiled service time and
//! t_queue(j) the live queue estimate (plus what this offer already placed on j):
//!  - form 0 (default): cost = α·t_comp + (1 − α)·t_queue, minimised;
//!  - form 1 (the published summary): score = (1 − α)·β / (t_queue + ε) − α·t_comp, maximised (ε = 1 ms).
//! α = 1 sends every call to the fastest GPU; α = 0 to the shortest queue.
//! State: the profile cache (reset() clears it).
class HexgenDispatcher : public GlobalDispatcher {
 public:
  //! `form` 0 = linear cost, 1 = reciprocal score; `beta` only matters for form 1.
  HexgenDispatcher(double alpha, int form = 0, double beta = 1.0) : alpha_(alpha), form_(form), beta_(beta) {}
  void dispatch(std::span<const agents::LlmCall* const> calls, const ClusterView& view,
                std::span<DispatchDecision> out) override;
  void reset() override { profiles_.clear(); }
  //! The weight α.
  double alpha() const { return alpha_; }

 private:
  double alpha_;
  int form_;
  double beta_;
  ProfileCache profiles_;
  std::vector<double> added_;  // scratch of one dispatch() call
};

//! HexGen's local queue: urgency = t_exec − remaining slack, most urgent first, non-preemptive. A call's share of
//! the end-to-end budget is split in proportion to its own execution time t_exec (on this instance) against the
//! workflow's expected remaining work R after it:
//!   sub_deadline = released + (deadline − released)·t_exec / (t_exec + R),
//!   remaining slack = sub_deadline − now,  urgency = t_exec − (sub_deadline − now).
//! So the most urgent call is the one with the smallest latest start time sub_deadline − t_exec.
//! Ties: earlier queue entry, then call id. State: the instance's profile (reset() clears it).
class UrgencyLocal : public LocalQueuePolicy {
 public:
  int next(const InstanceState& inst, double now) override;
  void reset() override { profile_ = {}; }
  //! The urgency of `q` on `inst` at `now` (for tests and traces).
  double urgency(const InstanceState& inst, const agents::LlmCall& call, double now);

 private:
  double latest_start(const agents::LlmCall& call) const;
  CallTimeProfile profile_;
};

//! The index in [0, n) with the smallest `score(j)` (the first one on ties); 0 when n is 0.
template <typename Score>
size_t argmin_instance(size_t n, Score&& score) {
  size_t best_j = 0;
  double best = 0;
  for (size_t j = 0; j < n; ++j) {
    const double s = score(j);
    if (j == 0 || s < best) best = s, best_j = j;
  }
  return best_j;
}

//! Adds `hexgen` (param `alpha`, default 0.5; `hexgen_form` 0/1; `beta`), `rr-urgency` and `balanced-fcfs`.
void register_hexgen_policies(PolicyRegistry& registry);

}  // namespace t2s::scheduler
