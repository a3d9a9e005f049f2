#include "runtime/runtime.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>

#include "common/json.hpp"
#include "common/json_writer.hpp"
#include "common/status.hpp"
#include "common/trace.hpp"
#include "engine/backend.hpp"
#include "runtime/executors.hpp"
#include "runtime/metrics.hpp"
#include "scheduler/cluster_core.hpp"
#include "scheduler/iteration_log.hpp"

namespace t2s::server {

namespace {

using Clock = std::chrono::steady_clock;

// Published per-instance state for readers on other threads (status, metrics, timeline).
struct InstanceSnapshot {
  std::string name, kind;
  size_t waiting = 0, running = 0;
  int capacity = 0, kv_used = 0, kv_total = 0;
  bool healthy = true, fitted = false;
  uint64_t calls_ok = 0, calls_failed = 0;
};

struct WorkflowRecord {
  uint64_t id = 0;
  std::string label;
  double arrival_s = 0, deadline_s = 0, finished_s = -1;
  bool ok = false;
};

struct DepthSample {
  double t_s;
  int instance;
  int waiting, running;
};

// A prior for instances with no hardware profile (embedded CPU engines, remote servers of unknown make): a linear
// iteration model that online refitting replaces after the first samples.
scheduler::LinearIterationModel prior_model(scheduler::Backend backend) {
  scheduler::LinearIterationModel m;
  if (backend == scheduler::Backend::engine) {
    m.c0 = 0.001;
    m.c_prefill = 2e-4;
    m.c_seq = 2e-3;
    m.c_ctx = 1e-7;
  } else {
    m.c0 = 0.03;
    m.c_prefill = 1e-4;
    m.c_seq = 0.02;
    m.c_ctx = 1e-8;
  }
  return m;
}

}  // namespace

struct Runtime::Impl final : agents::LlmClient {
  Runtime* self = nullptr;
  scheduler::ClusterSpec cluster;
  scheduler::Policy policy;
  RuntimeOptions opt;
  std::shared_ptr<agents::Responder> responder;
  Logger* log = nullptr;
  Clock::time_point t0 = Clock::now();

  // ---- event loop
  std::mutex qmu;
  std::condition_variable qcv;
  std::deque<std::function<void()>> queue;
  std::multimap<double, std::function<void()>> timers;
  bool stopping = false;
  std::thread loop_thread;
  std::atomic<std::thread::id> loop_id;  // written by the loop thread as it starts, read by every submitter

  // ---- scheduling state (loop thread only)
  std::vector<std::unique_ptr<scheduler::CostModel>> costs;
  std::unique_ptr<scheduler::ClusterCore> core;  // queues, running batches, counters, held calls; every policy hook
  std::vector<std::unique_ptr<InstanceExecutor>> exec;
  std::vector<double> unhealthy_until;
  std::vector<int> chunk_cap;  // per instance: the cap last handed to its executor
  std::vector<uint64_t> scratch_ids;  // update_executor_policy's
  std::vector<std::vector<uint64_t>> kv_victims;  // per instance: the KV victim order last handed to its executor
  bool held_timer_armed = false;
  struct Rec {
    std::unique_ptr<agents::LlmCall> call;
    Callback cb;
    CallRecord rec;
    int state = 0;  // 0 held/unplaced, 1 waiting, 2 running
    bool cancel_requested = false;
    bool suspended = false;  // preempted by its engine, which keeps its sequence until start() resumes it
    int kv_blocks = 0;
    std::optional<agents::Response> response;
  };
  std::unordered_map<uint64_t, Rec> calls;
  std::vector<std::deque<scheduler::IterationSample>> samples;
  std::vector<size_t> new_samples;
  std::vector<double> decision_us;
  std::unordered_set<uint64_t> live_timers;  // AgentEnv::at timers not yet fired or cancelled
  uint64_t last_timer = 0;

  // ---- records for readers (rec_mu)
  mutable std::mutex rec_mu;
  std::vector<InstanceSnapshot> snap;
  std::deque<CallRecord> done_calls;
  std::map<uint64_t, CallRecord> live_calls;
  std::deque<SpanRecord> spans;
  std::map<std::pair<uint64_t, uint32_t>, SpanRecord> open_stages;
  std::map<uint64_t, WorkflowRecord> workflows;
  std::deque<DepthSample> depth;
  RuntimeStats st;
  double sum_service_err = 0, sum_service_bias = 0, sum_completion_err = 0;
  size_t n_pred = 0;

  // ---- SQLite pool
  std::mutex sql_mu;
  std::condition_variable sql_cv;
  std::deque<std::function<void()>> sql_tasks;
  bool sql_stopping = false;
  std::vector<std::thread> sql_threads;

  std::atomic<uint64_t> next_call{0};
  std::atomic<bool> stopped{false};

  double now() const { return std::chrono::duration<double>(Clock::now() - t0).count(); }

  // ------------------------------------------------------------------ loop
  void post(std::function<void()> fn) {
    std::lock_guard lk(qmu);
    queue.push_back(std::move(fn));
    qcv.notify_one();
  }
  // Runs `fn` now when called on the loop, else posts it there (policies and workflows are loop-thread only).
  void on_loop_or_post(std::function<void()> fn) {
    if (on_loop())
      fn();
    else
      post(std::move(fn));
  }
  // Queues `task` for the SQLite worker pool.
  void push_sql(std::function<void()> task) {
    std::lock_guard lk(sql_mu);
    sql_tasks.push_back(std::move(task));
    sql_cv.notify_one();
  }
  void post_at(double t, std::function<void()> fn) {
    std::lock_guard lk(qmu);
    timers.emplace(t, std::move(fn));
    qcv.notify_one();
  }
  void loop() {
    loop_id.store(std::this_thread::get_id());
    std::unique_lock lk(qmu);
    for (;;) {
      if (stopping && queue.empty()) break;
      double t = now();
      while (!timers.empty() && timers.begin()->first <= t) {
        queue.push_back(std::move(timers.begin()->second));
        timers.erase(timers.begin());
      }
      if (queue.empty()) {
        if (timers.empty())
          qcv.wait(lk);
        else
          qcv.wait_for(lk, std::chrono::duration<double>(timers.begin()->first - t));
        continue;
      }
      auto fn = std::move(queue.front());
      queue.pop_front();
      lk.unlock();
      try {
        fn();
      } catch (const std::exception& e) {
        if (log) log->error("runtime_loop_exception", {{"error", e.what()}});
      }
      lk.lock();
    }
  }

