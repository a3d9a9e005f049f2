#pragma once
//! The cluster core: the one owner of the scheduling state that policies read (every instance's waiting queue and
//! running batch with their load counters, the held calls) and the one caller of every policy hook. The simulator
//! (virtual clock, modelled iterations) and the real runtime (wall clock, executors) are drivers: they decide when
//! things happen and what an iteration did, and tell the core; neither touches a queue, a counter or a policy itself,
//! so a policy cannot tell which one drives it.
//!
//! KV blocks and the prefix cache change through the core too; the driver decides when (the simulator as exact
//! physics, the runtime as a belief from what it dispatched). What stays with a driver: the clock and the instance's
//! busy/iteration counters.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "agents/llm_call.hpp"
#include "agents/workflow.hpp"
#include "scheduler/instance.hpp"
#include "scheduler/policy.hpp"

namespace t2s::scheduler {

//! One cluster's policy-visible state and the policy that decides on it.
class ClusterCore {
 public:
  //! A core for `cluster` under `policy` (one local policy per instance; std::logic_error otherwise). Both must
  //! outlive the core.
  ClusterCore(const ClusterSpec& cluster, Policy& policy);

  //! Empties every queue and the held list, sets each instance's cost model (what policies price with) and KV
  //! capacity in blocks, and resets the policy.
  void reset(std::span<const CostModel* const> costs, std::span<const int> kv_blocks_total);

  //! Every instance's state, in cluster order (read-only: mutate through the calls below).
  const std::vector<InstanceState>& instances() const { return states_; }
  //! Instance `i` for the driver-owned fields (busy, busy_until_s, iterations, busy_s); its queues, batch, counters,
  //! KV blocks and prefix cache change only through this class.
  InstanceState& driver_state(size_t i) { return states_[i]; }
  //! The calls the dispatcher holds.
  const std::vector<HeldCall>& held() const { return held_; }
  //! What the dispatcher sees at `now`.
  ClusterView view(double now) const { return ClusterView{now, &states_, &held_}; }
  //! The policy's registry name.
  const std::string& policy_name() const { return policy_.name; }

  // ---- global dispatch
  //! The dispatcher's decisions for `calls` (one stage's, or the held ones offered again) into `out` (one slot per
  //! call, set to kHold first). An instance index out of range is a policy bug: std::logic_error naming the policy.
  void dispatch(std::span<const agents::LlmCall* const> calls, double now, std::span<DispatchDecision> out);
  //! Holds `call` at `now`; a call offered again from `was_held` (what take_held returned) keeps its first hold time.
  void hold(const agents::LlmCall* call, double now, std::span<const HeldCall> was_held = {});
  //! Removes and returns every held call (to offer them again).
  std::vector<HeldCall> take_held();
  //! Drops `call_id` from the held list; true when it was there.
  bool drop_held(uint64_t call_id);

  // ---- instance queues
  //! Appends `call` to instance `i`'s waiting queue at `now`.
  void enqueue(size_t i, const agents::LlmCall* call, double now);
  //! Puts a preempted call back at the front of `i`'s queue (it keeps its first enqueue time).
  void requeue_front(size_t i, const agents::LlmCall* call, double enqueued_s);
  //! Removes and returns `waiting[pos]` of instance `i`.
  QueuedCall take_waiting(size_t i, size_t pos);
  //! Position of `call` in `i`'s waiting queue, or -1.
  int waiting_position(size_t i, const agents::LlmCall* call) const;
  //! Removes `call` from `i`'s waiting queue; true when it was there.
  bool remove_waiting(size_t i, const agents::LlmCall* call);
  //! Adds an admitted call to `i`'s running batch (its `prefilled` counts cached prompt tokens, `decoded` is 0).
  void start_running(size_t i, const RunningCall& call);
  //! Sets running call `r`'s progress: prompt tokens whose KV exists and output tokens generated.
  void set_progress(size_t i, size_t r, int prefilled, int decoded);
  //! Sets the KV blocks running call `r` holds privately (the instance's kv_blocks_used follows).
  void set_running_blocks(size_t i, size_t r, int blocks);
  //! Removes running call `r` of instance `i` and returns it; its private KV blocks are released.
  RunningCall take_running(size_t i, size_t r);
  //! Index of `call` in `i`'s running batch, or -1.
  int running_position(size_t i, const agents::LlmCall* call) const;

  // ---- KV blocks and prefix cache of instance `i` (kv_blocks_used stays Σ private blocks + cached blocks)
  //! Evicts unpinned prefixes, least recently used first, until `blocks` blocks are freed or none is left; returns
  //! the blocks freed.
  int evict_prefixes(size_t i, int blocks);
  //! Pins prefix `prefix_id` for a call that reads it (refreshing its LRU position).
  void pin_prefix(size_t i, uint64_t prefix_id, double now);
  //! Unpins it.
  void unpin_prefix(size_t i, uint64_t prefix_id);
  //! Caches (or grows to) `tokens` tokens of `prefix_id` in `blocks` blocks, pinned once for the caller; the blocks
  //! it did not hold before count as used.
  void cache_prefix(size_t i, uint64_t prefix_id, int tokens, int blocks, double now);

  // ---- local queue policy of instance `i`
  //! Index into `waiting` of the next call to admit, or -1. An index out of range: std::logic_error.
  int next(size_t i, double now);
  //! The running calls of `i` in the order they give their KV back when the batch runs out (indices into `running`,
  //! first to go first; empty when none runs). An order that is not a permutation of them: std::logic_error.
  const std::vector<int>& kv_victims(size_t i, double now);
  //! The prefill chunk cap now (0: the instance's own behaviour).
  int prefill_chunk_tokens(size_t i) const;

  // ---- what happened (the policy's observations; every driver reports all four)
  //! A call ended on instance `i` (ok, failed or cancelled: `result` says which); `i` < 0: it ended while held (only
  //! the dispatcher hears of it).
  void call_finished(int i, const agents::LlmCall& call, const agents::LlmResult& result, double now);
  //! Instance `i` ran an iteration of `shape` in `seconds`.
  void iteration(size_t i, const IterationShape& shape, double seconds, double now);
  //! A stage of a workflow ended.
  void stage_finished(const agents::StageEvent& event, double now);
  //! A workflow ended (`elapsed_s` after its arrival; `deadline_met`: it completed by its deadline).
  void workflow_finished(uint64_t workflow_id, double elapsed_s, bool deadline_met, double now);

 private:
  static void count_running(InstanceState& s, const RunningCall& rc, int sign);

  const ClusterSpec& cluster_;
  Policy& policy_;
  std::vector<InstanceState> states_;
  std::vector<HeldCall> held_;
  std::vector<int> victims_;  // scratch of kv_victims()
  std::vector<char> seen_;    // scratch of kv_victims()
};

//! The first way `s` breaks the core's bookkeeping (counters equal to their sums over `waiting` and `running`, progress
//! within each call's prompt, private KV blocks and the prefix cache summing to `kv_blocks_used`), or "" when it is consistent.
std::string instance_state_problem(const InstanceState& s);

}  // namespace t2s::scheduler
