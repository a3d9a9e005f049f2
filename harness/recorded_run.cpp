#include "harness/recorded_run.hpp"

#include <rapidjson/document.h>
#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>

#include <algorithm>
#include <filesystem>
#include <cmath>
#include <mutex>
#include <stdexcept>

#include "common/json.hpp"
#include "common/stats.hpp"
#include "common/status.hpp"
#include "scheduler/cost_model.hpp"

namespace t2s::server {

struct RunRecorder::Impl {
  struct StageRec {
    agents::StageKind kind = agents::StageKind::other;
    int calls = 0;
    std::vector<uint32_t> parents;
    double start_s = -1, end_s = -1;
    std::vector<uint64_t> call_ids;  // in submission order
  };

  // The env the wrapped workflows see: forwards everything, noting calls as submitted and as ended.
  class Env final : public agents::AgentEnv, public agents::LlmClient {
   public:
    Env(Impl& rec, agents::AgentEnv& inner) : rec_(rec), inner_(inner) {}
    double now() const override { return inner_.now(); }
    agents::LlmClient& llm() override { return *this; }
    void run_tool(uint64_t workflow_id, agents::StageKind kind, std::function<void()> work,
                  std::function<void(double)> done) override {
      inner_.run_tool(workflow_id, kind, std::move(work), std::move(done));
    }
    uint64_t at(double t_s, std::function<void()> fn) override { return inner_.at(t_s, std::move(fn)); }
    void cancel_at(uint64_t timer) override { inner_.cancel_at(timer); }
    uint64_t next_call_id() override { return inner_.next_call_id(); }
    double reference_seconds(int p, int o) const override { return inner_.reference_seconds(p, o); }

    void submit(std::vector<agents::LlmCall> calls, std::vector<Callback> done) override {
      {
        std::lock_guard lk(rec_.mu);
        for (const auto& c : calls) {
          workloads::RecordedCall r;
          r.prompt_tokens = c.prompt_tokens;
          r.max_output_tokens = c.max_output_tokens;
          r.expected_output_tokens = c.expected_output_tokens;
          r.prefix_id = c.prefix_id;
          r.prefix_tokens = c.prefix_id ? c.prefix_tokens : 0;
          rec_.calls[c.id] = r;
          rec_.stages[c.workflow_id][c.stage_index].call_ids.push_back(c.id);
        }
      }
      for (size_t i = 0; i < done.size() && i < calls.size(); ++i)
        done[i] = [this, id = calls[i].id, cb = std::move(done[i])](const agents::LlmResult& res) {
          rec_.on_result(id, res);
          if (cb) cb(res);
        };
      inner_.llm().submit(std::move(calls), std::move(done));
    }
    void cancel(uint64_t call_id) override { inner_.llm().cancel(call_id); }
    int context_tokens() const override { return inner_.llm().context_tokens(); }
    int count_tokens(std::string_view text) const override { return inner_.llm().count_tokens(text); }

   private:
    Impl& rec_;
    agents::AgentEnv& inner_;
  };

  // Stage events: kinds, parents and times; forwarded to the observer the run gave.
  class Observer final : public agents::WorkflowObserver {
   public:
    Observer(Impl& rec, agents::WorkflowObserver* inner) : rec_(rec), inner_(inner) {}
    void on_stage(const agents::StageEvent& e) override {
      {
        std::lock_guard lk(rec_.mu);
        auto& s = rec_.stages[e.workflow_id][e.stage_index];
        if (!e.done) {
          s.kind = e.kind;
          s.calls = e.calls;
          s.parents = e.parents;
          s.start_s = e.t_s;
        } else {
          s.end_s = e.t_s;
        }
      }
      if (inner_) inner_->on_stage(e);
    }

   private:
    Impl& rec_;
    agents::WorkflowObserver* inner_;
  };