  // ------------------------------------------------------------------ LlmClient
  void submit(std::vector<agents::LlmCall> cs, std::vector<Callback> done) override {
    if (cs.size() != done.size()) throw std::invalid_argument("LlmClient::submit: calls and callbacks differ in count");
    auto fn = [this, cs = std::move(cs), done = std::move(done)]() mutable {
      std::vector<uint64_t> ids;
      double t = now();
      for (size_t i = 0; i < cs.size(); ++i) {
        Rec r;
        r.call = std::make_unique<agents::LlmCall>(std::move(cs[i]));
        if (r.call->released_s <= 0) r.call->released_s = t;
        r.cb = std::move(done[i]);
        auto& c = *r.call;
        r.rec.call_id = c.id;
        r.rec.workflow_id = c.workflow_id;
        r.rec.stage_index = c.stage_index;
        r.rec.kind = c.kind;
        r.rec.released_s = c.released_s;
        r.rec.deadline_s = c.deadline_s;
        r.rec.prompt_tokens = c.prompt_tokens;
        ids.push_back(c.id);
        calls[c.id] = std::move(r);
      }
      {
        std::lock_guard lk(rec_mu);
        st.calls_submitted += ids.size();
      }
      offer(ids);
    };
    // Completions never fire inside submit(): they always come from executors through the loop queue.
    on_loop_or_post(std::move(fn));
  }

  void cancel(uint64_t id) override {
    on_loop_or_post([this, id] { cancel_on_loop(id); });
  }

  bool on_loop() const { return std::this_thread::get_id() == loop_id.load(); }

  // The smallest context among instances that report one: the dispatcher may place a call on any of them.
  int context_tokens() const override {
    int ctx = 0;
    for (const auto& e : exec)
      if (int c = e->context_tokens(); c > 0) ctx = ctx == 0 ? c : std::min(ctx, c);
    return ctx;
  }
  // The largest count among the engines' tokenizers (a prompt that fits it fits them all); -1 without engines.
  int count_tokens(std::string_view text) const override {
    int n = -1;
    for (const auto& e : exec)
      if (auto* eng = dynamic_cast<const EngineExecutor*>(e.get())) n = std::max(n, eng->count_tokens(std::string(text)));
    return n;
  }

  // ------------------------------------------------------------------ dispatch
  bool healthy(size_t i, double t) const { return unhealthy_until[i] <= t; }

  size_t n_instances() const { return core->instances().size(); }

