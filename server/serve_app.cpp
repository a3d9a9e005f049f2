#include "server/serve_app.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <future>

#include "agents/oracle.hpp"
#include "agents/text2sql.hpp"
#include "common/status.hpp"
#include "runtime/engine_models.hpp"
#include "scheduler/policy.hpp"
#include "workloads/loaders.hpp"

namespace t2s::server {

namespace {

std::string normalize_question(const std::string& s) {
  std::string o;
  bool space = false;
  for (char c : s) {
    if (std::isspace(static_cast<unsigned char>(c))) {
      space = !o.empty();
      continue;
    }
    if (space) o += ' ';
    space = false;
    o += static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  }
  while (!o.empty() && (o.back() == '?' || o.back() == '.')) o.pop_back();
  return o;
}

// Forwards one workflow's stage events to its asker and to the runtime's timeline.
class StageForwarder final : public agents::WorkflowObserver {
 public:
  StageForwarder(Runtime& rt, QuestionBackend::StageFn fn) : rt_(rt), fn_(std::move(fn)) {}
  void on_stage(const agents::StageEvent& e) override {
    rt_.record_stage(e);
    if (fn_) fn_(e);
  }

 private:
  Runtime& rt_;
  QuestionBackend::StageFn fn_;
};

}  // namespace

std::string default_serve_cluster(const std::string& responder, const std::string& models_dir) {
  if (responder == "model") return "local";
  if (responder == "oracle") return "hetero-small";
  if (responder != "auto") throw InputError("--responder '" + responder + "' (expected auto, model or oracle)");
  return std::filesystem::is_regular_file(std::filesystem::path(models_dir) / kBundledModelFile) ? "local"
                                                                                                 : "hetero-small";
}

struct QuestionService::Impl {
  ServeConfig cfg;
  Logger* log = nullptr;
  workloads::Workload workload;
  std::map<std::string, std::map<std::string, size_t>> by_text;  // db → normalized question → index
  std::string mode;
  bool oracle = false;
  std::unique_ptr<agents::WorkflowFactory> factory;
  std::unique_ptr<Runtime> rt;
  MetricsRegistry metrics;
  std::atomic<uint64_t> next_id{0};
  struct Running {
    std::unique_ptr<StageForwarder> observer;
    std::unique_ptr<agents::Workflow> workflow;
  };
  std::map<uint64_t, Running> running;  // loop thread only
  bool stopped = false;
};

QuestionService::QuestionService(ServeConfig config, Logger* log) : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  m.cfg = std::move(config);
  m.log = log;
  if (!m.cfg.db_dir.empty()) {
    // The user's folder is only ever read: its databases are opened read-only and nothing is generated there.
    m.workload = workloads::load_database_folder(m.cfg.db_dir);
  } else {
    workloads::WorkloadSpec ws;
    ws.kind = m.cfg.workload;
    ws.data_dir = m.cfg.data_dir;
    ws.cache_dir = m.cfg.cache_dir;
    ws.seed = m.cfg.seed;
    m.workload = workloads::load_workload(ws);
  }
  for (size_t i = 0; i < m.workload.questions.size(); ++i) {
    const auto& q = m.workload.questions[i];
    m.by_text[q.db_id].emplace(normalize_question(q.question), i);
  }
  if (m.cfg.cluster.empty()) m.cfg.cluster = default_serve_cluster(m.cfg.responder, models_dir());
  auto cluster = scheduler::load_cluster(m.cfg.cluster);
  resolve_engine_models(cluster, m.cfg.cluster, m.cfg.model, m.cfg.runtime);
  bool has_sim = false, all_sim = true;
  for (const auto& s : cluster.instances) {
    if (s.backend == scheduler::Backend::sim) has_sim = true;
    else all_sim = false;
  }
  if (m.cfg.responder == "oracle" && !has_sim)
    throw InputError("--responder oracle needs simulated instances, but cluster '" + cluster.name +
                     "' has only engine/remote ones (use --cluster hetero-small or leave --cluster out)");
  if (m.cfg.responder == "model" && has_sim)
    throw InputError("--responder model: cluster '" + cluster.name + "' has simulated instances, which only the "
                     "oracle can answer (use --cluster local or a file of engine/remote instances)");
  std::shared_ptr<agents::Responder> responder;
  if (has_sim && m.workload.questions.empty())
    throw InputError("--db-dir serves free-text questions, which only a model can answer, but cluster '" +
                     cluster.name + "' has simulated (oracle) instances: use --cluster local or a cluster file of "
                     "engine/remote instances");
  if (has_sim) {
    agents::OracleOptions oo;
    oo.seed = m.cfg.seed;
    oo.error_scale = m.cfg.oracle_error_scale;
    responder = agents::make_oracle_responder(m.workload, oo);
    m.oracle = true;
  }
  m.mode = all_sim ? "oracle: LLM answers come from the calibrated oracle (gold SQL with realistic mistakes) at the "
                     "modelled speed of cluster '" + cluster.name + "', so only the benchmark's own questions can "
                     "be answered"
                   : has_sim ? "mixed: simulated instances answer with the oracle, engine/remote instances with "
                               "their model"
                             : "model: every call is answered by the instances' model";
  // Say which model answers: the instance names with their model files (engine) or served models (remote).
  std::string models;
  for (const auto& s : cluster.instances) {
    if (s.backend == scheduler::Backend::sim) continue;
    const std::string what = s.backend == scheduler::Backend::engine
                                 ? std::filesystem::path(s.model_file).filename().string()
                                 : s.remote_model + " at " + s.url;
    models += (models.empty() ? "" : ", ") + s.name + " = " + what;
  }
  if (!models.empty()) m.mode += " (" + models + ")";
  auto registry = scheduler::default_policy_registry();
  std::string policy = m.cfg.policy;
  if (policy.empty()) policy = registry.has("t2s") ? "t2s" : "least-loaded";
  scheduler::PolicyContext ctx;
  ctx.cluster = &cluster;
  ctx.seed = m.cfg.seed;
  auto pol = registry.make(policy, ctx);
  pol.name = policy;
  agents::AgentOptions ao;
  ao.seed = m.cfg.seed;
  // The server never reports correctness against gold: executing the gold query in select() would run SQLite on
  // the runtime's event loop and stall every other workflow behind it.
  ao.score_correctness = false;
  m.factory = agents::make_text2sql_factory(m.workload, ao);
  m.cfg.runtime.metrics = &m.metrics;
  m.metrics.histogram("t2s_question_latency_seconds", "question latency, accepted to result",
                      {0.5, 1, 2, 4, 8, 16, 32, 64});
  m.metrics.histogram("t2s_llm_call_seconds", "LLM call service time per instance",
                      {0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30});
  m.metrics.histogram("t2s_llm_queue_seconds", "LLM call queueing time per instance",
                      {0.001, 0.01, 0.03, 0.1, 0.3, 1, 3, 10});
  m.metrics.histogram("t2s_sql_seconds", "SQLite execution time", {0.0001, 0.001, 0.01, 0.1, 1});
  m.metrics.counter("t2s_questions_total", "finished questions by outcome");
  m.rt = std::make_unique<Runtime>(cluster, std::move(pol), m.cfg.runtime, responder, log);
  if (log)
    log->info("serve_ready", {{"workload", m.workload.name},
                              {"databases", static_cast<unsigned long long>(m.workload.databases.size())},
                              {"cluster", cluster.name},
                              {"policy", policy},
                              {"answers", m.mode}});
}

