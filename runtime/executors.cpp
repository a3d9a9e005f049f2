#include "runtime/executors.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdlib>
#include <deque>
#include <filesystem>
#include <map>
#include <mutex>
#include <optional>
#include <queue>
#include <set>
#include <thread>

#include "common/status.hpp"
#include "engine/backend.hpp"
#include "engine/batch_runner.hpp"
#include "engine/chat.hpp"
#include "engine/generate.hpp"
#include "server/openai_client.hpp"

namespace t2s::server {

namespace {

//! Stops an executor that runs one worker thread: raises `stopping` once under `mu`, wakes the worker, joins it.
void stop_single_worker(std::mutex& mu, std::condition_variable& cv, bool& stopping, std::thread& thread) {
  {
    std::lock_guard lk(mu);
    if (stopping) return;
    stopping = true;
  }
  cv.notify_one();
  if (thread.joinable()) thread.join();
}

// What an executor needs of a call after admission (the LlmCall itself stays with the runtime).
struct Job {
  uint64_t call_id = 0;
  std::string prompt;
  int max_tokens = 0;
  double temperature = 0;
  uint64_t seed = 0;
  std::vector<std::string> stop;
  int prompt_tokens_hint = 0;
  double admitted_s = 0;
  std::vector<int> tokens;  // engine instances: the prompt, tokenized on the submitting thread
  bool resume = false;      // engine instances: re-admits a call it preempted (its sequence is kept)
  std::shared_ptr<const SqlLiteralRules> literals;  // engine instances enforce them; remote servers cannot
};

}  // namespace

scheduler::IterationShape iteration_shape(const engine::StepReport& rep) {
  scheduler::IterationShape shape;
  for (const auto& c : rep.calls) {
    if (c.rows <= 0) continue;
    if (c.decode) {
      shape.decode_seqs += 1;
      shape.decode_context += c.first_pos + 1;  // the positions its one row attends to
    } else {
      shape.prefill_tokens += c.rows;
      shape.prefill_attn += c.rows * (c.first_pos + c.rows / 2.0);
    }
  }
  return shape;
}

namespace {

Job make_job(const agents::LlmCall& c, double now) {
  return {c.id, c.prompt, c.max_output_tokens, c.temperature, c.seed, c.stop, c.prompt_tokens, now, {}, false,
          c.literals};
}

agents::LlmResult cancelled_result(uint64_t id, double started, double now) {
  agents::LlmResult r;
  r.call_id = id;
  r.cancelled = true;
  r.error = "cancelled";
  r.started_s = started;
  r.finished_s = now;
  return r;
}

// ------------------------------------------------------------------------------------------------ engine
class EngineExecutorImpl final : public EngineExecutor {
 public:
  EngineExecutorImpl(const scheduler::InstanceSpec& spec, const std::string& tokenizer_path, double kv_mb,
                 int max_batch_tokens, ExecutorSink sink, ClockFn clock, Logger* log, const BackendWrapper& wrap)
      : spec_(spec), sink_(std::move(sink)), clock_(std::move(clock)), log_(log) {
    const std::string device = spec.device.empty() ? "cpu" : spec.device;  // specs built in code may leave it unset
    if (device != "cpu" && device != "cuda")
      throw InputError("instance '" + spec.name + "': device '" + device + "' (expected cpu or cuda)");
    std::string tok = tokenizer_path;
    // llama2.c checkpoints ship their tokenizer beside them: tokenizer.bin, or tok512.bin for stories260K.
    if (tok.empty() && spec.model_file.size() > 4 && spec.model_file.substr(spec.model_file.size() - 4) == ".bin")
      for (const char* name : {"tokenizer.bin", "tok512.bin"}) {
        auto beside = std::filesystem::path(spec.model_file).parent_path() / name;
        if (std::filesystem::exists(beside)) {
          tok = beside.string();
          break;
        }
      }
    lm_ = engine::load_model_and_tokenizer(spec.model_file, tok);
    engine::CpuBackendOptions bo;
    bo.threads = std::max(1, spec.threads);
    bo.max_batch_tokens = max_batch_tokens;
    bo.kv_budget_bytes = static_cast<size_t>(kv_mb * 1024 * 1024);
    engine::CudaBackendOptions co;
    co.max_batch_tokens = max_batch_tokens;
    co.max_logit_rows = std::min(spec.max_running, 64);
    co.kv_budget_bytes = bo.kv_budget_bytes;
    engine::BackendChoice chosen = engine::make_backend(device, lm_.model, bo, co);
    if (!chosen.fallback.empty() && log_)
      log_->warn("engine_backend_fallback", {{"instance", spec.name}, {"requested", device}, {"reason", chosen.fallback}});
    backend_ = wrap ? wrap(std::move(chosen.backend)) : std::move(chosen.backend);
    engine::RunnerOptions ro;
    ro.max_batch_tokens = max_batch_tokens;
    ro.max_sequences = std::min(spec.max_running, 64);
    runner_ = std::make_unique<engine::BatchRunner>(*backend_, *lm_.tokenizer, ro);
    capacity_ = ro.max_sequences;
    thread_ = std::thread([this] { loop(); });
  }
  ~EngineExecutorImpl() override { stop(); }