  class Factory final : public agents::WorkflowFactory {
   public:
    explicit Factory(Impl& rec) : rec_(rec) {}
    std::unique_ptr<agents::Workflow> make(const workloads::Question& q, const workloads::Arrival& a,
                                           agents::AgentEnv& env, Done done,
                                           agents::WorkflowObserver* observer) override {
      Env* wrapped = nullptr;
      Observer* obs = nullptr;
      {
        std::lock_guard lk(rec_.mu);
        auto& e = rec_.envs[&env];
        if (!e) e = std::make_unique<Env>(rec_, env);
        wrapped = e.get();
        auto& o = rec_.observers[observer];
        if (!o) o = std::make_unique<Observer>(rec_, observer);
        obs = o.get();
      }
      return rec_.inner.make(q, a, *wrapped, std::move(done), obs);
    }

   private:
    Impl& rec_;
  };

  explicit Impl(agents::WorkflowFactory& f) : inner(f), factory(*this) {}

  void on_result(uint64_t id, const agents::LlmResult& res) {
    std::lock_guard lk(mu);
    auto it = calls.find(id);
    if (it == calls.end()) return;
    auto& r = it->second;
    if (res.prompt_tokens > 0) r.prompt_tokens = res.prompt_tokens;
    r.output_tokens = res.output_tokens;
    r.cached_tokens = res.cached_tokens;
    r.instance = res.instance;
    r.ok = res.ok;
    r.service_s = res.ok ? std::max(0.0, res.finished_s - res.started_s) : 0.0;
  }

  agents::WorkflowFactory& inner;
  Factory factory;
  mutable std::mutex mu;
  std::map<uint64_t, std::map<uint32_t, StageRec>> stages;  // workflow → stage index → stage
  std::map<uint64_t, workloads::RecordedCall> calls;        // by call id
  std::map<agents::AgentEnv*, std::unique_ptr<Env>> envs;
  std::map<agents::WorkflowObserver*, std::unique_ptr<Observer>> observers;
};

RunRecorder::RunRecorder(agents::WorkflowFactory& inner) : impl_(std::make_unique<Impl>(inner)) {}
RunRecorder::~RunRecorder() = default;

agents::WorkflowFactory& RunRecorder::factory() { return impl_->factory; }

namespace {

std::string outcome_name(const agents::WorkflowOutcome& o) {
  if (o.cancelled) return "cancelled";
  if (o.failed) return "failed";
  if (o.completed) return o.ended_early ? "ended_early" : "completed";
  return "cancelled";  // never ended (the replay's time limit)
}

}  // namespace

workloads::Workload RunRecorder::workload(const std::vector<workloads::Arrival>& arrivals, const RealtimeReplay& replay,
                                          std::vector<workloads::RecordedInstance> instances,
                                          std::string source) const {
  if (replay.outcomes.size() != arrivals.size())
    throw std::logic_error("RunRecorder::workload: one outcome per arrival expected");
  const auto& m = *impl_;
  std::lock_guard lk(m.mu);
  workloads::Workload w;
  w.name = "recorded";
  w.execution_available = false;
  w.recorded_instances = std::move(instances);
  w.recorded_source = std::move(source);
  for (size_t k = 0; k < arrivals.size(); ++k) {
    const auto& a = arrivals[k];
    const auto& o = replay.outcomes[k];
    const double arrival_abs = replay.start_s + a.arrival_s;
    auto r = std::make_shared<workloads::RecordedWorkflow>();
    r->question_id = o.question_id;
    r->outcome = outcome_name(o);
    r->error = o.error;
    r->sql = o.sql;
    r->sql_executed = o.sql_executed;
    r->has_gold = o.has_gold;
    r->correct = o.correct;
    r->latency_s = std::max(0.0, o.finished_s - o.arrival_s);
    const double end_abs = std::max(o.finished_s, arrival_abs);
    if (auto it = m.stages.find(a.workflow_id); it != m.stages.end()) {
      const uint32_t n = it->second.empty() ? 0 : it->second.rbegin()->first + 1;
      for (uint32_t i = 0; i < n; ++i) {
        workloads::RecordedStage st;
        auto sit = it->second.find(i);
        if (sit == it->second.end() || sit->second.start_s < 0) {
          // Never announced (cannot happen with StagedWorkflow): an instant tool stage keeps the indices.
          st.kind = "other";
          st.tool = true;
          r->stages.push_back(std::move(st));
          continue;
        }
        const auto& s = sit->second;
        st.kind = std::string(agents::stage_kind_name(s.kind));
        st.tool = s.call_ids.empty();
        for (auto p : s.parents)
          if (p < i) st.parents.push_back(p);
        st.start_s = std::max(0.0, s.start_s - arrival_abs);
        st.done = s.end_s >= 0;
        st.duration_s = std::max(0.0, (st.done ? s.end_s : end_abs) - s.start_s);
        for (auto id : s.call_ids) st.calls.push_back(m.calls.at(id));
        r->stages.push_back(std::move(st));
      }
    }
    workloads::Question q;
    q.id = "recorded:" + std::to_string(a.workflow_id);
    q.question = o.question_id;
    q.recorded = std::move(r);
    w.questions.push_back(std::move(q));
    workloads::Arrival ra = a;
    ra.question_index = k;
    w.recorded_arrivals.push_back(ra);
  }
  return w;
}

}  // namespace t2s::server

