#pragma once
//! The real-time runtime: the scheduler's policy objects (global dispatcher + local queue policies) driven by the
//! wall clock over real instances — embedded engines (one runner thread each), remote OpenAI-compatible servers,
//! or responder instances that answer with the oracle at modelled speed — plus SQLite work on a bounded pool.
//! Every completed iteration or call feeds the instance's online cost model; every call records the predicted
//! and measured latency. All workflow and policy code runs on one event-loop thread.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agents/llm_call.hpp"
#include "agents/responder.hpp"
#include "agents/workflow.hpp"
#include "common/log.hpp"
#include "scheduler/cost_model.hpp"
#include "scheduler/instance.hpp"
#include "scheduler/policy.hpp"
#include "workloads/workload.hpp"

namespace t2s::engine {
class Backend;
}

namespace t2s::server {

class MetricsRegistry;

//! Knobs of the runtime.
struct RuntimeOptions {
  int sql_threads = 2;              //!< SQLite worker threads (the bounded pool of tool work)
  int max_attempts = 3;             //!< tries of one call across instances (failures are re-dispatched)
  double unhealthy_s = 5;           //!< an instance whose call failed gets no new calls for this long
  size_t refit_every = 16;          //!< refit an instance's cost model after this many new samples
  size_t refit_window = 512;        //!< samples kept per instance for refitting
  size_t max_records = 20000;       //!< call/stage/tool records kept for the timeline and the trace
  int remote_concurrency = 16;      //!< calls in flight per remote instance (capped by its max_running)
  double remote_call_timeout_s = 300;  //!< a remote call taking longer (e.g. a server that drips) fails and is re-dispatched
  double remote_idle_timeout_s = 30;   //!< a remote silent this long mid-call (hung) fails and is re-dispatched
  double engine_kv_mb = 64;         //!< KV pool of each embedded engine instance (MiB)
  int engine_max_batch_tokens = 256;  //!< token budget per engine iteration
  std::string engine_tokenizer;     //!< tokenizer file for llama2.c checkpoints ("" = beside the model)
  double responder_speed = 1.0;     //!< responder instances run modelled time divided by this
  MetricsRegistry* metrics = nullptr;  //!< when set, call/queue/SQL latency histograms are recorded here
  //! When set, sees every measured iteration (instance index, shape, seconds, clock time) on the event loop
  //! (recorded runs write them to iterations.jsonl).
  std::function<void(size_t instance, const scheduler::IterationShape& shape, double seconds, double t_s)>
      on_iteration;
  //! When set, wraps the backend of engine instance `instance` (fault injection and instrumentation seam).
  std::function<std::unique_ptr<engine::Backend>(size_t instance, std::unique_ptr<engine::Backend> made)>
      wrap_engine_backend;
  //! Measured iterations per instance name (a previous run's iterations.jsonl): they seed that instance's refit
  //! window (the newest `refit_window`), and its cost model starts fitted on them instead of the prior.
  std::map<std::string, std::vector<scheduler::IterationSample>> initial_samples;
};

//! One LLM call as it ran, with why it went where it went.
struct CallRecord {
  uint64_t call_id = 0, workflow_id = 0;
  uint32_t stage_index = 0;
  agents::StageKind kind = agents::StageKind::other;
  int instance = -1;              //!< where it ran last
  int attempts = 0;               //!< dispatches (more than 1 after a failure elsewhere)
  int preemptions = 0;            //!< times its engine took its KV back under pressure (it was recomputed)
  double released_s = 0, dispatched_s = 0, started_s = 0, finished_s = 0;
  double deadline_s = 0;
  int prompt_tokens = 0, output_tokens = 0, cached_tokens = 0;
  bool ok = false, cancelled = false;
  std::string error;
  double est_completion_s = 0;    //!< the cost model's completion estimate on the chosen instance at dispatch
  double slack_s = 0;             //!< deadline − (estimate + remaining work) at dispatch
  std::vector<double> alt_completion_s;  //!< the estimate on every instance at dispatch (index = instance)
  double predicted_service_s = 0;  //!< standalone_s with the measured lengths (cost model before this call)
  double measured_service_s = 0;   //!< started → finished
};

//! A tool (SQLite) or stage span for the timeline.
struct SpanRecord {
  uint64_t workflow_id = 0;
  uint32_t stage_index = 0;
  agents::StageKind kind = agents::StageKind::other;
  double start_s = 0, end_s = 0;
  std::string detail;
  bool tool = false;  //!< true: one SQLite run on the pool (else a workflow stage)
};

//! Cost-model accuracy so far.
struct PredictionReport {
  size_t calls = 0;
  double service_mean_abs_rel = 0;     //!< mean |predicted − measured| / measured of service time
  double completion_mean_abs_rel = 0;  //!< same for dispatch → completion (queueing included)
  double service_bias_rel = 0;         //!< mean (predicted − measured) / measured
};

//! Counters of the runtime.
struct RuntimeStats {
  uint64_t calls_submitted = 0, calls_ok = 0, calls_failed = 0, calls_cancelled = 0, redispatched = 0,
           tool_runs = 0, refits = 0;
  uint64_t kv_preemptions = 0;          //!< running calls an engine preempted for KV (they were recomputed)
  uint64_t kv_preemptions_unnamed = 0;  //!< of those, the newest taken because none of the local policy's order ran
  double llm_busy_s = 0;   //!< Σ service time of finished calls
  double tool_busy_s = 0;  //!< Σ SQLite time
};

//! The wall-clock AgentEnv over a cluster of real instances.
class Runtime final : public agents::AgentEnv {
 public:
  //! Builds executors for `cluster` (engine: loads the model; remote: a client per slot; sim: `responder` answers
  //! at modelled speed — required when the cluster has sim instances). Throws InputError on bad specs.
  Runtime(scheduler::ClusterSpec cluster, scheduler::Policy policy, RuntimeOptions options,
          std::shared_ptr<agents::Responder> responder, Logger* log = nullptr);
  ~Runtime() override;
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;