  void start(const agents::LlmCall& call, const agents::Response*, double now_s) override {
    if (sink_.preempted) {  // a call this executor preempted comes back: its sequence resumes
      std::lock_guard lk(mu_);
      if (suspended_.count(call.id)) {
        Job j;
        j.call_id = call.id;
        j.admitted_s = now_s;
        j.resume = true;
        inbox_.push_back(std::move(j));
        cv_.notify_one();
        return;
      }
    }
    Job j = make_job(call, now_s);
    // Tokenized on the caller's thread (engine-serve's HTTP handler, the runtime's loop), not the engine's: a long
    // prompt must not stall the batch every other call is decoding in.
    j.tokens = lm_.tokenizer->encode(j.prompt, true);
    std::lock_guard lk(mu_);
    inbox_.push_back(std::move(j));
    cv_.notify_one();
  }
  void cancel(uint64_t call_id) override {
    std::lock_guard lk(mu_);
    cancels_.insert(call_id);
    cv_.notify_one();
  }
  void set_prefill_chunk_cap(int tokens) override { chunk_cap_.store(std::max(0, tokens), std::memory_order_relaxed); }
  void set_kv_victims(std::vector<uint64_t> call_ids) override {
    std::lock_guard lk(mu_);
    kv_victims_ = std::move(call_ids);
  }
  int capacity() const override { return capacity_; }
  int kv_blocks() const override { return backend_->num_kv_blocks(); }
  int context_tokens() const override { return backend_->max_context(); }
  std::string chat_prompt(const std::vector<std::pair<std::string, std::string>>& messages) const override {
    std::vector<engine::ChatMessage> m;
    for (const auto& [role, content] : messages) m.push_back({role, content});
    return engine::apply_chat_template(engine::detect_chat_format(lm_.chat_template), m, true, lm_.chat_template);
  }
  int count_tokens(const std::string& text) const override {
    return static_cast<int>(lm_.tokenizer->encode(text, true).size());
  }
  std::string kind() const override { return "engine"; }
  void stop() override { stop_single_worker(mu_, cv_, stopping_, thread_); }

 private:
  struct Active {
    uint64_t call_id;
    double started_s;
  };

  // The progress of `ids` (those still active) for the runtime's instance state.
  void report_progress(const std::map<engine::SequenceId, Active>& active, const std::vector<engine::SequenceId>& ids) {
    if (!sink_.progress || ids.empty()) return;
    std::vector<CallProgress> out;
    out.reserve(ids.size());
    for (auto sid : ids) {
      auto it = active.find(sid);
      if (it == active.end()) continue;
      const auto n = runner_->counts(sid);
      out.push_back({it->second.call_id, n.prompt_tokens, std::min(n.computed_tokens, n.prompt_tokens),
                     n.generated_tokens});
    }
    if (!out.empty()) sink_.progress(std::move(out));
  }

