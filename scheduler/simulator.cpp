#include "scheduler/simulator.hpp"

#include "scheduler/cluster_core.hpp"

#include <algorithm>
#include <chrono>
#include <cmath>
#include <limits>
#include <queue>
#include <stdexcept>
#include <unordered_map>

namespace t2s::scheduler {
namespace {

using Clock = std::chrono::steady_clock;

double us_since(Clock::time_point t0) {
  return std::chrono::duration<double, std::micro>(Clock::now() - t0).count();
}

int blocks_for(int64_t tokens, int block_tokens) {
  return tokens <= 0 ? 0 : static_cast<int>((tokens + block_tokens - 1) / block_tokens);
}

enum class EventType : uint8_t { arrival, iteration_end, wake, fn };

struct Event {
  double t;
  uint64_t seq;
  EventType type;
  uint64_t a;  // arrival index | instance | fn slot
  uint64_t b;  // iteration generation
  bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
};

enum class Phase : uint8_t { held, queued, running, done };

struct CallState {
  agents::LlmCall call;
  agents::LlmClient::Callback done;
  int output_tokens = 1;
  std::string text;
  Phase phase = Phase::held;
  bool cancel_requested = false;
  CallRecord rec;
};

// Simulator-private companion of InstanceState::running[i] (same index).
struct RunAux {
  CallState* cs = nullptr;
  int shared_tokens = 0;      // prompt tokens covered by a prefix-cache entry this call holds a reference on
  uint64_t shared_pid = 0;    // that entry's id (0 = none)
  int slot = 0;               // trace lane
  int chunk = 0;              // prefill tokens scheduled in the current iteration
  bool decode = false;        // scheduled to decode in the current iteration (group)
};

}  // namespace

struct Simulator::Impl {
  Simulator& self;
  ClusterSpec cluster;
  Policy& policy;
  agents::Responder& responder;
  SimOptions opt;

  struct Inst {
    std::vector<RunAux> aux;
    std::vector<bool> slots;
    uint64_t gen = 0;
    bool wake_pending = false;
    double group_start = 0;
    std::vector<double> group_ends;  // cumulative end offsets of the steps of the current iteration group
    int group_k = 0;
    InstanceStats stats;
  };

  std::vector<CostModel> costs;
  std::vector<CostModel> policy_costs;  // what policies see (== costs unless opt.policy_cost_error says otherwise)
  ClusterCore core;  // queues, running batches, counters, held calls; every policy hook
  std::vector<Inst> insts;
  double retry_at_ = std::numeric_limits<double>::infinity();

  double now_ = 0;
  uint64_t seq_ = 0;
  uint64_t next_call_id_ = 1;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events;
  std::vector<std::function<void()>> fns;
  std::vector<uint64_t> fn_seq;          // seq of the event that runs fns[slot] (timer ids check against it)
  std::vector<bool> fn_cancelled;        // fns[slot]'s event is to be dropped without moving the clock
  std::vector<uint64_t> free_fns;
  std::unordered_map<uint64_t, std::unique_ptr<CallState>> calls;

  // Run-scoped.
  const workloads::Workload* workload = nullptr;
  const std::vector<workloads::Arrival>* arrivals = nullptr;
  agents::WorkflowFactory* factory = nullptr;
  agents::WorkflowObserver* user_observer = nullptr;
  std::unordered_map<uint64_t, std::unique_ptr<agents::Workflow>> workflows;
  std::unordered_map<uint64_t, size_t> arrival_index;  // workflow id → arrival index
  std::vector<bool> have_outcome;
  SimResult result;
  std::vector<const agents::LlmCall*> scratch_calls;
  std::vector<DispatchDecision> scratch_dec;

  struct Observer final : agents::WorkflowObserver {
    Impl* impl = nullptr;
    void on_stage(const agents::StageEvent& e) override { impl->on_stage(e); }
  } observer;

  Impl(Simulator& s, const ClusterSpec& c, Policy& p, agents::Responder& r, SimOptions o)
      : self(s), cluster(c), policy(p), responder(r), opt(o), core(cluster, p) {
    if (cluster.instances.empty()) throw InputError("simulator: the cluster has no instances");
    for (const auto& spec : cluster.instances) {
      // Without profiles an instance is simulated only by a fitted model and an explicit KV capacity (the
      // instances of a recorded run, fitted on their measured iterations).
      const bool profiled = spec.model.layers != 0 && spec.gpu.hbm_tbps != 0;
      const bool fitted = opt.fitted_costs.count(spec.name) && spec.kv_blocks > 0;
      if (spec.backend != Backend::sim || !(profiled || fitted))
        throw InputError("simulator: instance '" + spec.name +
                         "' has no GPU/model profile to simulate (backend engine/remote needs --backend engine|remote)");
      costs.emplace_back(spec);
      if (auto it = opt.fitted_costs.find(spec.name); it != opt.fitted_costs.end()) costs.back().set_fitted(it->second);
      if (costs.back().kv_capacity_blocks() <= 0)
        throw InputError("instance '" + spec.name + "': model " + spec.model.name + " does not fit on " +
                         std::to_string(spec.tp) + " × " + spec.gpu.name);
    }
    for (size_t i = 0; i < cluster.instances.size(); ++i) policy_costs.push_back(misestimated(i));
    observer.impl = this;
  }

