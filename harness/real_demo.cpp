#include "harness/real_demo.hpp"

#include <algorithm>
#include <cstdio>
#include <ostream>

#include "common/json.hpp"
#include "common/status.hpp"
#include "scheduler/instance.hpp"
#include "scheduler/iteration_log.hpp"

namespace t2s::server {

namespace {

// Two instances of one model that differ in speed: two threads and one. (On a 2-core machine they share the cores,
// which is what a heterogeneous cluster's slower member looks like to the scheduler.)
std::string two_instance_cluster(const std::string& model_file) {
  rapidjson::StringBuffer b;
  rapidjson::Writer<rapidjson::StringBuffer> w(b);
  w.StartObject();
  w.Key("instances");
  w.StartArray();
  for (int threads : {2, 1}) {
    w.StartObject();
    w.Key("name"), w.String(("cpu-" + std::to_string(threads) + "t").c_str());
    w.Key("backend"), w.String("engine");
    w.Key("model_file"), w.String(model_file.c_str());
    w.Key("device"), w.String("cpu");
    w.Key("threads"), w.Int(threads);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return b.GetString();
}

}  // namespace

RealDemoResult run_real_demo(const scheduler::ReplaySetup& setup, const scheduler::PolicyRegistry& registry,
                             const RealDemoOptions& o, std::ostream* progress) {
  if (o.questions < 2 || o.policies.empty() || o.calibration < 1)
    throw InputError("demo real part: needs at least 2 questions, 1 policy and 1 calibration question");
  if (setup.workload.questions.size() < o.questions)
    throw InputError("demo real part: the workload has only " + std::to_string(setup.workload.questions.size()) +
                     " questions");
  RealDemoResult r;
  r.cluster_json = two_instance_cluster(o.model_file);
  scheduler::ReplaySetup rs = setup;
  rs.cluster = scheduler::parse_cluster_json(r.cluster_json, "demo real cluster");
  rs.cluster.name = "2 x cpu engine";
  rs.backend = "engine";
  rs.responder = "model";
  // Every k-th question, so that each of the workload's databases and templates is represented.
  rs.workload.questions.clear();
  for (size_t i = 0; i < o.questions; ++i)
    rs.workload.questions.push_back(setup.workload.questions[i * setup.workload.questions.size() / o.questions]);
  rs.workflows = o.questions;
  rs.standalone_cache = std::make_shared<std::vector<double>>();
  RealtimeRunOptions ro;
  ro.time_limit_s = o.time_limit_s;

  // Calibration: questions alone on an idle cluster give the standalone latency (deadlines) and the LLM work per
  // question (capacity ≈ instances ÷ work, an upper bound since the slower instance is counted as fast).
  double latency = 0, work = 0;
  std::vector<scheduler::IterationRecord> measured;  // the calibration's iterations: the policy runs start from them
  ro.record = true;
  for (size_t i = 0; i < o.calibration; ++i) {
    scheduler::ReplaySetup one = rs;
    one.workload.questions = {rs.workload.questions[i * rs.workload.questions.size() / o.calibration]};
    one.workflows = 1;
    auto run = run_policy_realtime(one, registry, o.policies.front(), 100.0, "abs:600", ro);
    if (run.metrics.completed != 1) throw std::runtime_error("demo real part: a calibration question did not complete");
    latency += run.metrics.latency_p50_s / static_cast<double>(o.calibration);
    work += run.stats.llm_busy_s / static_cast<double>(o.calibration);
    measured.insert(measured.end(), run.iterations.begin(), run.iterations.end());
    if (progress) *progress << "t2s demo (real): calibration " << i + 1 << "/" << o.calibration << "\n";
  }
  // Every policy run starts with each instance's cost model fitted on what the calibration measured there (a warm
  // start, as `t2s replay --fit`): from the CPU prior, t2s misjudged which instance is fast (docs/harness.md).
  ro.record = false;
  for (auto& [name, samples] : scheduler::samples_by_instance(measured))
    if (scheduler::fit_instance_iterations(samples).ok()) ro.runtime.initial_samples[name] = std::move(samples);
  r.warm_instances = ro.runtime.initial_samples.size();
  r.standalone_latency_s = latency;
  r.work_per_question_s = work;
  const double capacity = static_cast<double>(rs.cluster.instances.size()) / std::max(work, 1e-3);
  r.rate = o.load * capacity;
  r.deadline_s = o.slo_scale * latency;
  char slo[64];
  std::snprintf(slo, sizeof slo, "abs:%.3f", r.deadline_s);
  for (const auto& p : o.policies) {
    if (progress) *progress << "t2s demo (real): " << p << " on " << o.questions << " questions\n";
    r.runs.push_back(run_policy_realtime(rs, registry, p, r.rate, slo, ro));
  }
  return r;
}

}  // namespace t2s::server
