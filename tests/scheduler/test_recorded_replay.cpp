// Simulated replay of a recorded run (issue 17): recorded arrivals, DAG order, tool stages waiting their recorded
// SQL time, --recorded-prefix measured serving the measured cache hits; and `t2s compare-runs`.
#include <catch2/catch.hpp>

#include <algorithm>
#include <fstream>
#include <memory>

#include "harness/recorded_run.hpp"
#include "harness/replay.hpp"
#include "scheduler/policy.hpp"
#include "tests/support.hpp"

using namespace t2s;
using namespace t2s::scheduler;

namespace {

// One workflow: a call, then a 0.5 s SQL stage, then two calls in parallel; every call recorded on "gpu" with 200
// of its 400 prompt tokens served from the engine's cache and no declared prefix.
ReplaySetup recorded_setup() {
  ReplaySetup s;
  auto r = std::make_shared<workloads::RecordedWorkflow>();
  r->question_id = "q";
  workloads::RecordedCall c;
  c.prompt_tokens = 400;
  c.output_tokens = 20;
  c.max_output_tokens = 64;
  c.expected_output_tokens = 20;
  c.cached_tokens = 200;
  c.instance = "gpu";
  c.service_s = 0.3;
  c.ok = true;
  r->stages = {{"keyword_extraction", false, {}, {c}, 0.0, 0.3, true},
               {"sql_execution", true, {0}, {}, 0.3, 0.5, true},
               {"candidate_generation", false, {1}, {c, c}, 0.8, 0.4, true}};
  r->latency_s = 1.2;
  workloads::Question q;
  q.id = "recorded:3";
  q.recorded = r;
  s.workload.name = "recorded";
  s.workload.questions = {q};
  workloads::Arrival a;
  a.workflow_id = 3;
  a.arrival_s = 2.0;
  a.deadline_s = 30.0;
  s.workload.recorded_arrivals = {a};
  InstanceSpec gpu;
  gpu.name = "gpu";
  gpu.gpu = gpu_profile("A100-80G");
  gpu.model = model_profile("llama-3.1-8b");
  s.cluster = {"one", {gpu}};
  s.responder = "trace";
  return s;
}

}  // namespace

TEST_CASE("recorded replay: recorded arrival, DAG order and SQL time; measured prefixes serve the cache hits",
          "[recorded]") {
  auto registry = default_policy_registry();
  for (bool measured : {false, true}) {
    INFO("measured_prefix " << measured);
    auto setup = recorded_setup();
    setup.measured_prefix = measured;
    auto out = run_policy(setup, registry, "rr-fcfs", 1.0);
    REQUIRE(out.result.outcomes.size() == 1);
    const auto& o = out.result.outcomes[0];
    CHECK(o.completed);
    CHECK(o.workflow_id == 3);
    CHECK(o.arrival_s == 2.0);     // the recorded arrival, not a generated one
    CHECK(o.deadline_s == 30.0);
    REQUIRE(out.result.calls.size() == 3);
    // The candidates start after the first call ended plus the 0.5 s SQL stage.
    double first_end = 1e18, cand_start = 1e18;
    for (const auto& c : out.result.calls) {
      if (c.kind == agents::StageKind::keyword_extraction) first_end = c.finished_s;
      if (c.kind == agents::StageKind::candidate_generation) cand_start = std::min(cand_start, c.released_s);
    }
    CHECK(cand_start == Approx(first_end + 0.5).margin(1e-9));
    int cached = 0;
    for (const auto& c : out.result.calls) cached += c.cached_tokens;
    if (measured)
      CHECK(cached > 0);  // the calls after the first find the instance's measured prefix resident
    else
      CHECK(cached == 0);  // no declared prefix: nothing shared
    CHECK(out.service.size() == 3);
  }
}

