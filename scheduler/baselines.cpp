#include "scheduler/baselines.hpp"

#include <limits>

namespace t2s::scheduler {

void RoundRobinDispatcher::dispatch(std::span<const agents::LlmCall* const> calls, const ClusterView& view,
                                    std::span<DispatchDecision> out) {
  const size_t n = view.size();
  if (n == 0) return;
  for (size_t i = 0; i < calls.size(); ++i) {
    out[i].instance = static_cast<int>(next_ % n);
    next_ = (next_ + 1) % n;
  }
}

void LeastLoadedDispatcher::dispatch(std::span<const agents::LlmCall* const> calls, const ClusterView& view,
                                     std::span<DispatchDecision> out) {
  const size_t n = view.size();
  if (n == 0) return;
  added_.assign(n, 0.0);
  for (size_t i = 0; i < calls.size(); ++i) {
    const auto& call = *calls[i];
    double best = std::numeric_limits<double>::infinity();
    size_t best_j = 0;
    for (size_t j = 0; j < n; ++j) {
      const auto& inst = view.instance(j);
      const double t = inst.cost->estimate_completion_s(call, inst, view.now) + added_[j];
      if (t < best) {
        best = t;
        best_j = j;
      }
    }
    out[i].instance = static_cast<int>(best_j);
    // A sibling placed here delays the next one by about its prefill (decodes overlap in the batch).
    const auto& chosen = view.instance(best_j);
    added_[best_j] += chosen.cost->prefill_s(call.prompt_tokens, 0, chosen.cost->default_chunk_tokens());
  }
}

int FcfsLocal::next(const InstanceState& inst, double) { return inst.waiting.empty() ? -1 : 0; }

int EdfLocal::next(const InstanceState& inst, double) {
  int best = -1;
  for (size_t i = 0; i < inst.waiting.size(); ++i) {
    const auto& q = inst.waiting[i];
    if (best < 0) {
      best = static_cast<int>(i);
      continue;
    }
    const auto& b = inst.waiting[static_cast<size_t>(best)];
    if (q.call->deadline_s < b.call->deadline_s ||
        (q.call->deadline_s == b.call->deadline_s &&
         (q.enqueued_s < b.enqueued_s || (q.enqueued_s == b.enqueued_s && q.call->id < b.call->id))))
      best = static_cast<int>(i);
  }
  return best;
}

void register_baseline_policies(PolicyRegistry& r) {
  r.add("rr-fcfs", "round-robin dispatch, FCFS per instance (the vLLM-like reference)", [](const PolicyContext& c) {
    return compose_policy<FcfsLocal>(std::make_unique<RoundRobinDispatcher>(), c);
  });
  r.add("least-loaded", "join the instance with the earliest estimated completion (cost model), FCFS per instance",
        [](const PolicyContext& c) {
          return compose_policy<FcfsLocal>(std::make_unique<LeastLoadedDispatcher>(), c);
        });
  r.add("edf", "least-loaded dispatch, earliest workflow deadline first per instance", [](const PolicyContext& c) {
    return compose_policy<EdfLocal>(std::make_unique<LeastLoadedDispatcher>(), c);
  });
}

}  // namespace t2s::scheduler
