// The real-time runtime: the scheduler's policy objects on the wall clock over responder, remote and engine
// instances, replaying trace workflows for real.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include "agents/trace_workflow.hpp"
#include "runtime/metrics.hpp"
#include "runtime/runtime.hpp"
#include "scheduler/iteration_log.hpp"
#include "scheduler/policy.hpp"
#include "tests/scheduler/deadline_workflow.hpp"
#include "tests/server/fake_openai.hpp"
#include "tests/server/runtime_support.hpp"
#include "engine/backend.hpp"
#include "engine/batch_runner.hpp"
#include "runtime/executors.hpp"
#include "tests/engine/tiny_model.hpp"
#include "tests/support.hpp"

#include <algorithm>
#include <atomic>
#include <thread>
#include <future>
#include <mutex>
#include <sstream>

using namespace t2s;
using namespace t2s::server;
using t2s::server::test::make_policy;

namespace {

workloads::Workload trace_workload(int questions) {
  workloads::Workload w;
  w.name = "test-trace";
  for (int k = 0; k < questions; ++k) {
    workloads::Question q;
    q.id = "t:" + std::to_string(k);
    q.trace_calls = {{"agent", 300, 10},
                     {"generate_candidate", 1500, 40 + 10 * k},
                     {"generate_candidate", 1500, 60},
                     {"revise", 1200, 30}};
    w.questions.push_back(q);
  }
  return w;
}

std::vector<workloads::Arrival> arrivals_for(const workloads::Workload& w, double gap_s, double budget_s) {
  std::vector<workloads::Arrival> v;
  for (size_t k = 0; k < w.questions.size(); ++k)
    v.push_back({k + 1, k, gap_s * static_cast<double>(k), gap_s * static_cast<double>(k) + budget_s});
  return v;
}

scheduler::InstanceSpec sim_instance(const std::string& name) {
  scheduler::InstanceSpec s;
  s.name = name;
  s.backend = scheduler::Backend::sim;
  s.gpu = scheduler::gpu_profile("A100-80G");
  s.model = scheduler::model_profile("llama-3.1-8b");
  s.max_running = 8;
  return s;
}

}  // namespace

TEST_CASE("runtime: responder instances replay trace workflows on the wall clock", "[server][concurrent]") {
  auto w = trace_workload(6);
  scheduler::ClusterSpec cluster{"two-sim", {sim_instance("a"), sim_instance("b")}};
  RuntimeOptions o;
  o.responder_speed = 10;  // modelled seconds run 10× faster
  Runtime rt(cluster, make_policy("least-loaded", cluster), o, agents::make_trace_responder());
  CHECK(rt.llm().context_tokens() == 0);  // simulated instances: no window, no tokenizer to report
  CHECK(rt.llm().count_tokens("hello") == -1);
  auto factory = agents::make_trace_factory(w);
  auto r = replay_realtime(rt, w, arrivals_for(w, 0.01, 30), *factory, 30);
  REQUIRE(r.outcomes.size() == 6);
  for (const auto& out : r.outcomes) {
    CHECK(out.completed);
    CHECK_FALSE(out.failed);
    CHECK(out.llm_calls == 4);
  }
  auto st = rt.stats();
  CHECK(st.calls_ok == 24);
  CHECK(st.calls_failed == 0);
  auto calls = rt.calls();
  REQUIRE(calls.size() == 24);
  bool used[2] = {false, false};
  for (const auto& c : calls) {
    REQUIRE(c.instance >= 0);
    used[c.instance] = true;
    CHECK(c.alt_completion_s.size() == 2);
    CHECK(c.finished_s >= c.started_s);
    CHECK(c.started_s >= c.dispatched_s);
  }
  CHECK(used[0]);
  CHECK(used[1]);
  // The runtime adds little to the modelled service time: measured vs the cost model's standalone prediction.
  auto p = rt.prediction_report();
  CHECK(p.calls == 24);
  CHECK(p.service_mean_abs_rel < 0.25);
  // Trace: one complete event per call plus queue waits, parseable.
  rapidjson::Document d;
  d.Parse(rt.trace_json().c_str());
  REQUIRE_FALSE(d.HasParseError());
  int llm = 0;
  for (const auto& e : d["traceEvents"].GetArray())
    if (std::string(e["ph"].GetString()) == "X" && std::string(e["cat"].GetString()) == "llm") ++llm;
  CHECK(llm == 24);
  rapidjson::Document tl;
  tl.Parse(rt.timeline_json(0).c_str());
  REQUIRE_FALSE(tl.HasParseError());
  CHECK(tl["calls"].Size() == 24);
  CHECK(tl["instances"].Size() == 2);
  CHECK(tl["workflows"].Size() == 6);
}

