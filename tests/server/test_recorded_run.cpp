// Recorded runs (issue 17): a real run through the runtime recorded into recorded.json, loaded back with the same
// call DAG, and replayed in the simulator with the same latencies.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <fstream>

#include "harness/realtime_replay.hpp"
#include "harness/recorded_run.hpp"
#include "runtime/engine_models.hpp"
#include "scheduler/policy.hpp"
#include "workloads/recorded.hpp"
#include "tests/support.hpp"

using namespace t2s;

namespace {

scheduler::InstanceSpec responder_instance(const std::string& name, const std::string& gpu) {
  scheduler::InstanceSpec s;
  s.name = name;
  s.backend = scheduler::Backend::sim;
  s.gpu = scheduler::gpu_profile(gpu);
  s.model = scheduler::model_profile("llama-3.1-8b");
  // One call at a time: the responder executor runs each call at its standalone time, which is what the
  // simulator's batching gives a lone call (a batch of several would share iterations in the simulator only).
  s.max_running = 1;
  return s;
}

// Trace questions with a parallel candidate stage (two calls) between sequential ones; lengths differ per question.
scheduler::ReplaySetup responder_setup(int questions) {
  scheduler::ReplaySetup s;
  s.workload.name = "test-trace";
  for (int k = 0; k < questions; ++k) {
    workloads::Question q;
    q.id = "t:" + std::to_string(k);
    q.trace_calls = {{"agent", 200 + 10 * k, 8}, {"generate_candidate", 600, 12 + k}, {"generate_candidate", 500, 10},
                     {"revise", 400 + 20 * k, 8}};
    s.workload.questions.push_back(q);
  }
  // Two instances of different speed.
  s.cluster = {"responders", {responder_instance("fast", "H100-SXM"), responder_instance("slow", "A6000")}};
  s.backend = "engine";  // the real-time runtime (its responder instances answer at modelled speed)
  s.responder = "trace";
  s.slo = "abs:1.0";
  s.workflows = static_cast<size_t>(questions);
  return s;
}

server::RealtimeRunOutput record_run(const scheduler::ReplaySetup& setup, double rate) {
  auto registry = scheduler::default_policy_registry();
  server::RealtimeRunOptions opt;
  opt.time_limit_s = 60;
  opt.record = true;
  return server::run_policy_realtime(setup, registry, "rr-fcfs", rate, "", opt);
}

}  // namespace

