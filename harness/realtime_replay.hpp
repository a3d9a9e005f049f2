#pragma once
//! `t2s replay --backend engine|remote`: one replay setup (the simulator's: workload, cluster, arrivals, SLO,
//! policy, agent kit) run for real through the runtime, with the simulator's metrics plus the cost model's
//! prediction error.
#include <optional>
#include <string>
#include <vector>

#include "harness/replay.hpp"
#include "runtime/runtime.hpp"
#include "scheduler/iteration_log.hpp"
#include "scheduler/metrics.hpp"

namespace t2s::server {

//! Knobs of a real-time replay run.
struct RealtimeRunOptions {
  double time_limit_s = 600;  //!< workflows still running then are cancelled (counted failed)
  RuntimeOptions runtime;     //!< the runtime's knobs
  Logger* log = nullptr;      //!< runtime log (may be null)
  bool record = false;        //!< record the run (RealtimeRunOutput::recorded and ::iterations)
};

//! Predicted vs measured service time per finished call: |predicted − measured| / measured.
struct PredictionError {
  size_t calls = 0;           //!< calls with a measured service time
  double mean_abs_rel = 0, p50_abs_rel = 0, p95_abs_rel = 0;
};

//! The prediction error of `calls` (ok calls with measured_service_s > 0).
PredictionError prediction_error(const std::vector<CallRecord>& calls);

//! One real-time run's outputs.
struct RealtimeRunOutput {
  scheduler::RunMetrics metrics;  //!< computed by the scheduler's metrics code on the real outcomes
  PredictionError prediction;
  RealtimeReplay replay;
  RuntimeStats stats;
  std::string trace_json;         //!< the runtime's Perfetto trace
  //! With `record`: the workload as it ran (recorded.json) and every measured iteration (iterations.jsonl), with
  //! times relative to the replay's start.
  std::optional<workloads::Workload> recorded;
  std::vector<scheduler::IterationRecord> iterations;
};

//! Runs `policy` at `rate` (SLO text `slo`, "" = setup.slo) of `setup` through a Runtime over its cluster.
RealtimeRunOutput run_policy_realtime(const scheduler::ReplaySetup& setup, const scheduler::PolicyRegistry& registry,
                                      const std::string& policy, double rate, const std::string& slo = "",
                                      const RealtimeRunOptions& options = {});

//! `metrics.json` text: the simulator's fields, then backend, time limit, cancelled count and prediction error.
std::string realtime_metrics_json(const RealtimeRunOutput& run, const std::string& backend, double time_limit_s);

}  // namespace t2s::server
