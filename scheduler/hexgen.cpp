#include "scheduler/hexgen.hpp"

#include <algorithm>
#include <limits>

#include "scheduler/baselines.hpp"

namespace t2s::scheduler {

CallTimeProfile profile_call_time(const CostModel& cost) {
  CallTimeProfile p;
  p.source = &cost;
  const int chunk = cost.default_chunk_tokens();
  // Two prompt lengths pin down the fixed part and the per-token slope of a chunked prefill at typical contexts.
  const double t1 = cost.prefill_s(1024, 0, chunk), t2 = cost.prefill_s(8192, 0, chunk);
  p.prefill_per_token_s = std::max(0.0, (t2 - t1) / (8192 - 1024));
  p.overhead_s = cost.call_overhead_s() + std::max(0.0, t1 - 1024 * p.prefill_per_token_s);
  p.decode_per_token_s = cost.decode_step_s(1, 4096);
  return p;
}

const CallTimeProfile& ProfileCache::get(const InstanceState& inst) {
  if (profiles_.size() <= inst.index) profiles_.resize(inst.index + 1);
  auto& p = profiles_[inst.index];
  if (p.source != inst.cost) p = profile_call_time(*inst.cost);
  return p;
}

double live_queue_s(const InstanceState& inst, double now) {
  const double in_flight = inst.busy ? std::max(0.0, inst.busy_until_s - now) : 0.0;
  return in_flight + inst.cost->backlog_s(inst);
}

void HexgenDispatcher::dispatch(std::span<const agents::LlmCall* const> calls, const ClusterView& view,
                                std::span<DispatchDecision> out) {
  const size_t n = view.size();
  if (n == 0) return;
  added_.assign(n, 0.0);
  for (size_t i = 0; i < calls.size(); ++i) {
    const auto& call = *calls[i];
    const size_t best_j = argmin_instance(n, [&](size_t j) {
      const auto& inst = view.instance(j);
      const double t_comp = profiles_.get(inst).seconds(call.prompt_tokens, call.expected_output_tokens);
      const double t_queue = live_queue_s(inst, view.now) + added_[j];
      // form 1 maximises (1−α)·β/(t_queue+ε) − α·t_comp, i.e. minimises its negation.
      if (form_ == 1) return alpha_ * t_comp - (1.0 - alpha_) * beta_ / (t_queue + 1e-3);
      return alpha_ * t_comp + (1.0 - alpha_) * t_queue;
    });
    out[i].instance = static_cast<int>(best_j);
    // A call placed here lengthens that queue by its prefill (its decode overlaps others in the batch).
    const auto& prof = profiles_.get(view.instance(best_j));
    added_[best_j] += call.prompt_tokens * prof.prefill_per_token_s;
  }
}

double UrgencyLocal::latest_start(const agents::LlmCall& call) const {
  const double exec = profile_.seconds(call.prompt_tokens, call.expected_output_tokens);
  const double rest = std::max(0.0, call.remaining_mean_s);
  const double budget = call.deadline_s - call.released_s;
  const double sub_deadline = call.released_s + budget * exec / std::max(1e-9, exec + rest);
  return sub_deadline - exec;
}

double UrgencyLocal::urgency(const InstanceState& inst, const agents::LlmCall& call, double now) {
  if (profile_.source != inst.cost) profile_ = profile_call_time(*inst.cost);
  return now - latest_start(call);
}

int UrgencyLocal::next(const InstanceState& inst, double) {
  if (inst.waiting.empty()) return -1;
  if (profile_.source != inst.cost) profile_ = profile_call_time(*inst.cost);
  int best = 0;
  double best_key = latest_start(*inst.waiting[0].call);
  for (size_t i = 1; i < inst.waiting.size(); ++i) {
    const auto& q = inst.waiting[i];
    const double key = latest_start(*q.call);
    const auto& b = inst.waiting[static_cast<size_t>(best)];
    if (key < best_key ||
        (key == best_key && (q.enqueued_s < b.enqueued_s || (q.enqueued_s == b.enqueued_s && q.call->id < b.call->id)))) {
      best = static_cast<int>(i);
      best_key = key;
    }
  }
  return best;
}

namespace {
std::unique_ptr<GlobalDispatcher> hexgen_dispatcher(const PolicyContext& c) {
  return std::make_unique<HexgenDispatcher>(std::clamp(c.param("alpha", 0.5), 0.0, 1.0),
                                            static_cast<int>(c.param("hexgen_form", 0)), c.param("beta", 1.0));
}
}  // namespace

void register_hexgen_policies(PolicyRegistry& r) {
  r.add("hexgen",
        "HexGen-Text2SQL: workload-balanced dispatch (alpha trades live queue delay against profiled compute time) + "
        "local urgency queue (exec time minus remaining slack of the call's budget share); params alpha, hexgen_form",
        [](const PolicyContext& c) { return compose_policy<UrgencyLocal>(hexgen_dispatcher(c), c); });
  r.add("rr-urgency", "ablation of hexgen: round-robin dispatch + the local urgency queue", [](const PolicyContext& c) {
    return compose_policy<UrgencyLocal>(std::make_unique<RoundRobinDispatcher>(), c);
  });
  r.add("balanced-fcfs", "ablation of hexgen: the workload-balanced dispatcher (param alpha) + FCFS per instance",
        [](const PolicyContext& c) { return compose_policy<FcfsLocal>(hexgen_dispatcher(c), c); });
}

}  // namespace t2s::scheduler