  // The policy's view of instance i's costs: the truth slowed by (1 + e) of opt.policy_cost_error.
  CostModel misestimated(size_t i) const {
    const auto& spec = cluster.instances[i];
    double e = 0;
    if (auto it = opt.policy_cost_error.find("*"); it != opt.policy_cost_error.end()) e = it->second;
    if (auto it = opt.policy_cost_error.find(spec.name); it != opt.policy_cost_error.end()) e = it->second;
    if (e == 0) return costs[i];
    if (!(e > -1)) throw InputError("cost error for '" + spec.name + "' must be > -1");
    const double k = 1.0 + e;
    InstanceSpec wrong = spec;
    wrong.gpu.fp16_tflops /= k;
    wrong.gpu.hbm_tbps /= k;
    wrong.gpu.link_gbps /= k;
    wrong.gpu.link_latency_us *= k;
    wrong.gpu.iteration_overhead_s *= k;
    wrong.gpu.call_overhead_s *= k;
    CostModel m(wrong);
    if (costs[i].fitted()) {
      auto f = costs[i].fitted_model();
      f.c0 *= k, f.c_prefill *= k, f.c_attn *= k, f.c_seq *= k, f.c_ctx *= k;
      m.set_fitted(f);
    }
    return m;
  }

  // Multiplier of instance i's true iteration time now (opt.slowdown_*).
  double slowdown(size_t i) const {
    return cluster.instances[i].name == opt.slowdown_instance && now_ >= opt.slowdown_at_s ? opt.slowdown_factor
                                                                                            : 1.0;
  }

  void reset_state() {
    std::vector<const CostModel*> seen;
    std::vector<int> kv;
    for (size_t i = 0; i < cluster.instances.size(); ++i) {
      seen.push_back(&policy_costs[i]);
      kv.push_back(costs[i].kv_capacity_blocks());
    }
    core.reset(seen, kv);  // the policy too
    insts.assign(cluster.instances.size(), Inst{});
    for (size_t i = 0; i < insts.size(); ++i) {
      insts[i].stats.name = cluster.instances[i].name;
      insts[i].stats.kv_blocks_total = kv[i];
    }
    retry_at_ = std::numeric_limits<double>::infinity();
    now_ = 0;
    seq_ = 0;
    next_call_id_ = 1;
    events = {};
    fns.clear();
    fn_seq.clear();
    fn_cancelled.clear();
    free_fns.clear();
    calls.clear();
    workflows.clear();
    arrival_index.clear();
    result = SimResult{};
  }

  // ---------- events ----------
  void push(double t, EventType type, uint64_t a, uint64_t b = 0) { events.push(Event{t, seq_++, type, a, b}); }
  // Returns a timer id: the slot in the low 32 bits, the event's seq above (so a reused slot is not cancelled).
  uint64_t post(double t, std::function<void()> fn) {
    uint64_t slot;
    if (!free_fns.empty()) {
      slot = free_fns.back();
      free_fns.pop_back();
      fns[slot] = std::move(fn);
    } else {
      slot = fns.size();
      fns.push_back(std::move(fn));
      fn_seq.push_back(0);
      fn_cancelled.push_back(false);
    }
    fn_seq[slot] = seq_;
    push(t, EventType::fn, slot);
    return slot | (fn_seq[slot] << 32);
  }
  void cancel_post(uint64_t id) {
    const uint64_t slot = id & 0xffffffffu;
    if (slot < fns.size() && fn_seq[slot] == id >> 32 && fns[slot]) {
      fns[slot] = nullptr;
      fn_cancelled[slot] = true;
    }
  }
  InstanceState& state(size_t i) { return core.driver_state(i); }
  size_t n_instances() const { return core.instances().size(); }

  void wake(size_t i) {
    if (insts[i].wake_pending || state(i).busy) return;
    insts[i].wake_pending = true;
    push(now_, EventType::wake, i);
  }

  // ---------- observers ----------
  void on_stage(const agents::StageEvent& e) {
    if (user_observer) user_observer->on_stage(e);
    if (e.done) {
      core.stage_finished(e, now_);
      if (opt.trace)
        opt.trace->complete(static_cast<int>(n_instances()) + 2, static_cast<int>(e.workflow_id),
                            std::string(agents::stage_kind_name(e.kind)), "stage", e.t_s - e.elapsed_s, e.elapsed_s,
                            {TraceArg("stage_index", static_cast<int>(e.stage_index)), TraceArg("calls", e.calls),
                             TraceArg("detail", e.detail)});
    }
  }

  // ---------- dispatch ----------
  // Asks the dispatcher about `group`; a call it holds keeps the time it was first held (`was_held`: the held list
  // these calls came from, when offered again).
  void dispatch_group(std::vector<const agents::LlmCall*>& group, std::span<const HeldCall> was_held = {}) {
    if (group.empty()) return;
    scratch_dec.assign(group.size(), DispatchDecision{});
    auto t0 = Clock::now();
    core.dispatch(group, now_, scratch_dec);
    const double us = us_since(t0) / static_cast<double>(group.size());
    for (size_t k = 0; k < group.size(); ++k) result.decision_us.push_back(us);
    const auto decisions = scratch_dec;  // enqueue may not re-enter dispatch, but keep the decisions apart anyway
    for (size_t k = 0; k < group.size(); ++k) {
      auto it = calls.find(group[k]->id);
      if (it == calls.end()) continue;
      CallState& c = *it->second;
      if (decisions[k].instance >= 0) {
        enqueue(static_cast<size_t>(decisions[k].instance), c);
        continue;
      }
      core.hold(&c.call, now_, was_held);
      if (std::isfinite(decisions[k].retry_at_s)) schedule_retry(decisions[k].retry_at_s);
    }
  }

