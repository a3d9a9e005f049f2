#include "harness/realtime_replay.hpp"

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>
#include <cmath>

#include "common/json.hpp"
#include "common/stats.hpp"
#include "harness/recorded_run.hpp"

namespace t2s::server {
namespace {

// The runtime's records in the simulator's result shape, so that the scheduler's metrics code computes the
// same metrics.json fields. Busy time of an instance is the union of its calls' service intervals (a batched
// instance runs several at once; their sum would exceed the wall time).
scheduler::SimResult as_sim_result(const Runtime& rt, const RealtimeReplay& replay, const RuntimeStats& stats) {
  scheduler::SimResult r;
  r.outcomes = replay.outcomes;
  r.wall_s = replay.wall_s;
  r.sql_executions = stats.tool_runs;
  const auto& instances = rt.cluster().instances;
  r.instances.resize(instances.size());
  for (size_t i = 0; i < instances.size(); ++i) r.instances[i].name = instances[i].name;
  std::vector<std::vector<std::pair<double, double>>> spans(instances.size());
  double end = replay.start_s;
  for (const auto& c : rt.calls()) {
    scheduler::CallRecord s;
    s.call_id = c.call_id;
    s.workflow_id = c.workflow_id;
    s.stage_index = c.stage_index;
    s.kind = c.kind;
    s.instance = c.instance;
    s.prompt_tokens = c.prompt_tokens;
    s.cached_tokens = c.cached_tokens;
    s.output_tokens = c.output_tokens;
    s.released_s = c.released_s;
    s.queued_s = c.dispatched_s;
    s.started_s = c.started_s;
    s.finished_s = c.finished_s;
    s.ok = c.ok;
    s.cancelled = c.cancelled;
    r.calls.push_back(s);
    end = std::max(end, c.finished_s);
    if (c.instance < 0 || static_cast<size_t>(c.instance) >= instances.size()) continue;
    auto& is = r.instances[static_cast<size_t>(c.instance)];
    if (c.ok) {
      ++is.calls;
      is.prefill_tokens += static_cast<uint64_t>(std::max(0, c.prompt_tokens - c.cached_tokens));
      is.cached_tokens += static_cast<uint64_t>(std::max(0, c.cached_tokens));
      is.decode_tokens += static_cast<uint64_t>(std::max(0, c.output_tokens));
    }
    if (c.finished_s > c.started_s) spans[static_cast<size_t>(c.instance)].push_back({c.started_s, c.finished_s});
  }
  for (size_t i = 0; i < spans.size(); ++i) {
    auto& v = spans[i];
    std::sort(v.begin(), v.end());
    double busy = 0, lo = 0, hi = -1;
    for (const auto& [a, b] : v) {
      if (a > hi) {
        busy += std::max(0.0, hi - lo);
        lo = a;
        hi = b;
      } else {
        hi = std::max(hi, b);
      }
    }
    busy += std::max(0.0, hi - lo);
    r.instances[i].busy_s = busy;
  }
  for (const auto& o : replay.outcomes) end = std::max(end, o.finished_s);
  r.end_s = end - replay.start_s;
  return r;
}

// The instances as the runtime ran them: what a simulation of the run must mirror.
std::vector<workloads::RecordedInstance> recorded_instances(const Runtime& rt, const RuntimeOptions& opt) {
  rapidjson::Document d;
  d.Parse(rt.status_json().c_str());
  const auto& specs = rt.cluster().instances;
  std::vector<workloads::RecordedInstance> out;
  if (d.HasParseError() || !d.IsObject() || !d.HasMember("instances") || !d["instances"].IsArray() ||
      d["instances"].Size() != specs.size())
    throw std::runtime_error("runtime status JSON lacks its instances");
  for (rapidjson::SizeType i = 0; i < d["instances"].Size(); ++i) {
    const auto& v = d["instances"][i];
    const auto& spec = specs[i];
    workloads::RecordedInstance r;
    r.name = spec.name;
    r.kind = json::opt_string(v, "kind", "");
    r.capacity = static_cast<int>(json::opt_int(v, "capacity", 0));
    r.kv_blocks = static_cast<int>(json::opt_int(v, "kv_total", 0));
    // The engine's paged KV uses 16-token blocks and the runtime's iteration budget; others follow their spec.
    r.block_tokens = r.kind == "engine" ? 16 : spec.block_tokens;
    r.max_batch_tokens = r.kind == "engine" ? opt.engine_max_batch_tokens : r.kind == "remote" ? 0 : spec.max_batch_tokens;
    out.push_back(std::move(r));
  }
  return out;
}

}  // namespace

PredictionError prediction_error(const std::vector<CallRecord>& calls) {
  std::vector<double> err;
  for (const auto& c : calls)
    if (c.ok && c.measured_service_s > 0 && std::isfinite(c.predicted_service_s))
      err.push_back(std::abs(c.predicted_service_s - c.measured_service_s) / c.measured_service_s);
  PredictionError p;
  p.calls = err.size();
  if (err.empty()) return p;
  p.mean_abs_rel = mean(err);
  p.p50_abs_rel = quantile(err, 0.50);
  p.p95_abs_rel = quantile(err, 0.95);
  return p;
}

RealtimeRunOutput run_policy_realtime(const scheduler::ReplaySetup& setup, const scheduler::PolicyRegistry& registry,
                                      const std::string& policy, double rate, const std::string& slo,
                                      const RealtimeRunOptions& options) {
  if (!(options.time_limit_s > 0)) throw InputError("--time-limit must be > 0 seconds");
  // The runtime lets a responder answer only simulated instances (at modelled speed); real ones always answer with
  // their model, so oracle/trace on a cluster without simulated instances would silently mean "model".
  bool simulated = false;
  for (const auto& i : setup.cluster.instances) simulated = simulated || i.backend == scheduler::Backend::sim;
  if (setup.responder != "model" && !simulated)
    throw InputError("--responder " + setup.responder + ": with --backend " + setup.backend +
                     " only the cluster's simulated instances answer by responder, and cluster '" +
                     setup.cluster.name + "' has none; use --responder model or add simulated instances");
  auto arrivals = scheduler::make_run_arrivals(setup, rate, slo);
  scheduler::AgentKit kit = scheduler::make_agent_kit(setup);
  const std::string responder = setup.responder == "model" ? "model" : kit.responder->name();
  std::shared_ptr<agents::Responder> sim_responder(std::move(kit.responder));
  RuntimeOptions ropt = options.runtime;
  std::unique_ptr<RunRecorder> recorder;
  // Written on the event loop only, read after the runtime stopped.
  auto iterations = std::make_shared<std::vector<scheduler::IterationRecord>>();
  if (options.record) {
    recorder = std::make_unique<RunRecorder>(*kit.factory);
    std::vector<std::string> names;
    for (const auto& i : setup.cluster.instances) names.push_back(i.name);
    ropt.on_iteration = [iterations, names, chain = ropt.on_iteration](size_t i, const scheduler::IterationShape& shape,
                                                                        double seconds, double t_s) {
      iterations->push_back({i < names.size() ? names[i] : std::string(), t_s, {shape, seconds}});
      if (chain) chain(i, shape, seconds, t_s);
    };
  }
  Runtime rt(setup.cluster, scheduler::make_run_policy(setup, registry, policy), ropt, sim_responder, options.log);
  RealtimeRunOutput out;
  out.replay = replay_realtime(rt, setup.workload, arrivals, recorder ? recorder->factory() : *kit.factory,
                               options.time_limit_s);
  rt.stop();
  out.stats = rt.stats();
  if (recorder) {
    out.recorded = recorder->workload(arrivals, out.replay, recorded_instances(rt, ropt),
                                      "policy=" + policy + " cluster=" + setup.cluster.name + " backend=" +
                                          setup.backend + " workload=" + setup.workload.name);
    for (auto& it : *iterations) it.t_s -= out.replay.start_s;
    out.iterations = std::move(*iterations);
  }
  auto sim = as_sim_result(rt, out.replay, out.stats);
  out.metrics = scheduler::compute_metrics(sim, scheduler::make_run_info(setup, policy, rate, slo, responder));
  // The runtime ran nothing but this replay, so all its call records are the replay's.
  out.prediction = prediction_error(rt.calls());
  out.trace_json = rt.trace_json();
  return out;
}

std::string realtime_metrics_json(const RealtimeRunOutput& run, const std::string& backend, double time_limit_s) {
  const std::string base = scheduler::metrics_json(run.metrics, false);
  rapidjson::Document d;
  d.Parse(base.c_str());
  if (d.HasParseError() || !d.IsObject()) throw std::runtime_error("metrics_json produced invalid JSON");
  auto& a = d.GetAllocator();
  auto num = [](double v) { return std::isfinite(v) ? rapidjson::Value(v) : rapidjson::Value(rapidjson::kNullType); };
  size_t cancelled = 0;
  for (const auto& o : run.replay.outcomes) cancelled += o.cancelled;
  d.AddMember("backend", rapidjson::Value(backend.c_str(), a), a);
  d.AddMember("time_limit_s", num(time_limit_s), a);
  d.AddMember("cancelled_at_time_limit", rapidjson::Value(static_cast<uint64_t>(cancelled)), a);
  d.AddMember("calls_failed", rapidjson::Value(run.stats.calls_failed), a);
  d.AddMember("calls_redispatched", rapidjson::Value(run.stats.redispatched), a);
  d.AddMember("prediction_calls", rapidjson::Value(static_cast<uint64_t>(run.prediction.calls)), a);
  d.AddMember("prediction_service_abs_rel_error_mean", num(run.prediction.mean_abs_rel), a);
  d.AddMember("prediction_service_abs_rel_error_p50", num(run.prediction.p50_abs_rel), a);
  d.AddMember("prediction_service_abs_rel_error_p95", num(run.prediction.p95_abs_rel), a);
  d.AddMember("prediction_completion_abs_rel_error_mean", num(run.replay.prediction.completion_mean_abs_rel), a);
  rapidjson::StringBuffer sb;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
  w.SetIndent(' ', 2);
  d.Accept(w);
  return std::string(sb.GetString(), sb.GetSize()) + "\n";
}

}  // namespace t2s::server