  // Asks the dispatcher about calls `ids`; a call it holds keeps the time it was first held (`was_held`: the held
  // list these calls came from, when offered again).
  void offer(const std::vector<uint64_t>& ids, std::span<const scheduler::HeldCall> was_held = {}) {
    if (ids.empty()) return;
    double t = now();
    std::vector<const agents::LlmCall*> ptrs;
    for (auto id : ids) ptrs.push_back(calls.at(id).call.get());
    std::vector<scheduler::DispatchDecision> out(ptrs.size());
    auto d0 = Clock::now();
    core->dispatch(ptrs, t, out);
    decision_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - d0).count() /
                          static_cast<double>(ptrs.size()));
    std::vector<bool> touched(n_instances(), false);
    double retry = std::numeric_limits<double>::infinity();
    for (size_t k = 0; k < ptrs.size(); ++k) {
      int target = out[k].instance;
      if (target >= 0 && !healthy(static_cast<size_t>(target), t)) {
        // The policy chose an instance that just failed: use the healthy one with the earliest completion.
        int best = -1;
        double best_t = 0;
        for (size_t j = 0; j < n_instances(); ++j) {
          if (!healthy(j, t)) continue;
          double e = costs[j]->estimate_completion_s(*ptrs[k], core->instances()[j], t);
          if (best < 0 || e < best_t) best = static_cast<int>(j), best_t = e;
        }
        target = best;
        if (best < 0) {
          double soonest = *std::min_element(unhealthy_until.begin(), unhealthy_until.end());
          out[k].retry_at_s = soonest;
        }
      }
      if (target < 0) {
        core->hold(ptrs[k], t, was_held);
        calls.at(ptrs[k]->id).state = 0;
        retry = std::min(retry, out[k].retry_at_s);
        continue;
      }
      enqueue(calls.at(ptrs[k]->id), static_cast<size_t>(target), t);
      touched[static_cast<size_t>(target)] = true;
    }
    if (std::isfinite(retry)) arm_held_timer(retry);
    for (size_t i = 0; i < n_instances(); ++i)
      if (touched[i]) pump(i);
  }

  void arm_held_timer(double at) {
    if (held_timer_armed) return;
    held_timer_armed = true;
    post_at(std::max(at, now() + 0.001), [this] {
      held_timer_armed = false;
      offer_held();
    });
  }

  void offer_held() {
    if (core->held().empty()) return;
    const auto was_held = core->take_held();
    std::vector<uint64_t> ids;
    for (const auto& h : was_held) ids.push_back(h.call->id);
    offer(ids, was_held);
  }

  void enqueue(Rec& r, size_t i, double t) {
    auto& c = *r.call;
    core->enqueue(i, r.call.get(), t);
    r.state = 1;
    r.rec.instance = static_cast<int>(i);
    r.rec.attempts++;
    r.rec.dispatched_s = t;
    r.rec.alt_completion_s.assign(n_instances(), 0);
    for (size_t j = 0; j < n_instances(); ++j)
      r.rec.alt_completion_s[j] = costs[j]->estimate_completion_s(c, core->instances()[j], t);
    r.rec.est_completion_s = r.rec.alt_completion_s[i];
    r.rec.slack_s = c.deadline_s - (r.rec.est_completion_s + c.remaining_mean_s);
    std::lock_guard lk(rec_mu);
    live_calls[c.id] = r.rec;
  }

  int blocks_for(size_t i, int tokens) const {
    int bt = std::max(1, costs[i]->block_tokens());
    return (tokens + bt - 1) / bt;
  }

  // Admits waiting calls of instance `i` in the local policy's order while it has room.
  void pump(size_t i) {
    const auto& s = core->instances()[i];
    auto& ex = *exec[i];
    double t = now();
    std::vector<std::pair<const agents::LlmCall*, const agents::Response*>> to_start;
    while (static_cast<int>(s.running.size()) < ex.capacity() && !s.waiting.empty()) {
      const int idx = core->next(i, t);
      if (idx < 0) break;
      const agents::LlmCall* c = s.waiting[static_cast<size_t>(idx)].call;
      auto& r = calls.at(c->id);
      int need = blocks_for(i, c->prompt_tokens + c->expected_output_tokens);
      if (s.kv_blocks_total > 0 && s.kv_blocks_used + need > s.kv_blocks_total) {
        core->evict_prefixes(i, s.kv_blocks_used + need - s.kv_blocks_total);
        if (s.kv_blocks_used + need > s.kv_blocks_total && !s.running.empty()) break;  // wait for memory
      }
      const double enq = core->take_waiting(i, static_cast<size_t>(idx)).enqueued_s;
      scheduler::RunningCall rc;
      rc.call = c;
      rc.enqueued_s = enq;
      rc.started_s = t;
      if (c->prefix_id != 0 && c->prefix_tokens > 0) {
        rc.cached_tokens = s.prefix_cache.hit_tokens(c->prefix_id, c->prefix_tokens);
        if (s.prefix_cache.find(c->prefix_id))
          core->pin_prefix(i, c->prefix_id, t);
        else
          core->cache_prefix(i, c->prefix_id, c->prefix_tokens, blocks_for(i, c->prefix_tokens), t);
      }
      rc.prefilled = rc.cached_tokens;
      rc.kv_blocks = need;
      core->start_running(i, rc);
      r.state = 2;
      r.suspended = false;  // a preempted call resumes on its engine
      r.kv_blocks = need;
      r.rec.started_s = t;
      r.rec.cached_tokens = rc.cached_tokens;
      const agents::Response* resp = nullptr;
      if (ex.kind() == "responder") {
        r.response = responder->respond(*c);
        resp = &*r.response;
      }
      to_start.emplace_back(c, resp);
      std::lock_guard lk(rec_mu);
      live_calls[c->id] = r.rec;
    }
    // The cap for the batch these calls join goes out before they do, so their first iteration obeys it.
    update_executor_policy(i);
    for (const auto& [c, resp] : to_start) ex.start(*c, resp, t);
    publish(i);
  }

  // Engine progress (on the loop): each running call's prefilled/decoded follow the engine, so the local policy's
  // chunk cap and the dispatcher's estimates see the batch as it is, as the simulator's do.
  void on_progress(size_t i, const std::vector<CallProgress>& progress) {
    const auto& running = core->instances()[i].running;
    for (const auto& p : progress) {
      for (size_t r = 0; r < running.size(); ++r) {
        const auto& c = *running[r].call;
        if (c.id != p.call_id) continue;
        // The agent counted the prompt with the same tokenizer; if the two ever differ, "prompt done" is the
        // engine's word.
        const int prefilled =
            p.prompt_computed >= p.prompt_tokens ? c.prompt_tokens : std::min(p.prompt_computed, c.prompt_tokens - 1);
        core->set_progress(i, r, prefilled, p.generated);
        break;
      }
    }
    update_executor_policy(i);
  }

  // The local policy's decisions that instance `i`'s executor applies between the runtime's turns (its prefill chunk
  // cap, the call that gives its KV back under pressure), handed over when they changed.
  void update_executor_policy(size_t i) {
    const int cap = core->prefill_chunk_tokens(i);
    if (cap != chunk_cap[i]) {
      chunk_cap[i] = cap;
      exec[i]->set_prefill_chunk_cap(cap);
    }
    const auto& order = core->kv_victims(i, now());
    const auto& running = core->instances()[i].running;
    auto& ids = scratch_ids;
    ids.clear();
    for (int r : order) ids.push_back(running[static_cast<size_t>(r)].call->id);
    if (ids != kv_victims[i]) {
      kv_victims[i] = ids;
      exec[i]->set_kv_victims(ids);
    }
  }

  // The engine took a running call's KV back (the local policy's victim): as in the simulator, it goes back to the
  // front of the instance's queue and is admitted again in the local policy's order (the engine then recomputes it).
  void on_preempted(size_t i, uint64_t id, bool named) {
    {
      std::lock_guard lk(rec_mu);
      st.kv_preemptions++;
      st.kv_preemptions_unnamed += !named;
    }
    auto it = calls.find(id);
    if (it == calls.end()) return;
    auto& r = it->second;
    const int pos = core->running_position(i, r.call.get());
    if (r.state != 2 || pos < 0) return;  // it ended meanwhile
    const double enq = core->instances()[i].running[static_cast<size_t>(pos)].enqueued_s;
    remove_running(i, r.call.get());
    r.rec.preemptions++;
    r.suspended = true;
    if (!r.cancel_requested) {  // a call being cancelled stays out of the queue; its engine reports it ended
      core->requeue_front(i, r.call.get(), enq);
      r.state = 1;
    }
    {
      std::lock_guard lk(rec_mu);
      live_calls[id] = r.rec;
    }
    pump(i);
  }

  void remove_running(size_t i, const agents::LlmCall* c) {
    const int r = core->running_position(i, c);
    if (r < 0) return;
    core->take_running(i, static_cast<size_t>(r));
    if (c->prefix_id != 0 && c->prefix_tokens > 0) core->unpin_prefix(i, c->prefix_id);
  }

  void cancel_on_loop(uint64_t id) {
    auto it = calls.find(id);
    if (it == calls.end()) return;
    auto& r = it->second;
    if (r.state == 2) {
      r.cancel_requested = true;
      exec[static_cast<size_t>(r.rec.instance)]->cancel(id);
      return;
    }
    if (r.state == 1) {
      core->remove_waiting(static_cast<size_t>(r.rec.instance), r.call.get());
      if (r.suspended) exec[static_cast<size_t>(r.rec.instance)]->cancel(id);  // frees the sequence it keeps
      publish(static_cast<size_t>(r.rec.instance));
    } else {
      core->drop_held(id);
    }
    agents::LlmResult res;
    res.call_id = id;
    res.cancelled = true;
    res.error = "cancelled";
    res.finished_s = now();
    finalize(it, std::move(res));
  }

  // Executor completion (on the loop).
  void on_done(uint64_t id, agents::LlmResult res, bool retryable) {
    auto it = calls.find(id);
    if (it == calls.end()) return;
    auto& r = it->second;
    size_t i = static_cast<size_t>(r.rec.instance);
    if (r.state == 2) remove_running(i, r.call.get());
    if (r.state == 1) core->remove_waiting(i, r.call.get());  // preempted, then failed with its engine
    r.suspended = false;
    if (r.cancel_requested && !res.ok) res.cancelled = true;
    {
      std::lock_guard lk(rec_mu);
      auto& sn = snap[i];
      (res.ok ? sn.calls_ok : sn.calls_failed)++;
    }
    if (!res.ok && !res.cancelled && retryable && r.rec.attempts < opt.max_attempts) {
      unhealthy_until[i] = now() + opt.unhealthy_s;
      if (log)
        log->warn("call_redispatched",
                  {{"call", static_cast<unsigned long long>(id)}, {"instance", cluster.instances[i].name},
                   {"error", res.error}});
      {
        std::lock_guard lk(rec_mu);
        st.redispatched++;
      }
      r.state = 0;
      offer({id});
      pump(i);
      return;
    }
    finalize(it, std::move(res));
    pump(i);
    offer_held();
  }

  void finalize(std::unordered_map<uint64_t, Rec>::iterator it, agents::LlmResult res) {
    auto& r = it->second;
    auto& c = *r.call;
    int i = r.rec.instance;
    res.call_id = c.id;
    res.queued_s = r.rec.dispatched_s;
    if (i >= 0) res.instance = cluster.instances[static_cast<size_t>(i)].name;
    if (res.started_s <= 0) res.started_s = r.rec.started_s;
    if (res.finished_s <= 0) res.finished_s = now();
    CallRecord rec = r.rec;
    rec.ok = res.ok;
    rec.cancelled = res.cancelled;
    rec.error = res.error;
    rec.started_s = r.state == 2 || res.ok ? res.started_s : res.finished_s;
    rec.finished_s = res.finished_s;
    rec.prompt_tokens = res.prompt_tokens > 0 ? res.prompt_tokens : c.prompt_tokens;
    rec.output_tokens = res.output_tokens;
    rec.cached_tokens = std::max(res.cached_tokens, rec.cached_tokens);
    if (res.ok && i >= 0) {
      const auto& cm = *costs[static_cast<size_t>(i)];
      rec.predicted_service_s = cm.standalone_s(rec.prompt_tokens, rec.output_tokens, rec.cached_tokens);
      // Responder instances run the modelled time divided by their speed-up.
      if (exec[static_cast<size_t>(i)]->kind() == "responder") rec.predicted_service_s /= opt.responder_speed;
      rec.measured_service_s = rec.finished_s - rec.started_s;
    }
    // Failed and cancelled calls too (the result says which), held ones to the dispatcher only: as in simulation.
    core->call_finished(r.state == 0 ? -1 : i, c, res, now());
    {
      std::lock_guard lk(rec_mu);
      live_calls.erase(c.id);
      if (res.ok) {
        st.calls_ok++;
        st.llm_busy_s += rec.measured_service_s;
        if (rec.measured_service_s > 1e-4) {
          double m = rec.measured_service_s;
          sum_service_err += std::abs(rec.predicted_service_s - m) / m;
          sum_service_bias += (rec.predicted_service_s - m) / m;
          double meas_c = rec.finished_s - rec.dispatched_s;
          if (meas_c > 1e-4) sum_completion_err += std::abs((rec.est_completion_s - rec.dispatched_s) - meas_c) / meas_c;
          n_pred++;
        }
      } else if (res.cancelled) {
        st.calls_cancelled++;
      } else {
        st.calls_failed++;
      }
      if (opt.metrics && i >= 0 && res.ok) {
        opt.metrics->observe("t2s_llm_call_seconds", {{"instance", res.instance}}, rec.measured_service_s);
        opt.metrics->observe("t2s_llm_queue_seconds", {{"instance", res.instance}},
                             rec.started_s - rec.dispatched_s);
      }
      done_calls.push_back(rec);
      while (done_calls.size() > opt.max_records) done_calls.pop_front();
    }
    auto cb = std::move(r.cb);
    calls.erase(it);
    if (cb) cb(res);
  }

  // Executor sample (on the loop): the online cost model.
  void on_sample(size_t i, const scheduler::IterationShape& shape, double seconds) {
    if (opt.on_iteration) opt.on_iteration(i, shape, seconds, now());
    auto& q = samples[i];
    q.push_back({shape, seconds});
    while (q.size() > opt.refit_window) q.pop_front();
    core->driver_state(i).iterations++;
    core->driver_state(i).busy_s += seconds;
    core->iteration(i, shape, seconds, now());
    if (++new_samples[i] < opt.refit_every) return;
    new_samples[i] = 0;
    std::vector<scheduler::IterationSample> v(q.begin(), q.end());
    // The simulator's replay of a recorded run fits the same way (engine samples price prefill attention as context).
    auto fit = scheduler::fit_instance_iterations(v);
    if (fit.ok()) {
      costs[i]->set_fitted(*fit);
      std::lock_guard lk(rec_mu);
      st.refits++;
    }
  }

  void publish(size_t i) {
    const auto& s = core->instances()[i];
    std::lock_guard lk(rec_mu);
    auto& sn = snap[i];
    sn.waiting = s.waiting.size();
    sn.running = s.running.size();
    sn.kv_used = s.kv_blocks_used;
    sn.kv_total = s.kv_blocks_total;
    sn.healthy = healthy(i, now());
    sn.fitted = costs[i]->fitted();
    double t = now();
    if (depth.empty() || depth.back().instance != static_cast<int>(i) ||
        depth.back().waiting != static_cast<int>(sn.waiting) || depth.back().running != static_cast<int>(sn.running))
      depth.push_back({t, static_cast<int>(i), static_cast<int>(sn.waiting), static_cast<int>(sn.running)});
    while (depth.size() > opt.max_records) depth.pop_front();
  }

  // ------------------------------------------------------------------ SQLite pool
  void sql_worker() {
    for (;;) {
      std::function<void()> task;
      {
        std::unique_lock lk(sql_mu);
        sql_cv.wait(lk, [&] { return sql_stopping || !sql_tasks.empty(); });
        if (sql_tasks.empty()) return;
        task = std::move(sql_tasks.front());
        sql_tasks.pop_front();
      }
      task();
    }
  }
};

