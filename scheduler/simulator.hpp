#pragma once
//! Discrete-event simulator: implements AgentEnv + LlmClient on a virtual clock, runs every instance with
//! iteration-level continuous batching (token budget, chunked prefill, paged KV with recompute preemption, LRU
//! prefix cache) priced by the cost model, and drives workflows made by a WorkflowFactory under one Policy.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agents/llm_call.hpp"
#include "agents/responder.hpp"
#include "agents/workflow.hpp"
#include "common/trace.hpp"
#include "scheduler/cost_model.hpp"
#include "scheduler/instance.hpp"
#include "scheduler/policy.hpp"
#include "workloads/workload.hpp"

namespace t2s::scheduler {

//! Knobs of one simulation.
struct SimOptions {
  uint64_t seed = 1;                 //!< run seed (reported; randomness lives in workflows and responders)
  double sql_execution_s = 0.02;     //!< modelled time of one SQLite execution stage
  double other_tool_s = 0.005;       //!< modelled time of any other tool stage
  bool run_tool_work = true;         //!< run the tool stages' work functions (real SQLite) or skip them
  int fuse_max_steps = 32;           //!< decode steps fused into one event at most (admission re-checked after)
  double max_sim_s = 1e7;            //!< give up (count unfinished workflows as failed) past this clock time
  TraceWriter* trace = nullptr;      //!< when set, every call, queue wait, tool stage and workflow is recorded
  std::map<std::string, LinearIterationModel> fitted_costs;  //!< instance name → fitted model replacing physics
  //! Mis-estimation: instance name ("*" = every instance) → e; the policy's view of that instance's cost model
  //! is the true one slowed by (1 + e) (e = 0.3: it believes the instance 30% slower), the simulator runs the truth.
  std::map<std::string, double> policy_cost_error;
  std::string slowdown_instance;     //!< an instance that really runs slower from `slowdown_at_s` on ("" = none)
  double slowdown_at_s = 0;          //!< when the slowdown starts (clock s)
  double slowdown_factor = 1.0;      //!< its iterations take this many times longer from then on
};

//! One finished (or failed/cancelled) LLM call.
struct CallRecord {
  uint64_t call_id = 0, workflow_id = 0;
  uint32_t stage_index = 0;
  agents::StageKind kind = agents::StageKind::other;
  int instance = -1;              //!< index, -1 when it never reached one
  int prompt_tokens = 0, cached_tokens = 0, output_tokens = 0;
  double released_s = 0;          //!< submitted by the workflow
  double queued_s = 0;            //!< placed on an instance's queue
  double started_s = 0;           //!< admitted to the running batch (last admission when preempted)
  double finished_s = 0;          //!< ended
  int preemptions = 0;            //!< times it was evicted and recomputed
  bool ok = false, cancelled = false;
};

//! Per-instance totals of a run.
struct InstanceStats {
  std::string name;
  uint64_t iterations = 0;        //!< continuous-batching iterations (decode steps and mixed steps)
  double busy_s = 0;              //!< time with an iteration in flight
  uint64_t calls = 0;             //!< calls finished here
  uint64_t prefill_tokens = 0;    //!< prompt tokens computed
  uint64_t cached_tokens = 0;     //!< prompt tokens served by the prefix cache
  uint64_t decode_tokens = 0;     //!< output tokens generated
  uint64_t preemptions = 0;       //!< recompute preemptions
  int peak_kv_blocks = 0;         //!< peak KV blocks used
  int kv_blocks_total = 0;        //!< capacity
};

//! Everything a run produced.
struct SimResult {
  std::vector<agents::WorkflowOutcome> outcomes;  //!< one per arrival, in arrival order
  std::vector<CallRecord> calls;                  //!< in completion order
  std::vector<InstanceStats> instances;           //!< in cluster order
  std::vector<double> decision_us;                //!< wall time of each scheduling decision (dispatch or admission)
  uint64_t iterations = 0;                        //!< Σ instance iterations
  uint64_t events = 0;                            //!< events processed
  uint64_t sql_executions = 0;                    //!< tool stages of kind sql_execution
  double end_s = 0;                               //!< virtual time of the last event
  double wall_s = 0;                              //!< wall time of run()
};

//! The simulator. One object runs one replay; make a new one (or call run() again: it resets) per run.
class Simulator final : public agents::AgentEnv, public agents::LlmClient {
 public:
  //! `policy` and `responder` must outlive the simulator. The policy is reset at the start of every run.
  Simulator(const ClusterSpec& cluster, Policy& policy, agents::Responder& responder, SimOptions options = {});
  ~Simulator() override;
  Simulator(const Simulator&) = delete;
  Simulator& operator=(const Simulator&) = delete;

  //! Replays `arrivals` (questions of `workload`) through workflows from `factory`; returns when every workflow
  //! ended (or max_sim_s passed). `observer` (may be null) sees every stage event.
  SimResult run(const workloads::Workload& workload, const std::vector<workloads::Arrival>& arrivals,
                agents::WorkflowFactory& factory, agents::WorkflowObserver* observer = nullptr);

  // AgentEnv
  double now() const override;
  agents::LlmClient& llm() override { return *this; }
  void run_tool(uint64_t workflow_id, agents::StageKind kind, std::function<void()> work,
                std::function<void(double elapsed_s)> done) override;
  uint64_t at(double t_s, std::function<void()> fn) override;
  void cancel_at(uint64_t timer) override;
  uint64_t next_call_id() override;
  double reference_seconds(int prompt_tokens, int output_tokens) const override;

  // LlmClient
  void submit(std::vector<agents::LlmCall> calls, std::vector<Callback> done) override;
  void cancel(uint64_t call_id) override;

  //! The instance states (read-only; valid during and after run()).
  const std::vector<InstanceState>& instances() const;
  //! The cost model of instance `i`.
  const CostModel& cost_model(size_t i) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

//! Standalone latency of one call on an idle simulated instance, by running the simulator's own batching
//! (for checks that the simulator and CostModel::standalone_s agree).
double simulate_single_call(const InstanceSpec& spec, int prompt_tokens, int output_tokens);

}  // namespace t2s::scheduler