namespace t2s::scheduler {

std::vector<std::string> prepare_fitted_setup(ReplaySetup& setup, const std::vector<IterationRecord>& iterations) {
  auto by_instance = samples_by_instance(iterations);
  std::vector<std::string> notes;
  for (const auto& [name, samples] : by_instance) {
    bool known = false;
    for (const auto& i : setup.cluster.instances) known = known || i.name == name;
    if (!known)
      throw InputError("--fit: iterations of instance '" + (name.empty() ? std::string("(unnamed)") : name) +
                       "' but cluster '" + setup.cluster.name + "' has no such instance");
  }
  for (auto& spec : setup.cluster.instances) {
    std::string note = spec.name + ": ";
    auto it = by_instance.find(spec.name);
    if (it != by_instance.end()) {
      auto fit = fit_instance_iterations(it->second);
      if (!fit.ok()) throw InputError("--fit: instance '" + spec.name + "': " + fit.error().message());
      setup.sim.fitted_costs[spec.name] = *fit;
      char line[240];
      std::snprintf(line, sizeof line,
                    "fitted on %zu iterations: t = %.3g + %.3g*prefill + %.3g*attn + %.3g*seqs + %.3g*context s "
                    "(rms %.3g s)",
                    fit->samples, fit->c0, fit->c_prefill, fit->c_attn, fit->c_seq, fit->c_ctx, fit->rms_error_s);
      note += line;
    } else if (spec.backend == Backend::sim) {
      note += "no iterations: keeps its preset model (" + spec.gpu.name + " x" + std::to_string(spec.tp) + ", " +
              spec.model.name + ")";
    } else {
      throw InputError("instance '" + spec.name + "' (backend " + (spec.backend == Backend::engine ? "engine" : "remote") +
                       ") has no GPU/model profile and no iterations in --fit: it cannot be simulated");
    }
    if (spec.backend != Backend::sim) {
      // A real instance of the recording becomes a simulated one that admits and batches as it did.
      const workloads::RecordedInstance* ri = nullptr;
      for (const auto& r : setup.workload.recorded_instances)
        if (r.name == spec.name) ri = &r;
      if (!ri || ri->kv_blocks <= 0 || ri->capacity <= 0)
        throw InputError("instance '" + spec.name + "' is not simulated and the workload records no capacity and KV "
                         "blocks for it (simulate a real instance only with --workload recorded of its run)");
      if (ri->kind == "remote")
        note += "; remote: its samples are whole calls, so the fit prices a call as one iteration (approximate)";
      spec.backend = Backend::sim;
      spec.kv_blocks = ri->kv_blocks;
      spec.max_running = ri->capacity;
      spec.block_tokens = ri->block_tokens;
      if (ri->max_batch_tokens > 0) spec.max_batch_tokens = ri->max_batch_tokens;
      spec.chunked_prefill = true;
      // The measured service time of an engine call is its iterations: no per-call overhead on top.
      spec.gpu.call_overhead_s = 0;
    }
    notes.push_back(note);
  }
  return notes;
}

ServiceError service_error(const std::vector<agents::ServiceSample>& samples) {
  ServiceError e;
  std::vector<double> rel, same;
  double bias = 0, same_bias = 0;
  for (const auto& s : samples) {
    if (!(s.recorded_s > 0)) continue;
    const double d = (s.replayed_s - s.recorded_s) / s.recorded_s;
    rel.push_back(std::abs(d));
    bias += d;
    if (s.recorded_instance == s.replayed_instance) {
      same.push_back(std::abs(d));
      same_bias += d;
    }
  }
  e.calls = rel.size();
  e.same_instance = same.size();
  if (!rel.empty()) {
    e.mean_abs_rel = mean(rel);
    e.p50_abs_rel = quantile(rel, 0.50);
    e.p95_abs_rel = quantile(rel, 0.95);
    e.bias_rel = bias / static_cast<double>(rel.size());
  }
  if (!same.empty()) {
    e.same_mean_abs_rel = mean(same);
    e.same_p50_abs_rel = quantile(same, 0.50);
    e.same_p95_abs_rel = quantile(same, 0.95);
    e.same_bias_rel = same_bias / static_cast<double>(same.size());
  }
  return e;
}

std::string with_service_error(const std::string& metrics_json, const ServiceError& e) {
  rapidjson::Document d;
  d.Parse(metrics_json.c_str());
  if (d.HasParseError() || !d.IsObject()) throw std::runtime_error("with_service_error: invalid metrics JSON");
  auto& a = d.GetAllocator();
  auto num = [](size_t n, double v) {
    return n && std::isfinite(v) ? rapidjson::Value(v) : rapidjson::Value(rapidjson::kNullType);
  };
  d.AddMember("replay_service_calls", rapidjson::Value(static_cast<uint64_t>(e.calls)), a);
  d.AddMember("replay_service_abs_rel_error_mean", num(e.calls, e.mean_abs_rel), a);
  d.AddMember("replay_service_abs_rel_error_p50", num(e.calls, e.p50_abs_rel), a);
  d.AddMember("replay_service_abs_rel_error_p95", num(e.calls, e.p95_abs_rel), a);
  d.AddMember("replay_service_bias_rel", num(e.calls, e.bias_rel), a);
  const size_t n = e.same_instance;
  d.AddMember("replay_service_same_instance", rapidjson::Value(static_cast<uint64_t>(n)), a);
  d.AddMember("replay_service_same_instance_abs_rel_error_mean", num(n, e.same_mean_abs_rel), a);
  d.AddMember("replay_service_same_instance_abs_rel_error_p50", num(n, e.same_p50_abs_rel), a);
  d.AddMember("replay_service_same_instance_abs_rel_error_p95", num(n, e.same_p95_abs_rel), a);
  d.AddMember("replay_service_same_instance_bias_rel", num(n, e.same_bias_rel), a);
  rapidjson::StringBuffer sb;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
  w.SetIndent(' ', 2);
  d.Accept(w);
  return std::string(sb.GetString(), sb.GetSize()) + "\n";
}

namespace {

struct MetricsDoc {
  std::string path;
  rapidjson::Document doc;
};

MetricsDoc read_metrics(const std::string& path) {
  MetricsDoc m;
  m.path = std::filesystem::is_directory(path) ? (std::filesystem::path(path) / "metrics.json").string() : path;
  m.doc = json::parse_file(m.path);
  if (!m.doc.IsObject()) throw InputError(m.path + ": expected a metrics.json object");
  return m;
}

// A number field; null (written for NaN) reads as 0.
double number(const MetricsDoc& m, const char* key) {
  auto it = m.doc.FindMember(key);
  if (it == m.doc.MemberEnd()) throw InputError(m.path + ": missing number field '" + key + "' (not a metrics.json?)");
  if (it->value.IsNull()) return 0;
  if (!it->value.IsNumber())
    throw InputError(m.path + ": field '" + key + "' must be a number (not a metrics.json?)");
  return it->value.GetDouble();
}

std::optional<double> opt_number(const MetricsDoc& m, const char* key) {
  auto it = m.doc.FindMember(key);
  if (it == m.doc.MemberEnd() || !it->value.IsNumber()) return std::nullopt;
  return it->value.GetDouble();
}

double gap(double sim, double real) { return real > 0 ? (sim - real) / real : (sim > 0 ? INFINITY : 0.0); }

}  // namespace

bool RunComparison::within(double latency_rel, double slo_points) const {
  return std::abs(p50_gap_rel) <= latency_rel && std::abs(p95_gap_rel) <= latency_rel &&
         std::abs(slo_gap_points) <= slo_points;
}

RunComparison compare_runs(const std::string& real_metrics, const std::string& sim_metrics) {
  const auto real = read_metrics(real_metrics), sim = read_metrics(sim_metrics);
  RunComparison c;
  c.real_policy = json::opt_string(real.doc, "policy", "");
  c.sim_policy = json::opt_string(sim.doc, "policy", "");
  c.real_workflows = static_cast<size_t>(number(real, "workflows"));
  c.sim_workflows = static_cast<size_t>(number(sim, "workflows"));
  c.real_completed = static_cast<size_t>(number(real, "completed"));
  c.sim_completed = static_cast<size_t>(number(sim, "completed"));
  c.real_p50_s = number(real, "latency_p50_s");
  c.sim_p50_s = number(sim, "latency_p50_s");
  c.real_p95_s = number(real, "latency_p95_s");
  c.sim_p95_s = number(sim, "latency_p95_s");
  c.real_slo = number(real, "slo_attainment");
  c.sim_slo = number(sim, "slo_attainment");
  c.p50_gap_rel = gap(c.sim_p50_s, c.real_p50_s);
  c.p95_gap_rel = gap(c.sim_p95_s, c.real_p95_s);
  c.slo_gap_points = 100 * (c.sim_slo - c.real_slo);
  c.real_prediction_mean = opt_number(real, "prediction_service_abs_rel_error_mean");
  if (auto n = opt_number(sim, "replay_service_calls")) {
    c.service_calls = static_cast<size_t>(*n);
    c.service_mean = opt_number(sim, "replay_service_abs_rel_error_mean");
    c.service_p50 = opt_number(sim, "replay_service_abs_rel_error_p50");
    c.service_p95 = opt_number(sim, "replay_service_abs_rel_error_p95");
    c.service_bias = opt_number(sim, "replay_service_bias_rel");
    if (auto m = opt_number(sim, "replay_service_same_instance")) {
      c.service_same_calls = static_cast<size_t>(*m);
      c.service_same_mean = opt_number(sim, "replay_service_same_instance_abs_rel_error_mean");
      c.service_same_p50 = opt_number(sim, "replay_service_same_instance_abs_rel_error_p50");
      c.service_same_p95 = opt_number(sim, "replay_service_same_instance_abs_rel_error_p95");
      c.service_same_bias = opt_number(sim, "replay_service_same_instance_bias_rel");
    }
  }
  return c;
}

std::string format_comparison(const RunComparison& c) {
  char buf[512];
  std::string out;
  std::snprintf(buf, sizeof buf, "%-22s %12s %12s %12s\n", "", "real", "sim", "sim vs real");
  out += buf;
  std::snprintf(buf, sizeof buf, "%-22s %12s %12s\n", "policy", c.real_policy.c_str(), c.sim_policy.c_str());
  out += buf;
  std::snprintf(buf, sizeof buf, "%-22s %6zu/%-5zu %6zu/%-5zu\n", "completed/workflows", c.real_completed,
                c.real_workflows, c.sim_completed, c.sim_workflows);
  out += buf;
  std::snprintf(buf, sizeof buf, "%-22s %12.3f %12.3f %+11.1f%%\n", "latency P50 (s)", c.real_p50_s, c.sim_p50_s,
                100 * c.p50_gap_rel);
  out += buf;
  std::snprintf(buf, sizeof buf, "%-22s %12.3f %12.3f %+11.1f%%\n", "latency P95 (s)", c.real_p95_s, c.sim_p95_s,
                100 * c.p95_gap_rel);
  out += buf;
  std::snprintf(buf, sizeof buf, "%-22s %11.1f%% %11.1f%% %+9.1f pt\n", "SLO attainment", 100 * c.real_slo,
                100 * c.sim_slo, c.slo_gap_points);
  out += buf;
  if (c.service_calls) {
    std::snprintf(buf, sizeof buf,
                  "per-call service time, replayed vs recorded over %zu calls: |error| mean %.1f%% p50 %.1f%% p95 "
                  "%.1f%%, bias %+.1f%%\n",
                  *c.service_calls, 100 * c.service_mean.value_or(0), 100 * c.service_p50.value_or(0),
                  100 * c.service_p95.value_or(0), 100 * c.service_bias.value_or(0));
    out += buf;
  }
  if (c.service_same_calls) {
    std::snprintf(buf, sizeof buf,
                  "  of them the %zu on their recorded instance: |error| mean %.1f%% p50 %.1f%% p95 %.1f%%, bias "
                  "%+.1f%%\n",
                  *c.service_same_calls, 100 * c.service_same_mean.value_or(0), 100 * c.service_same_p50.value_or(0),
                  100 * c.service_same_p95.value_or(0), 100 * c.service_same_bias.value_or(0));
    out += buf;
  }
  if (c.real_prediction_mean) {
    std::snprintf(buf, sizeof buf, "real run's online cost model, service time |error| mean %.1f%%\n",
                  100 * *c.real_prediction_mean);
    out += buf;
  }
  out += std::string("bounds (issue 17): P50/P95 within 15% (goal 10%), attainment within 5 points: ") +
         (c.within(0.15, 5) ? (c.within(0.10, 5) ? "met, and the 10% goal" : "met (not the 10% goal)") : "NOT met") +
         "\n";
  return out;
}

std::string comparison_json(const RunComparison& c) {
  rapidjson::StringBuffer sb;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
  w.SetIndent(' ', 2);
  auto opt = [&](const char* key, const std::optional<double>& v) {
    w.Key(key);
    if (v)
      json::write_number(w, *v);
    else
      w.Null();
  };
  w.StartObject();
  w.Key("real_policy"), w.String(c.real_policy.c_str());
  w.Key("sim_policy"), w.String(c.sim_policy.c_str());
  w.Key("real_workflows"), w.Uint64(c.real_workflows);
  w.Key("sim_workflows"), w.Uint64(c.sim_workflows);
  w.Key("real_completed"), w.Uint64(c.real_completed);
  w.Key("sim_completed"), w.Uint64(c.sim_completed);
  w.Key("real_latency_p50_s"), json::write_number(w, c.real_p50_s);
  w.Key("sim_latency_p50_s"), json::write_number(w, c.sim_p50_s);
  w.Key("real_latency_p95_s"), json::write_number(w, c.real_p95_s);
  w.Key("sim_latency_p95_s"), json::write_number(w, c.sim_p95_s);
  w.Key("real_slo_attainment"), json::write_number(w, c.real_slo);
  w.Key("sim_slo_attainment"), json::write_number(w, c.sim_slo);
  w.Key("latency_p50_gap_rel"), json::write_number(w, c.p50_gap_rel);
  w.Key("latency_p95_gap_rel"), json::write_number(w, c.p95_gap_rel);
  w.Key("slo_attainment_gap_points"), json::write_number(w, c.slo_gap_points);
  w.Key("within_15pct_5pt"), w.Bool(c.within(0.15, 5));
  w.Key("within_10pct_5pt"), w.Bool(c.within(0.10, 5));
  opt("real_prediction_service_abs_rel_error_mean", c.real_prediction_mean);
  w.Key("replay_service_calls");
  if (c.service_calls)
    w.Uint64(*c.service_calls);
  else
    w.Null();
  opt("replay_service_abs_rel_error_mean", c.service_mean);
  opt("replay_service_abs_rel_error_p50", c.service_p50);
  opt("replay_service_abs_rel_error_p95", c.service_p95);
  opt("replay_service_bias_rel", c.service_bias);
  w.Key("replay_service_same_instance");
  if (c.service_same_calls)
    w.Uint64(*c.service_same_calls);
  else
    w.Null();
  opt("replay_service_same_instance_abs_rel_error_mean", c.service_same_mean);
  opt("replay_service_same_instance_abs_rel_error_p50", c.service_same_p50);
  opt("replay_service_same_instance_abs_rel_error_p95", c.service_same_p95);
  opt("replay_service_same_instance_bias_rel", c.service_same_bias);
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize()) + "\n";
}

}  // namespace t2s::scheduler