TEST_CASE("recorded replay: one cut in the recording ends at its deadline even when its recorded work finishes "
          "sooner, and counts as missed; a completed one runs on", "[recorded]") {
  auto registry = default_policy_registry();
  {
    INFO("completed in the recording, late in the replay: it runs on (the recording does not say it would be cut)");
    auto setup = recorded_setup();
    setup.workload.recorded_arrivals[0].deadline_s = 2.2;  // 0.2 s after arrival; its SQL stage alone takes 0.5 s
    auto out = run_policy(setup, registry, "rr-fcfs", 1.0);
    REQUIRE(out.result.outcomes.size() == 1);
    const auto& o = out.result.outcomes[0];
    CHECK(o.completed);
    CHECK_FALSE(o.ended_early);
    CHECK(o.finished_s > 2.5);
    CHECK(out.metrics.slo_attainment == 0.0);
  }
  {
    INFO("ended early in the recording; its recorded work ends well before the 30 s deadline");
    auto setup = recorded_setup();
    auto cut = std::make_shared<workloads::RecordedWorkflow>(*setup.workload.questions[0].recorded);
    cut->outcome = "ended_early";
    setup.workload.questions[0].recorded = cut;
    auto out = run_policy(setup, registry, "rr-fcfs", 1.0);
    REQUIRE(out.result.outcomes.size() == 1);
    const auto& o = out.result.outcomes[0];
    CHECK(o.ended_early);
    CHECK(o.finished_s == Approx(30.0).margin(1e-6));
    CHECK(out.metrics.slo_attainment == 0.0);  // cut at its deadline: not met
    double last_call_end = 0;
    for (const auto& c : out.result.calls) last_call_end = std::max(last_call_end, c.finished_s);
    CHECK(last_call_end < 5.0);  // the work itself was done long before
  }
}

TEST_CASE("compare-runs: gaps, the issue's bounds and bad input", "[recorded]") {
  test::TempDir dir("t2s-compare-runs");
  auto write = [&](const std::string& name, const std::string& text) {
    std::ofstream(dir.file(name)) << text;
    return dir.file(name);
  };
  const auto real = write("real.json",
                          R"({"policy": "t2s", "workflows": 20, "completed": 20, "latency_p50_s": 2.0,
                              "latency_p95_s": 4.0, "slo_attainment": 0.80,
                              "prediction_service_abs_rel_error_mean": 0.4})");
  const auto sim = write("sim.json",
                         R"({"policy": "t2s", "workflows": 20, "completed": 20, "latency_p50_s": 2.2,
                             "latency_p95_s": 3.7, "slo_attainment": 0.77, "replay_service_calls": 100,
                             "replay_service_abs_rel_error_mean": 0.3, "replay_service_abs_rel_error_p50": 0.2,
                             "replay_service_abs_rel_error_p95": 0.9, "replay_service_bias_rel": 0.05,
                             "replay_service_same_instance": 80})");
  auto c = compare_runs(real, sim);
  CHECK(c.p50_gap_rel == Approx(0.10));
  CHECK(c.p95_gap_rel == Approx(-0.075));
  CHECK(c.slo_gap_points == Approx(-3.0));
  CHECK(c.within(0.15, 5));
  CHECK_FALSE(c.within(0.09, 5));
  CHECK_FALSE(c.within(0.15, 2));
  REQUIRE(c.service_calls);
  CHECK(*c.service_calls == 100);
  CHECK(*c.service_same_calls == 80);
  CHECK(c.real_prediction_mean.value_or(0) == Approx(0.4));
  const auto table = format_comparison(c);
  CHECK_THAT(table, Catch::Contains("+10.0%") && Catch::Contains("-3.0 pt") && Catch::Contains("met (not the 10% goal)"));
  CHECK_THAT(comparison_json(c), Catch::Contains("\"within_15pct_5pt\": true"));
  const auto bad = write("recorded.json", R"({"format": "t2s-recorded-run", "workflows": []})");
  CHECK_THROWS_WITH(compare_runs(bad, sim), Catch::Contains("recorded.json: field 'workflows' must be a number"));
  CHECK_THROWS_WITH(compare_runs(dir.file("missing.json"), sim), Catch::Contains("missing.json"));
}