  // One pending retry timer at the earliest time asked for; a time not after now means "at the next millisecond",
  // so a policy that keeps holding cannot spin the clock in place.
  void schedule_retry(double t) {
    t = std::max(t, now_ + 1e-3);
    if (t >= retry_at_) return;
    retry_at_ = t;
    post(t, [this, t] {
      if (retry_at_ != t) return;  // superseded by an earlier timer
      retry_at_ = std::numeric_limits<double>::infinity();
      offer_held();
    });
  }

  void offer_held() {
    if (core.held().empty()) return;
    const auto was_held = core.take_held();
    std::vector<const agents::LlmCall*> group;
    for (const auto& h : was_held) group.push_back(h.call);
    dispatch_group(group, was_held);
  }

  void enqueue(size_t i, CallState& c) {
    if (opt.trace) trace_dispatch(i, c);
    c.phase = Phase::queued;
    c.rec.instance = static_cast<int>(i);
    c.rec.queued_s = now_;
    core.enqueue(i, &c.call, now_);
    if (state(i).busy)
      cut_group(i);
    else
      wake(i);
  }

  // The dispatch as the policy saw it: the completion estimate on every instance (by the policy's cost view) and
  // the slack on the chosen one, as an instant on the chosen instance's queue track.
  void trace_dispatch(size_t i, const CallState& c) {
    std::vector<TraceArg> args = {TraceArg("workflow", static_cast<int64_t>(c.call.workflow_id)),
                                  TraceArg("stage", std::string(agents::stage_kind_name(c.call.kind))),
                                  TraceArg("stage_index", static_cast<int>(c.call.stage_index)),
                                  TraceArg("call", static_cast<int64_t>(c.call.id)),
                                  TraceArg("instance", cluster.instances[i].name)};
    double chosen = 0;
    for (size_t j = 0; j < n_instances(); ++j) {
      const double est = policy_costs[j].estimate_completion_s(c.call, core.instances()[j], now_);
      if (j == i) chosen = est;
      args.emplace_back("est_" + cluster.instances[j].name + "_s", est);
    }
    args.emplace_back("estimate_s", chosen);
    args.emplace_back("slack_s", c.call.deadline_s - (chosen + c.call.remaining_mean_s));
    opt.trace->instant(static_cast<int>(i) + 1, 0, "dispatch " + std::string(agents::stage_kind_name(c.call.kind)),
                       "dispatch", now_, std::move(args));
  }

  // A fused decode group in flight on `i` ends at the next step boundary instead (the batch is about to change).
  void cut_group(size_t i) {
    auto& in = insts[i];
    if (in.group_k <= 1) return;
    int j = 0;
    while (j < in.group_k - 1 && in.group_start + in.group_ends[static_cast<size_t>(j)] < now_) ++j;
    if (j + 1 >= in.group_k) return;
    in.group_k = j + 1;
    state(i).busy_until_s = in.group_start + in.group_ends[static_cast<size_t>(j)];
    push(state(i).busy_until_s, EventType::iteration_end, i, ++in.gen);
  }

  // ---------- KV ----------
  bool ensure_blocks(InstanceState& st, int need) {
    if (need <= 0) return true;
    if (need > st.kv_blocks_free()) core.evict_prefixes(st.index, need - st.kv_blocks_free());
    return need <= st.kv_blocks_free();
  }

  int private_ctx(const InstanceState& st, size_t r) const {
    const auto& rc = st.running[r];
    return rc.prefilled + rc.decoded - insts[st.index].aux[r].shared_tokens;
  }

  void remove_running(size_t i, size_t r) {
    auto& in = insts[i];
    const auto& ax = in.aux[r];
    if (ax.shared_pid) core.unpin_prefix(i, ax.shared_pid);
    in.slots[static_cast<size_t>(ax.slot)] = false;
    core.take_running(i, r);
    in.aux.erase(in.aux.begin() + static_cast<std::ptrdiff_t>(r));
  }

  void preempt(size_t i, size_t r) {
    CallState* cs = insts[i].aux[r].cs;
    const double enq = state(i).running[r].enqueued_s;
    remove_running(i, r);
    cs->phase = Phase::queued;
    cs->rec.preemptions++;
    insts[i].stats.preemptions++;
    core.requeue_front(i, &cs->call, enq);
  }