TEST_CASE("recorded run: recorded.json of a real run loads back with the same calls, lengths, parents and times",
          "[server][recorded]") {
  auto setup = responder_setup(3);
  auto run = record_run(setup, 4.0);
  REQUIRE(run.metrics.completed == 3);
  REQUIRE(run.recorded);
  const auto& rec = *run.recorded;
  REQUIRE(rec.questions.size() == 3);
  REQUIRE(rec.recorded_instances.size() == 2);
  CHECK(rec.recorded_instances[0].name == "fast");
  CHECK(rec.recorded_instances[0].kind == "responder");
  CHECK(rec.recorded_instances[0].capacity == 1);
  CHECK(rec.recorded_instances[0].kv_blocks > 0);

  // Through the file format and back.
  test::TempDir dir("t2s-recorded");
  {
    std::ofstream(dir.file("recorded.json")) << workloads::format_recorded_run(rec);
  }
  auto loaded = workloads::load_recorded_run(dir.file("recorded.json"));
  REQUIRE(loaded.questions.size() == 3);
  REQUIRE(loaded.recorded_arrivals.size() == 3);

  const auto arrivals = scheduler::make_run_arrivals(setup, 4.0, "");
  for (size_t k = 0; k < 3; ++k) {
    INFO("workflow " << k);
    const auto& q = loaded.questions[k];
    REQUIRE(q.recorded);
    const auto& r = *q.recorded;
    const auto& a = loaded.recorded_arrivals[k];
    CHECK(a.workflow_id == arrivals[k].workflow_id);
    CHECK(a.arrival_s == arrivals[k].arrival_s);    // exact: doubles round-trip
    CHECK(a.deadline_s == arrivals[k].deadline_s);
    CHECK(r.outcome == "completed");
    CHECK(r.question_id == setup.workload.questions[arrivals[k].question_index].id);
    // The trace's three stages: agent → two candidates in parallel → revise, each waiting for the one before.
    const auto& calls = setup.workload.questions[arrivals[k].question_index].trace_calls;
    REQUIRE(r.stages.size() == 3);
    CHECK(r.stages[0].kind == "tool_picker");
    CHECK(r.stages[0].parents.empty());
    CHECK(r.stages[1].kind == "candidate_generation");
    CHECK(r.stages[1].parents == std::vector<uint32_t>{0});
    CHECK(r.stages[2].kind == "revise");
    CHECK(r.stages[2].parents == std::vector<uint32_t>{1});
    REQUIRE(r.stages[1].calls.size() == 2);
    const workloads::RecordedCall* flat[] = {&r.stages[0].calls.at(0), &r.stages[1].calls.at(0),
                                             &r.stages[1].calls.at(1), &r.stages[2].calls.at(0)};
    double stage_end = 0;
    for (size_t c = 0; c < 4; ++c) {
      INFO("call " << c);
      CHECK(flat[c]->prompt_tokens == calls[c].input_tokens);
      CHECK(flat[c]->output_tokens == calls[c].output_tokens);
      CHECK(flat[c]->ok);
      CHECK(flat[c]->prefix_id != 0);  // the trace factory shares a prefix per stage kind
      CHECK((flat[c]->instance == "fast" || flat[c]->instance == "slow"));
      CHECK(flat[c]->service_s > 0);
    }
    for (const auto& st : r.stages) {
      CHECK(st.done);
      CHECK(st.start_s >= stage_end - 1e-9);  // a stage starts after the one it waited for ended
      stage_end = st.start_s + st.duration_s;
    }
    CHECK(stage_end <= r.latency_s + 1e-6);
    CHECK(std::abs(r.latency_s - (run.replay.outcomes[k].finished_s - run.replay.outcomes[k].arrival_s)) < 1e-9);
  }
}

TEST_CASE("recorded run: the simulator replays a responder run with its latencies", "[server][recorded]") {
  auto setup = responder_setup(6);
  auto real = record_run(setup, 3.0);
  REQUIRE(real.metrics.completed == 6);
  REQUIRE(real.recorded);
  CHECK(real.iterations.empty());  // responder instances report no iterations

  scheduler::ReplaySetup sim;
  sim.workload = *real.recorded;
  // The responder executor has no prefix cache (it answers at standalone time with nothing cached); the simulator
  // would serve the recorded shared prefixes from its cache, so they are dropped for this comparison.
  for (auto& q : sim.workload.questions) {
    auto r = std::make_shared<workloads::RecordedWorkflow>(*q.recorded);
    for (auto& st : r->stages)
      for (auto& c : st.calls) c.prefix_id = 0, c.prefix_tokens = 0;
    q.recorded = r;
  }
  sim.cluster = setup.cluster;
  sim.backend = "sim";
  sim.responder = "trace";
  auto notes = scheduler::prepare_fitted_setup(sim, {});
  REQUIRE(notes.size() == 2);
  CHECK(notes[0].find("keeps its preset model") != std::string::npos);

  auto registry = scheduler::default_policy_registry();
  auto out = scheduler::run_policy(sim, registry, "rr-fcfs", 1.0);
  REQUIRE(out.metrics.completed == 6);
  REQUIRE(out.result.outcomes.size() == 6);
  // Tolerance: each workflow is four calls of 0.1-0.4 s on a wall clock; every stage hop crosses the runtime's
  // event loop and a responder thread (about a millisecond each on an idle machine, more on a loaded CI host),
  // so 10% of the latency plus 50 ms covers timer and scheduling jitter while a wrong DAG (a stage released
  // before its parent, a missing call) or a wrong instance speed shifts a workflow by a whole call (>= 100 ms).
  for (size_t k = 0; k < 6; ++k) {
    const auto& ro = real.replay.outcomes[k];
    const auto& so = out.result.outcomes[k];
    const double real_lat = ro.finished_s - ro.arrival_s, sim_lat = so.finished_s - so.arrival_s;
    INFO("workflow " << k << " real " << real_lat << " s, sim " << sim_lat << " s");
    CHECK(std::abs(sim_lat - real_lat) <= 0.10 * real_lat + 0.05);
  }
  CHECK(std::abs(out.metrics.latency_p50_s - real.metrics.latency_p50_s) <= 0.10 * real.metrics.latency_p50_s + 0.05);
  CHECK(std::abs(out.metrics.latency_p95_s - real.metrics.latency_p95_s) <= 0.10 * real.metrics.latency_p95_s + 0.05);
  // Per-call service time: the same physics on both sides.
  const auto e = scheduler::service_error(out.service);
  CHECK(e.calls == 24);
  CHECK(e.p50_abs_rel < 0.05);
  CHECK(e.same_instance == 24);  // round robin in the same order places every call where it ran
}

