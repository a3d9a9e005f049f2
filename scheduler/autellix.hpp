#pragma once
//! Autellix's program-level least-attained-service (PLAS) scheduling (arXiv 2502.13965), as a program-aware peer
//! without deadlines: every instance admits the waiting call whose *workflow* has received the least service so
//! far; dispatch is load-balanced with program locality.
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "scheduler/policy.hpp"

namespace t2s::scheduler {

//! Service attained per workflow (seconds of instance time of its finished calls) and where it last ran.
//! Shared by the dispatcher and the local queues of one `autellix-plas` policy; the dispatcher updates it.
class AttainedService {
 public:
  //! Service attained by `workflow_id` so far (0 when unknown).
  double get(uint64_t workflow_id) const {
    if (workflow_id < dense_.size()) return dense_[workflow_id].service_s;
    auto it = sparse_.find(workflow_id);
    return it == sparse_.end() ? 0.0 : it->second.service_s;
  }
  //! Instance where the workflow's last call ran (-1 when none).
  int last_instance(uint64_t workflow_id) const {
    if (workflow_id < dense_.size()) return dense_[workflow_id].last_instance;
    auto it = sparse_.find(workflow_id);
    return it == sparse_.end() ? -1 : it->second.last_instance;
  }
  //! Adds `seconds` of service on `instance`.
  void add(uint64_t workflow_id, double seconds, int instance);
  //! Forgets a finished workflow.
  void erase(uint64_t workflow_id);
  //! Forgets everything.
  void clear() {
    dense_.clear();
    sparse_.clear();
  }

 private:
  struct Entry {
    double service_s = 0;
    int last_instance = -1;
  };
  // Workflow ids are small dense counters in practice: a flat array keeps the per-call lookup in the queue scan
  // cheap; larger ids fall back to a hash map.
  static constexpr uint64_t kDenseLimit = 1u << 22;
  std::vector<Entry> dense_;
  std::unordered_map<uint64_t, Entry> sparse_;
};

//! Least-loaded dispatch with program locality: a call goes where its workflow last ran when that instance's
//! estimated completion is within (1 + `locality_slack`) of the best one; else to the best one.
//! It also records attained service from call completions (state: the shared AttainedService).
class PlasDispatcher : public GlobalDispatcher {
 public:
  PlasDispatcher(std::shared_ptr<AttainedService> service, double locality_slack)
      : service_(std::move(service)), locality_slack_(locality_slack) {}
  void dispatch(std::span<const agents::LlmCall* const> calls, const ClusterView& view,
                std::span<DispatchDecision> out) override;
  void observe(const PolicyEvent& event) override;
  void reset() override { service_->clear(); }

 private:
  std::shared_ptr<AttainedService> service_;
  double locality_slack_;
  std::vector<double> added_;  // scratch of one dispatch() call
};

//! Program-level least attained service: admits the waiting call whose workflow has the least attained service;
//! ties go to the earlier workflow arrival, then queue order. Non-preemptive. State: shared, read-only here.
class PlasLocal : public LocalQueuePolicy {
 public:
  explicit PlasLocal(std::shared_ptr<const AttainedService> service) : service_(std::move(service)) {}
  int next(const InstanceState& inst, double now) override;

 private:
  std::shared_ptr<const AttainedService> service_;
};

//! Adds `autellix-plas` (param `locality_slack`, default 0.2).
void register_autellix_policies(PolicyRegistry& registry);

}  // namespace t2s::scheduler
