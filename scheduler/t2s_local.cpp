// `t2s`'s knobs and local queue: least-laxity order with admission control, the batch knee, the online speed factor.
#include "scheduler/t2s_policy.hpp"

#include <algorithm>
#include <cmath>
#include <memory>

namespace t2s::scheduler {

T2sParams T2sParams::from(const PolicyContext& c) {
  T2sParams p;
  auto flag = [&](const char* key, bool def) { return c.param(key, def ? 1.0 : 0.0) != 0.0; };
  p.batch_aware = flag("batch_aware", p.batch_aware);
  p.stage = flag("stage", p.stage);
  p.affinity = flag("affinity", p.affinity);
  p.slack = flag("slack", p.slack);
  p.admission = flag("admission", p.admission);
  p.adapt = flag("adapt", p.adapt);
  p.priority_wait = flag("priority_wait", p.priority_wait);
  p.chunk_wait = flag("chunk_wait", p.chunk_wait);
  p.offload_home = flag("offload_home", p.offload_home);
  p.externality = std::max(0.0, c.param("externality", p.externality));
  p.prefill_externality = std::max(0.0, c.param("prefill_externality", p.prefill_externality));
  p.home_prefill = flag("home_prefill", p.home_prefill);
  p.inflation_weight = std::clamp(c.param("inflation_weight", p.inflation_weight), 0.0, 1.0);
  p.scan_limit = static_cast<size_t>(std::max(0.0, c.param("scan_limit", static_cast<double>(p.scan_limit))));
  p.remaining_q = std::clamp(c.param("remaining_q", p.remaining_q), 0.0, 2.0);
  p.hopeless_frac = std::max(0.0, c.param("hopeless_frac", p.hopeless_frac));
  p.chunk_floor = std::max(1, static_cast<int>(c.param("chunk_floor", p.chunk_floor)));
  p.prefill_spread = std::max(0.0, c.param("prefill_spread", p.prefill_spread));
  p.free_slack = std::max(0.0, c.param("free_slack", p.free_slack));
  p.chunk_rule = std::clamp(static_cast<int>(c.param("chunk_rule", p.chunk_rule)), 0, 1);
  p.step_stretch = std::max(0.0, c.param("step_stretch", p.step_stretch));
  p.adapt_weight = std::clamp(c.param("adapt_weight", p.adapt_weight), 0.0, 1.0);
  p.batch_knee = std::clamp(c.param("batch_knee", p.batch_knee), 0.0, 0.99);
  return p;
}

int throughput_knee_batch(const CostModel& cost, int max_running, double mean_context, double loss) {
  const double ctx = std::max(1.0, mean_context);
  auto rate = [&](int b) { return b / cost.decode_step_s(b, static_cast<int64_t>(b * ctx)); };
  if (max_running <= 1) return 1;
  const double target = (1.0 - loss) * rate(max_running);
  if (rate(1) >= target) return 1;
  int lo = 1, hi = max_running;  // rate(lo) < target <= rate(hi); the rate grows with the batch
  while (hi - lo > 1) {
    const int mid = lo + (hi - lo) / 2;
    (rate(mid) >= target ? hi : lo) = mid;
  }
  return hi;
}

LaxityKey laxity_key(const agents::LlmCall& call, double exec_s, double now, const T2sParams& p) {
  const double mean = std::max(0.0, call.remaining_mean_s);
  const double p90 = std::max(mean, call.remaining_p90_s);
  const double rest = mean + p.remaining_q * (p90 - mean);
  LaxityKey k;
  k.latest_start = call.deadline_s - exec_s - rest;
  k.hopeless = p.admission && now + exec_s + p.hopeless_frac * mean > call.deadline_s;
  return k;
}

namespace {
// True when `a` should be admitted before `b` (both keys on the same instance): hopeful before hopeless; hopeful
// by latest start; hopeless by workflow arrival (oldest first, bounding their latency); then queue order and id.
bool before(const LaxityKey& ka, const QueuedCall& a, const LaxityKey& kb, const QueuedCall& b) {
  if (ka.hopeless != kb.hopeless) return !ka.hopeless;
  if (!ka.hopeless) {
    if (ka.latest_start != kb.latest_start) return ka.latest_start < kb.latest_start;
  } else if (a.call->arrival_s != b.call->arrival_s) {
    return a.call->arrival_s < b.call->arrival_s;
  }
  if (a.enqueued_s != b.enqueued_s) return a.enqueued_s < b.enqueued_s;
  return a.call->id < b.call->id;
}
}  // namespace

void T2sLocal::reset() {
  profile_ = {};
  if (index_ < shared_->speed.size()) shared_->speed[index_] = 1.0;
}

int T2sLocal::next(const InstanceState& inst, double now) {
  // Bound first: observe() calibrates against this instance's cost model.
  if (profile_.source != inst.cost) profile_ = profile_call_time(*inst.cost);
  if (inst.waiting.empty()) return -1;
  const double f = p_.adapt ? shared_->factor(index_) : 1.0;
  if (p_.batch_knee > 0 && !inst.running.empty() && inst.spec && at_knee(inst)) return -1;
  if (!p_.slack) return 0;
  auto key = [&](const agents::LlmCall& c) {
    return laxity_key(c, f * profile_.seconds(c.prompt_tokens, c.expected_output_tokens), now, p_);
  };
  size_t best = 0;
  LaxityKey best_key = key(*inst.waiting[0].call);
  for (size_t i = 1; i < inst.waiting.size(); ++i) {
    const LaxityKey k = key(*inst.waiting[i].call);
    if (before(k, inst.waiting[i], best_key, inst.waiting[best])) {
      best = i;
      best_key = k;
    }
  }
  return static_cast<int>(best);
}

bool T2sLocal::at_knee(const InstanceState& inst) const {
  const double runs = static_cast<double>(inst.running.size());
  return static_cast<int>(runs) >=
         throughput_knee_batch(*inst.cost, inst.spec->max_running, inst.running_context / runs, p_.batch_knee);
}

void T2sLocal::observe(const PolicyEvent& e) {
  if (!p_.adapt || e.kind != PolicyEvent::Kind::iteration || !e.shape || !profile_.source || e.iteration_s <= 0)
    return;
  const double predicted = profile_.source->iteration_s(*e.shape);
  if (predicted <= 0) return;
  if (shared_->speed.size() <= index_) shared_->speed.resize(index_ + 1, 1.0);
  double& s = shared_->speed[index_];
  const double ratio = std::clamp(e.iteration_s / predicted, 0.05, 20.0);
  s += p_.adapt_weight * (ratio - s);
}

void register_t2s_policies(PolicyRegistry& r) {
  r.add("t2s",
        "ours: stage-level min-completion placement (batch/context/prefix-aware, online-calibrated), least-laxity "
        "local order over distribution-aware remaining work with admission control, prefill chunk cap; knobs "
        "batch_aware stage affinity slack admission adapt remaining_q hopeless_frac step_stretch chunk_floor "
        "chunk_rule prefill_spread free_slack externality prefill_externality offload_home batch_knee adapt_weight",
        [](const PolicyContext& c) {
          const T2sParams params = T2sParams::from(c);
          auto shared = std::make_shared<T2sShared>();
          Policy p;
          p.dispatcher = std::make_unique<T2sDispatcher>(params, shared);
          const size_t n = c.cluster ? c.cluster->instances.size() : 0;
          shared->speed.assign(n, 1.0);
          for (size_t i = 0; i < n; ++i) p.local.push_back(std::make_unique<T2sLocal>(params, shared, i));
          return p;
        });
}

}  // namespace t2s::scheduler
