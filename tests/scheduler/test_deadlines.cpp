// In-stage deadlines in the simulator (a workflow ends at its deadline, cancelling its queued and running calls),
// and what a run records about them and about every dispatch (trace args, metrics counters).
#include <catch2/catch.hpp>

#include "common/trace.hpp"
#include "scheduler/metrics.hpp"
#include "scheduler/simulator.hpp"
#include "tests/scheduler/deadline_workflow.hpp"

using namespace t2s;
using namespace t2s::scheduler;

namespace {

struct Run {
  SimResult result;
  std::string trace;
};

// One workflow of one long call (2,000 output tokens on hetero-small's first instance under rr-fcfs), deadline 5 s.
Run run_one(bool end_early, int workflows = 1, int max_running = 0) {
  ClusterSpec cluster = cluster_preset("hetero-small");
  if (max_running > 0)
    for (auto& inst : cluster.instances) inst.max_running = max_running;
  PolicyContext ctx;
  ctx.cluster = &cluster;
  Policy policy = default_policy_registry().make("rr-fcfs", ctx);
  test::ScriptResponder responder;
  test::DeadlineFactory factory;
  factory.prompt = 500;
  factory.output = 2000;
  factory.end_early = end_early;
  workloads::Workload w;
  w.questions.resize(1);
  std::vector<workloads::Arrival> arrivals(static_cast<size_t>(workflows));
  for (size_t k = 0; k < arrivals.size(); ++k) {
    arrivals[k].workflow_id = k + 1;
    arrivals[k].arrival_s = 0.01 * static_cast<double>(k);
    arrivals[k].deadline_s = arrivals[k].arrival_s + 5.0;
  }
  TraceWriter trace;
  SimOptions opt;
  opt.trace = &trace;
  Simulator sim(cluster, policy, responder, opt);
  Run r;
  r.result = sim.run(w, arrivals, factory);
  r.trace = trace.to_json();
  return r;
}

}  // namespace

TEST_CASE("simulator: at the deadline a workflow ends at once and its running call is cancelled",
          "[scheduler][deadline]") {
  const auto late = run_one(false);  // the reference: no early end, the call runs to its end
  REQUIRE(late.result.outcomes.size() == 1);
  const double full = late.result.outcomes[0].finished_s;
  CHECK(full > 10.0);  // the call alone takes well past the 5 s deadline
  CHECK_FALSE(late.result.outcomes[0].ended_early);

  const auto early = run_one(true);
  const auto& o = early.result.outcomes[0];
  CHECK(o.ended_early);
  CHECK(o.completed);
  CHECK(o.finished_s == Approx(5.0).margin(1e-9));  // at the deadline, not when the stage would have ended
  REQUIRE(early.result.calls.size() == 1);
  const auto& c = early.result.calls[0];
  CHECK(c.cancelled);
  CHECK_FALSE(c.ok);
  CHECK(c.finished_s < 5.2);  // the instance let go of it within a step or a fused decode group
  CHECK(c.finished_s < full / 2);
  const auto m = compute_metrics(early.result, RunInfo{});
  CHECK(m.ended_early == 1);
  CHECK(m.calls_cancelled == 1);
  CHECK(m.stages_cancelled == 1);
  CHECK(m.slo_attainment == 0.0);  // it answered at its deadline, but cut: its work did not complete in time
  const auto m_late = compute_metrics(late.result, RunInfo{});
  CHECK(m_late.ended_early == 0);
  CHECK(m_late.calls_cancelled == 0);
  CHECK(m_late.slo_attainment == 0.0);
}

TEST_CASE("simulator: queued calls are cancelled at the deadline too, and a finished workflow's timer moves no clock",
          "[scheduler][deadline]") {
  // 40 one-call workflows on rr-fcfs, one call running per instance: most calls are still queued at their deadlines.
  const auto r = run_one(true, 40, 1);
  size_t never_started = 0;
  for (const auto& c : r.result.calls) never_started += c.cancelled && c.started_s == 0 && c.workflow_id > 1;
  // Each deadline frees an instance for the next queued call, which its own deadline ends soon after; 18 of the
  // 40 were still waiting when theirs passed.
  CHECK(never_started >= 10);
  for (const auto& o : r.result.outcomes) CHECK(o.finished_s <= o.deadline_s + 1e-9);
  // The simulation ends when the last workflow does (its deadline), not later: cancelled timers do not count.
  double last = 0;
  for (const auto& o : r.result.outcomes) last = std::max(last, o.finished_s);
  CHECK(r.result.end_s <= last + 1.0);
}

TEST_CASE("simulator trace: every dispatch carries the estimates on every instance and the slack, stage by name",
          "[scheduler][trace]") {
  const auto r = run_one(false);
  CHECK(r.trace.find("\"name\":\"dispatch candidate_generation\"") != std::string::npos);
  ClusterSpec cluster = cluster_preset("hetero-small");
  for (const auto& inst : cluster.instances) CHECK(r.trace.find("\"est_" + inst.name + "_s\"") != std::string::npos);
  CHECK(r.trace.find("\"slack_s\"") != std::string::npos);
  CHECK(r.trace.find("\"estimate_s\"") != std::string::npos);
  CHECK(r.trace.find("\"stage\":\"candidate_generation\"") != std::string::npos);
  CHECK(r.trace.find("\"stage\":0") == std::string::npos);  // names, not numbers
}
