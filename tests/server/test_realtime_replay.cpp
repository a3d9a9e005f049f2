// `t2s replay --backend remote`: the simulator's replay setup run for real through the runtime over loopback
// OpenAI-compatible servers; metrics.json carries the contract's fields plus the cost model's prediction error.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <cmath>
#include <filesystem>

#include "harness/real_demo.hpp"
#include "harness/realtime_replay.hpp"
#include "runtime/engine_models.hpp"
#include "scheduler/policy.hpp"
#include "tests/server/fake_openai.hpp"
#include "tests/support.hpp"

using namespace t2s;

namespace {

scheduler::InstanceSpec remote_instance(const std::string& name, const std::string& url) {
  scheduler::InstanceSpec s;
  s.name = name;
  s.backend = scheduler::Backend::remote;
  s.url = url;
  s.remote_model = "fake";
  s.max_running = 4;
  return s;
}

scheduler::ReplaySetup trace_setup(const std::string& url_a, const std::string& url_b, int questions) {
  scheduler::ReplaySetup s;
  s.workload.name = "test-trace";
  for (int k = 0; k < questions; ++k) {
    workloads::Question q;
    q.id = "t:" + std::to_string(k);
    q.trace_calls = {{"agent", 200, 8}, {"generate_candidate", 600, 12 + k}, {"generate_candidate", 600, 10},
                     {"revise", 400, 8}};
    s.workload.questions.push_back(q);
  }
  s.cluster = {"loopback", {remote_instance("a", url_a), remote_instance("b", url_b)}};
  s.backend = "remote";
  s.responder = "model";
  s.slo = "abs:30";  // the remote instances carry no GPU/model profile to take standalone latencies from
  s.workflows = static_cast<size_t>(questions);
  return s;
}

}  // namespace

TEST_CASE("realtime replay: remote instances complete every workflow; metrics.json has the contract fields and "
          "the prediction error",
          "[server]") {
  server::test::FakeOpenAi server_a, server_b;
  auto setup = trace_setup(server_a.url(), server_b.url(), 4);
  auto registry = scheduler::default_policy_registry();
  server::RealtimeRunOptions opt;
  opt.time_limit_s = 20;
  auto run = server::run_policy_realtime(setup, registry, "least-loaded", 50.0, "", opt);

  REQUIRE(run.replay.outcomes.size() == 4);
  CHECK(run.metrics.workflows == 4);
  CHECK(run.metrics.completed + run.metrics.failed == run.metrics.workflows);
  CHECK(run.metrics.completed == 4);          // loopback servers are healthy: nothing may fail
  CHECK(run.metrics.llm_calls == 16);         // 4 trace calls per workflow
  CHECK(run.metrics.slo_attainment == 1.0);   // 30 s budgets for sub-second workflows
  CHECK(run.prediction.calls == 16);
  CHECK(std::isfinite(run.prediction.mean_abs_rel));
  CHECK(run.prediction.p50_abs_rel <= run.prediction.p95_abs_rel);

  rapidjson::Document d;
  d.Parse(server::realtime_metrics_json(run, "remote", opt.time_limit_s).c_str());
  REQUIRE_FALSE(d.HasParseError());
  for (const char* k : {"policy", "rate", "workflows", "completed", "failed", "slo_attainment", "latency_p50_s",
                        "latency_p95_s", "latency_p99_s", "throughput_wf_per_s", "goodput_wf_per_s", "makespan_s",
                        "llm_calls", "sql_executions", "wall_s", "backend", "prediction_calls",
                        "prediction_service_abs_rel_error_mean", "prediction_service_abs_rel_error_p50",
                        "prediction_service_abs_rel_error_p95"}) {
    INFO(k);
    CHECK(d.HasMember(k));
  }
  CHECK(std::string(d["policy"].GetString()) == "least-loaded");
  CHECK(std::string(d["backend"].GetString()) == "remote");
  CHECK(d["workflows"].GetUint64() == 4);
  CHECK(d["prediction_calls"].GetUint64() == 16);
  // The prediction error in the JSON is the one computed from the runtime's call records.
  CHECK(d["prediction_service_abs_rel_error_mean"].GetDouble() == Approx(run.prediction.mean_abs_rel));

  rapidjson::Document t;
  t.Parse(run.trace_json.c_str());
  REQUIRE_FALSE(t.HasParseError());
  CHECK(t.HasMember("traceEvents"));
}

