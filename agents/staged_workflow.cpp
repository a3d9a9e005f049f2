#include "agents/staged_workflow.hpp"

#include <utility>

namespace t2s::agents {

StagedWorkflow::StagedWorkflow(const workloads::Question& question, const workloads::Arrival& arrival,
                               AgentEnv& env, WorkflowFactory::Done done, WorkflowObserver* observer)
    : question_(question), arrival_(arrival), env_(env), done_(std::move(done)), observer_(observer) {}

void StagedWorkflow::start() {
  if (started_ || finished_) return;
  started_ = true;
  // The deadline is kept inside a stage too: at the deadline the workflow may end at once with what it has
  // (cancelling its queued and running calls) instead of noticing only when the stage ends.
  if (arrival_.deadline_s < 1e17) {
    std::weak_ptr<StagedWorkflow> weak = weak_from_this();
    deadline_timer_ = env_.at(arrival_.deadline_s, [weak] {
      auto self = weak.lock();
      if (!self || self->finished_) return;
      self->deadline_timer_armed_ = false;
      self->guarded([&] { self->on_deadline_passed(); });
    });
    deadline_timer_armed_ = true;
  }
  guarded([this] { begin(); });
}

void StagedWorkflow::cancel() {
  if (finished_) return;
  WorkflowOutcome o;
  o.cancelled = true;
  o.error = "cancelled";
  finish(std::move(o));
}

uint32_t StagedWorkflow::release_llm_stage(StageKind kind, std::vector<LlmCall> calls, std::vector<uint32_t> parents,
                                           LlmStageDone done, std::string detail) {
  const uint32_t index = next_stage_++;
  const double now = env_.now();
  const auto n = static_cast<uint32_t>(calls.size());
  RemainingWork rem = remaining_after(kind, index);
  for (auto& c : calls) {
    c.id = env_.next_call_id();
    c.workflow_id = arrival_.workflow_id;
    c.stage_index = index;
    c.kind = kind;
    c.siblings = n;
    c.arrival_s = arrival_.arrival_s;
    c.deadline_s = arrival_.deadline_s;
    c.released_s = now;
    c.remaining_mean_s = rem.mean_s;
    c.remaining_p90_s = rem.p90_s;
    in_flight_[c.id] = index;
  }
  llm_calls_ += static_cast<int>(n);
  StageEvent start{arrival_.workflow_id, index, kind, false, now, 0, static_cast<int>(n), detail, parents};
  emit(start);

  struct Pending {
    std::vector<LlmResult> results;
    size_t remaining = 0;
  };
  auto pending = std::make_shared<Pending>();
  pending->results.resize(n);
  pending->remaining = n;
  auto self = shared_from_this();
  std::vector<LlmClient::Callback> cbs;
  cbs.reserve(n);
  for (uint32_t i = 0; i < n; ++i) {
    cbs.push_back([self, pending, i, index, kind, now, n, done, parents](const LlmResult& r) {
      self->in_flight_.erase(r.call_id);
      pending->results[i] = r;
      if (--pending->remaining != 0 || self->finished_) return;
      const double t = self->env_.now();
      self->emit(StageEvent{self->arrival_.workflow_id, index, kind, true, t, t - now, static_cast<int>(n), {},
                            parents});
      if (self->deadline_passed() && self->on_deadline_passed()) return;
      self->guarded([&] { done(std::move(pending->results)); });
    });
  }
  if (n == 0) {
    // An empty stage ends at once; keep the "never inside the caller" rule by running it as zero tool work.
    env_.run_tool(arrival_.workflow_id, kind, [] {}, [self, done](double) {
      if (!self->finished_) self->guarded([&] { done({}); });
    });
    return index;
  }
  env_.llm().submit(std::move(calls), std::move(cbs));
  return index;
}

uint32_t StagedWorkflow::release_tool_stage(StageKind kind, std::function<void()> work, std::vector<uint32_t> parents,
                                            ToolStageDone done, std::string detail) {
  const uint32_t index = next_stage_++;
  const double now = env_.now();
  ++tool_stages_;
  emit(StageEvent{arrival_.workflow_id, index, kind, false, now, 0, 0, detail, parents});
  auto self = shared_from_this();
  // Tool work runs on the env's executor: an exception it throws is carried to the completion and fails the
  // workflow there, instead of escaping into the env.
  auto error = std::make_shared<std::string>();
  auto guarded_work = [work = std::move(work), error] {
    try {
      work();
    } catch (const std::exception& e) {
      *error = e.what();
    }
  };
  env_.run_tool(arrival_.workflow_id, kind, std::move(guarded_work),
                [self, index, kind, now, done = std::move(done), parents, error](double elapsed) {
                  if (self->finished_) return;
                  if (!error->empty()) {
                    self->fail(*error);
                    return;
                  }
                  const double t = self->env_.now();
                  self->emit(StageEvent{self->arrival_.workflow_id, index, kind, true, t, t - now, 0, {}, parents});
                  if (self->deadline_passed() && self->on_deadline_passed()) return;
                  self->guarded([&] { done(elapsed); });
                });
  return index;
}

uint32_t StagedWorkflow::release_timed_stage(StageKind kind, double seconds, std::vector<uint32_t> parents,
                                             ToolStageDone done) {
  const uint32_t index = next_stage_++;
  const double now = env_.now();
  ++tool_stages_;
  emit(StageEvent{arrival_.workflow_id, index, kind, false, now, 0, 0, {}, parents});
  auto self = shared_from_this();
  // A timer, not run_tool: the clock must advance by exactly the recorded time in the simulator and the runtime.
  env_.at(now + std::max(0.0, seconds), [self, index, kind, now, done = std::move(done), parents] {
    if (self->finished_) return;
    const double t = self->env_.now();
    self->emit(StageEvent{self->arrival_.workflow_id, index, kind, true, t, t - now, 0, {}, parents});
    if (self->deadline_passed() && self->on_deadline_passed()) return;
    self->guarded([&] { done(t - now); });
  });
  return index;
}

void StagedWorkflow::finish(WorkflowOutcome outcome, std::function<void(WorkflowOutcome&)> score) {
  if (finished_) return;
  finished_ = true;
  if (deadline_timer_armed_) env_.cancel_at(deadline_timer_);
  deadline_timer_armed_ = false;
  outcome.workflow_id = arrival_.workflow_id;
  outcome.question_id = question_.id;
  outcome.arrival_s = arrival_.arrival_s;
  outcome.deadline_s = arrival_.deadline_s;
  outcome.finished_s = env_.now();
  outcome.llm_calls = llm_calls_;
  outcome.stages = static_cast<int>(next_stage_);
  if (outcome.sql_executions == 0) outcome.sql_executions = tool_stages_;
  // Calls still queued or running are of no use any more (cancel, early end, a failure in a sibling branch).
  // finished_ is set first so that their cancellation callbacks are ignored.
  auto ids = std::move(in_flight_);
  in_flight_.clear();
  for (const auto& [id, stage] : ids) env_.llm().cancel(id);
  auto done = std::move(done_);
  done_ = nullptr;
  if (!score) {
    if (done) done(outcome);
    return;
  }
  auto out = std::make_shared<WorkflowOutcome>(std::move(outcome));
  env_.run_measurement([out, score = std::move(score)] { score(*out); },
                       [out, done = std::move(done)] {
                         if (done) done(*out);
                       });
}

void StagedWorkflow::guarded(const std::function<void()>& step) {
  // An exception ends this request only (a bad database, a malformed answer the agent cannot recover from).
  try {
    step();
  } catch (const std::exception& e) {
    fail(e.what());
  }
}

void StagedWorkflow::fail(std::string error) {
  WorkflowOutcome o;
  o.failed = true;
  o.error = std::move(error);
  finish(std::move(o));
}

namespace {
class WorkflowHandle final : public Workflow {
 public:
  explicit WorkflowHandle(std::shared_ptr<StagedWorkflow> w) : w_(std::move(w)) {}
  void start() override { w_->start(); }
  void cancel() override { w_->cancel(); }

 private:
  std::shared_ptr<StagedWorkflow> w_;
};
}  // namespace

std::unique_ptr<Workflow> make_workflow_handle(std::shared_ptr<StagedWorkflow> workflow) {
  return std::make_unique<WorkflowHandle>(std::move(workflow));
}

}  // namespace t2s::agents