Runtime::Runtime(scheduler::ClusterSpec cluster, scheduler::Policy policy, RuntimeOptions options,
                 std::shared_ptr<agents::Responder> responder, Logger* log)
    : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  m.self = this;
  m.cluster = std::move(cluster);
  m.policy = std::move(policy);
  m.opt = options;
  m.responder = std::move(responder);
  m.log = log;
  size_t n = m.cluster.instances.size();
  if (n == 0) throw InputError("cluster '" + m.cluster.name + "' has no instances");
  if (!m.policy.dispatcher || m.policy.local.size() != n)
    throw InputError("policy '" + m.policy.name + "' does not match the cluster's " + std::to_string(n) + " instances");
  m.core = std::make_unique<scheduler::ClusterCore>(m.cluster, m.policy);
  m.unhealthy_until.assign(n, 0);
  m.chunk_cap.assign(n, 0);
  m.kv_victims.assign(n, {});
  m.samples.resize(n);
  m.new_samples.assign(n, 0);
  m.snap.resize(n);
  for (size_t i = 0; i < n; ++i) {
    const auto& spec = m.cluster.instances[i];
    auto cm = std::make_unique<scheduler::CostModel>(spec);
    if (spec.gpu.name.empty() || spec.model.name.empty()) cm->set_fitted(prior_model(spec.backend));
    if (auto it = m.opt.initial_samples.find(spec.name); it != m.opt.initial_samples.end() && !it->second.empty()) {
      const auto& v = it->second;
      const size_t keep = std::min(v.size(), m.opt.refit_window);
      m.samples[i].assign(v.end() - static_cast<std::ptrdiff_t>(keep), v.end());
      const std::vector<scheduler::IterationSample> seed(m.samples[i].begin(), m.samples[i].end());
      auto fit = scheduler::fit_instance_iterations(seed);
      if (!fit.ok())
        throw InputError("instance '" + spec.name + "': its initial iterations do not fit a cost model (" +
                         fit.error().message() + ")");
      cm->set_fitted(*fit);
    }
    m.costs.push_back(std::move(cm));
  }
  auto clock = [&m] { return m.now(); };
  for (size_t i = 0; i < n; ++i) {
    const auto& spec = m.cluster.instances[i];
    ExecutorSink sink;
    sink.done = [&m](uint64_t id, agents::LlmResult r, bool retryable) {
      m.post([&m, id, r = std::move(r), retryable]() mutable { m.on_done(id, std::move(r), retryable); });
    };
    sink.sample = [&m, i](const scheduler::IterationShape& s, double sec) {
      m.post([&m, i, s, sec] { m.on_sample(i, s, sec); });
    };
    sink.progress = [&m, i](std::vector<CallProgress> p) {
      m.post([&m, i, p = std::move(p)] { m.on_progress(i, p); });
    };
    sink.preempted = [&m, i](uint64_t id, bool named) { m.post([&m, i, id, named] { m.on_preempted(i, id, named); }); };
    std::unique_ptr<InstanceExecutor> ex;
    switch (spec.backend) {
      case scheduler::Backend::engine:
        ex = make_engine_executor(spec, m.opt.engine_tokenizer, m.opt.engine_kv_mb, m.opt.engine_max_batch_tokens,
                                  sink, clock, log,
                                  m.opt.wrap_engine_backend
                                      ? BackendWrapper([&m, i](std::unique_ptr<engine::Backend> b) {
                                          return m.opt.wrap_engine_backend(i, std::move(b));
                                        })
                                      : BackendWrapper());
        break;
      case scheduler::Backend::remote:
        ex = make_remote_executor(spec, m.opt.remote_concurrency, m.opt.remote_call_timeout_s,
                                  m.opt.remote_idle_timeout_s, sink, clock, log);
        break;
      case scheduler::Backend::sim:
        if (!m.responder)
          throw InputError("instance '" + spec.name +
                           "' is simulated: the runtime needs a responder (oracle) to answer its calls");
        ex = make_responder_executor(spec, *m.costs[i], m.opt.responder_speed, sink, clock);
        break;
    }
    m.snap[i].name = spec.name;
    m.snap[i].kind = ex->kind();
    m.snap[i].capacity = ex->capacity();
    m.snap[i].kv_total = ex->kv_blocks();
    m.exec.push_back(std::move(ex));
  }
  std::vector<const scheduler::CostModel*> seen;
  std::vector<int> kv;
  for (size_t i = 0; i < n; ++i) {
    seen.push_back(m.costs[i].get());
    kv.push_back(m.exec[i]->kv_blocks());
  }
  m.core->reset(seen, kv);  // the policy too
  m.loop_thread = std::thread([&m] { m.loop(); });
  for (int k = 0; k < std::max(1, m.opt.sql_threads); ++k) m.sql_threads.emplace_back([&m] { m.sql_worker(); });
}

