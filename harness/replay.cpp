#include "harness/replay.hpp"

#include <cmath>
#include <mutex>
#include <unordered_map>

#include "agents/oracle.hpp"
#include "agents/text2sql.hpp"
#include "agents/trace_workflow.hpp"
#include "common/status.hpp"

namespace t2s::scheduler {
namespace {

// Memoises a deterministic execution backend: the demo and compare replay the same questions many times, and the
// same (question, query) always gives the same outcome. Only the first execution's measured time is kept; the
// simulator prices tool stages by its own model, so results stay deterministic. One lock around every lookup and
// miss: runs of one setup may go on several threads (`t2s demo` runs policies in parallel), the inner backend's
// connections are not shared-safe, and after the first run almost every lookup hits.
class MemoExecution final : public agents::ExecutionBackend {
 public:
  explicit MemoExecution(std::unique_ptr<agents::ExecutionBackend> inner) : inner_(std::move(inner)) {}
  const sqlexec::Schema& schema(const std::string& db_id) override {
    std::lock_guard lk(mu_);
    return inner_->schema(db_id);
  }
  agents::ExecOutcome execute(const workloads::Question& q, std::string_view sql) override {
    std::lock_guard lk(mu_);
    auto key = q.id + '\n' + std::string(sql);
    auto it = exec_.find(key);
    if (it == exec_.end()) it = exec_.emplace(std::move(key), inner_->execute(q, sql)).first;
    return it->second;
  }
  std::vector<agents::ValueMatch> match_values(const std::string& db_id, const std::vector<std::string>& keywords,
                                               size_t limit) override {
    std::lock_guard lk(mu_);
    std::string key = db_id + '\n' + std::to_string(limit);
    for (const auto& k : keywords) key += '\n' + k;
    auto it = values_.find(key);
    if (it == values_.end()) it = values_.emplace(std::move(key), inner_->match_values(db_id, keywords, limit)).first;
    return it->second;
  }
  std::optional<bool> correct(const workloads::Question& q, std::string_view sql) override {
    std::lock_guard lk(mu_);
    auto key = q.id + '\n' + std::string(sql);
    auto it = correct_.find(key);
    if (it == correct_.end()) it = correct_.emplace(std::move(key), inner_->correct(q, sql)).first;
    return it->second;
  }
  bool simulated() const override { return inner_->simulated(); }