QuestionService::~QuestionService() { stop(); }

void QuestionService::stop() {
  auto& m = *impl_;
  if (!m.rt || m.stopped) return;
  m.stopped = true;
  std::promise<void> done;
  m.rt->post([&m, &done] {
    for (auto& [id, r] : m.running)
      if (r.workflow) r.workflow->cancel();
    m.running.clear();
    done.set_value();
  });
  done.get_future().wait_for(std::chrono::seconds(5));
  m.rt->stop();
}

bool QuestionService::has_database(const std::string& db) const { return impl_->workload.databases.count(db) > 0; }

std::vector<std::string> QuestionService::databases() const {
  std::vector<std::string> v;
  for (const auto& [id, d] : impl_->workload.databases) v.push_back(id);
  return v;
}

uint64_t QuestionService::next_workflow_id() { return ++impl_->next_id; }
double QuestionService::now() const { return impl_->rt->now(); }
Runtime& QuestionService::runtime() { return *impl_->rt; }
const std::string& QuestionService::answer_mode() const { return impl_->mode; }
MetricsRegistry& QuestionService::metrics() { return impl_->metrics; }

std::map<std::string, std::vector<std::string>> QuestionService::examples(size_t n) const {
  std::map<std::string, std::vector<std::string>> out;
  for (const auto& q : impl_->workload.questions) {
    auto& v = out[q.db_id];
    if (v.size() < n) v.push_back(q.question);
  }
  return out;
}