  // ---------- iterations ----------
  // Schedules the running batch for one step: decodes take one token, partial prefills a chunk. KV shortfalls evict
  // the prefix cache, then preempt the local policy's victim (recompute; by default the newest, as vLLM). Returns
  // tokens used.
  int schedule_running(size_t i, int budget, int chunk_cap) {
    auto& st = state(i);
    auto& in = insts[i];
    const int bt = st.spec->block_tokens;
    int used = 0;
    for (size_t r = 0; r < st.running.size();) {
      auto& rc = st.running[r];
      auto& ax = in.aux[r];
      ax.chunk = 0;
      ax.decode = false;
      if (budget - used <= 0) {
        ++r;
        continue;
      }
      int tokens = rc.prefill_done() ? 1 : std::min({rc.call->prompt_tokens - rc.prefilled, budget - used, chunk_cap});
      const int need = blocks_for(private_ctx(st, r) + tokens, bt) - rc.kv_blocks;
      bool ok = ensure_blocks(st, need);
      bool gave_way = false;
      while (!ok) {
        // The local policy names the call that gives its blocks back (default: the newest, as vLLM).
        const auto v = static_cast<size_t>(core.kv_victims(i, now_).front());
        if (v == r) {
          preempt(i, r);
          gave_way = true;
          break;
        }
        if (v < r) {  // already scheduled this step: its tokens leave the budget with it
          used -= in.aux[v].chunk + (in.aux[v].decode ? 1 : 0);
          --r;
        }
        preempt(i, v);
        ok = ensure_blocks(st, need);
      }
      if (gave_way) continue;
      core.set_running_blocks(i, r, st.running[r].kv_blocks + std::max(0, need));
      if (st.running[r].prefill_done())
        in.aux[r].decode = true;
      else
        in.aux[r].chunk = tokens;
      used += tokens;
      ++r;
    }
    return used;
  }

  // Admits waiting calls in the local policy's order while budget, batch size and KV allow. Returns tokens used.
  int admit_waiting(size_t i, int budget, int chunk_cap, bool chunked, bool& blocked) {
    auto& st = state(i);
    auto& in = insts[i];
    const int bt = st.spec->block_tokens;
    int used = 0;
    blocked = false;
    while (!st.waiting.empty() && static_cast<int>(st.running.size()) < st.spec->max_running && budget - used > 0) {
      auto t0 = Clock::now();
      const int idx = core.next(i, now_);
      result.decision_us.push_back(us_since(t0));
      if (idx < 0) break;
      const QueuedCall q = st.waiting[static_cast<size_t>(idx)];
      CallState* cs = calls.at(q.call->id).get();
      const auto& call = cs->call;
      int hit = st.prefix_cache.hit_tokens(call.prefix_id, call.prefix_tokens);
      hit = std::min(hit, std::max(0, call.prompt_tokens - 1));
      const int left = call.prompt_tokens - hit;
      int chunk = chunked ? std::min({left, budget - used, chunk_cap}) : left;
      bool fits = chunked || left <= budget - used || used == 0;
      int need = blocks_for(chunk, bt);
      if (fits && hit > 0) core.pin_prefix(i, call.prefix_id, now_);  // pin before evicting for this call
      if (!fits || !ensure_blocks(st, need)) {  // head-of-line: nothing passes it this iteration
        if (fits && hit > 0) core.unpin_prefix(i, call.prefix_id);
        blocked = true;
        break;
      }
      core.take_waiting(i, static_cast<size_t>(idx));
      RunningCall rc;
      rc.call = &call;
      rc.cached_tokens = hit;
      rc.prefilled = hit;
      rc.kv_blocks = need;
      rc.enqueued_s = q.enqueued_s;
      rc.started_s = now_;
      core.start_running(i, rc);
      RunAux ax;
      ax.cs = cs;
      ax.shared_tokens = hit;
      ax.shared_pid = hit > 0 ? call.prefix_id : 0;
      ax.chunk = chunk;
      auto& in_slots = in.slots;
      size_t slot = 0;
      while (slot < in_slots.size() && in_slots[slot]) ++slot;
      if (slot == in_slots.size()) in_slots.push_back(true);
      in_slots[slot] = true;
      ax.slot = static_cast<int>(slot);
      in.aux.push_back(ax);
      cs->phase = Phase::running;
      cs->rec.started_s = now_;
      cs->rec.cached_tokens = hit;
      in.stats.cached_tokens += static_cast<uint64_t>(hit);
      if (opt.trace && now_ > q.enqueued_s)
        opt.trace->complete(static_cast<int>(i) + 1, 0, "queued", "queue", q.enqueued_s, now_ - q.enqueued_s,
                            {TraceArg("workflow", static_cast<int64_t>(call.workflow_id)),
                             TraceArg("call", static_cast<int64_t>(call.id))});
      used += chunk;
    }
    return used;
  }

