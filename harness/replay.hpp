#pragma once
//! One simulated replay end to end (workload → arrivals → deadlines → simulator → metrics), shared by
//! `t2s replay`, `t2s compare`, `t2s demo`, `t2s tune` and the benches.
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agents/execution.hpp"
#include "agents/responder.hpp"
#include "agents/trace_workflow.hpp"
#include "agents/workflow.hpp"
#include "scheduler/metrics.hpp"
#include "scheduler/simulator.hpp"
#include "workloads/arrivals.hpp"
#include "workloads/workload.hpp"

namespace t2s::scheduler {

//! A workflow factory and the responder that answers its calls (fresh per run: factories may learn).
struct AgentKit {
  std::unique_ptr<agents::WorkflowFactory> factory;
  std::unique_ptr<agents::Responder> responder;
  std::shared_ptr<agents::ServiceLog> service_log;  //!< recorded runs: replayed vs recorded call service times
};

//! Everything that fixes a replay except the policy and the rate.
struct ReplaySetup {
  workloads::Workload workload;        //!< the questions
  ClusterSpec cluster;                 //!< the instances
  std::string arrival = "poisson";     //!< "poisson" | "gamma:CV" | "trace:FILE"
  std::string slo = "3";               //!< SloSpec text ("3", "easy=2,hard=4", "abs:30")
  std::string backend = "sim";         //!< "sim" (the simulator) | "engine" | "remote" (the real-time runtime)
  std::string responder = "oracle";    //!< "oracle" | "trace" | "model" (engine/remote: the instances' real model)
  bool measured_prefix = false;        //!< recorded runs: replay measured cache hits (TraceFactoryOptions)
  double oracle_error_scale = 1.0;     //!< 0 = the oracle never errs, 1 = calibrated
  int agent_candidates = 2;            //!< Text-to-SQL agent: parallel candidate calls (AgentOptions::candidates)
  bool agent_literal_guide = true;     //!< Text-to-SQL agent: AgentOptions::literal_guide
  double candidate_temperature = 0.7;  //!< Text-to-SQL agent: AgentOptions::candidate_temperature
  uint64_t seed = 1;                   //!< arrivals, responders, workflows
  size_t workflows = 0;                //!< arrivals to make (0 = one per question)
  std::map<std::string, double> params;  //!< policy knobs
  SimOptions sim;                      //!< simulator knobs (its trace pointer is set per run)
  //! SQL execution shared by every run of the setup (memoised: runs repeat the same queries); null = the agent's
  //! default backend.
  std::shared_ptr<agents::ExecutionBackend> execution;
  //! Standalone latency per question index, computed once on first use (shared by copies of the setup).
  std::shared_ptr<std::vector<double>> standalone_cache = std::make_shared<std::vector<double>>();
};

//! Loads a workload and cluster into a setup. `backend` "sim" needs only simulated instances; "engine"/"remote"
//! need at least one instance of that backend (simulated ones beside it are answered by the responder in real time).
ReplaySetup make_setup(const workloads::WorkloadSpec& workload, const std::string& cluster,
                       const std::string& backend);

//! A fresh agent kit for the setup's workload and responder (trace questions: trace factory; others: the
//! Text-to-SQL agent). Throws InputError when the combination is not available.
AgentKit make_agent_kit(const ReplaySetup& setup);

//! The arrivals of a run at `rate` with deadlines set from each question's standalone latency on the cluster's
//! first instance (the reference) times the SLO scale. Same setup and rate → same arrivals. A recorded workload
//! gives its recorded arrivals and deadlines instead.
std::vector<workloads::Arrival> make_run_arrivals(const ReplaySetup& setup, double rate, const std::string& slo);

//! Standalone latency of every question's workflow alone on the cluster's first instance (simulated), by question
//! index; cached in the setup.
const std::vector<double>& standalone_latencies(const ReplaySetup& setup);

//! The policy `name` built for the setup's cluster, knobs and seed (throws InputError for unknown names).
Policy make_run_policy(const ReplaySetup& setup, const PolicyRegistry& registry, const std::string& name);

//! What a run of `policy` at `rate` under SLO text `slo` ("" = setup.slo) was, for its metrics.
RunInfo make_run_info(const ReplaySetup& setup, const std::string& policy, double rate, const std::string& slo,
                      const std::string& responder);

//! One run's outputs.
struct RunOutput {
  RunMetrics metrics;
  SimResult result;
  std::vector<agents::ServiceSample> service;  //!< recorded runs: each call's replayed vs recorded service time
};

//! Runs `policy` at `rate` (SLO text `slo`, "" = setup.slo) and computes the metrics; records a Perfetto trace
//! into `trace` when given.
RunOutput run_policy(const ReplaySetup& setup, const PolicyRegistry& registry, const std::string& policy, double rate,
                     const std::string& slo = "", TraceWriter* trace = nullptr);

}  // namespace t2s::scheduler
