#pragma once
//! Recorded runs: capturing a real run's workload as it really ran (every workflow's call DAG, SQL times, the
//! instances, every engine iteration) and preparing the simulator to replay exactly that run with each instance's
//! cost model fitted on those iterations; plus the real-vs-replayed service-time comparison.
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "agents/trace_workflow.hpp"
#include "agents/workflow.hpp"
#include "harness/replay.hpp"
#include "runtime/runtime.hpp"
#include "scheduler/iteration_log.hpp"
#include "workloads/workload.hpp"

namespace t2s::server {

//! Records the workflows made by a wrapped factory: each call as submitted (lengths, caps, prefix ids) and as it
//! ended (tokens counted by the server, cached tokens, instance, service time), each stage's parents and times.
//! The recorder must outlive the run; everything it records is read after the run ended.
class RunRecorder {
 public:
  //! Wraps `inner` (which must outlive the recorder).
  explicit RunRecorder(agents::WorkflowFactory& inner);
  ~RunRecorder();
  RunRecorder(const RunRecorder&) = delete;
  RunRecorder& operator=(const RunRecorder&) = delete;

  //! The factory to run the replay with: makes `inner`'s workflows in a recording env.
  agents::WorkflowFactory& factory();

  //! The recorded workload of a finished replay of `arrivals` (times relative to the replay's start, as in
  //! `arrivals`); question i is arrival i. `instances` and `source` are copied into it.
  workloads::Workload workload(const std::vector<workloads::Arrival>& arrivals, const RealtimeReplay& replay,
                               std::vector<workloads::RecordedInstance> instances, std::string source) const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace t2s::server

namespace t2s::scheduler {

//! Makes a setup simulate what it describes with fitted cost models: instances named in `iterations` (the
//! records of `iterations.jsonl`) get their model fitted on their own samples; for a recorded workload, its
//! engine/remote instances become simulated ones with the recorded capacity, KV blocks and token budget (which
//! need a fit). Returns one line per instance saying what it runs on; throws InputError for an instance that
//! cannot be simulated, or iterations naming an instance the cluster lacks.
std::vector<std::string> prepare_fitted_setup(ReplaySetup& setup, const std::vector<IterationRecord>& iterations);

//! Replayed vs recorded service times of calls (recorded runs).
struct ServiceError {
  size_t calls = 0;                        //!< calls compared
  double mean_abs_rel = 0, p50_abs_rel = 0, p95_abs_rel = 0;  //!< |replayed − recorded| / recorded
  double bias_rel = 0;                     //!< mean (replayed − recorded) / recorded
  //! The calls the replay placed on the instance they ran on in the recording, and their error: the cost model's
  //! own error, without the calls a diverging placement sent to an instance of another speed.
  size_t same_instance = 0;
  double same_mean_abs_rel = 0, same_p50_abs_rel = 0, same_p95_abs_rel = 0, same_bias_rel = 0;
};

//! The error of `samples`.
ServiceError service_error(const std::vector<agents::ServiceSample>& samples);

//! `metrics_json` text with the service-time comparison added (`replay_service_calls`,
//! `replay_service_abs_rel_error_{mean,p50,p95}`, `replay_service_bias_rel`, and the same for the calls on their
//! recorded instance: `replay_service_same_instance`, `replay_service_same_instance_abs_rel_error_{mean,p50,p95}`,
//! `replay_service_same_instance_bias_rel`).
std::string with_service_error(const std::string& metrics_json, const ServiceError& error);

//! A real run's metrics.json against its simulated replay's: the figures issue 17 holds the replay to.
struct RunComparison {
  std::string real_policy, sim_policy;
  size_t real_workflows = 0, sim_workflows = 0, real_completed = 0, sim_completed = 0;
  double real_p50_s = 0, sim_p50_s = 0, real_p95_s = 0, sim_p95_s = 0;
  double real_slo = 0, sim_slo = 0;           //!< SLO attainment (fractions)
  double p50_gap_rel = 0, p95_gap_rel = 0;    //!< (sim − real) / real
  double slo_gap_points = 0;                  //!< 100 × (sim − real)
  std::optional<double> real_prediction_mean;  //!< the real run's online cost-model service error (mean |rel|)
  std::optional<size_t> service_calls;         //!< the replay's per-call comparison (recorded runs)
  std::optional<double> service_mean, service_p50, service_p95, service_bias;
  std::optional<size_t> service_same_calls;    //!< of them, on the instance they ran on in the recording
  std::optional<double> service_same_mean, service_same_p50, service_same_p95, service_same_bias;
  //! Latency gaps within `latency_rel` and attainment within `slo_points`.
  bool within(double latency_rel, double slo_points) const;
};

//! Compares two metrics.json documents (a folder holding metrics.json may be given for either); throws
//! InputError naming the file and field when one is missing or not a metrics file.
RunComparison compare_runs(const std::string& real_metrics, const std::string& sim_metrics);

//! The comparison as a table with the bounds (latency within 15%, goal 10%; attainment within 5 points).
std::string format_comparison(const RunComparison& c);

//! The comparison as JSON.
std::string comparison_json(const RunComparison& c);

}  // namespace t2s::scheduler