  // `error` set: the call is cancelled in the runner (its KV freed) and reported failed with that reason.
  void report_finished(engine::SequenceId sid, const Active& a, const std::string& error = {}, bool retryable = false) {
    if (!error.empty()) runner_->cancel(sid);
    auto info = runner_->info(sid);
    agents::LlmResult r;
    r.call_id = a.call_id;
    r.ok = error.empty() && info.state == engine::SequenceState::Finished;
    r.cancelled = error.empty() && info.state == engine::SequenceState::Cancelled;
    r.text = info.text;
    r.prompt_tokens = info.prompt_tokens;
    r.cached_tokens = info.cached_prompt_tokens;
    r.output_tokens = info.generated_tokens;
    r.instance = spec_.name;
    r.started_s = a.started_s;
    r.finished_s = clock_();
    if (r.cancelled) r.error = "cancelled";
    if (!error.empty()) r.error = error;
    runner_->release(sid);
    sink_.done(a.call_id, std::move(r), retryable);
  }

  void loop() {
    std::map<engine::SequenceId, Active> active;  // admitted: running, or preempted
    std::deque<Job> jobs;  // waiting for a sequence slot
    std::deque<uint64_t> resumes;  // preempted calls the caller admitted again, in its order
    std::set<uint64_t> cancels;
    const bool caller_resumes = static_cast<bool>(sink_.preempted);
    for (;;) {
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] {
          return stopping_ || !inbox_.empty() || !cancels_.empty() || active.size() > suspended_.size() ||
                 !jobs.empty() || !resumes.empty();
        });
        if (stopping_) break;
        for (auto& j : inbox_) {
          if (j.resume)
            resumes.push_back(j.call_id);
          else
            jobs.push_back(std::move(j));
        }
        inbox_.clear();
        cancels.swap(cancels_);
        cancels_.clear();
      }
      // Preempted calls the caller admitted again, in its order: each resumes (recomputing its prompt and output so
      // far, its generated tokens kept) once the pool holds what it had, or at once when nothing else runs.
      while (!resumes.empty()) {
        auto s = suspended_.find(resumes.front());
        if (s == suspended_.end()) {  // cancelled meanwhile
          resumes.pop_front();
          continue;
        }
        const auto n = runner_->counts(s->second);
        if (runner_->has_work() &&
            runner_->available_blocks() < engine::BatchRunner::blocks_for(n.prompt_tokens + n.generated_tokens + 1))
          break;
        if (!runner_->resume(s->second)) break;
        {
          std::lock_guard lk(mu_);
          suspended_.erase(s);
        }
        resumes.pop_front();
      }
      // Calls cancelled before admission end here.
      for (auto it = jobs.begin(); it != jobs.end() && !cancels.empty();) {
        if (cancels.erase(it->call_id)) {
          sink_.done(it->call_id, cancelled_result(it->call_id, it->admitted_s, clock_()), false);
          it = jobs.erase(it);
        } else {
          ++it;
        }
      }
      // Preempted sequences hold no KV and no batch row; while they wait for the caller they take no slot.
      while (!jobs.empty() && static_cast<int>(active.size() - suspended_.size()) < capacity_) {
        Job j = std::move(jobs.front());
        jobs.pop_front();
        auto tokens = std::move(j.tokens);
        engine::GenerationParams gp;
        gp.max_tokens = std::max(1, j.max_tokens);
        gp.sampling.temperature = static_cast<float>(j.temperature);
        gp.seed = j.seed;
        gp.stop = j.stop;
        gp.literals = j.literals;
        auto id = runner_->admit(std::move(tokens), gp);
        if (!id.ok()) {
          agents::LlmResult r;
          r.call_id = j.call_id;
          r.error = "engine refused the call: " + id.error().message();
          r.instance = spec_.name;
          r.started_s = r.finished_s = clock_();
          sink_.done(j.call_id, std::move(r), false);
          continue;
        }
        active[*id] = {j.call_id, clock_()};
      }
      for (auto it = active.begin(); it != active.end() && !cancels.empty();) {
        if (cancels.erase(it->second.call_id)) {
          if (suspended_.count(it->second.call_id)) {
            std::lock_guard lk(mu_);
            suspended_.erase(it->second.call_id);
          }
          runner_->cancel(it->first);
          report_finished(it->first, it->second);
          it = active.erase(it);
        } else {
          ++it;
        }
      }
      cancels.clear();  // calls already finished: their results went out
      if (active.size() == suspended_.size()) continue;
      if (!caller_resumes && !runner_->has_work()) {
        auto pre = runner_->preempted();
        if (!pre.empty()) runner_->resume(pre.front());
      }
      engine::StepReport rep;
      try {
        rep = runner_->step(engine::StepLimits{chunk_cap_.load(std::memory_order_relaxed)});
      } catch (const std::exception& e) {
        // A backend that throws (device error, bad_alloc) fails the batch it was running, not the process: those
        // calls end retryable (the runtime tries another instance), their KV is freed, and this thread goes on.
        if (log_) log_->error("engine_step_failed", {{"instance", spec_.name}, {"error", e.what()}});
        for (auto& [sid, a] : active) report_finished(sid, a, std::string("engine backend failed: ") + e.what(), true);
        active.clear();
        {
          std::lock_guard lk(mu_);
          suspended_.clear();
        }
        continue;
      }
      const scheduler::IterationShape shape = iteration_shape(rep);
      if (rep.sequences > 0) sink_.sample(shape, rep.seconds);
      if (sink_.progress) {
        std::vector<engine::SequenceId> ran;
        for (const auto& c : rep.calls) ran.push_back(c.id);
        report_progress(active, ran);
      }
      for (const auto& ev : rep.events) {
        if (!ev.text.empty() && sink_.token)
          if (auto a = active.find(ev.id); a != active.end()) sink_.token(a->second.call_id, ev.text);
        if (!ev.finished) continue;
        auto it = active.find(ev.id);
        if (it == active.end()) continue;
        report_finished(ev.id, it->second);
        active.erase(it);
      }
      // KV pressure: when every running call stalled, the local policy's victim gives its blocks back (recomputed
      // later; the newest when the runtime named none running, vLLM's rule). A call that stalls alone (the others
      // preempted hold no blocks) has outgrown the whole pool and can never go on.
      if (!rep.stalled.empty() && rep.sequences == 0) {
        auto running = runner_->running();
        if (running.size() > 1) {
          // The first call in the local policy's order that runs here (the caller's order may name calls that
          // are still on their way in, or already gone).
          std::optional<engine::SequenceId> victim;
          {
            std::lock_guard lk(mu_);
            for (uint64_t id : kv_victims_) {
              for (auto sid : running)
                if (auto a = active.find(sid); a != active.end() && a->second.call_id == id) victim = sid;
              if (victim) break;
            }
          }
          const bool named = victim.has_value();
          if (!victim) victim = running.back();  // no order (engine-serve), or none of it runs: the newest
          runner_->preempt(*victim);
          report_progress(active, {*victim});
          if (caller_resumes) {  // the caller re-admits it in its local policy's order, as the simulator does
            const uint64_t id = active.at(*victim).call_id;
            {
              std::lock_guard lk(mu_);
              suspended_[id] = *victim;
            }
            sink_.preempted(id, named);
          }
        } else if (running.size() == 1) {
          if (auto it = active.find(running.front()); it != active.end()) {
            auto info = runner_->info(running.front());
            report_finished(it->first, it->second,
                            "KV cache exhausted: the call needs more than the pool's " +
                                std::to_string(backend_->num_kv_blocks()) + " blocks of " +
                                std::to_string(engine::kKvBlockSize) + " tokens (prompt " +
                                std::to_string(info.prompt_tokens) + " + " + std::to_string(info.generated_tokens) +
                                " generated)");
            active.erase(it);
          }
        }
      }
      if (!caller_resumes) {
        auto pre = runner_->preempted();
        if (!pre.empty() && runner_->available_blocks() > engine::BatchRunner::blocks_for(64))
          runner_->resume(pre.front());
      }
    }
    // Stopping: everything still admitted ends cancelled.
    for (auto& [sid, a] : active) {
      runner_->cancel(sid);
      report_finished(sid, a);
    }
    for (auto& j : jobs) sink_.done(j.call_id, cancelled_result(j.call_id, j.admitted_s, clock_()), false);
    std::lock_guard lk(mu_);
    for (auto& j : inbox_) sink_.done(j.call_id, cancelled_result(j.call_id, j.admitted_s, clock_()), false);
    inbox_.clear();
  }

  scheduler::InstanceSpec spec_;
  ExecutorSink sink_;
  ClockFn clock_;
  Logger* log_;
  engine::LoadedModel lm_;
  std::unique_ptr<engine::Backend> backend_;
  std::unique_ptr<engine::BatchRunner> runner_;
  int capacity_ = 1;
  std::atomic<int> chunk_cap_{0};  // the runtime's local policy sets it from the loop thread
  std::vector<uint64_t> kv_victims_;  // the local policy's KV victim order, call ids (guarded by mu_)
  // Preempted calls waiting for the caller's start() to resume them: call id → sequence. Only the runner thread changes
  // it, under mu_ (start() reads it from the caller's thread).
  std::map<uint64_t, engine::SequenceId> suspended_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> inbox_;
  std::set<uint64_t> cancels_;
  bool stopping_ = false;
  std::thread thread_;
};