TEST_CASE("realtime replay: a workflow still running at the time limit is counted failed", "[server]") {
  server::test::FakeOpenAi slow;
  slow.delay_ms = 200;  // every streamed delta takes 0.2 s: a workflow needs seconds
  auto setup = trace_setup(slow.url(), slow.url(), 2);
  auto registry = scheduler::default_policy_registry();
  server::RealtimeRunOptions opt;
  opt.time_limit_s = 0.3;
  auto run = server::run_policy_realtime(setup, registry, "rr-fcfs", 50.0, "", opt);
  CHECK(run.metrics.workflows == 2);
  CHECK(run.metrics.failed == 2);
  CHECK(run.metrics.completed == 0);
}

TEST_CASE("realtime replay: setups the runtime cannot run are refused with the reason", "[server]") {
  server::test::FakeOpenAi server_a;
  auto setup = trace_setup(server_a.url(), server_a.url(), 1);
  auto registry = scheduler::default_policy_registry();
  setup.slo = "3";  // relative deadlines need a profiled reference instance
  CHECK_THROWS_WITH(server::run_policy_realtime(setup, registry, "rr-fcfs", 1.0),
                    Catch::Contains("abs:SECONDS"));
  setup.slo = "abs:30";
  setup.responder = "oracle";  // no simulated instance would use it
  CHECK_THROWS_WITH(server::run_policy_realtime(setup, registry, "rr-fcfs", 1.0), Catch::Contains("--responder model"));
  setup.responder = "model";
  CHECK_THROWS_WITH(scheduler::run_policy(setup, registry, "rr-fcfs", 1.0), Catch::Contains("only `t2s replay`"));
  setup.backend = "sim";
  CHECK_THROWS_WITH(scheduler::make_agent_kit(setup), Catch::Contains("--responder model"));
}

TEST_CASE("realtime replay: a simulated instance beside a remote one answers with the trace responder; relative "
          "SLOs use its simulated standalone latency",
          "[server]") {
  server::test::FakeOpenAi server_a;
  auto setup = trace_setup(server_a.url(), server_a.url(), 3);
  scheduler::InstanceSpec sim;
  sim.name = "sim";
  sim.backend = scheduler::Backend::sim;
  sim.gpu = scheduler::gpu_profile("A100-80G");
  sim.model = scheduler::model_profile("llama-3.1-8b");
  sim.max_running = 8;
  setup.cluster.instances = {sim, setup.cluster.instances[0]};  // the first instance is the SLO reference
  setup.responder = "trace";
  setup.slo = "50";
  auto registry = scheduler::default_policy_registry();
  server::RealtimeRunOptions opt;
  opt.time_limit_s = 20;
  opt.runtime.responder_speed = 10;
  auto run = server::run_policy_realtime(setup, registry, "rr-fcfs", 50.0, "", opt);
  CHECK(run.metrics.responder == "trace");
  CHECK(run.metrics.completed == 3);
  CHECK(run.metrics.llm_calls == 12);
  for (const auto& o : run.replay.outcomes) CHECK(o.deadline_s > o.arrival_s);
  REQUIRE(run.metrics.instances.size() == 2);
  CHECK(run.metrics.instances[0].calls + run.metrics.instances[1].calls == 12);
  CHECK(run.metrics.instances[0].calls > 0);  // round robin uses the simulated instance too
}