Runtime::~Runtime() { stop(); }

void Runtime::stop() {
  auto& m = *impl_;
  if (m.stopped.exchange(true)) return;
  for (auto& e : m.exec) e->stop();  // their last completions are posted to the loop
  {
    std::lock_guard lk(m.sql_mu);
    m.sql_stopping = true;
  }
  m.sql_cv.notify_all();
  for (auto& t : m.sql_threads) t.join();
  // Let the loop drain what the executors posted, then end it.
  std::promise<void> drained;
  auto f = drained.get_future();
  m.post([&drained] { drained.set_value(); });
  f.wait_for(std::chrono::seconds(5));
  {
    std::lock_guard lk(m.qmu);
    m.stopping = true;
    m.timers.clear();
  }
  m.qcv.notify_all();
  m.loop_thread.join();
}

double Runtime::now() const { return impl_->now(); }
agents::LlmClient& Runtime::llm() { return *impl_; }
uint64_t Runtime::next_call_id() { return ++impl_->next_call; }
double Runtime::reference_seconds(int p, int o) const { return impl_->costs[0]->standalone_s(p, o); }
void Runtime::post(std::function<void()> fn) { impl_->post(std::move(fn)); }
void Runtime::post_at(double t, std::function<void()> fn) { impl_->post_at(t, std::move(fn)); }

uint64_t Runtime::at(double t_s, std::function<void()> fn) {
  auto& m = *impl_;
  const uint64_t id = ++m.last_timer;
  m.live_timers.insert(id);
  m.post_at(t_s, [&m, id, fn = std::move(fn)] {
    if (m.live_timers.erase(id)) fn();
  });
  return id;
}

void Runtime::cancel_at(uint64_t timer) { impl_->live_timers.erase(timer); }
bool Runtime::on_loop() const { return impl_->on_loop(); }
const scheduler::ClusterSpec& Runtime::cluster() const { return impl_->cluster; }
const std::string& Runtime::policy_name() const { return impl_->policy.name; }

void Runtime::run_tool(uint64_t workflow_id, agents::StageKind kind, std::function<void()> work,
                       std::function<void(double)> done) {
  auto& m = *impl_;
  auto task = [&m, workflow_id, kind, work = std::move(work), done = std::move(done)]() mutable {
    double t0 = m.now();
    std::string err;
    try {
      work();
    } catch (const std::exception& e) {
      err = e.what();  // the workflow's own work reports its errors; this only keeps the pool alive
    }
    double t1 = m.now();
    {
      std::lock_guard lk(m.rec_mu);
      m.st.tool_runs++;
      m.st.tool_busy_s += t1 - t0;
      m.spans.push_back({workflow_id, 0, kind, t0, t1, err, true});
      while (m.spans.size() > m.opt.max_records) m.spans.pop_front();
      if (m.opt.metrics) m.opt.metrics->observe("t2s_sql_seconds", {}, t1 - t0);
    }
    m.post([done = std::move(done), d = t1 - t0] { done(d); });
  };
  m.push_sql(std::move(task));
}