// ------------------------------------------------------------------------------------------------ remote
class RemoteExecutor final : public InstanceExecutor {
 public:
  RemoteExecutor(const scheduler::InstanceSpec& spec, int concurrency, double call_timeout_s, double idle_timeout_s,
                 ExecutorSink sink, ClockFn clock, Logger* log)
      : spec_(spec), sink_(std::move(sink)), clock_(std::move(clock)), log_(log) {
    parse_url(spec.url);  // fail early on a bad URL
    int n = std::max(1, std::min(concurrency, spec.max_running));
    OpenAiOptions o;
    o.http.connect_timeout_s = 2;
    o.http.idle_timeout_s = idle_timeout_s;
    o.http.request_timeout_s = call_timeout_s;
    if (!spec.api_key_env.empty()) {
      const char* key = std::getenv(spec.api_key_env.c_str());
      if (!key || !*key)
        throw InputError("instance '" + spec.name + "': api_key_env names '" + spec.api_key_env +
                         "', which is not set in the environment");
      o.http.bearer_token = key;
    }
    OpenAiOptions probe = o;
    probe.http.request_timeout_s = 3;
    // The cluster file's window wins: some servers do not report one, or report the model's and not the server's.
    context_ = spec.context_tokens > 0 ? spec.context_tokens
                                       : OpenAiClient(spec.url, probe).context_window(spec.remote_model);
    o.max_retries = 1;
    o.retry_backoff_s = 0.05;
    for (int i = 0; i < n; ++i) {
      auto w = std::make_unique<Worker>();
      w->client = std::make_unique<OpenAiClient>(spec.url, o);
      workers_.push_back(std::move(w));
    }
    for (auto& w : workers_) w->thread = std::thread([this, wp = w.get()] { work(*wp); });
  }
  ~RemoteExecutor() override { stop(); }

