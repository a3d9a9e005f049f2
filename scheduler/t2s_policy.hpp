#pragma once
//! `t2s`, our scheduling policy: stage-level placement by minimum expected completion under a batch-, context- and
//! prefix-aware estimate, least-laxity priority over distribution-aware remaining work with admission control
//! (hopeless calls demoted), a prefill chunk cap against head-of-line blocking, and online speed calibration per
//! instance. Every improvement is a switch (T2sParams) so the ablation is measurable; docs/scheduling.md has the
//! formulas.
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "scheduler/hexgen.hpp"
#include "scheduler/policy.hpp"

namespace t2s::scheduler {

//! The knobs of `t2s` (PolicyContext params of the same name; 1 = on, 0 = off for the switches).
struct T2sParams {
  bool batch_aware = true;   //!< completion estimates see the running batch, context and the queue in priority order
  bool stage = true;         //!< siblings of a stage are placed as a group (each sees the ones placed before it)
  bool affinity = true;      //!< prefix-cache hits (resident, queued or sibling-placed) shorten the estimate
  bool slack = true;         //!< local order by least laxity (else FCFS)
  bool admission = true;     //!< calls that can no longer meet their deadline are demoted behind hopeful ones
  bool adapt = true;         //!< per-instance speed factors learned online from observed iterations
  bool priority_wait = true;  //!< wait estimate counts only waiting calls ahead in laxity order (else all queued)
  bool chunk_wait = true;    //!< prefill under a chunk cap is stretched by the decode steps it interleaves with
  size_t scan_limit = 128;    //!< priority_wait scans at most this many waiting calls per instance; longer queues
                              //!< use the O(1) FCFS counters (bounds a decision's cost)
  bool offload_home = false;  //!< home whole workflows on a slower instance when that ends them no later than the
                              //!< fast path at its observed stretch; later calls stay home while they meet the
                              //!< deadline there
  double externality = 0;    //!< > 0: the dispatcher adds this × added_decode_delay_s (the delay a call's decode
                             //!< steps cause the calls already running there) to an instance's completion estimate
  double prefill_externality = 0;  //!< the same for added_prefill_delay_s (the delay its prefill causes them)
  bool home_prefill = true;   //!< the home's slowness also counts its prefill ratio (the rest may be prefill-heavy)
  double inflation_weight = 0.02;  //!< EWMA weight of one finished call in the learned latency inflation
  double remaining_q = 0.5;  //!< remaining work = mean + q·(p90 − mean) of the workflow's remaining-work estimate
  double hopeless_frac = 0.5;  //!< hopeless when now + t_exec + hopeless_frac·R_mean > deadline
  int chunk_floor = 64;      //!< the step_stretch chunk cap never goes below this many tokens
  int chunk_rule = 0;        //!< 0: the step_stretch cap; 1: the cap minimising the total delay it causes (decoders
                             //!< waiting behind prompts + prompts stretched over iterations)
  double prefill_spread = 0;  //!< > 0: the chunk cap is also at most the mean prompt still to prefill on the instance
                              //!< ÷ this, so short prompts trickle in beside the decoders (at least 8 tokens)
  double free_slack = 0.1;   //!< > 0 (with prefill_spread): the prompts may share at least the prefill tokens that
                             //!< lengthen the decode step by ≤ this fraction (cost model: free while memory-bound)
  double step_stretch = 2.0;  //!< chunk cap such that a decode step with prefill lasts ≤ this × a plain one
                              //!< (0 = the instance's own chunking)
  double adapt_weight = 0.02;  //!< EWMA weight of one observed iteration
  double batch_knee = 0.05;  //!< > 0: the running batch stops growing at the size beyond which decode throughput would
                             //!< grow by less than this fraction (cost model): under overload calls queue, where
                             //!< laxity and admission order act, instead of stretching every running call
  //! Reads the knobs from a context (missing ones keep their defaults).
  static T2sParams from(const PolicyContext& ctx);
};

//! State shared by the dispatcher and the local queues of one `t2s` policy: per-instance speed factors
//! (observed ÷ predicted iteration time, EWMA), written by the local queues, read by the dispatcher.
struct T2sShared {
  std::vector<double> speed;  //!< per instance; 1 = the cost model is right
  //! Observed call latency (release → finish) ÷ its standalone time on the fastest instance (EWMA; ≥ 1): how much
  //! queueing and batching stretch the remaining work, which the agents' estimates count at standalone speed.
  double inflation = 1.0;
  //! Per instance: the prefill chunk cap its local queue chose last under chunk_rule=1 (0 = none yet), which the
  //! dispatcher's chunk_wait estimate uses (that rule depends on the whole running set, too costly per offer).
  std::vector<int> chunk;
  //! The factor of instance `i` (1 when unknown).
  double factor(size_t i) const { return i < speed.size() ? speed[i] : 1.0; }
};

//! Least-laxity key of a call on an instance: latest start = deadline − f·t_exec − R, where R is the
//! distribution-aware remaining work; `hopeless` tells whether it can no longer make its deadline at `now`.
struct LaxityKey {
  double latest_start = 0;  //!< smaller = more urgent
  bool hopeless = false;    //!< demoted behind every hopeful call (admission control)
};

//! The step_stretch chunk cap (tokens, before rounding): the largest chunk whose prefill keeps a decode step of
//! `step_s` within step_stretch × its plain duration, never below chunk_floor. The local queue caps chunks with it;
//! the dispatcher's wait estimate models the chunk by it.
double stretch_chunk_tokens(const T2sParams& p, double step_s, double prefill_per_token_s);

//! `cap` lowered by prefill_spread: at most the mean prompt tokens `inst` still has to prefill (what is left of its
//! running calls' prompts, the whole prompts of the first scan_limit waiting ones) ÷ prefill_spread, never below 8
//! tokens; `cap` itself when the knob is off or nothing is left to prefill. The local queue caps chunks with it; the
//! dispatcher's wait estimate models it.
double spread_chunk_tokens(const T2sParams& p, const InstanceState& inst, double cap);

//! The most prefill tokens one iteration may add to the decode step of `decoders` sequences (total context
//! `context`) on `cost` and last ≤ (1 + slack) × the plain step, from the cost model itself (a roofline model hides
//! tens to hundreds of tokens under the weight reads, which a per-token rate cannot see); at most `limit`, 0 when
//! not even one token fits.
int free_prefill_tokens(const CostModel& cost, int decoders, int64_t context, double slack, int limit);

//! Seconds of delay `call`'s decode adds to the calls running on `inst`, summed over them: each shared decode step
//! (at most as many as they have left on average) lengthens from the cost model's step at the running batch to the
//! step with one more sequence: nothing while the step is memory-bound, per-token compute once it is not.
double added_decode_delay_s(const agents::LlmCall& call, const InstanceState& inst);

//! Seconds of delay `call`'s prefill (minus `cached_tokens`) adds to the calls running on `inst`, summed over them:
//! the cost model's iteration with the prompt and the running batch minus the batch's plain decode step, per call.
double added_prefill_delay_s(const agents::LlmCall& call, const InstanceState& inst, int cached_tokens);

//! The key of `call` given its profiled execution time `exec_s` on the instance.
LaxityKey laxity_key(const agents::LlmCall& call, double exec_s, double now, const T2sParams& p);

//! Global dispatcher of `t2s`: places each call (largest first within a stage) on the instance with the earliest
//! estimated completion C_j = now + f_j·(wait_j + own_j), where
//!   wait_j = in-flight iteration + prefill still to do for running calls + prompts of waiting calls that precede
//!            it in laxity order (all waiting calls when batch_aware is off) + what this offer already put there,
//!   own_j  = overhead + (prompt − prefix hit)·prefill/token + (output − 1)·decode step at the instance's batch
//!            size and context (batch 1 when batch_aware is off).
//! State: the profile cache (reset() clears it) and the shared speed factors.
class T2sDispatcher : public GlobalDispatcher {
 public:
  T2sDispatcher(T2sParams params, std::shared_ptr<T2sShared> shared)
      : p_(params), shared_(std::move(shared)) {}
  void dispatch(std::span<const agents::LlmCall* const> calls, const ClusterView& view,
                std::span<DispatchDecision> out) override;
  void reset() override;
  //! Learns the latency inflation and each instance's estimate bias from finished calls (used by offload_home).
  void observe(const PolicyEvent& event) override;
  //! Estimated completion (absolute s) of `call` on instance `inst` with nothing else placed in this offer.
  double estimate(const agents::LlmCall& call, const InstanceState& inst, double now);

