#pragma once
//! The machinery every workflow shares: releasing stages of LLM calls or tool work as a growing DAG, collecting
//! their results, emitting stage events, cancellation, deadlines and the outcome.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agents/workflow.hpp"

namespace t2s::agents {

//! Expected remaining work of a workflow after some call, in reference-instance seconds.
struct RemainingWork {
  double mean_s = 0;  //!< expectation
  double p90_s = 0;   //!< 90th percentile
};

//! Base of the trace and Text-to-SQL workflows. Lives in a shared_ptr: in-flight callbacks keep it alive, so the
//! Workflow handle may be destroyed as soon as the completion callback has fired.
class StagedWorkflow : public std::enable_shared_from_this<StagedWorkflow> {
 public:
  //! Callback of an LLM stage: one result per call, in call order.
  using LlmStageDone = std::function<void(std::vector<LlmResult>)>;
  //! Callback of a tool stage with its elapsed clock time.
  using ToolStageDone = std::function<void(double elapsed_s)>;

  StagedWorkflow(const workloads::Question& question, const workloads::Arrival& arrival, AgentEnv& env,
                 WorkflowFactory::Done done, WorkflowObserver* observer);
  virtual ~StagedWorkflow() = default;
  StagedWorkflow(const StagedWorkflow&) = delete;
  StagedWorkflow& operator=(const StagedWorkflow&) = delete;

  //! Releases the first stage.
  void start();
  //! Cancels queued and running calls and fires the completion callback (inside this call) with cancelled=true.
  void cancel();
  //! True once the completion callback has fired.
  bool finished() const { return finished_; }

 protected:
  //! Releases the first stage(s); called by start().
  virtual void begin() = 0;
  //! Expected remaining work after a call of stage `kind` (the agent's model of its own future).
  virtual RemainingWork remaining_after(StageKind kind, uint32_t stage_index) const = 0;
  //! Called at the deadline (a timer: calls of the stage in flight are still queued or running) and when a stage
  //! ends after it (before its continuation runs): return true after ending the workflow early (with finish(),
  //! which cancels the calls in flight), false to continue.
  virtual bool on_deadline_passed() { return false; }

  //! Releases a stage of LLM calls that may run in parallel; fills ids, stage index, siblings, times and the
  //! remaining-work estimates; `done` runs when the last call has ended (never after the workflow finished).
  //! Returns the new stage's index.
  uint32_t release_llm_stage(StageKind kind, std::vector<LlmCall> calls, std::vector<uint32_t> parents,
                             LlmStageDone done, std::string detail = {});
  //! Releases a tool stage (SQLite work) run through AgentEnv::run_tool. Returns the stage index.
  uint32_t release_tool_stage(StageKind kind, std::function<void()> work, std::vector<uint32_t> parents,
                              ToolStageDone done, std::string detail = {});
  //! Releases a tool stage that takes `seconds` of clock time and does no work (replays of recorded runs: the
  //! measured SQL time stands in for the SQL). Counted as a tool stage. Returns the stage index.
  uint32_t release_timed_stage(StageKind kind, double seconds, std::vector<uint32_t> parents, ToolStageDone done);
  //! Ends the workflow: cancels its calls still in flight, fills the common fields of `outcome` (finished_s: now)
  //! and fires the completion callback once; with `score`, after running it on the outcome through
  //! AgentEnv::run_measurement (it must not use this workflow: the callback may outlive it).
  void finish(WorkflowOutcome outcome, std::function<void(WorkflowOutcome&)> score = {});
  //! Runs a continuation; an exception it throws fails the workflow with its message.
  void guarded(const std::function<void()>& step);
  //! Ends the workflow as failed with `error`.
  void fail(std::string error);
  //! True when the clock is past the workflow's deadline.
  bool deadline_passed() const { return env_.now() >= arrival_.deadline_s; }

  const workloads::Question& question() const { return question_; }
  const workloads::Arrival& arrival() const { return arrival_; }
  AgentEnv& env() const { return env_; }
  //! Counters for the outcome so far.
  int llm_calls() const { return llm_calls_; }
  int tool_stages() const { return tool_stages_; }
  int stages() const { return next_stage_; }

 private:
  void emit(const StageEvent& e) {
    if (observer_) observer_->on_stage(e);
  }

  workloads::Question question_;
  workloads::Arrival arrival_;
  AgentEnv& env_;
  WorkflowFactory::Done done_;
  WorkflowObserver* observer_;
  bool started_ = false, finished_ = false;
  uint32_t next_stage_ = 0;
  int llm_calls_ = 0, tool_stages_ = 0;
  std::map<uint64_t, uint32_t> in_flight_;  // call id → stage index
  uint64_t deadline_timer_ = 0;
  bool deadline_timer_armed_ = false;
};

//! Wraps a StagedWorkflow into the Workflow interface the simulator and runtime drive.
std::unique_ptr<Workflow> make_workflow_handle(std::shared_ptr<StagedWorkflow> workflow);

}  // namespace t2s::agents