  void start(const agents::LlmCall& call, const agents::Response*, double now_s) override {
    std::lock_guard lk(mu_);
    inbox_.push_back(make_job(call, now_s));
    cv_.notify_one();
  }
  void cancel(uint64_t call_id) override {
    std::unique_lock lk(mu_);
    for (auto it = inbox_.begin(); it != inbox_.end(); ++it)
      if (it->call_id == call_id) {
        auto j = *it;
        inbox_.erase(it);
        lk.unlock();
        sink_.done(call_id, cancelled_result(call_id, j.admitted_s, clock_()), false);
        return;
      }
    for (auto& w : workers_)
      if (w->current == call_id) {
        w->cancelled = true;
        w->client->cancel();
      }
  }
  int capacity() const override { return static_cast<int>(workers_.size()); }
  int context_tokens() const override { return context_; }
  std::string kind() const override { return "remote"; }
  void stop() override {
    {
      std::lock_guard lk(mu_);
      if (stopping_) return;
      stopping_ = true;
      for (auto& w : workers_)
        if (w->current) w->client->cancel();
    }
    cv_.notify_all();
    for (auto& w : workers_)
      if (w->thread.joinable()) w->thread.join();
    for (auto& j : inbox_) sink_.done(j.call_id, cancelled_result(j.call_id, j.admitted_s, clock_()), false);
    inbox_.clear();
  }

