#include "agents/sim_env.hpp"

#include <algorithm>
#include <chrono>
#include <utility>

namespace t2s::agents {

StandaloneEnv::StandaloneEnv(Responder& responder, StandaloneEnvOptions options)
    : responder_(responder), opt_(options) {}

double StandaloneEnv::reference_seconds(int prompt_tokens, int output_tokens) const {
  return std::max(prompt_tokens, 0) / opt_.prefill_tokens_per_s + std::max(output_tokens, 0) * opt_.decode_s_per_token;
}

uint64_t StandaloneEnv::at(double t_s, std::function<void()> fn) {
  events_.push(Event{std::max(t_s, now_), seq_, std::move(fn)});
  return seq_++;
}

void StandaloneEnv::cancel_at(uint64_t timer) {
  if (timer < seq_) cancelled_timers_.insert(timer);
}

double StandaloneEnv::run() {
  while (!events_.empty()) {
    Event e = events_.top();
    events_.pop();
    if (cancelled_timers_.erase(e.seq)) continue;
    now_ = e.t;
    e.fn();
  }
  return now_;
}

void StandaloneEnv::run_tool(uint64_t, StageKind, std::function<void()> work, std::function<void(double)> done) {
  at(now_, [this, work = std::move(work), done = std::move(done)] {
    auto t0 = std::chrono::steady_clock::now();
    work();
    double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    double elapsed = opt_.measure_tools ? wall : opt_.tool_s;
    at(now_ + elapsed, [done, elapsed] { done(elapsed); });
  });
}

void StandaloneEnv::submit(std::vector<LlmCall> calls, std::vector<Callback> done) {
  for (size_t i = 0; i < calls.size(); ++i) {
    Response resp = responder_.respond(calls[i]);
    int out = std::clamp(resp.output_tokens, 0, std::max(calls[i].max_output_tokens, 0));
    LlmResult r;
    r.call_id = calls[i].id;
    r.ok = true;
    r.text = std::move(resp.text);
    r.prompt_tokens = calls[i].prompt_tokens;
    r.output_tokens = out;
    r.instance = "standalone";
    r.queued_s = r.started_s = now_;
    r.finished_s = now_ + reference_seconds(calls[i].prompt_tokens, out);
    const uint64_t id = calls[i].id;
    const double t = r.finished_s;
    records_.push_back(CallRecord{calls[i], out, false});
    running_[id] = Running{std::move(done[i]), records_.size() - 1, std::move(r)};
    at(t, [this, id] {
      auto it = running_.find(id);
      if (it == running_.end()) return;  // cancelled earlier
      Running run = std::move(it->second);
      running_.erase(it);
      run.done(run.result);
    });
  }
}

void StandaloneEnv::cancel(uint64_t call_id) {
  auto it = running_.find(call_id);
  if (it == running_.end()) return;
  Running run = std::move(it->second);
  running_.erase(it);
  records_[run.record].cancelled = true;
  LlmResult r;
  r.call_id = call_id;
  r.cancelled = true;
  r.error = "cancelled";
  r.finished_s = now_;
  at(now_, [done = std::move(run.done), r] { done(r); });
}

}  // namespace t2s::agents