void Runtime::run_measurement(std::function<void()> work, std::function<void()> done) {
  auto& m = *impl_;
  auto task = [&m, work = std::move(work), done = std::move(done)]() mutable {
    try {
      work();
    } catch (const std::exception& e) {
      if (m.log) m.log->warn("measurement_failed", {{"error", e.what()}});
    }
    m.post(std::move(done));
  };
  m.push_sql(std::move(task));
}

void Runtime::record_workflow(uint64_t id, const std::string& label, double arrival_s, double deadline_s,
                              double finished_s, bool ok) {
  if (finished_s >= 0) {
    // Policies that keep per-workflow state (PLAS's attained service, t2s's homes) drop it here, as in simulation.
    impl_->on_loop_or_post([this, id, arrival_s, deadline_s, finished_s, ok] {
      impl_->core->workflow_finished(id, finished_s - arrival_s, ok && finished_s <= deadline_s, impl_->now());
    });
  }
  std::lock_guard lk(impl_->rec_mu);
  auto& w = impl_->workflows[id];
  w.id = id;
  if (!label.empty()) w.label = label;
  w.arrival_s = arrival_s;
  w.deadline_s = deadline_s;
  w.finished_s = finished_s;
  w.ok = ok;
  while (impl_->workflows.size() > impl_->opt.max_records) impl_->workflows.erase(impl_->workflows.begin());
}

void Runtime::record_stage(const agents::StageEvent& e) {
  auto& m = *impl_;
  if (e.done) m.on_loop_or_post([&m, e] { m.core->stage_finished(e, m.now()); });
  std::lock_guard lk(m.rec_mu);
  auto key = std::make_pair(e.workflow_id, e.stage_index);
  if (!e.done) {
    m.open_stages[key] = {e.workflow_id, e.stage_index, e.kind, e.t_s, -1, e.detail, false};
    return;
  }
  SpanRecord s{e.workflow_id, e.stage_index, e.kind, e.t_s - e.elapsed_s, e.t_s, e.detail, false};
  m.open_stages.erase(key);
  m.spans.push_back(s);
  while (m.spans.size() > m.opt.max_records) m.spans.pop_front();
}

std::vector<CallRecord> Runtime::calls() const {
  std::lock_guard lk(impl_->rec_mu);
  return {impl_->done_calls.begin(), impl_->done_calls.end()};
}

RuntimeStats Runtime::stats() const {
  std::lock_guard lk(impl_->rec_mu);
  return impl_->st;
}

PredictionReport Runtime::prediction_report() const {
  std::lock_guard lk(impl_->rec_mu);
  PredictionReport r;
  r.calls = impl_->n_pred;
  if (r.calls) {
    double n = static_cast<double>(r.calls);
    r.service_mean_abs_rel = impl_->sum_service_err / n;
    r.service_bias_rel = impl_->sum_service_bias / n;
    r.completion_mean_abs_rel = impl_->sum_completion_err / n;
  }
  return r;
}

namespace {
// The instance list of the status frame and the timeline.
void write_instances(JsonWriter& w, const std::vector<InstanceSnapshot>& snap) {
  w.StartArray();
  for (const auto& s : snap) {
    w.StartObject();
    w.Key("name");
    write_json_string(w, s.name);
    w.Key("kind");
    write_json_string(w, s.kind);
    w.Key("waiting");
    w.Uint64(s.waiting);
    w.Key("running");
    w.Uint64(s.running);
    w.Key("capacity");
    w.Int(s.capacity);
    w.Key("kv_used");
    w.Int(s.kv_used);
    w.Key("kv_total");
    w.Int(s.kv_total);
    w.Key("healthy");
    w.Bool(s.healthy);
    w.Key("cost_model");
    w.String(s.fitted ? "fitted" : "physical");
    w.EndObject();
  }
  w.EndArray();
}
}  // namespace

std::string Runtime::status_json() const {
  auto& m = *impl_;
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  std::lock_guard lk(m.rec_mu);
  w.StartObject();
  w.Key("policy");
  write_json_string(w, m.policy.name);
  w.Key("now_s");
  w.Double(m.now());
  w.Key("instances");
  write_instances(w, m.snap);
  w.EndObject();
  return sb.GetString();
}

void Runtime::export_metrics(MetricsRegistry& reg) const {
  auto& m = *impl_;
  std::lock_guard lk(m.rec_mu);
  for (const auto& s : m.snap) {
    Labels l{{"instance", s.name}};
    reg.set("t2s_instance_queue_depth", l, static_cast<double>(s.waiting));
    reg.set("t2s_instance_running_calls", l, static_cast<double>(s.running));
    reg.set("t2s_instance_kv_used_ratio", l, s.kv_total > 0 ? static_cast<double>(s.kv_used) / s.kv_total : 0);
    reg.set("t2s_instance_healthy", l, s.healthy ? 1 : 0);
    reg.set_counter("t2s_llm_calls_total", {{"instance", s.name}, {"outcome", "ok"}},
                    static_cast<double>(s.calls_ok));
    reg.set_counter("t2s_llm_calls_total", {{"instance", s.name}, {"outcome", "failed"}},
                    static_cast<double>(s.calls_failed));
  }
  reg.set_counter("t2s_llm_calls_redispatched_total", {}, static_cast<double>(m.st.redispatched));
  reg.set_counter("t2s_kv_preemptions_total", {{"victim", "policy"}},
                  static_cast<double>(m.st.kv_preemptions - m.st.kv_preemptions_unnamed));
  reg.set_counter("t2s_kv_preemptions_total", {{"victim", "newest_fallback"}},
                  static_cast<double>(m.st.kv_preemptions_unnamed));
  reg.set_counter("t2s_sql_executions_total", {}, static_cast<double>(m.st.tool_runs));
  reg.set_counter("t2s_cost_model_refits_total", {}, static_cast<double>(m.st.refits));
  if (m.n_pred) {
    reg.set("t2s_cost_model_service_error_ratio", {}, m.sum_service_err / static_cast<double>(m.n_pred));
  }
}