 private:
  struct Worker {
    std::unique_ptr<OpenAiClient> client;
    std::thread thread;
    uint64_t current = 0;     // guarded by mu_
    bool cancelled = false;   // guarded by mu_
  };

  void work(Worker& w) {
    for (;;) {
      Job j;
      {
        std::unique_lock lk(mu_);
        cv_.wait(lk, [&] { return stopping_ || !inbox_.empty(); });
        if (stopping_) return;
        j = std::move(inbox_.front());
        inbox_.pop_front();
        w.current = j.call_id;
        w.cancelled = false;
      }
      CompletionRequest q;
      q.model = spec_.remote_model;
      q.prompt = j.prompt;
      q.max_tokens = std::max(1, j.max_tokens);
      q.temperature = j.temperature;
      q.seed = j.seed;
      q.stop = j.stop;
      double started = clock_();
      auto c = w.client->complete(q);
      bool cancelled;
      {
        std::lock_guard lk(mu_);
        cancelled = w.cancelled || c.cancelled;
        w.current = 0;
      }
      agents::LlmResult r;
      r.call_id = j.call_id;
      r.ok = c.ok && !cancelled;
      r.cancelled = cancelled;
      r.error = cancelled ? "cancelled" : c.error;
      r.text = c.text;
      r.prompt_tokens = c.prompt_tokens > 0 ? c.prompt_tokens : j.prompt_tokens_hint;
      r.cached_tokens = c.cached_tokens;
      r.output_tokens = c.completion_tokens;
      r.instance = spec_.name;
      r.started_s = started;
      r.finished_s = clock_();
      if (r.ok) {
        // One whole call as a sample: its prefill and its decode steps (the server's batching is invisible here).
        scheduler::IterationShape s;
        s.prefill_tokens = std::max(0, r.prompt_tokens - r.cached_tokens);
        s.decode_seqs = r.output_tokens;
        s.decode_context = static_cast<int64_t>(r.output_tokens) * (r.prompt_tokens + r.output_tokens / 2);
        sink_.sample(s, r.finished_s - r.started_s);
      } else if (!cancelled && log_) {
        log_->warn("remote_call_failed", {{"instance", spec_.name}, {"error", c.error}});
      }
      bool retryable = !r.ok && !cancelled && c.retryable;
      sink_.done(j.call_id, std::move(r), retryable);
    }
  }

  scheduler::InstanceSpec spec_;
  ExecutorSink sink_;
  ClockFn clock_;
  Logger* log_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> inbox_;
  bool stopping_ = false;
  std::vector<std::unique_ptr<Worker>> workers_;
  int context_ = 0;
};

// ------------------------------------------------------------------------------------------------ responder
class ResponderExecutor final : public InstanceExecutor {
 public:
  ResponderExecutor(const scheduler::InstanceSpec& spec, const scheduler::CostModel& cost, double speed,
                    ExecutorSink sink, ClockFn clock)
      : spec_(spec), cost_(cost), speed_(speed > 0 ? speed : 1), sink_(std::move(sink)), clock_(std::move(clock)) {
    thread_ = std::thread([this] { loop(); });
  }
  ~ResponderExecutor() override { stop(); }