  // AgentEnv
  double now() const override;
  agents::LlmClient& llm() override;
  //! On the SQLite workers, like run_tool, but not recorded as a tool run: scoring is not the workflow's work.
  void run_measurement(std::function<void()> work, std::function<void()> done) override;
  void run_tool(uint64_t workflow_id, agents::StageKind kind, std::function<void()> work,
                std::function<void(double elapsed_s)> done) override;
  //! Loop-thread only, like every AgentEnv call.
  uint64_t at(double t_s, std::function<void()> fn) override;
  void cancel_at(uint64_t timer) override;
  uint64_t next_call_id() override;
  double reference_seconds(int prompt_tokens, int output_tokens) const override;

  //! Runs `fn` on the event loop (thread-safe). Workflows must be made, started and cancelled there.
  void post(std::function<void()> fn);
  //! Runs `fn` on the event loop at clock time `t_s` or later.
  void post_at(double t_s, std::function<void()> fn);
  //! True on the event-loop thread.
  bool on_loop() const;
  //! Stops executors and the loop (idempotent); pending calls end cancelled.
  void stop();

  //! Records a workflow's life (for the timeline and trace); called by whoever runs workflows. Its end (finished_s
  //! ≥ 0) also reaches the policy (workflow_finished), as the simulator reports it.
  void record_workflow(uint64_t workflow_id, const std::string& label, double arrival_s, double deadline_s,
                       double finished_s, bool ok);
  //! Records a stage event (timeline stage bars); a stage's end also reaches the policy (stage_finished).
  void record_stage(const agents::StageEvent& event);

  //! The cluster.
  const scheduler::ClusterSpec& cluster() const;
  //! The policy's name.
  const std::string& policy_name() const;
  //! Perfetto trace of everything recorded (contracts.md layout).
  std::string trace_json() const;
  //! The timeline page's data: instances, calls, stages, workflows, queue depth since `since_s`.
  std::string timeline_json(double since_s) const;
  //! Instances, queues and KV as a JSON object (WebSocket `status`).
  std::string status_json() const;
  //! Updates per-instance gauges and counters in `m` (call before rendering /metrics).
  void export_metrics(MetricsRegistry& m) const;
  //! Predicted vs measured latency so far.
  PredictionReport prediction_report() const;
  //! Counters.
  RuntimeStats stats() const;
  //! Finished call records (oldest first, bounded by max_records).
  std::vector<CallRecord> calls() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
};

//! Result of a real-time replay.
struct RealtimeReplay {
  std::vector<agents::WorkflowOutcome> outcomes;  //!< one per arrival, in arrival order (times: runtime clock)
  double start_s = 0;                              //!< runtime clock at the replay's time zero
  double wall_s = 0;                               //!< wall time of the replay
  PredictionReport prediction;                     //!< cost-model error over the replay's calls
};

//! Replays `arrivals` of `workload` for real: each workflow starts at start + arrival_s on the wall clock with its
//! deadline shifted alike, and the call returns when all have ended or `time_limit_s` passed (the rest are
//! cancelled). The entry point `t2s replay --backend engine|remote` calls.
RealtimeReplay replay_realtime(Runtime& runtime, const workloads::Workload& workload,
                               const std::vector<workloads::Arrival>& arrivals, agents::WorkflowFactory& factory,
                               double time_limit_s = 3600, agents::WorkflowObserver* observer = nullptr);

}  // namespace t2s::server