void QuestionService::start(uint64_t id, const AskFrame& ask, StageFn on_stage, DoneFn on_done) {
  auto& m = *impl_;
  double budget = (ask.deadline_ms > 0 ? ask.deadline_ms : m.cfg.deadline_ms) / 1000.0;
  m.rt->post([&m, id, ask, budget, on_stage = std::move(on_stage), on_done = std::move(on_done)]() mutable {
    double t = m.rt->now();
    workloads::Question q;
    auto dbit = m.by_text.find(ask.db);
    size_t index = 0;
    bool known = false;
    if (dbit != m.by_text.end())
      if (auto it = dbit->second.find(normalize_question(ask.question)); it != dbit->second.end()) {
        index = it->second;
        q = m.workload.questions[index];
        known = true;
      }
    if (!known) {
      if (m.oracle) {
        agents::WorkflowOutcome o;
        o.workflow_id = id;
        o.failed = true;
        o.arrival_s = o.finished_s = t;
        o.error = "the oracle answers only the benchmark's own questions; pick one of the example questions of '" +
                  ask.db + "', or serve a model (--responder model) for free text";
        on_done(o);
        return;
      }
      q.id = "live:" + std::to_string(id);
      q.db_id = ask.db;
      q.question = ask.question;
      q.evidence = ask.evidence;
    }
    workloads::Arrival a{id, index, t, t + budget};
    m.rt->record_workflow(id, q.db_id + ": " + q.question.substr(0, 60), t, a.deadline_s, -1, false);
    auto& slot = m.running[id];
    slot.observer = std::make_unique<StageForwarder>(*m.rt, std::move(on_stage));
    auto done = [&m, id, a, on_done = std::move(on_done)](const agents::WorkflowOutcome& o) {
      bool ok = o.completed && !o.failed && !o.cancelled && o.sql_executed;
      m.rt->record_workflow(id, "", a.arrival_s, a.deadline_s, o.finished_s, ok);
      m.metrics.add("t2s_questions_total",
                    {{"outcome", o.cancelled ? "cancelled" : ok ? (o.finished_s <= o.deadline_s ? "met" : "late")
                                                                 : "failed"}});
      if (ok) m.metrics.observe("t2s_question_latency_seconds", {}, o.finished_s - o.arrival_s);
      on_done(o);
      // The workflow object may still be on the stack: drop it on a later turn of the loop.
      m.rt->post([&m, id] { m.running.erase(id); });
    };
    try {
      slot.workflow = m.factory->make(q, a, *m.rt, done, slot.observer.get());
      slot.workflow->start();
    } catch (const std::exception& e) {
      agents::WorkflowOutcome o;
      o.workflow_id = id;
      o.failed = true;
      o.error = e.what();
      o.arrival_s = t;
      o.finished_s = m.rt->now();
      done(o);
    }
  });
}