  void start(const agents::LlmCall& call, const agents::Response* response, double now_s) override {
    Pending p;
    p.result.call_id = call.id;
    p.result.ok = true;
    p.result.text = response ? response->text : std::string();
    p.result.output_tokens = response ? response->output_tokens : call.expected_output_tokens;
    p.result.prompt_tokens = call.prompt_tokens;
    p.result.instance = spec_.name;
    p.result.started_s = now_s;
    double service = cost_.standalone_s(call.prompt_tokens, p.result.output_tokens, 0, cost_.default_chunk_tokens());
    p.due_s = now_s + service / speed_;
    std::lock_guard lk(mu_);
    pending_[call.id] = std::move(p);
    cv_.notify_one();
  }
  void cancel(uint64_t call_id) override {
    std::lock_guard lk(mu_);
    auto it = pending_.find(call_id);
    if (it == pending_.end()) return;
    it->second.due_s = -1;  // deliver now, cancelled
    cv_.notify_one();
  }
  int capacity() const override { return std::max(1, spec_.max_running); }
  int kv_blocks() const override { return cost_.kv_capacity_blocks(); }
  std::string kind() const override { return "responder"; }
  void stop() override { stop_single_worker(mu_, cv_, stopping_, thread_); }

 private:
  struct Pending {
    agents::LlmResult result;
    double due_s = 0;
  };
  void loop() {
    std::unique_lock lk(mu_);
    while (!stopping_) {
      double now = clock_();
      double next = 1e18;
      std::vector<Pending> ready;
      for (auto it = pending_.begin(); it != pending_.end();) {
        if (it->second.due_s <= now) {
          ready.push_back(std::move(it->second));
          it = pending_.erase(it);
        } else {
          next = std::min(next, it->second.due_s);
          ++it;
        }
      }
      if (!ready.empty()) {
        lk.unlock();
        for (auto& p : ready) {
          if (p.due_s < 0) {
            p.result.ok = false;
            p.result.cancelled = true;
            p.result.error = "cancelled";
          }
          p.result.finished_s = clock_();
          auto id = p.result.call_id;
          sink_.done(id, std::move(p.result), false);
        }
        lk.lock();
        continue;
      }
      if (next >= 1e17)
        cv_.wait(lk);
      else
        cv_.wait_for(lk, std::chrono::duration<double>(next - now));
    }
    for (auto& [id, p] : pending_) sink_.done(id, cancelled_result(id, p.result.started_s, clock_()), false);
    pending_.clear();
  }
  scheduler::InstanceSpec spec_;
  const scheduler::CostModel& cost_;
  double speed_;
  ExecutorSink sink_;
  ClockFn clock_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::map<uint64_t, Pending> pending_;
  bool stopping_ = false;
  std::thread thread_;
};

}  // namespace

std::unique_ptr<EngineExecutor> make_engine_executor(const scheduler::InstanceSpec& spec,
                                                     const std::string& tokenizer_path, double kv_mb,
                                                     int max_batch_tokens, ExecutorSink sink, ClockFn clock,
                                                     Logger* log, const BackendWrapper& wrap) {
  return std::make_unique<EngineExecutorImpl>(spec, tokenizer_path, kv_mb, max_batch_tokens, std::move(sink),
                                          std::move(clock), log, wrap);
}

std::unique_ptr<InstanceExecutor> make_remote_executor(const scheduler::InstanceSpec& spec, int concurrency,
                                                       double call_timeout_s, double idle_timeout_s,
                                                       ExecutorSink sink, ClockFn clock, Logger* log) {
  return std::make_unique<RemoteExecutor>(spec, concurrency, call_timeout_s, idle_timeout_s, std::move(sink),
                                          std::move(clock), log);
}

std::unique_ptr<InstanceExecutor> make_responder_executor(const scheduler::InstanceSpec& spec,
                                                          const scheduler::CostModel& cost, double speed,
                                                          ExecutorSink sink, ClockFn clock) {
  return std::make_unique<ResponderExecutor>(spec, cost, speed, std::move(sink), std::move(clock));
}

}  // namespace t2s::server