TEST_CASE("runtime: cancel of a workflow cancels its queued and running calls", "[server][concurrent]") {
  auto w = trace_workload(1);
  scheduler::ClusterSpec cluster{"one-sim", {sim_instance("a")}};
  RuntimeOptions o;
  o.responder_speed = 0.5;  // slow: the cancel lands while calls run
  Runtime rt(cluster, make_policy("rr-fcfs", cluster), o, agents::make_trace_responder());
  auto factory = agents::make_trace_factory(w);
  std::promise<agents::WorkflowOutcome> p;
  std::unique_ptr<agents::Workflow> wf;
  workloads::Arrival a{1, 0, rt.now(), rt.now() + 100};
  rt.post([&] {
    wf = factory->make(w.questions[0], a, rt, [&](const agents::WorkflowOutcome& o2) { p.set_value(o2); }, nullptr);
    wf->start();
  });
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  rt.post([&] { wf->cancel(); });
  auto f = p.get_future();
  REQUIRE(f.wait_for(std::chrono::seconds(5)) == std::future_status::ready);
  CHECK(f.get().cancelled);
  std::promise<void> gone;
  rt.post([&] {
    wf.reset();
    gone.set_value();
  });
  gone.get_future().wait();
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (rt.stats().calls_cancelled == 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(rt.stats().calls_cancelled >= 1);
  CHECK(rt.stats().calls_ok == 0);
}

TEST_CASE("runtime: a remote instance killed mid-stream has its calls re-dispatched and workflows complete",
          "[server][concurrent]") {
  server::test::FakeOpenAi healthy_server, dying_server;
  dying_server.drop_after = 2;  // the first call it streams kills it after two deltas
  dying_server.delay_ms = 20;
  auto remote = [](const std::string& name, const std::string& url) {
    auto s = server::test::remote_instance(name, url);
    s.remote_model = "fake";
    return s;
  };
  scheduler::ClusterSpec cluster{"remotes", {remote("dying", dying_server.url()), remote("ok", healthy_server.url())}};
  RuntimeOptions o;
  o.unhealthy_s = 30;
  Runtime rt(cluster, make_policy("rr-fcfs", cluster), o, nullptr);
  auto w = trace_workload(3);
  auto factory = agents::make_trace_factory(w);
  auto r = replay_realtime(rt, w, arrivals_for(w, 0.0, 60), *factory, 30);
  for (const auto& out : r.outcomes) {
    CHECK(out.completed);
    CHECK_FALSE(out.failed);
  }
  auto st = rt.stats();
  CHECK(st.redispatched >= 1);
  CHECK(st.calls_ok == 12);
  int moved = 0;
  for (const auto& c : rt.calls()) {
    CHECK(c.ok);
    if (c.attempts >= 2) {
      ++moved;
      CHECK(c.instance == 1);
    }
  }
  CHECK(moved >= 1);
  rt.stop();
}

TEST_CASE("runtime: embedded engine instance runs calls and refits its cost model online", "[server][shared]") {
  auto model = t2s::test::shared_data("llama2c/stories260K.bin");
  scheduler::InstanceSpec s;
  s.name = "cpu0";
  s.backend = scheduler::Backend::engine;
  s.model_file = model;
  s.device = "cpu";
  s.threads = 1;
  s.max_running = 8;
  scheduler::ClusterSpec cluster{"engine", {s}};
  RuntimeOptions o;
  o.engine_tokenizer = t2s::test::shared_data("llama2c/tok512.bin");
  o.refit_every = 8;
  Runtime rt(cluster, make_policy("edf", cluster), o, nullptr);
  auto w = trace_workload(3);
  auto factory = agents::make_trace_factory(w);
  auto r = replay_realtime(rt, w, arrivals_for(w, 0.0, 60), *factory, 60);
  for (const auto& out : r.outcomes) CHECK(out.completed);
  auto st = rt.stats();
  CHECK(st.calls_ok == 12);
  CHECK(st.refits >= 1);
  for (const auto& c : rt.calls()) CHECK(c.output_tokens > 0);
}

TEST_CASE("runtime: an engine instance with device cuda runs; without a device it falls back to the cpu with one "
          "warn line and gives the cpu instance's text", "[server]") {
  t2s::test::TinyModel tiny;
  const std::string model = tiny.dir.file("m.bin"), tok = tiny.dir.file("t.bin");
  const std::vector<std::string> prompts = {"hello", " ab cd", " the quick brown fox"};
  auto cpu = server::test::embedded_texts(model, tok, prompts, 20, "cpu");
  std::ostringstream logs;
  Logger log(LogLevel::warn, &logs);
  auto cuda = server::test::embedded_texts(model, tok, prompts, 20, "cuda", &log);
  REQUIRE(cuda.size() == prompts.size());
  if (!engine::cuda_device_available()) {
    CHECK(cuda == cpu);
    const std::string text = logs.str();
    CHECK(text.find("event=engine_backend_fallback instance=embedded requested=cuda") != std::string::npos);
    CHECK(std::count(text.begin(), text.end(), '\n') == 1);
  }
}

TEST_CASE("runtime: remotes that drip, hang mid-call or answer garbage fail in time; their calls are re-dispatched "
          "and every workflow completes once",
          "[server][faults][concurrent]") {
  std::string mode = GENERATE(as<std::string>{}, "drip", "hang", "garbage");
  server::test::FakeOpenAi healthy_server, bad_server;
  if (mode == "drip") bad_server.drip_ms = 50;       // a keep-alive comment every 50 ms, never a token
  if (mode == "hang") bad_server.hang_after = 1;     // one delta, then silence
  if (mode == "garbage") bad_server.garbage = true;  // 200 and an event stream of HTML
  auto remote = [](const std::string& name, const std::string& url) {
    auto s = server::test::remote_instance(name, url);
    s.remote_model = "fake";
    return s;
  };
  scheduler::ClusterSpec cluster{"remotes", {remote("bad", bad_server.url()), remote("ok", healthy_server.url())}};
  RuntimeOptions o;
  o.unhealthy_s = 30;
  o.remote_call_timeout_s = 1.0;   // bounds the drip
  o.remote_idle_timeout_s = 0.5;   // bounds the hang
  Runtime rt(cluster, make_policy("rr-fcfs", cluster), o, nullptr);
  auto w = trace_workload(3);
  auto factory = agents::make_trace_factory(w);
  auto t0 = std::chrono::steady_clock::now();
  auto r = replay_realtime(rt, w, arrivals_for(w, 0.0, 60), *factory, 30);
  double took = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  INFO("mode " << mode);
  REQUIRE(r.outcomes.size() == 3);
  for (const auto& out : r.outcomes) {
    CHECK(out.completed);
    CHECK_FALSE(out.failed);
  }
  auto st = rt.stats();
  CHECK(st.redispatched >= 1);
  CHECK(st.calls_ok == 12);  // each of the 12 calls answered once
  for (const auto& c : rt.calls()) {
    CHECK(c.ok);
    if (c.attempts >= 2) CHECK(c.instance == 1);
  }
  CHECK(took < 10);
  rt.stop();
}

TEST_CASE("runtime: a call refused as longer than the context is not re-dispatched; remotes report their window",
          "[server][faults]") {
  server::test::FakeOpenAi refusing, other;
  refusing.too_long = true;
  other.too_long = true;  // whichever instance the policy picks refuses: the call must still be tried only once
  refusing.context = 512;
  other.context = 2048;
  auto remote = [](const std::string& name, const std::string& url) {
    auto s = server::test::remote_instance(name, url);
    s.remote_model = "fake";
    return s;
  };
  scheduler::ClusterSpec cluster{"remotes", {remote("small", refusing.url()), remote("big", other.url())}};
  RuntimeOptions o;
  Runtime rt(cluster, make_policy("rr-fcfs", cluster), o, nullptr);
  CHECK(rt.llm().context_tokens() == 512);  // the smallest window the remotes report, from /v1/models
  auto res = server::test::run_call(rt, "a prompt", 4);
  CHECK_FALSE(res.ok);
  CHECK(res.error.find("HTTP 400") != std::string::npos);
  REQUIRE(rt.calls().size() == 1);
  CHECK(rt.calls()[0].attempts == 1);
  CHECK(refusing.requests.load() + other.requests.load() == 1);
  rt.stop();
}

TEST_CASE("runtime: a cluster file's context_tokens overrides /v1/models, and api_key_env supplies the bearer token",
          "[server][faults]") {
  server::test::FakeOpenAi locked("s3cret-token");
  locked.context = 4096;
  auto spec = server::test::remote_instance("r", locked.url());
  spec.remote_model = "fake";
  spec.context_tokens = 300;  // the operator knows better than the server's report
  spec.api_key_env = "T2S_TEST_REMOTE_KEY";
  scheduler::ClusterSpec cluster{"remote", {spec}};
  RuntimeOptions o;
  ::unsetenv("T2S_TEST_REMOTE_KEY");
  CHECK_THROWS_WITH(Runtime(cluster, make_policy("rr-fcfs", cluster), o, nullptr),
                    Catch::Contains("api_key_env names 'T2S_TEST_REMOTE_KEY', which is not set"));
  ::setenv("T2S_TEST_REMOTE_KEY", "wrong", 1);
  {
    Runtime rt(cluster, make_policy("rr-fcfs", cluster), o, nullptr);
    auto res = server::test::run_call(rt, "a prompt", 4);
    CHECK_FALSE(res.ok);  // 401: the wrong key is refused
    rt.stop();
  }
  ::setenv("T2S_TEST_REMOTE_KEY", "s3cret-token", 1);
  Runtime rt(cluster, make_policy("rr-fcfs", cluster), o, nullptr);
  CHECK(rt.llm().context_tokens() == 300);
  auto res = server::test::run_call(rt, "a prompt", 4);
  CHECK(res.ok);
  CHECK(res.text.find("SELECT") != std::string::npos);
  rt.stop();
  ::unsetenv("T2S_TEST_REMOTE_KEY");
}

TEST_CASE("runtime: at the deadline a workflow ends at once, its running and queued calls cancelled",
          "[server][deadline]") {
  scheduler::ClusterSpec cluster{"one-sim", {sim_instance("a")}};
  cluster.instances[0].max_running = 1;  // the second workflow's call waits in the queue
  RuntimeOptions o;
  o.responder_speed = 1;  // 500 + 2,000 tokens of llama-3.1-8b on an A100: seconds, far past the deadlines
  Runtime rt(cluster, make_policy("rr-fcfs", cluster), o, std::make_shared<t2s::test::ScriptResponder>());
  workloads::Workload w;
  w.questions.resize(1);
  w.questions[0].id = "q";
  t2s::test::DeadlineFactory factory;
  factory.prompt = 500;
  factory.output = 2000;
  const std::vector<workloads::Arrival> arrivals = {{1, 0, 0.0, 0.3}, {2, 0, 0.0, 0.4}};
  const auto t0 = std::chrono::steady_clock::now();
  auto r = replay_realtime(rt, w, arrivals, factory, 30);
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(wall < 3.0);
  REQUIRE(r.outcomes.size() == 2);
  for (size_t k = 0; k < 2; ++k) {
    INFO(k);
    CHECK(r.outcomes[k].ended_early);
    const double budget = arrivals[k].deadline_s - arrivals[k].arrival_s;
    CHECK(r.outcomes[k].finished_s - r.outcomes[k].arrival_s >= budget - 1e-3);
    CHECK(r.outcomes[k].finished_s - r.outcomes[k].arrival_s < budget + 0.25);  // at once, not at the call's end
  }
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (rt.stats().calls_cancelled < 2 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(rt.stats().calls_cancelled == 2);
  CHECK(rt.stats().calls_ok == 0);

  // Observability: the dispatch of each call in the trace, with the estimates and the slack; counters typed counter.
  const std::string trace = rt.trace_json();
  CHECK(trace.find("\"name\":\"dispatch candidate_generation\"") != std::string::npos);
  CHECK(trace.find("\"est_a_s\"") != std::string::npos);
  CHECK(trace.find("\"slack_s\"") != std::string::npos);
  MetricsRegistry reg;
  rt.export_metrics(reg);
  const std::string prom = reg.render();
  CHECK(prom.find("# TYPE t2s_sql_executions_total counter") != std::string::npos);
  CHECK(prom.find("# TYPE t2s_llm_calls_redispatched_total counter") != std::string::npos);
  CHECK(prom.find("# TYPE t2s_instance_queue_depth gauge") != std::string::npos);
}

namespace {

// FCFS with a fixed prefill chunk cap; records the progress of the running calls it is shown.
struct CappedFcfs final : scheduler::LocalQueuePolicy {
  int cap = 0;
  int max_mid_prefill = 0;  // largest `prefilled` seen on a call that had not finished its prompt yet
  int max_decoded = 0;
  explicit CappedFcfs(int c) : cap(c) {}
  int next(const scheduler::InstanceState& inst, double) override { return inst.waiting.empty() ? -1 : 0; }
  int prefill_chunk_tokens(const scheduler::InstanceState& inst) const override {
    auto* self = const_cast<CappedFcfs*>(this);
    for (const auto& r : inst.running) {
      if (!r.prefill_done()) self->max_mid_prefill = std::max(max_mid_prefill, r.prefilled);
      self->max_decoded = std::max(max_decoded, r.decoded);
    }
    return cap;
  }
};

struct CapRun {
  std::vector<std::string> texts;
  int max_prefill = 0, mid_prefill = 0, decoded = 0;
};

// One embedded engine instance ("embedded") of the tiny model.
scheduler::ClusterSpec tiny_engine_cluster(const t2s::test::TinyModel& tiny, int max_running) {
  scheduler::InstanceSpec eng;
  eng.name = "embedded";
  eng.backend = scheduler::Backend::engine;
  eng.model_file = tiny.dir.file("m.bin");
  eng.max_running = max_running;
  return {"embedded", {eng}};
}

CapRun run_with_cap(const t2s::test::TinyModel& tiny, int cap, const std::vector<std::string>& prompts) {
  const auto cluster = tiny_engine_cluster(tiny, 8);
  auto policy = make_policy("rr-fcfs", cluster);
  auto local = std::make_unique<CappedFcfs>(cap);
  CappedFcfs* seen = local.get();
  policy.local[0] = std::move(local);
  RuntimeOptions ro;
  ro.engine_tokenizer = tiny.dir.file("t.bin");
  std::mutex mu;
  CapRun out;
  ro.on_iteration = [&](size_t, const scheduler::IterationShape& s, double, double) {
    std::lock_guard lk(mu);
    out.max_prefill = std::max(out.max_prefill, s.prefill_tokens);
  };
  Runtime rt(cluster, std::move(policy), ro, nullptr);
  std::vector<agents::LlmCall> calls;
  std::vector<std::promise<agents::LlmResult>> done(prompts.size());
  std::vector<agents::LlmClient::Callback> cbs;
  for (size_t k = 0; k < prompts.size(); ++k) {
    agents::LlmCall c;
    c.id = rt.next_call_id();
    c.workflow_id = 1;
    c.prompt = prompts[k];
    c.prompt_tokens = rt.llm().count_tokens(prompts[k]);
    c.max_output_tokens = c.expected_output_tokens = 12;
    calls.push_back(c);
    cbs.push_back([&done, k](const agents::LlmResult& r) { done[k].set_value(r); });
  }
  rt.llm().submit(calls, cbs);
  for (auto& p : done) {
    auto f = p.get_future();
    REQUIRE(f.wait_for(std::chrono::seconds(60)) == std::future_status::ready);
    auto r = f.get();
    REQUIRE(r.ok);
    out.texts.push_back(r.text);
  }
  rt.stop();
  out.mid_prefill = seen->max_mid_prefill;
  out.decoded = seen->max_decoded;
  return out;
}

}  // namespace

TEST_CASE("runtime: an engine instance obeys the local policy's prefill chunk cap, and its running calls follow the "
          "engine's progress", "[server]") {
  t2s::test::TinyModel tiny;
  const std::vector<std::string> prompts = {" the quick brown fox jumps over the lazy dog and runs far away home",
                                            " ab cd ef gh ij kl mn op qr st uv wx yz ab cd ef gh ij kl mn op",
                                            " hello there, a longer prompt than the chunk cap of eight tokens"};
  const auto free = run_with_cap(tiny, 0, prompts);
  const auto capped = run_with_cap(tiny, 8, prompts);
  // Three calls of a few dozen tokens: uncapped, some iteration prefills more than 3 x 8 tokens; capped, none does.
  CHECK(free.max_prefill > 24);
  CHECK(capped.max_prefill <= 24);
  // The policy saw calls part-way through their prompt (chunks of 8) and decoding: progress reached the runtime.
  CHECK(capped.mid_prefill >= 8);
  CHECK(capped.decoded >= 1);
  CHECK(capped.texts == free.texts);  // chunking does not change greedy output
}

TEST_CASE("runtime: initial iterations warm-start an instance's cost model (replay --fit on a real run)", "[server]") {
  t2s::test::TinyModel tiny;
  const auto cluster = tiny_engine_cluster(tiny, 4);
  // Iterations of a known linear model, ten times slower than the CPU prior: 20 ms + 500 µs per prompt token +
  // 10 ms per decoding sequence + 10 µs per attended position.
  std::vector<scheduler::IterationSample> seed;
  for (int k = 0; k < 64; ++k) {
    scheduler::IterationSample s;
    s.shape.prefill_tokens = (k % 4) * 32;
    s.shape.decode_seqs = 1 + k % 3;
    s.shape.decode_context = 100 + 37 * k;
    s.seconds = 0.02 + 5e-4 * s.shape.prefill_tokens + 1e-2 * s.shape.decode_seqs + 1e-5 * s.shape.decode_context;
    seed.push_back(s);
  }
  RuntimeOptions cold;
  cold.engine_tokenizer = tiny.dir.file("t.bin");
  RuntimeOptions warm = cold;
  warm.initial_samples["embedded"] = seed;
  Runtime a(cluster, make_policy("rr-fcfs", cluster), cold, nullptr);
  Runtime b(cluster, make_policy("rr-fcfs", cluster), warm, nullptr);
  scheduler::CostModel expected(cluster.instances[0]);
  expected.set_fitted(scheduler::fit_instance_iterations(seed).value());
  CHECK(b.reference_seconds(200, 20) == Approx(expected.standalone_s(200, 20)).epsilon(1e-9));
  CHECK(a.reference_seconds(200, 20) < 0.5 * expected.standalone_s(200, 20));  // the prior
  // Iterations that cannot be fitted are refused by name.
  RuntimeOptions bad = cold;
  bad.initial_samples["embedded"] = {seed[0]};
  CHECK_THROWS_WITH(Runtime(cluster, make_policy("rr-fcfs", cluster), bad, nullptr), Catch::Contains("embedded"));
}

TEST_CASE("runtime: measurement work (scoring against gold) runs off the loop and is not a tool run",
          "[server][concurrent]") {
  scheduler::ClusterSpec cluster{"one-sim", {sim_instance("a")}};
  Runtime rt(cluster, make_policy("rr-fcfs", cluster), RuntimeOptions{}, agents::make_trace_responder());
  std::promise<void> measured, ticked;
  std::atomic<bool> work_on_loop{true}, done_on_loop{false}, tick_first{false};
  std::atomic<bool> ticked_yet{false};
  rt.post([&] {
    rt.run_measurement(
        [&] {
          work_on_loop = rt.on_loop();
          std::this_thread::sleep_for(std::chrono::milliseconds(200));  // a slow gold query
        },
        [&] {
          done_on_loop = rt.on_loop();
          tick_first = ticked_yet.load();
          measured.set_value();
        });
    // The loop stays free meanwhile: a timer 20 ms later fires long before the measurement ends.
    rt.at(rt.now() + 0.02, [&] {
      ticked_yet = true;
      ticked.set_value();
    });
  });
  REQUIRE(measured.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  REQUIRE(ticked.get_future().wait_for(std::chrono::seconds(10)) == std::future_status::ready);
  CHECK_FALSE(work_on_loop);
  CHECK(done_on_loop);
  CHECK(tick_first);
  CHECK(rt.stats().tool_runs == 0);
}

TEST_CASE("runtime: an engine iteration is recorded in the simulator's shape: prompt rows with their attention, "
          "decode rows with their context", "[server][runtime][cluster-core]") {
  engine::StepReport rep;
  rep.calls = {{1, 1, 40, true}, {2, 10, 0, false}, {3, 1, 7, true}, {4, 6, 20, false}, {5, 0, 3, false}};
  const auto s = iteration_shape(rep);
  CHECK(s.prefill_tokens == 16);
  CHECK(s.prefill_attn == Approx(10 * (0 + 5.0) + 6 * (20 + 3.0)));
  CHECK(s.decode_seqs == 2);
  CHECK(s.decode_context == 41 + 8);
  // The same shapes the simulator prices: a prompt chunk and a decode step cost what prefill_s / decode_step_s say.
  const auto cluster = scheduler::cluster_preset("hetero-small");
  const scheduler::CostModel cm(cluster.instances[0]);
  engine::StepReport chunk;
  chunk.calls = {{9, 48, 100, false}};
  CHECK(cm.iteration_s(iteration_shape(chunk)) == Approx(cm.prefill_s(48, 100, 48)));
  engine::StepReport decode;
  decode.calls = {{1, 1, 299, true}, {2, 1, 99, true}};
  CHECK(cm.iteration_s(iteration_shape(decode)) == Approx(cm.decode_step_s(2, 400)));
}