TEST_CASE("realtime replay: the full Text-to-SQL agent runs end to end on the 512-token stories260K",
          "[server][shared][slow]") {
  // Before prompts were fitted to the model's window, every call of this run was refused (prompts of ~2k tokens).
  workloads::WorkloadSpec ws;
  ws.kind = "spider";
  ws.data_dir = t2s::test::shared_data("spider");
  ws.limit = 2;
  auto setup = scheduler::make_setup(ws, "local", "engine");
  setup.responder = "model";
  setup.slo = "abs:300";
  server::RealtimeRunOptions opt;
  opt.time_limit_s = 300;
  // Named: `local` alone now resolves to t2s's bundled model.
  server::resolve_engine_models(setup.cluster, "local", t2s::test::shared_data("llama2c/stories260K.bin"), opt.runtime);
  auto registry = scheduler::default_policy_registry();
  auto run = server::run_policy_realtime(setup, registry, "edf", 2.0, "", opt);
  CHECK(run.metrics.workflows == 2);
  CHECK(run.metrics.completed == 2);  // stages, SQLite errors fed back, selection: the pipeline ran
  CHECK(run.metrics.failed == 0);
  CHECK(run.stats.calls_failed == 0);  // no call refused by the engine
  CHECK(run.metrics.sql_executions >= 2);
  CHECK(run.metrics.llm_calls >= 10);
  // Every call fitted the window by the engine's own token count.
  rapidjson::Document d;
  d.Parse(run.trace_json.c_str());
  REQUIRE_FALSE(d.HasParseError());
  int llm = 0;
  for (const auto& e : d["traceEvents"].GetArray()) {
    if (std::string(e["ph"].GetString()) != "X" || std::string(e["cat"].GetString()) != "llm") continue;
    ++llm;
    CHECK(e["args"]["prompt_tokens"].GetDouble() + e["args"]["output_tokens"].GetDouble() <= 512);
  }
  CHECK(llm == static_cast<int>(run.metrics.llm_calls));
}

TEST_CASE("realtime replay: t2s's bundled model answers questions of an unseen synthetic seed with SQL that runs",
          "[server][slow]") {
  // The committed model (models/README.md: EX 0.51 on all 240 questions of seed 42). A model that does not write
  // SQL (stories260K, a random one) gets none right and few answers that execute.
  const std::string model = std::string(T2S_SOURCE_DIR) + "/models/" + server::kBundledModelFile;
  REQUIRE(std::filesystem::is_regular_file(model));
  t2s::test::TempDir dir("bundled");
  workloads::WorkloadSpec ws;
  ws.seed = 42;
  ws.limit = 12;
  ws.cache_dir = dir.file("cache");
  auto setup = scheduler::make_setup(ws, "local", "engine");
  setup.responder = "model";
  server::RealtimeRunOptions opt;
  opt.time_limit_s = 300;
  server::resolve_engine_models(setup.cluster, "local", "", opt.runtime);
  REQUIRE(setup.cluster.instances.at(0).model_file == model);  // `local` resolves to it
  auto registry = scheduler::default_policy_registry();
  auto run = server::run_policy_realtime(setup, registry, "t2s", 1.0, "abs:300", opt);
  CHECK(run.metrics.completed == 12);
  CHECK(run.stats.calls_failed == 0);
  REQUIRE(run.metrics.ex_accuracy);
  CHECK(*run.metrics.ex_accuracy >= 0.25);  // 6 of these 12 on this machine
  CHECK(run.metrics.answers_not_executed <= 3);
}

TEST_CASE("demo real part: calibrates on the bundled model and warm-starts every policy run from the calibration's "
          "iterations", "[server][slow]") {
  const std::string model = std::string(T2S_SOURCE_DIR) + "/models/" + server::kBundledModelFile;
  REQUIRE(std::filesystem::is_regular_file(model));
  t2s::test::TempDir dir("real-demo");
  workloads::WorkloadSpec ws;
  ws.seed = 5;
  ws.cache_dir = dir.file("cache");
  auto setup = scheduler::make_setup(ws, "hetero-small", "sim");
  server::RealDemoOptions o;
  o.model_file = model;
  o.questions = 4;
  o.calibration = 2;
  o.policies = {"t2s", "rr-fcfs"};
  o.time_limit_s = 120;
  auto registry = scheduler::default_policy_registry();
  auto r = server::run_real_demo(setup, registry, o);
  CHECK(r.standalone_latency_s > 0);
  CHECK(r.rate > 0);
  CHECK(r.deadline_s == Approx(3 * r.standalone_latency_s));
  CHECK(r.warm_instances >= 1);  // at least the instance the calibration questions ran on
  REQUIRE(r.runs.size() == 2);
  for (const auto& run : r.runs) CHECK(run.metrics.completed == 4);
  CHECK(r.cluster_json.find("\"cpu-2t\"") != std::string::npos);
}