 private:
  struct Placed {  // what this offer already put on an instance
    double prefill_s = 0;
    int calls = 0;
    std::vector<uint64_t> prefixes;
  };
  // An instance's waiting queue in admission-order terms, computed once per dispatch() (the keys of 1,000 waiting
  // calls cost more than everything else in a decision).
  struct QueueSnapshot {
    std::vector<double> rank;       // hopeful: latest start; hopeless: workflow arrival
    std::vector<uint8_t> hopeless;  // 1 = demoted
    std::vector<int> tokens;        // prompt tokens
    std::vector<uint64_t> prefix;   // prefix ids
    bool valid = false;             // false: use the FCFS counters instead
    double running_step = 0;        // chunk_wait: decode step of the running batch (0 = nothing running)
    double chunk = 0;               // chunk_wait: the prefill chunk cap modelled (0 = none)
    int knee = 0;                   // batch_knee: the running batch's size cap (0 = none)
    double slot_free_s = 0;         // batch_knee: mean seconds between two running calls finishing
  };
  void snapshot(const InstanceState& inst, double now, QueueSnapshot& snap);
  double completion(const agents::LlmCall& call, const InstanceState& inst, double now, const Placed& placed,
                    const QueueSnapshot& snap);

  T2sParams p_;
  std::shared_ptr<T2sShared> shared_;
  ProfileCache profiles_;
  std::vector<Placed> placed_;   // scratch of one dispatch() call
  std::vector<QueueSnapshot> snaps_;  // scratch of one dispatch() call
  std::vector<size_t> order_;    // scratch of one dispatch() call
  std::vector<double> done_;     // scratch: completion estimate per instance
  std::vector<CallTimeProfile> standalone_;  // per instance, for the inflation's standalone reference
  std::vector<double> bias_;     // per instance: observed ÷ predicted completion delay (EWMA), for offload_home
  struct Pending {
    size_t instance;
    double dispatched_s;
    double predicted_s;
    bool fast_path;  // placed by earliest completion (feeds the inflation)
  };
  std::unordered_map<uint64_t, Pending> pending_;  // offload_home: calls placed, awaiting their finish
  std::unordered_map<uint64_t, size_t> home_;      // offload_home: workflow → the slower instance it lives on
  size_t home_choice(const agents::LlmCall& call, const ClusterView& view, size_t best_j);
  double remaining_work(const agents::LlmCall& call) const;        // R_q of the call's workflow
};

//! Local queue of `t2s`: hopeful calls by least laxity (ties: queue order), then hopeless ones oldest workflow
//! first; FCFS when `slack` is off. Caps prefill chunks (step_stretch, prefill_spread or chunk_rule). Learns the instance's speed factor
//! from iteration events when `adapt` is on. State: its profile, and its slot of the shared speed factors.
class T2sLocal : public LocalQueuePolicy {
 public:
  T2sLocal(T2sParams params, std::shared_ptr<T2sShared> shared, size_t index)
      : p_(params), shared_(std::move(shared)), index_(index) {}
  int next(const InstanceState& inst, double now) override;
  int prefill_chunk_tokens(const InstanceState& inst) const override;
  void observe(const PolicyEvent& event) override;
  void reset() override;

 private:
  int delay_minimizing_chunk(const InstanceState& inst, double step, double per_token) const;
  bool at_knee(const InstanceState& inst) const;

  T2sParams p_;
  std::shared_ptr<T2sShared> shared_;
  size_t index_;
  CallTimeProfile profile_;
  mutable std::vector<int64_t> left_, prompts_, prefix_;  // scratch of delay_minimizing_chunk
};

//! The smallest batch whose decode throughput (batch ÷ step time, each sequence at `mean_context`) is at least
//! (1 − `loss`) of the throughput at `max_running`: past it a bigger batch mostly stretches every step.
int throughput_knee_batch(const CostModel& cost, int max_running, double mean_context, double loss);

//! Adds `t2s` (knobs: T2sParams).
void register_t2s_policies(PolicyRegistry& registry);

}  // namespace t2s::scheduler
