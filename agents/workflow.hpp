#pragma once
//! A workflow (one question's run) as the simulator and the runtime drive it.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "agents/llm_call.hpp"
#include "workloads/workload.hpp"

namespace t2s::agents {

//! A stage starting or ending, for traces, the WebSocket `stage` frames and the timeline.
struct StageEvent {
  uint64_t workflow_id = 0;
  uint32_t stage_index = 0;
  StageKind kind = StageKind::other;
  bool done = false;        //!< false: started, true: ended
  double t_s = 0;           //!< clock time of the event
  double elapsed_s = 0;     //!< stage duration (when done)
  int calls = 0;            //!< LLM calls in the stage (0 for tool stages)
  std::string detail;       //!< e.g. the SQLite error that triggers a revise
  std::vector<uint32_t> parents;  //!< stage indices this stage depended on (its DAG in-edges)
};

//! How a workflow ended.
struct WorkflowOutcome {
  uint64_t workflow_id = 0;
  std::string question_id;
  bool completed = false;        //!< produced a final answer
  bool failed = false;           //!< ended by an error (see error)
  bool ended_early = false;      //!< ended at its deadline with the best candidate so far
  bool cancelled = false;        //!< cancelled by the client
  std::string error;
  std::string sql;               //!< the selected query
  bool sql_executed = false;     //!< the selected query ran without error (on its database, or simulated)
  std::string sql_error;         //!< why the selected query did not run (SQLite's message), when !sql_executed
  std::vector<std::string> columns;              //!< its result columns (when executed)
  std::vector<std::vector<std::string>> rows;    //!< its result rows, rendered as text (capped)
  bool has_gold = false;         //!< a gold query was available
  bool correct = false;          //!< execution match against gold (when has_gold and execution available)
  //! The greedy first candidate as written (before execution feedback, revise and selection) matches gold: what the
  //! agent's later stages add is correct − first_candidate_correct.
  bool first_candidate_correct = false;
  bool execution_simulated = false;  //!< SQL outcomes came from the oracle's labels, not from a database
  int llm_calls = 0;
  int sql_executions = 0;
  int stages = 0;
  double arrival_s = 0, finished_s = 0, deadline_s = 1e18;
};

//! Receives stage events of every workflow (may be null where nobody listens).
class WorkflowObserver {
 public:
  virtual ~WorkflowObserver() = default;
  virtual void on_stage(const StageEvent& event) = 0;
};

//! One running workflow; lives until its completion callback has fired.
class Workflow {
 public:
  virtual ~Workflow() = default;
  //! Releases the first stage (called once, at its arrival time).
  virtual void start() = 0;
  //! Cancels queued and running calls; the completion callback fires with cancelled=true.
  virtual void cancel() = 0;
};

//! Makes workflows for questions of a workload; the simulator and the runtime use one per run.
class WorkflowFactory {
 public:
  using Done = std::function<void(const WorkflowOutcome&)>;
  virtual ~WorkflowFactory() = default;
  //! A workflow for `question` arriving as `arrival`, running in `env`; `done` fires exactly once.
  virtual std::unique_ptr<Workflow> make(const workloads::Question& question, const workloads::Arrival& arrival,
                                         AgentEnv& env, Done done, WorkflowObserver* observer) = 0;
};

}  // namespace t2s::agents