 private:
  std::mutex mu_;
  std::unique_ptr<agents::ExecutionBackend> inner_;
  std::unordered_map<std::string, agents::ExecOutcome> exec_;
  std::unordered_map<std::string, std::vector<agents::ValueMatch>> values_;
  std::unordered_map<std::string, std::optional<bool>> correct_;
};

}  // namespace

ReplaySetup make_setup(const workloads::WorkloadSpec& workload, const std::string& cluster,
                       const std::string& backend) {
  if (backend != "sim" && backend != "engine" && backend != "remote")
    throw InputError("--backend: unknown value '" + backend + "' (expected sim, engine or remote)");
  ReplaySetup s;
  s.backend = backend;
  s.cluster = load_cluster(cluster);
  if (backend == "sim") {
    // A recorded run's engine/remote instances are simulated with fitted models (prepare_fitted_setup).
    for (const auto& i : s.cluster.instances)
      if (i.backend != Backend::sim && workload.kind != "recorded")
        throw InputError("cluster '" + cluster + "': instance '" + i.name +
                         "' is not simulated (backend engine/remote); --backend sim needs GPU+model instances");
  } else {
    const Backend want = backend == "engine" ? Backend::engine : Backend::remote;
    bool any = false;
    for (const auto& i : s.cluster.instances) any = any || i.backend == want;
    if (!any)
      throw InputError("--backend " + backend + ": cluster '" + cluster + "' has no instance with backend '" +
                       backend + "'" + (backend == "engine" ? " (try --cluster local)" : ""));
  }
  s.workload = workloads::load_workload(workload);
  if (s.workload.questions.empty()) throw InputError("workload '" + workload.kind + "' has no questions");
  s.seed = workload.seed;
  bool files = s.workload.execution_available && !s.workload.databases.empty();
  for (const auto& [id, info] : s.workload.databases) files = files && !info.path.empty();
  if (files) {
    const auto metric = s.workload.name.rfind("bird", 0) == 0 ? sqlexec::Metric::bird : sqlexec::Metric::spider;
    // A VM step budget, not a wall deadline, decides: same seed → same outcomes on any machine load.
    s.execution =
        std::make_shared<MemoExecution>(agents::make_sqlite_backend(s.workload, metric, sqlexec::simulated_limits()));
  }
  return s;
}

AgentKit make_agent_kit(const ReplaySetup& setup) {
  bool traces = !setup.workload.questions.empty();
  for (const auto& q : setup.workload.questions) traces = traces && (!q.trace_calls.empty() || q.recorded);
  AgentKit kit;
  // "model": the real instances write the answers; the responder below then only answers the cluster's simulated
  // instances, if any (the real-time runtime runs those at modelled speed).
  const bool model = setup.responder == "model";
  if (model && setup.backend == "sim")
    throw InputError("--responder model: needs the real model of an engine/remote backend (--backend engine|remote)");
  if (traces) {
    agents::TraceFactoryOptions topt;
    if (!setup.workload.recorded_arrivals.empty()) {
      // A recorded run replays the scheduler's view of each call as recorded, and its service times are compared.
      topt.service_log = std::make_shared<agents::ServiceLog>();
      topt.measured_prefix = setup.measured_prefix;
      kit.service_log = topt.service_log;
    }
    kit.factory = agents::make_trace_factory(setup.workload, topt);
    if (!model && setup.responder != "trace" && setup.responder != "oracle")
      throw InputError("--responder " + setup.responder + ": trace workloads are answered by 'trace'");
    // Trace questions carry their recorded lengths; the trace responder replays them (the oracle of a trace).
    kit.responder = agents::make_trace_responder();
    return kit;
  }
  if (!model && setup.responder != "oracle")
    throw InputError("--responder " + setup.responder + ": workload '" + setup.workload.name +
                     "' is answered by the oracle in simulation (trace needs a hexgen-trace workload)");
  agents::AgentOptions agent;
  agent.seed = setup.seed;
  agent.candidates = setup.agent_candidates;
  agent.literal_guide = setup.agent_literal_guide;
  agent.candidate_temperature = setup.candidate_temperature;
  agent.backend = setup.execution;
  kit.factory = agents::make_text2sql_factory(setup.workload, agent);
  agents::OracleOptions oracle;
  oracle.seed = setup.seed;
  oracle.error_scale = setup.oracle_error_scale;
  kit.responder = agents::make_oracle_responder(setup.workload, oracle);
  return kit;
}

const std::vector<double>& standalone_latencies(const ReplaySetup& setup) {
  auto& cache = *setup.standalone_cache;
  if (cache.size() == setup.workload.questions.size()) return cache;
  ClusterSpec one;
  one.name = "reference";
  one.instances = {setup.cluster.instances.at(0)};
  PolicyRegistry reg;
  register_baseline_policies(reg);
  PolicyContext ctx;
  ctx.cluster = &one;
  Policy p = reg.make("rr-fcfs", ctx);
  AgentKit kit = make_agent_kit(setup);
  SimOptions opt = setup.sim;
  opt.trace = nullptr;
  Simulator sim(one, p, *kit.responder, opt);
  std::vector<workloads::Arrival> arr(1);
  arr[0].workflow_id = 1;
  std::vector<double> out;
  for (size_t q = 0; q < setup.workload.questions.size(); ++q) {
    arr[0].question_index = q;
    auto r = sim.run(setup.workload, arr, *kit.factory);
    const auto& o = r.outcomes.at(0);
    if (!o.completed)
      throw InputError("question " + setup.workload.questions[q].id + ": its workflow does not complete standalone (" +
                       o.error + ")");
    out.push_back(o.finished_s - o.arrival_s);
  }
  cache = std::move(out);
  return cache;
}

std::vector<workloads::Arrival> make_run_arrivals(const ReplaySetup& setup, double rate, const std::string& slo) {
  // A recorded run brings its own arrivals and deadlines: rate, arrival process and SLO do not apply.
  if (!setup.workload.recorded_arrivals.empty()) return setup.workload.recorded_arrivals;
  if (!(rate > 0) || !std::isfinite(rate)) throw InputError("--rate must be a positive number of workflows/s");
  const size_t n = setup.workflows ? setup.workflows : setup.workload.questions.size();
  auto arrivals = workloads::make_arrivals(workloads::ArrivalSpec::parse(setup.arrival, rate), n,
                                           setup.workload.questions.size(), setup.seed);
  const std::string slo_text = slo.empty() ? setup.slo : slo;
  const auto* base = setup.workload.questions.data();
  // Called only for relative SLOs (abs:SECONDS needs no standalone latency, so real instances need no profile).
  auto standalone = [&](const workloads::Question& q) {
    const auto& ref = setup.cluster.instances.at(0);
    if (ref.gpu.name.empty() || ref.model.name.empty())
      throw InputError("--slo-scale " + slo_text + ": deadlines relative to the standalone latency need a " +
                       "reference instance (the cluster's first) with 'gpu' and 'model' profiles; '" + ref.name +
                       "' has none: give them in the cluster JSON or use --slo-scale abs:SECONDS");
    return standalone_latencies(setup).at(static_cast<size_t>(&q - base));
  };
  workloads::assign_deadlines(arrivals, setup.workload, standalone, workloads::SloSpec::parse(slo_text));
  return arrivals;
}

RunOutput run_policy(const ReplaySetup& setup, const PolicyRegistry& registry, const std::string& policy, double rate,
                     const std::string& slo, TraceWriter* trace) {
  if (setup.backend != "sim")
    throw InputError("--backend " + setup.backend + ": only `t2s replay` runs the real-time runtime; this command " +
                     "simulates (use --backend sim)");
  auto arrivals = make_run_arrivals(setup, rate, slo);
  Policy p = make_run_policy(setup, registry, policy);
  AgentKit kit = make_agent_kit(setup);
  SimOptions opt = setup.sim;
  opt.seed = setup.seed;
  opt.trace = trace;
  Simulator sim(setup.cluster, p, *kit.responder, opt);
  RunOutput out;
  out.result = sim.run(setup.workload, arrivals, *kit.factory);
  out.metrics = compute_metrics(out.result, make_run_info(setup, policy, rate, slo, kit.responder->name()));
  if (kit.service_log) out.service = std::move(kit.service_log->samples);
  return out;
}

Policy make_run_policy(const ReplaySetup& setup, const PolicyRegistry& registry, const std::string& name) {
  PolicyContext ctx;
  ctx.cluster = &setup.cluster;
  ctx.params = setup.params;
  ctx.seed = setup.seed;
  return registry.make(name, ctx);
}

RunInfo make_run_info(const ReplaySetup& setup, const std::string& policy, double rate, const std::string& slo,
                      const std::string& responder) {
  RunInfo info;
  info.policy = policy;
  info.workload = setup.workload.name;
  info.cluster = setup.cluster.name;
  info.responder = responder;
  info.rate = rate;
  info.seed = setup.seed;
  const std::string slo_text = slo.empty() ? setup.slo : slo;
  info.slo_scale = std::strtod(slo_text.c_str(), nullptr);
  return info;
}

}  // namespace t2s::scheduler