  void start_iteration(size_t i) {
    auto& st = state(i);
    auto& in = insts[i];
    in.wake_pending = false;
    if (st.busy || (st.running.empty() && st.waiting.empty())) return;
    const auto& spec = *st.spec;
    const int budget = spec.max_batch_tokens;
    const int policy_chunk = core.prefill_chunk_tokens(i);
    const bool chunked = spec.chunked_prefill || policy_chunk > 0;
    const int chunk_cap = policy_chunk > 0 ? policy_chunk : (chunked ? budget : std::numeric_limits<int>::max());
    bool blocked = false;
    if (chunked) {
      const int used = schedule_running(i, budget, chunk_cap);
      admit_waiting(i, budget - used, chunk_cap, true, blocked);
    } else {
      // Without chunked prefill (vLLM v0): an iteration with admissions is prefill-only; decodes wait for it.
      for (auto& ax : in.aux) ax.chunk = 0, ax.decode = false;
      const int used = admit_waiting(i, budget, chunk_cap, false, blocked);
      if (used == 0) schedule_running(i, budget, chunk_cap);
    }
    IterationShape shape;
    int decode_seqs = 0;
    bool any_prefill = false;
    for (size_t r = 0; r < st.running.size(); ++r) {
      const auto& ax = in.aux[r];
      const auto& rc = st.running[r];
      if (ax.chunk > 0) {
        shape.prefill_tokens += ax.chunk;
        shape.prefill_attn += ax.chunk * (rc.prefilled + ax.chunk / 2.0);
        any_prefill = true;
      } else if (ax.decode) {
        ++decode_seqs;
        shape.decode_context += rc.prefilled + rc.decoded;
      }
    }
    shape.decode_seqs = decode_seqs;
    if (shape.prefill_tokens + decode_seqs == 0) return;  // nothing schedulable (cannot happen with KV ≥ 1 call)
    // Pure decode with nothing admissible: fuse up to fuse_max_steps steps, ending before the first completion and
    // within free KV; admission is re-checked at the group's end (or earlier, when a new call arrives here).
    int k = 1;
    if (!any_prefill && (st.waiting.empty() || blocked || static_cast<int>(st.running.size()) >= spec.max_running)) {
      int steps_to_finish = std::numeric_limits<int>::max();
      for (size_t r = 0; r < st.running.size(); ++r)
        if (in.aux[r].decode)
          steps_to_finish = std::min(steps_to_finish, in.aux[r].cs->output_tokens - st.running[r].decoded);
      k = std::clamp(std::min(opt.fuse_max_steps, steps_to_finish), 1, std::max(1, opt.fuse_max_steps));
      if (k > 1) k = fit_kv_steps(i, k);
    }
    in.group_ends.resize(static_cast<size_t>(k));
    double total = 0;
    IterationShape step = shape;
    for (int j = 0; j < k; ++j) {
      total += costs[i].iteration_s(step) * slowdown(i);
      in.group_ends[static_cast<size_t>(j)] = total;
      step.decode_context += decode_seqs;
    }
    in.group_start = now_;
    in.group_k = k;
    st.busy = true;
    st.busy_until_s = now_ + total;
    push(st.busy_until_s, EventType::iteration_end, i, ++in.gen);
    core.iteration(i, shape, in.group_ends[0], now_);
    const int peak = st.kv_blocks_used;
    in.stats.peak_kv_blocks = std::max(in.stats.peak_kv_blocks, peak);
  }

  // Largest k' ≤ k decode steps whose extra KV blocks fit (the first step's blocks are already allocated).
  int fit_kv_steps(size_t i, int k) {
    auto& st = state(i);
    auto& in = insts[i];
    const int bt = st.spec->block_tokens;
    auto extra = [&](int steps) {
      int64_t blocks = 0;
      for (size_t r = 0; r < st.running.size(); ++r)
        if (in.aux[r].decode) blocks += blocks_for(private_ctx(st, r) + steps, bt) - st.running[r].kv_blocks;
      return blocks;
    };
    const int64_t avail = st.kv_blocks_free() + st.prefix_cache.evictable_blocks();
    if (extra(k) <= avail) return k;
    int lo = 1, hi = k;  // extra(lo) ≤ avail (it is 0), extra(hi) > avail
    while (hi - lo > 1) {
      int mid = (lo + hi) / 2;
      if (extra(mid) <= avail)
        lo = mid;
      else
        hi = mid;
    }
    return lo;
  }

  void end_iteration(size_t i, uint64_t gen) {
    auto& st = state(i);
    auto& in = insts[i];
    if (gen != in.gen || !st.busy) return;
    const int steps = in.group_k;
    const double elapsed = in.group_ends[static_cast<size_t>(steps - 1)];
    st.busy = false;
    st.iterations += static_cast<uint64_t>(steps);
    st.busy_s += elapsed;
    in.stats.iterations += static_cast<uint64_t>(steps);
    in.stats.busy_s += elapsed;
    result.iterations += static_cast<uint64_t>(steps);
    const int bt = st.spec->block_tokens;
    std::vector<size_t> finished;
    for (size_t r = 0; r < st.running.size(); ++r) {
      auto& rc = st.running[r];
      auto& ax = in.aux[r];
      CallState& cs = *ax.cs;
      if (ax.chunk > 0) {
        const int prefilled = rc.prefilled + ax.chunk;
        // The iteration that completes the prefill samples the first output token.
        const bool prompt_done = prefilled >= rc.call->prompt_tokens;
        core.set_progress(i, r, prefilled, prompt_done ? 1 : rc.decoded);
        in.stats.prefill_tokens += static_cast<uint64_t>(ax.chunk);
        if (prompt_done) {
          in.stats.decode_tokens += 1;
          share_prefix(i, r);
        }
      } else if (ax.decode) {
        core.set_progress(i, r, rc.prefilled, rc.decoded + steps);
        in.stats.decode_tokens += static_cast<uint64_t>(steps);
      }
      ax.chunk = 0;
      ax.decode = false;
      // Trim the blocks allocated ahead for a group that was cut short.
      const int want = blocks_for(rc.prefilled + rc.decoded - ax.shared_tokens, bt);
      if (want < rc.kv_blocks) core.set_running_blocks(i, r, want);
      if (rc.decoded >= cs.output_tokens || cs.cancel_requested) finished.push_back(r);
    }
    bool any_done = false;
    for (auto it = finished.rbegin(); it != finished.rend(); ++it) {
      const size_t r = *it;
      CallState* cs = in.aux[r].cs;
      const int slot = in.aux[r].slot;
      const double started = st.running[r].started_s;
      remove_running(i, r);
      finish_call(*cs, !cs->cancel_requested, cs->cancel_requested ? "cancelled" : "", slot, started);
      any_done = true;
    }
    if (any_done) offer_held();
    start_iteration(i);
  }