namespace {
void write_call(JsonWriter& w, const CallRecord& c, bool live) {
  w.StartObject();
  w.Key("id");
  w.Uint64(c.call_id);
  w.Key("wf");
  w.Uint64(c.workflow_id);
  w.Key("stage");
  write_json_string(w, agents::stage_kind_name(c.kind));
  w.Key("si");
  w.Uint(c.stage_index);
  w.Key("inst");
  w.Int(c.instance);
  w.Key("q");
  json::write_number(w, c.dispatched_s);
  w.Key("s");
  json::write_number(w, c.started_s);
  w.Key("e");
  json::write_number(w, live ? -1.0 : c.finished_s);
  w.Key("p");
  w.Int(c.prompt_tokens);
  w.Key("o");
  w.Int(c.output_tokens);
  w.Key("c");
  w.Int(c.cached_tokens);
  w.Key("ok");
  w.Bool(c.ok);
  if (!c.error.empty()) {
    w.Key("err");
    write_json_string(w, c.error);
  }
  w.Key("att");
  w.Int(c.attempts);
  w.Key("dl");
  json::write_number(w, c.deadline_s);
  w.Key("est");
  json::write_number(w, c.est_completion_s);
  w.Key("slack");
  json::write_number(w, c.slack_s);
  w.Key("alt");
  w.StartArray();
  for (double a : c.alt_completion_s) json::write_number(w, a);
  w.EndArray();
  w.Key("pred");
  json::write_number(w, c.predicted_service_s);
  w.Key("meas");
  json::write_number(w, c.measured_service_s);
  w.EndObject();
}
}  // namespace

std::string Runtime::timeline_json(double since_s) const {
  auto& m = *impl_;
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  std::lock_guard lk(m.rec_mu);
  w.StartObject();
  w.Key("now");
  w.Double(m.now());
  w.Key("policy");
  write_json_string(w, m.policy.name);
  w.Key("instances");
  write_instances(w, m.snap);
  w.Key("calls");
  w.StartArray();
  for (const auto& c : m.done_calls)
    if (c.finished_s >= since_s) write_call(w, c, false);
  for (const auto& [id, c] : m.live_calls) write_call(w, c, true);
  w.EndArray();
  w.Key("stages");
  w.StartArray();
  auto stage = [&](const SpanRecord& s, bool open) {
    w.StartObject();
    w.Key("wf");
    w.Uint64(s.workflow_id);
    w.Key("si");
    w.Uint(s.stage_index);
    w.Key("stage");
    write_json_string(w, agents::stage_kind_name(s.kind));
    w.Key("s");
    json::write_number(w, s.start_s);
    w.Key("e");
    json::write_number(w, open ? -1.0 : s.end_s);
    if (!s.detail.empty()) {
      w.Key("detail");
      write_json_string(w, s.detail);
    }
    w.EndObject();
  };
  for (const auto& s : m.spans)
    if (!s.tool && s.end_s >= since_s) stage(s, false);
  for (const auto& [k, s] : m.open_stages) stage(s, true);
  w.EndArray();
  w.Key("workflows");
  w.StartArray();
  for (const auto& [id, wf] : m.workflows) {
    if (wf.finished_s >= 0 && wf.finished_s < since_s) continue;
    w.StartObject();
    w.Key("id");
    w.Uint64(id);
    w.Key("label");
    write_json_string(w, wf.label);
    w.Key("arrival");
    json::write_number(w, wf.arrival_s);
    w.Key("deadline");
    json::write_number(w, wf.deadline_s);
    w.Key("end");
    json::write_number(w, wf.finished_s);
    w.Key("ok");
    w.Bool(wf.ok);
    w.EndObject();
  }
  w.EndArray();
  w.Key("depth");
  w.StartArray();
  for (const auto& d : m.depth) {
    if (d.t_s < since_s) continue;
    w.StartArray();
    json::write_number(w, d.t_s);
    w.Int(d.instance);
    w.Int(d.waiting);
    w.Int(d.running);
    w.EndArray();
  }
  w.EndArray();
  w.EndObject();
  return sb.GetString();
}

std::string Runtime::trace_json() const {
  auto& m = *impl_;
  TraceWriter tw;
  std::lock_guard lk(m.rec_mu);
  const int n = static_cast<int>(m.snap.size());
  const int sqlite_pid = n + 1, wf_pid = n + 2;
  for (int i = 0; i < n; ++i) {
    tw.process_name(i + 1, m.snap[static_cast<size_t>(i)].name + " (" + m.snap[static_cast<size_t>(i)].kind + ")");
    tw.thread_name(i + 1, 0, "queue");
  }
  tw.process_name(sqlite_pid, "sqlite");
  tw.process_name(wf_pid, "workflows");
  // Lay each instance's calls on batch-slot tracks: a call takes the lowest slot free at its start.
  std::vector<const CallRecord*> cs;
  for (const auto& c : m.done_calls) cs.push_back(&c);
  std::sort(cs.begin(), cs.end(), [](auto* a, auto* b) { return a->started_s < b->started_s; });
  std::vector<std::vector<double>> slot_free(static_cast<size_t>(n));
  for (const auto* c : cs) {
    if (c->instance < 0) continue;
    auto& slots = slot_free[static_cast<size_t>(c->instance)];
    size_t slot = 0;
    while (slot < slots.size() && slots[slot] > c->started_s + 1e-9) ++slot;
    if (slot == slots.size()) {
      slots.push_back(0);
      tw.thread_name(c->instance + 1, static_cast<int>(slot) + 1, "slot " + std::to_string(slot));
    }
    slots[slot] = c->finished_s;
    std::string stage(agents::stage_kind_name(c->kind));
    std::vector<TraceArg> args = {{"workflow", static_cast<int64_t>(c->workflow_id)},
                                  {"stage", stage},
                                  {"prompt_tokens", c->prompt_tokens},
                                  {"output_tokens", c->output_tokens},
                                  {"cached_tokens", c->cached_tokens},
                                  {"deadline_s", c->deadline_s},
                                  {"slack_s", c->slack_s},
                                  {"estimated_completion_s", c->est_completion_s},
                                  {"predicted_service_s", c->predicted_service_s},
                                  {"measured_service_s", c->measured_service_s}};
    for (size_t j = 0; j < c->alt_completion_s.size() && j < m.cluster.instances.size(); ++j)
      args.emplace_back("est_" + m.cluster.instances[j].name + "_s", c->alt_completion_s[j]);
    if (!c->ok) args.emplace_back("error", c->error);
    {
      std::vector<TraceArg> d = {{"workflow", static_cast<int64_t>(c->workflow_id)},
                                 {"stage", stage},
                                 {"stage_index", static_cast<int>(c->stage_index)},
                                 {"call", static_cast<int64_t>(c->call_id)},
                                 {"instance", m.cluster.instances[static_cast<size_t>(c->instance)].name},
                                 {"estimate_s", c->est_completion_s},
                                 {"slack_s", c->slack_s}};
      for (size_t j = 0; j < c->alt_completion_s.size() && j < m.cluster.instances.size(); ++j)
        d.emplace_back("est_" + m.cluster.instances[j].name + "_s", c->alt_completion_s[j]);
      tw.instant(c->instance + 1, 0, "dispatch " + stage, "dispatch", c->dispatched_s, std::move(d));
    }
    tw.complete(c->instance + 1, static_cast<int>(slot) + 1, stage, c->ok ? "llm" : "llm_failed", c->started_s,
                std::max(0.0, c->finished_s - c->started_s), std::move(args));
    if (c->started_s > c->dispatched_s)
      tw.complete(c->instance + 1, 0, "wait " + stage, "queue", c->dispatched_s, c->started_s - c->dispatched_s,
                  {{"workflow", static_cast<int64_t>(c->workflow_id)}});
  }
  for (const auto& s : m.spans) {
    std::string name(agents::stage_kind_name(s.kind));
    if (s.tool)
      tw.complete(sqlite_pid, static_cast<int>(s.workflow_id % 16), name, "sqlite", s.start_s, s.end_s - s.start_s,
                  {{"workflow", static_cast<int64_t>(s.workflow_id)}});
    else
      tw.complete(wf_pid, static_cast<int>(s.workflow_id), name, "stage", s.start_s, s.end_s - s.start_s,
                  {{"workflow", static_cast<int64_t>(s.workflow_id)}, {"stage_index", static_cast<int>(s.stage_index)}});
  }
  for (const auto& [id, wf] : m.workflows) {
    int tid = static_cast<int>(id);
    tw.thread_name(wf_pid, tid, "workflow " + std::to_string(id) + (wf.label.empty() ? "" : " " + wf.label));
    if (wf.finished_s >= 0)
      tw.complete(wf_pid, tid, "workflow", "workflow", wf.arrival_s, wf.finished_s - wf.arrival_s,
                  {{"workflow", static_cast<int64_t>(id)}, {"deadline_s", wf.deadline_s}, {"ok", wf.ok ? 1 : 0}});
    if (wf.deadline_s < 1e17) tw.instant(wf_pid, tid, "deadline", "deadline", wf.deadline_s);
  }
  for (const auto& d : m.depth)
    tw.counter(d.instance + 1, "queue depth", d.t_s, "waiting", static_cast<double>(d.waiting));
  return tw.to_json();
}