TEST_CASE("recorded run: the agent on two stories260K engine instances, recorded, fitted and re-simulated",
          "[server][recorded][shared][slow]") {
  workloads::WorkloadSpec ws;
  ws.kind = "spider";
  ws.data_dir = t2s::test::shared_data("spider");
  ws.limit = 2;
  auto setup = scheduler::make_setup(ws, "local", "engine");
  // Two engine instances of the same model: one runs a sequence at a time.
  auto second = setup.cluster.instances.at(0);
  second.name = "local-b";
  second.max_running = 1;
  setup.cluster.instances.push_back(second);
  setup.responder = "model";
  setup.slo = "abs:300";
  server::RealtimeRunOptions opt;
  opt.time_limit_s = 300;
  opt.record = true;
  server::resolve_engine_models(setup.cluster, "local", "", opt.runtime);
  auto registry = scheduler::default_policy_registry();
  auto real = server::run_policy_realtime(setup, registry, "rr-fcfs", 2.0, "", opt);
  REQUIRE(real.metrics.completed == 2);
  REQUIRE(real.recorded);
  // Every engine iteration of both instances was recorded, with its instance's name.
  size_t per[2] = {0, 0};
  for (const auto& it : real.iterations) {
    REQUIRE((it.instance == "local" || it.instance == "local-b"));
    ++per[it.instance == "local" ? 0 : 1];
    CHECK(it.sample.seconds > 0);
  }
  CHECK(per[0] > 10);
  CHECK(per[1] > 10);
  // The recorded DAG has the agent's SQLite stages with their measured time, and every call's engine-side counts.
  size_t tool = 0, calls = 0;
  for (const auto& q : real.recorded->questions)
    for (const auto& st : q.recorded->stages) {
      if (st.tool && st.kind == "sql_execution") {
        ++tool;
        CHECK(st.duration_s > 0);
      }
      for (const auto& c : st.calls) {
        ++calls;
        CHECK(c.prompt_tokens + c.output_tokens <= 512);  // the engine's own counts, within stories260K's window
      }
    }
  CHECK(tool >= 2);
  CHECK(calls == real.metrics.llm_calls);
  REQUIRE(real.recorded->recorded_instances.size() == 2);
  CHECK(real.recorded->recorded_instances[1].capacity == 1);

  // Re-simulated with the same cluster and per-instance fits.
  scheduler::ReplaySetup sim;
  sim.workload = workloads::parse_recorded_run(workloads::format_recorded_run(*real.recorded), "recorded.json");
  sim.cluster = setup.cluster;
  sim.backend = "sim";
  sim.responder = "trace";
  auto notes = scheduler::prepare_fitted_setup(sim, real.iterations);
  REQUIRE(notes.size() == 2);
  for (const auto& n : notes) CHECK_THAT(n, Catch::Contains("fitted on"));
  CHECK(sim.cluster.instances[1].max_running == 1);
  auto out = scheduler::run_policy(sim, registry, "rr-fcfs", 1.0);
  CHECK(out.metrics.completed == 2);
  CHECK(out.metrics.llm_calls == real.metrics.llm_calls);
  // Loose on purpose: both engines share this machine's cores with each other and with whatever else runs (the
  // measured gaps are in docs/harness.md; a concurrent job once put the real run 63% faster than its fit); this
  // catches a replay that is off by a factor (a lost SQL stage, an unfitted instance, a DAG run sequentially), not
  // the last 15%.
  CHECK(out.metrics.latency_p50_s < 2.0 * real.metrics.latency_p50_s);
  CHECK(out.metrics.latency_p50_s > 0.5 * real.metrics.latency_p50_s);
}
