#include "scheduler/autellix.hpp"

#include "scheduler/hexgen.hpp"

namespace t2s::scheduler {

void AttainedService::add(uint64_t workflow_id, double seconds, int instance) {
  Entry* e;
  if (workflow_id < kDenseLimit) {
    if (dense_.size() <= workflow_id) dense_.resize(workflow_id + 1);
    e = &dense_[workflow_id];
  } else {
    e = &sparse_[workflow_id];
  }
  e->service_s += seconds;
  e->last_instance = instance;
}

void AttainedService::erase(uint64_t workflow_id) {
  if (workflow_id < dense_.size())
    dense_[workflow_id] = Entry{};
  else
    sparse_.erase(workflow_id);
}

void PlasDispatcher::dispatch(std::span<const agents::LlmCall* const> calls, const ClusterView& view,
                              std::span<DispatchDecision> out) {
  const size_t n = view.size();
  if (n == 0) return;
  added_.assign(n, 0.0);
  for (size_t i = 0; i < calls.size(); ++i) {
    const auto& call = *calls[i];
    const int home = service_->last_instance(call.workflow_id);
    auto completion = [&](size_t j) {
      const auto& inst = view.instance(j);
      return inst.cost->estimate_completion_s(call, inst, view.now) + added_[j];
    };
    size_t best_j = argmin_instance(n, completion);
    const double best = completion(best_j);
    const double home_t = home >= 0 && static_cast<size_t>(home) < n ? completion(static_cast<size_t>(home)) : 1e300;
    const double horizon = best - view.now;
    if (home >= 0 && home_t - view.now <= (1.0 + locality_slack_) * horizon) best_j = static_cast<size_t>(home);
    out[i].instance = static_cast<int>(best_j);
    const auto& chosen = view.instance(best_j);
    added_[best_j] += chosen.cost->prefill_s(call.prompt_tokens, 0, chosen.cost->default_chunk_tokens());
  }
}

void PlasDispatcher::observe(const PolicyEvent& e) {
  if (e.kind == PolicyEvent::Kind::call_finished && e.call && e.result)
    service_->add(e.call->workflow_id, std::max(0.0, e.result->finished_s - e.result->started_s),
                  static_cast<int>(e.instance));
  else if (e.kind == PolicyEvent::Kind::workflow_finished)
    service_->erase(e.workflow_id);
}

int PlasLocal::next(const InstanceState& inst, double) {
  int best = -1;
  double best_s = 0;
  for (size_t i = 0; i < inst.waiting.size(); ++i) {
    const auto& q = inst.waiting[i];
    const double s = service_->get(q.call->workflow_id);
    if (best < 0) {
      best = 0;
      best_s = s;
      continue;
    }
    const auto& b = inst.waiting[static_cast<size_t>(best)];
    if (s < best_s || (s == best_s && (q.call->arrival_s < b.call->arrival_s ||
                                       (q.call->arrival_s == b.call->arrival_s && q.enqueued_s < b.enqueued_s)))) {
      best = static_cast<int>(i);
      best_s = s;
    }
  }
  return best;
}

void register_autellix_policies(PolicyRegistry& r) {
  r.add("autellix-plas",
        "Autellix: program-level least attained service per instance, least-loaded dispatch with program locality "
        "(param locality_slack); deadline-blind",
        [](const PolicyContext& c) {
          Policy p;
          auto service = std::make_shared<AttainedService>();
          p.dispatcher = std::make_unique<PlasDispatcher>(service, c.param("locality_slack", 0.2));
          const size_t n = c.cluster ? c.cluster->instances.size() : 0;
          for (size_t i = 0; i < n; ++i) p.local.push_back(std::make_unique<PlasLocal>(service));
          return p;
        });
}

}  // namespace t2s::scheduler
