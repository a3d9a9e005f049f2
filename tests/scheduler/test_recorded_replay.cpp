// Simulated replay of a recorded run (issue 17): recorded arrivals, DAG order, tool stages waiting their recorded
// SQL time, and --recorded-prefix measured serving the measured cache hits.
#include <catch2/catch.hpp>

#include <memory>

#include "harness/recorded_run.hpp"
#include "harness/replay.hpp"
#include "scheduler/policy.hpp"

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