  // After a call's prefill completes, its shared prefix becomes a prefix-cache entry (full blocks only). An entry
  // shorter than this call's prefix grows to it, as an engine's block cache holds every full block it computed: the
  // call's private blocks past the entry move into it (and a private copy of what the entry held is freed).
  void share_prefix(size_t i, size_t r) {
    auto& st = state(i);
    auto& ax = insts[i].aux[r];
    auto& rc = st.running[r];
    const auto& call = *rc.call;
    const int bt = st.spec->block_tokens;
    if (call.prefix_id == 0) return;
    const int full = std::min(call.prefix_tokens, call.prompt_tokens) / bt;
    if (full <= 0) return;
    const PrefixEntry* e = st.prefix_cache.find(call.prefix_id);
    if (e && e->tokens >= full * bt) return;  // already as long: a sibling's copy stays private
    const int held = e ? e->blocks : 0;       // blocks the entry holds now
    const bool uses_entry = ax.shared_pid != 0;
    // Private blocks that become shared: past the entry when this call already reads the entry, else all of them.
    const int moved = uses_entry ? full - held : full;
    if (moved <= 0 || moved > rc.kv_blocks) return;
    core.cache_prefix(i, call.prefix_id, full * bt, full, now_);  // pins it once for this call
    if (uses_entry) core.unpin_prefix(i, call.prefix_id);           // it held a pin already
    core.set_running_blocks(i, r, rc.kv_blocks - moved);           // the moved blocks stay used, now cached
    ax.shared_tokens = full * bt;
    ax.shared_pid = call.prefix_id;
  }

  // Ends a call. The fixed per-call overhead (request handling, detokenisation) delays the result, not the instance.
  void finish_call(CallState& cs, bool ok, const std::string& error, int slot, double started) {
    const double end = ok && cs.rec.instance >= 0
                           ? now_ + costs[static_cast<size_t>(cs.rec.instance)].call_overhead_s()
                           : now_;
    cs.phase = Phase::done;
    cs.rec.finished_s = end;
    cs.rec.ok = ok;
    cs.rec.cancelled = cs.cancel_requested;
    cs.rec.output_tokens = ok ? cs.output_tokens : 0;
    auto& inst_stats = insts[static_cast<size_t>(std::max(0, cs.rec.instance))].stats;
    if (ok && cs.rec.instance >= 0) inst_stats.calls++;
    agents::LlmResult res;
    res.call_id = cs.call.id;
    res.ok = ok;
    res.cancelled = cs.cancel_requested;
    res.error = error;
    if (ok) res.text = cs.text;
    res.prompt_tokens = cs.call.prompt_tokens;
    res.cached_tokens = cs.rec.cached_tokens;
    res.output_tokens = cs.rec.output_tokens;
    if (cs.rec.instance >= 0) res.instance = cluster.instances[static_cast<size_t>(cs.rec.instance)].name;
    res.queued_s = cs.rec.queued_s;
    res.started_s = cs.rec.started_s;
    res.finished_s = end;
    if (opt.trace && cs.rec.instance >= 0 && slot >= 0)
      opt.trace->complete(cs.rec.instance + 1, slot + 1, std::string(agents::stage_kind_name(cs.call.kind)), "llm",
                          started, end - started,
                          {TraceArg("workflow", static_cast<int64_t>(cs.call.workflow_id)),
                           TraceArg("stage", std::string(agents::stage_kind_name(cs.call.kind))),
                           TraceArg("stage_index", static_cast<int>(cs.call.stage_index)),
                           TraceArg("prompt_tokens", cs.call.prompt_tokens),
                           TraceArg("cached_tokens", cs.rec.cached_tokens),
                           TraceArg("output_tokens", cs.rec.output_tokens), TraceArg("deadline_s", cs.call.deadline_s),
                           TraceArg("slack_s", cs.call.deadline_s - end)});
    core.call_finished(cs.rec.instance, cs.call, res, now_);
    result.calls.push_back(cs.rec);
    auto node = calls.extract(cs.call.id);
    auto done = std::move(node.mapped()->done);
    post(end, [done = std::move(done), res = std::move(res)]() mutable {
      if (done) done(res);
    });
  }

  // ---------- run ----------
  void on_arrival(size_t k) {
    const auto& a = (*arrivals)[k];
    if (a.question_index >= workload->questions.size())
      throw InputError("arrival " + std::to_string(k) + ": question index " + std::to_string(a.question_index) +
                       " out of range (" + std::to_string(workload->questions.size()) + " questions)");
    const uint64_t wid = a.workflow_id;
    arrival_index[wid] = k;
    auto done = [this, k, wid](const agents::WorkflowOutcome& o) {
      if (have_outcome[k]) return;
      have_outcome[k] = true;
      result.outcomes[k] = o;
      if (result.outcomes[k].finished_s == 0) result.outcomes[k].finished_s = now_;
      const auto& arr = (*arrivals)[k];
      core.workflow_finished(wid, now_ - arr.arrival_s, o.completed && now_ <= arr.deadline_s, now_);
      if (opt.trace) {
        const int pid = static_cast<int>(n_instances()) + 2;
        opt.trace->complete(pid, static_cast<int>(wid), "workflow " + std::to_string(wid), "workflow", arr.arrival_s,
                            now_ - arr.arrival_s,
                            {TraceArg("question", o.question_id), TraceArg("deadline_s", arr.deadline_s),
                             TraceArg("completed", o.completed ? 1 : 0)});
        opt.trace->instant(pid, static_cast<int>(wid), "deadline", "deadline", arr.deadline_s);
      }
      post(now_, [this, wid] { workflows.erase(wid); });
    };
    auto wf = factory->make(workload->questions[a.question_index], a, self, done, &observer);
    auto* raw = wf.get();
    workflows[wid] = std::move(wf);
    raw->start();
  }