void QuestionService::cancel(uint64_t id) {
  auto& m = *impl_;
  m.rt->post([&m, id] {
    auto it = m.running.find(id);
    if (it != m.running.end() && it->second.workflow) it->second.workflow->cancel();
  });
}

std::string QuestionService::status_json() const {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("answers");
  w.String(impl_->mode.c_str());
  w.Key("runtime");
  auto rs = impl_->rt->status_json();
  w.RawValue(rs.c_str(), rs.size(), rapidjson::kObjectType);
  w.EndObject();
  return sb.GetString();
}

void attach_serve_routes(HttpServer& server, QuestionService& svc, std::shared_ptr<QuestionApi> api) {
  server.websocket("/ws", api);
  server.route("GET", "/", [](const HttpRequest&, std::shared_ptr<HttpReply> r) {
    r->send({200, "text/html; charset=utf-8", timeline_page_html(), {}});
  });
  server.route("GET", "/healthz", [](const HttpRequest&, std::shared_ptr<HttpReply> r) {
    r->send({200, "text/plain; charset=utf-8", "ok\n", {}});
  });
  server.route("GET", "/trace.json", [&svc](const HttpRequest&, std::shared_ptr<HttpReply> r) {
    r->send({200, "application/json", svc.runtime().trace_json(), {{"Content-Disposition", "inline; filename=trace.json"}}});
  });
  server.route("GET", "/timeline.json", [&svc](const HttpRequest& q, std::shared_ptr<HttpReply> r) {
    double since = 0;
    if (auto p = q.query.find("since="); p != std::string::npos) since = std::atof(q.query.c_str() + p + 6);
    r->send({200, "application/json", svc.runtime().timeline_json(since), {{"Cache-Control", "no-store"}}});
  });
  server.route("GET", "/api/info", [&svc](const HttpRequest&, std::shared_ptr<HttpReply> r) {
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    w.StartObject();
    w.Key("answers");
    w.String(svc.answer_mode().c_str());
    w.Key("policy");
    w.String(svc.runtime().policy_name().c_str());
    w.Key("databases");
    w.StartObject();
    for (const auto& [db, qs] : svc.examples(12)) {
      w.Key(db.c_str(), static_cast<rapidjson::SizeType>(db.size()));
      w.StartArray();
      for (const auto& q : qs) w.String(q.c_str(), static_cast<rapidjson::SizeType>(q.size()));
      w.EndArray();
    }
    w.EndObject();
    w.EndObject();
    r->send({200, "application/json", sb.GetString(), {}});
  });
  server.route("GET", "/metrics", [&svc, api, &server](const HttpRequest&, std::shared_ptr<HttpReply> r) {
    auto& m = svc.metrics();
    svc.runtime().export_metrics(m);
    auto s = api->stats();
    m.set("t2s_questions_in_flight", {}, static_cast<double>(s.in_flight));
    m.set("t2s_ws_connections", {}, static_cast<double>(s.connections));
    m.set("t2s_questions_rejected_overloaded_total", {}, static_cast<double>(s.rejected_overloaded));
    m.set("t2s_protocol_errors_total", {}, static_cast<double>(s.protocol_errors));
    auto n = server.stats();
    m.set("t2s_http_connections_open", {}, static_cast<double>(n.connections_open));
    m.set("t2s_http_connections_rejected_total", {}, static_cast<double>(n.connections_rejected));
    m.set("t2s_http_connections_evicted_total", {}, static_cast<double>(n.connections_evicted));
    m.set("t2s_http_slow_readers_dropped_total", {}, static_cast<double>(n.slow_readers_dropped));
    m.set("t2s_http_requests_refused_total", {}, static_cast<double>(n.requests_refused));
    m.set("t2s_http_bad_requests_total", {}, static_cast<double>(n.bad_requests));
    double finished = static_cast<double>(s.results);
    m.set("t2s_slo_attainment", {}, finished > 0 ? static_cast<double>(s.deadline_met) / finished : 0);
    r->send({200, "text/plain; version=0.0.4; charset=utf-8", m.render(), {}});
  });
}

}  // namespace t2s::server
