#pragma once
// A policy wrapper for tests of the cluster core: forwards every hook to a real policy and, at each one, checks the
// state it is shown (scheduler::instance_state_problem) and counts what it is told. The same audit runs under the
// simulator and the real runtime.
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <vector>

#include "scheduler/cluster_core.hpp"
#include "scheduler/policy.hpp"

namespace t2s::test {

//! What the audited policy saw.
struct PolicyAudit {
  std::mutex mu;
  std::vector<std::string> problems;  //!< each inconsistent state shown to a hook (hook: problem)
  std::map<scheduler::PolicyEvent::Kind, size_t> events;
  std::map<uint64_t, int> call_finished;      //!< call id → call_finished events
  std::map<uint64_t, int> workflow_finished;  //!< workflow id → workflow_finished events
  std::set<uint64_t> dispatched;              //!< calls placed on an instance
  size_t dispatch_hooks = 0, next_hooks = 0, chunk_hooks = 0, victim_hooks = 0;
  size_t max_running_seen = 0;
  //! Set: kv_victims answers with this order instead of the policy's (a test's own rule).
  std::function<std::vector<int>(const scheduler::InstanceState&)> victim_rule;
  std::set<uint64_t> first_victims;    //!< every call kv_victims put first

  void check(const scheduler::InstanceState& s, const char* hook) {
    if (auto p = scheduler::instance_state_problem(s); !p.empty())
      problems.push_back(std::string(hook) + " on instance " + std::to_string(s.index) + ": " + p);
    max_running_seen = std::max(max_running_seen, s.running.size());
  }
  void seen(const scheduler::PolicyEvent& e) {
    std::lock_guard lk(mu);
    events[e.kind]++;
    if (e.kind == scheduler::PolicyEvent::Kind::call_finished && e.call) call_finished[e.call->id]++;
    if (e.kind == scheduler::PolicyEvent::Kind::workflow_finished) workflow_finished[e.workflow_id]++;
  }
};

class AuditDispatcher final : public scheduler::GlobalDispatcher {
 public:
  AuditDispatcher(std::unique_ptr<scheduler::GlobalDispatcher> inner, std::shared_ptr<PolicyAudit> audit)
      : inner_(std::move(inner)), audit_(std::move(audit)) {}
  void dispatch(std::span<const agents::LlmCall* const> calls, const scheduler::ClusterView& view,
                std::span<scheduler::DispatchDecision> out) override {
    inner_->dispatch(calls, view, out);
    std::lock_guard lk(audit_->mu);
    audit_->dispatch_hooks++;
    for (size_t i = 0; i < view.size(); ++i) audit_->check(view.instance(i), "dispatch");
    for (size_t k = 0; k < calls.size(); ++k)
      if (out[k].instance >= 0) audit_->dispatched.insert(calls[k]->id);
  }
  void observe(const scheduler::PolicyEvent& e) override {
    audit_->seen(e);
    inner_->observe(e);
  }
  void reset() override { inner_->reset(); }

 private:
  std::unique_ptr<scheduler::GlobalDispatcher> inner_;
  std::shared_ptr<PolicyAudit> audit_;
};

class AuditLocal final : public scheduler::LocalQueuePolicy {
 public:
  AuditLocal(std::unique_ptr<scheduler::LocalQueuePolicy> inner, std::shared_ptr<PolicyAudit> audit)
      : inner_(std::move(inner)), audit_(std::move(audit)) {}
  int next(const scheduler::InstanceState& inst, double now) override {
    {
      std::lock_guard lk(audit_->mu);
      audit_->next_hooks++;
      audit_->check(inst, "next");
    }
    return inner_->next(inst, now);
  }
  void kv_victims(const scheduler::InstanceState& inst, double now, std::vector<int>& order) override {
    {
      std::lock_guard lk(audit_->mu);
      audit_->victim_hooks++;
      audit_->check(inst, "kv_victims");
    }
    if (audit_->victim_rule)
      order = audit_->victim_rule(inst);
    else
      inner_->kv_victims(inst, now, order);
    std::lock_guard lk(audit_->mu);
    if (!order.empty() && order.front() >= 0 && static_cast<size_t>(order.front()) < inst.running.size())
      audit_->first_victims.insert(inst.running[static_cast<size_t>(order.front())].call->id);
  }
  int prefill_chunk_tokens(const scheduler::InstanceState& inst) const override {
    {
      std::lock_guard lk(audit_->mu);
      audit_->chunk_hooks++;
      audit_->check(inst, "prefill_chunk_tokens");
    }
    return inner_->prefill_chunk_tokens(inst);
  }
  void observe(const scheduler::PolicyEvent& e) override { inner_->observe(e); }
  void reset() override { inner_->reset(); }

 private:
  std::unique_ptr<scheduler::LocalQueuePolicy> inner_;
  std::shared_ptr<PolicyAudit> audit_;
};

//! `policy` with every part wrapped to report to `audit`.
inline scheduler::Policy audited(scheduler::Policy policy, const std::shared_ptr<PolicyAudit>& audit) {
  scheduler::Policy p;
  p.name = policy.name;
  p.dispatcher = std::make_unique<AuditDispatcher>(std::move(policy.dispatcher), audit);
  for (auto& l : policy.local) p.local.push_back(std::make_unique<AuditLocal>(std::move(l), audit));
  return p;
}

}  // namespace t2s::test
