#pragma once
//! The real part of `t2s demo`: a few dozen questions answered by t2s's own model on two embedded CPU engine
//! instances of different speed, under several policies, on the wall clock.
#include <string>
#include <vector>

#include "harness/realtime_replay.hpp"

namespace t2s::server {

//! What the real part runs.
struct RealDemoOptions {
  std::string model_file;             //!< the Text-to-SQL model both instances serve
  size_t questions = 24;              //!< questions replayed per policy (spread over the workload's databases)
  std::vector<std::string> policies;  //!< compared policies (same arrivals and deadlines for each)
  double load = 0.8;                  //!< offered rate as a fraction of the capacity the calibration measures
  double slo_scale = 3;               //!< deadline = arrival + this × the mean standalone latency measured alone
  size_t calibration = 3;             //!< questions run alone, one at a time, to measure latency and work
  double time_limit_s = 900;          //!< per policy; workflows still running then are cancelled (counted failed)
};

//! Its outcome.
struct RealDemoResult {
  std::string cluster_json;           //!< the two instances, as a cluster file would give them
  double standalone_latency_s = 0;    //!< mean latency of a question run alone (calibration)
  double work_per_question_s = 0;     //!< mean LLM service seconds a question needs (calibration)
  double rate = 0;                    //!< offered workflows/s
  double deadline_s = 0;              //!< relative deadline of every question
  size_t warm_instances = 0;          //!< instances whose cost model started fitted on the calibration's iterations
  std::vector<RealtimeRunOutput> runs;  //!< one per policy, in options.policies order
};

//! Calibrates on `setup`'s workload (its synthetic databases; SQL really runs), then replays the same arrivals
//! under each policy through the runtime. Progress lines go to `progress` when set.
RealDemoResult run_real_demo(const scheduler::ReplaySetup& setup, const scheduler::PolicyRegistry& registry,
                             const RealDemoOptions& options, std::ostream* progress = nullptr);

}  // namespace t2s::server