// ------------------------------------------------------------------ replay
namespace {
// Stage events reach the runtime (timeline and trace spans, the policy's stage_finished), then the caller's observer.
class StageRelay final : public agents::WorkflowObserver {
 public:
  StageRelay(Runtime& rt, agents::WorkflowObserver* next) : rt_(rt), next_(next) {}
  void on_stage(const agents::StageEvent& e) override {
    rt_.record_stage(e);
    if (next_) next_->on_stage(e);
  }

 private:
  Runtime& rt_;
  agents::WorkflowObserver* next_;
};
}  // namespace

RealtimeReplay replay_realtime(Runtime& rt, const workloads::Workload& workload,
                               const std::vector<workloads::Arrival>& arrivals, agents::WorkflowFactory& factory,
                               double time_limit_s, agents::WorkflowObserver* observer) {
  RealtimeReplay out;
  out.outcomes.resize(arrivals.size());
  for (const auto& a : arrivals)
    if (a.question_index >= workload.questions.size())
      throw InputError("arrival of workflow " + std::to_string(a.workflow_id) + " names question " +
                       std::to_string(a.question_index) + " of " + std::to_string(workload.questions.size()));
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    size_t done = 0;
    std::vector<std::unique_ptr<agents::Workflow>> handles;
    std::unique_ptr<agents::WorkflowObserver> relay;  // lives as long as the last arrival's closure
  };
  auto state = std::make_shared<State>();
  state->handles.resize(arrivals.size());
  state->relay = std::make_unique<StageRelay>(rt, observer);
  observer = state->relay.get();
  double start = rt.now() + 0.05;
  out.start_s = start;
  auto wall0 = Clock::now();
  for (size_t k = 0; k < arrivals.size(); ++k) {
    workloads::Arrival a = arrivals[k];
    a.arrival_s += start;
    if (a.deadline_s < 1e17) a.deadline_s += start;
    rt.post_at(a.arrival_s, [&rt, &workload, &factory, &out, state, observer, a, k] {
      const auto& q = workload.questions[a.question_index];
      rt.record_workflow(a.workflow_id, q.id, a.arrival_s, a.deadline_s, -1, false);
      auto done = [&rt, &out, state, k, a](const agents::WorkflowOutcome& o) {
        out.outcomes[k] = o;
        rt.record_workflow(a.workflow_id, "", a.arrival_s, a.deadline_s, o.finished_s, o.completed && !o.failed);
        std::lock_guard lk(state->mu);
        state->done++;
        state->cv.notify_all();
      };
      try {
        auto wf = factory.make(q, a, rt, done, observer);
        auto* raw = wf.get();
        state->handles[k] = std::move(wf);
        raw->start();
      } catch (const std::exception& e) {
        agents::WorkflowOutcome o;
        o.workflow_id = a.workflow_id;
        o.question_id = q.id;
        o.failed = true;
        o.error = e.what();
        o.arrival_s = a.arrival_s;
        o.finished_s = rt.now();
        o.deadline_s = a.deadline_s;
        done(o);
      }
    });
  }
  {
    std::unique_lock lk(state->mu);
    state->cv.wait_for(lk, std::chrono::duration<double>(time_limit_s),
                       [&] { return state->done == arrivals.size(); });
  }
  // Cancel what is left (time limit), then drop the handles on the loop where workflows live.
  std::promise<void> cleaned;
  rt.post([state, &cleaned] {
    for (auto& h : state->handles)
      if (h) h->cancel();
    cleaned.set_value();
  });
  cleaned.get_future().wait();
  {
    std::unique_lock lk(state->mu);
    state->cv.wait_for(lk, std::chrono::seconds(10), [&] { return state->done == arrivals.size(); });
  }
  std::promise<void> dropped;
  rt.post([state, &dropped] {
    state->handles.clear();
    dropped.set_value();
  });
  dropped.get_future().wait();
  out.wall_s = std::chrono::duration<double>(Clock::now() - wall0).count();
  out.prediction = rt.prediction_report();
  return out;
}

}  // namespace t2s::server
