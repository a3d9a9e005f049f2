#pragma once
//! The baseline policies of this module, exposed so other policies can reuse their parts.
#include <cstdint>
#include <vector>

#include "scheduler/policy.hpp"

namespace t2s::scheduler {

//! Round-robin dispatch over instances in cluster order (vLLM-like). State: the next instance index (reset → 0).
class RoundRobinDispatcher : public GlobalDispatcher {
 public:
  void dispatch(std::span<const agents::LlmCall* const> calls, const ClusterView& view,
                std::span<DispatchDecision> out) override;
  void reset() override { next_ = 0; }

 private:
  size_t next_ = 0;
};

//! Join-the-shortest-expected-queue: each call goes to the instance with the smallest estimated completion time
//! (CostModel::estimate_completion_s), counting calls already placed in the same offer. Stateless.
class LeastLoadedDispatcher : public GlobalDispatcher {
 public:
  void dispatch(std::span<const agents::LlmCall* const> calls, const ClusterView& view,
                std::span<DispatchDecision> out) override;

 private:
  std::vector<double> added_;  // scratch for one dispatch() call only (cleared on entry), not policy state
};

//! First come, first served in queue order (preempted calls re-enter at the front). Stateless.
class FcfsLocal : public LocalQueuePolicy {
 public:
  int next(const InstanceState& inst, double now) override;
};

//! Earliest workflow deadline first (ties: earlier queue entry, then call id). Stateless.
class EdfLocal : public LocalQueuePolicy {
 public:
  int next(const InstanceState& inst, double now) override;
};

}  // namespace t2s::scheduler