  SimResult run(const workloads::Workload& w, const std::vector<workloads::Arrival>& arr,
                agents::WorkflowFactory& f, agents::WorkflowObserver* obs) {
    const auto wall0 = Clock::now();
    reset_state();
    workload = &w;
    arrivals = &arr;
    factory = &f;
    user_observer = obs;
    result.outcomes.assign(arr.size(), agents::WorkflowOutcome{});
    have_outcome.assign(arr.size(), false);
    if (opt.trace) {
      for (size_t i = 0; i < n_instances(); ++i) {
        opt.trace->process_name(static_cast<int>(i) + 1, "instance " + cluster.instances[i].name);
        opt.trace->thread_name(static_cast<int>(i) + 1, 0, "queue");
      }
      opt.trace->process_name(static_cast<int>(n_instances()) + 1, "sqlite");
      opt.trace->process_name(static_cast<int>(n_instances()) + 2, "workflows");
    }
    for (size_t k = 0; k < arr.size(); ++k) push(arr[k].arrival_s, EventType::arrival, k);
    while (!events.empty()) {
      const Event e = events.top();
      if (e.type == EventType::fn && fn_cancelled[e.a]) {  // a cancelled timer: gone without moving the clock
        events.pop();
        fn_cancelled[e.a] = false;
        free_fns.push_back(e.a);
        continue;
      }
      if (e.t > opt.max_sim_s) break;
      events.pop();
      now_ = std::max(now_, e.t);
      result.events++;
      switch (e.type) {
        case EventType::arrival:
          on_arrival(e.a);
          break;
        case EventType::iteration_end:
          end_iteration(e.a, e.b);
          break;
        case EventType::wake:
          start_iteration(e.a);
          break;
        case EventType::fn: {
          auto fn = std::move(fns[e.a]);
          fns[e.a] = nullptr;
          free_fns.push_back(e.a);
          fn();
          break;
        }
      }
    }
    result.end_s = now_;
    // Whatever did not end is failed (stalled or past max_sim_s).
    for (auto& [id, cs] : calls) {
      CallRecord rec = cs->rec;
      rec.ok = false;
      result.calls.push_back(rec);
    }
    std::sort(result.calls.begin() + static_cast<std::ptrdiff_t>(result.calls.size() - calls.size()),
              result.calls.end(), [](const CallRecord& a, const CallRecord& b) { return a.call_id < b.call_id; });
    for (size_t k = 0; k < arr.size(); ++k) {
      if (have_outcome[k]) continue;
      auto& o = result.outcomes[k];
      o.workflow_id = arr[k].workflow_id;
      o.question_id = w.questions[arr[k].question_index].id;
      o.failed = true;
      o.error = events.empty() ? "workflow stalled (no pending events)" : "not finished by max_sim_s";
      o.arrival_s = arr[k].arrival_s;
      o.deadline_s = arr[k].deadline_s;
      o.finished_s = now_;
    }
    for (auto& in : insts) result.instances.push_back(in.stats);
    workflows.clear();
    calls.clear();
    result.wall_s = std::chrono::duration<double>(Clock::now() - wall0).count();
    return std::move(result);
  }
};

Simulator::Simulator(const ClusterSpec& cluster, Policy& policy, agents::Responder& responder, SimOptions options)
    : impl_(std::make_unique<Impl>(*this, cluster, policy, responder, options)) {
  impl_->reset_state();
}

Simulator::~Simulator() = default;

SimResult Simulator::run(const workloads::Workload& workload, const std::vector<workloads::Arrival>& arrivals,
                         agents::WorkflowFactory& factory, agents::WorkflowObserver* observer) {
  return impl_->run(workload, arrivals, factory, observer);
}

double Simulator::now() const { return impl_->now_; }

void Simulator::run_tool(uint64_t workflow_id, agents::StageKind kind, std::function<void()> work,
                         std::function<void(double)> done) {
  auto* im = impl_.get();
  const double elapsed = kind == agents::StageKind::sql_execution ? im->opt.sql_execution_s : im->opt.other_tool_s;
  if (kind == agents::StageKind::sql_execution) im->result.sql_executions++;
  im->post(im->now_, [im, workflow_id, kind, elapsed, work = std::move(work), done = std::move(done)]() mutable {
    if (im->opt.run_tool_work && work) work();
    if (im->opt.trace)
      im->opt.trace->complete(static_cast<int>(im->n_instances()) + 1, static_cast<int>(workflow_id),
                              std::string(agents::stage_kind_name(kind)), "tool", im->now_, elapsed,
                              {TraceArg("workflow", static_cast<int64_t>(workflow_id))});
    im->post(im->now_ + elapsed, [done = std::move(done), elapsed] {
      if (done) done(elapsed);
    });
  });
}

uint64_t Simulator::at(double t_s, std::function<void()> fn) {
  return impl_->post(std::max(t_s, impl_->now_), std::move(fn));
}

void Simulator::cancel_at(uint64_t timer) { impl_->cancel_post(timer); }

uint64_t Simulator::next_call_id() { return impl_->next_call_id_++; }

double Simulator::reference_seconds(int prompt_tokens, int output_tokens) const {
  const auto& c = impl_->costs[0];
  return c.standalone_s(prompt_tokens, output_tokens, 0, c.default_chunk_tokens());
}

void Simulator::submit(std::vector<agents::LlmCall> calls, std::vector<Callback> done) {
  auto* im = impl_.get();
  if (done.size() != calls.size()) throw std::logic_error("LlmClient::submit: calls and callbacks differ in size");
  std::vector<const agents::LlmCall*> group;
  for (size_t k = 0; k < calls.size(); ++k) {
    auto cs = std::make_unique<CallState>();
    cs->call = std::move(calls[k]);
    if (cs->call.id == 0 || im->calls.count(cs->call.id)) cs->call.id = im->next_call_id_++;
    cs->call.released_s = im->now_;
    cs->done = std::move(done[k]);
    auto resp = im->responder.respond(cs->call);
    cs->output_tokens = std::clamp(resp.output_tokens, 1, std::max(1, cs->call.max_output_tokens));
    cs->text = std::move(resp.text);
    cs->rec.call_id = cs->call.id;
    cs->rec.workflow_id = cs->call.workflow_id;
    cs->rec.stage_index = cs->call.stage_index;
    cs->rec.kind = cs->call.kind;
    cs->rec.prompt_tokens = cs->call.prompt_tokens;
    cs->rec.released_s = im->now_;
    if (cs->call.prompt_tokens < 1) cs->call.prompt_tokens = 1;
    group.push_back(&cs->call);
    im->calls.emplace(cs->call.id, std::move(cs));
  }
  im->dispatch_group(group);
}

void Simulator::cancel(uint64_t call_id) {
  auto* im = impl_.get();
  auto it = im->calls.find(call_id);
  if (it == im->calls.end()) return;
  CallState& cs = *it->second;
  cs.cancel_requested = true;
  if (cs.phase == Phase::held) {
    im->core.drop_held(call_id);
    im->finish_call(cs, false, "cancelled", -1, im->now_);
  } else if (cs.phase == Phase::queued) {
    im->core.remove_waiting(static_cast<size_t>(cs.rec.instance), &cs.call);
    im->finish_call(cs, false, "cancelled", -1, im->now_);
  } else if (cs.phase == Phase::running) {
    im->cut_group(static_cast<size_t>(cs.rec.instance));  // ends at the next step boundary
  }
}

const std::vector<InstanceState>& Simulator::instances() const { return impl_->core.instances(); }
const CostModel& Simulator::cost_model(size_t i) const { return impl_->costs.at(i); }

namespace {

struct FixedResponder final : agents::Responder {
  int output = 1;
  agents::Response respond(const agents::LlmCall&) override { return {"", output}; }
  std::string name() const override { return "fixed"; }
};

struct OneCallWorkflow final : agents::Workflow {
  agents::AgentEnv& env;
  int prompt;
  uint64_t wid;
  agents::WorkflowFactory::Done done;
  OneCallWorkflow(agents::AgentEnv& e, int p, uint64_t w, agents::WorkflowFactory::Done d)
      : env(e), prompt(p), wid(w), done(std::move(d)) {}
  void start() override {
    agents::LlmCall c;
    c.id = env.next_call_id();
    c.workflow_id = wid;
    c.prompt_tokens = prompt;
    c.max_output_tokens = 1 << 20;
    const double t0 = env.now();
    env.llm().submit({c}, {[this, t0](const agents::LlmResult& r) {
                       agents::WorkflowOutcome o;
                       o.workflow_id = wid;
                       o.completed = r.ok;
                       o.arrival_s = t0;
                       o.finished_s = env.now();
                       done(o);
                     }});
  }
  void cancel() override {}
};

struct OneCallFactory final : agents::WorkflowFactory {
  int prompt;
  explicit OneCallFactory(int p) : prompt(p) {}
  std::unique_ptr<agents::Workflow> make(const workloads::Question&, const workloads::Arrival& a,
                                         agents::AgentEnv& env, Done done, agents::WorkflowObserver*) override {
    return std::make_unique<OneCallWorkflow>(env, prompt, a.workflow_id, std::move(done));
  }
};

}  // namespace

double simulate_single_call(const InstanceSpec& spec, int prompt_tokens, int output_tokens) {
  ClusterSpec c;
  c.instances = {spec};
  PolicyContext ctx;
  ctx.cluster = &c;
  Policy p = default_policy_registry().make("rr-fcfs", ctx);
  FixedResponder resp;
  resp.output = output_tokens;
  OneCallFactory f(prompt_tokens);
  workloads::Workload w;
  w.questions.resize(1);
  std::vector<workloads::Arrival> arr(1);
  arr[0].workflow_id = 1;
  Simulator sim(c, p, resp);
  auto r = sim.run(w, arr, f);
  if (r.outcomes.empty() || !r.outcomes[0].completed) throw std::runtime_error("single-call simulation failed");
  return r.outcomes[0].finished_s - r.outcomes[0].arrival_s;
}

}  // namespace t2s::scheduler
