#pragma once
//! The two scheduling-policy interfaces (global dispatch and local queue order) and the registry of policies by name.
//! The same policy objects drive the simulator and the real runtime.
//!
//! Rules every policy follows:
//!  - A decision is a function of its arguments (the cluster/instance view, the injected clock `now`, the cost models
//!    reachable from the view) and of the policy's own *explicit* state — documented on the class, cleared by
//!    `reset()`, updated only in `observe()` or inside the decision calls. No I/O, no wall clock, no globals.
//!  - Calls of one stage are offered together (LlmClient::submit hands a stage's calls at once), so a dispatcher can
//!    place siblings as a group.
//!  - A dispatcher may hold a call (decide later); held calls are offered again after every call completion on any
//!    instance and at the `retry_at_s` the dispatcher asked for.
#include <functional>
#include <limits>
#include <map>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "agents/llm_call.hpp"
#include "scheduler/cost_model.hpp"
#include "scheduler/instance.hpp"

namespace t2s::scheduler {

//! A dispatch decision for one call.
struct DispatchDecision {
  static constexpr int kHold = -1;
  int instance = kHold;  //!< index of the chosen instance, or kHold
  double retry_at_s = std::numeric_limits<double>::infinity();  //!< when held: offer again at this time at latest
};

//! Something that happened, for policies that learn (explicit state only).
struct PolicyEvent {
  enum class Kind { call_finished, stage_finished, workflow_finished, iteration };
  Kind kind = Kind::call_finished;
  double now = 0;
  const agents::LlmCall* call = nullptr;  //!< call_finished: the call (valid during the callback only)
  const agents::LlmResult* result = nullptr;  //!< call_finished: its result
  uint64_t workflow_id = 0;                //!< stage/workflow events
  uint32_t stage_index = 0;                //!< stage events
  agents::StageKind stage_kind = agents::StageKind::other;  //!< stage events
  double elapsed_s = 0;                    //!< stage/workflow duration
  bool deadline_met = false;               //!< workflow_finished
  size_t instance = 0;                     //!< call_finished / iteration: where it ran
  const IterationShape* shape = nullptr;   //!< iteration: what it contained
  double iteration_s = 0;                  //!< iteration: how long it took
};

//! Global dispatcher: places each released call on an instance (or holds it).
class GlobalDispatcher {
 public:
  virtual ~GlobalDispatcher() = default;
  //! Decides for the calls of one stage (or for held calls offered again; then they may come from several stages).
  //! `out` has one slot per call, pre-filled with kHold.
  virtual void dispatch(std::span<const agents::LlmCall* const> calls, const ClusterView& view,
                        std::span<DispatchDecision> out) = 0;
  //! Learns from an event (default: nothing).
  virtual void observe(const PolicyEvent& event) { (void)event; }
  //! Clears all policy state (a fresh run).
  virtual void reset() {}
};

//! Local queue policy of one instance: which waiting call to admit next, which running call gives way when KV runs
//! out, and the prefill chunk cap.
class LocalQueuePolicy {
 public:
  virtual ~LocalQueuePolicy() = default;
  //! Index into `inst.waiting` of the next call to admit this iteration, or -1 to admit nothing more. A driver admits
  //! it only if the token budget and KV allow; otherwise admission stops (head-of-line: no call passes it).
  virtual int next(const InstanceState& inst, double now) = 0;
  //! When the running batch needs KV blocks that are not free, the order in which running calls give theirs back:
  //! `order` gets every index into `inst.running` once, the first to go first (each is recomputed later). The simulator
  //! takes the first and asks again while still short; an engine takes the first of it that runs there. Default:
  //! newest first, vLLM's rule.
  virtual void kv_victims(const InstanceState& inst, double now, std::vector<int>& order) {
    (void)now;
    order.clear();
    for (int r = static_cast<int>(inst.running.size()) - 1; r >= 0; --r) order.push_back(r);
  }
  //! Prefill chunk size for this instance (0 = the instance's configured behaviour).
  virtual int prefill_chunk_tokens(const InstanceState& inst) const {
    (void)inst;
    return 0;
  }
  //! Learns from an event on this instance (default: nothing).
  virtual void observe(const PolicyEvent& event) { (void)event; }
  //! Clears all policy state.
  virtual void reset() {}
};

//! What a policy factory gets: the cluster, a reference cost model, knobs and a seed.
struct PolicyContext {
  const ClusterSpec* cluster = nullptr;           //!< the instances (in view order)
  std::map<std::string, double> params;           //!< knobs by name (e.g. "alpha"); policies document theirs
  uint64_t seed = 0;                              //!< for policies that randomise (deterministically)
  //! A knob or its default.
  double param(const std::string& key, double def) const {
    auto it = params.find(key);
    return it == params.end() ? def : it->second;
  }
};

//! One fresh local policy of type `Local` per instance of the context's cluster.
template <typename Local>
std::vector<std::unique_ptr<LocalQueuePolicy>> make_locals(const PolicyContext& ctx) {
  std::vector<std::unique_ptr<LocalQueuePolicy>> v;
  const size_t n = ctx.cluster ? ctx.cluster->instances.size() : 0;
  for (size_t i = 0; i < n; ++i) v.push_back(std::make_unique<Local>());
  return v;
}

//! A scheduling policy: a global dispatcher and one local queue policy per instance.
struct Policy {
  std::string name;                                        //!< registry name
  std::unique_ptr<GlobalDispatcher> dispatcher;            //!< global placement
  std::vector<std::unique_ptr<LocalQueuePolicy>> local;    //!< one per instance, same order as the cluster
  //! Resets every part.
  void reset() {
    if (dispatcher) dispatcher->reset();
    for (auto& l : local) l->reset();
  }
};

//! A policy of `dispatcher` and one fresh `Local` queue policy per instance of the context's cluster.
template <typename Local>
Policy compose_policy(std::unique_ptr<GlobalDispatcher> dispatcher, const PolicyContext& ctx) {
  Policy p;
  p.dispatcher = std::move(dispatcher);
  p.local = make_locals<Local>(ctx);
  return p;
}

//! Makes a fresh policy for a context.
using PolicyFactory = std::function<Policy(const PolicyContext&)>;

//! Policies by name. Not global: build one with `default_policy_registry()` and pass it on.
class PolicyRegistry {
 public:
  //! Registers `name`; throws std::logic_error when taken.
  void add(const std::string& name, const std::string& description, PolicyFactory factory);
  //! True when `name` is registered.
  bool has(const std::string& name) const { return entries_.count(name) > 0; }
  //! A fresh policy; throws InputError listing the known names when `name` is unknown.
  Policy make(const std::string& name, const PolicyContext& context) const;
  //! Registered names, in registration order.
  const std::vector<std::string>& names() const { return order_; }
  //! The description of `name` ("" when unknown).
  std::string description(const std::string& name) const;

 private:
  struct Entry {
    std::string description;
    PolicyFactory factory;
  };
  std::map<std::string, Entry> entries_;
  std::vector<std::string> order_;
};

//! Adds this module's baselines: `rr-fcfs`, `least-loaded`, `edf`.
void register_baseline_policies(PolicyRegistry& registry);
//! Every knob name some policy reads through PolicyContext::param (a --param KEY outside it is a typo).
const std::vector<std::string>& policy_param_names();
//! A registry with every policy the build knows (baselines first; other modules add their register_* call in
//! scheduler/registry.cpp).
PolicyRegistry default_policy_registry();

}  // namespace t2s::scheduler
