#include <catch2/catch.hpp>

#include <cmath>
#include <regex>

#include "common/json.hpp"
#include "harness/replay.hpp"
#include "harness/report.hpp"
#include "scheduler/metrics.hpp"
#include "tests/support.hpp"

using namespace t2s;
using namespace t2s::scheduler;

TEST_CASE("metrics follow their definitions on a hand-made result", "[scheduler]") {
  SimResult r;
  auto add = [&](double arrival, double finished, double deadline, bool completed, bool gold, bool correct,
                 bool first_correct = false, bool executed = true) {
    agents::WorkflowOutcome o;
    o.first_candidate_correct = first_correct;
    o.sql = completed ? "SELECT 1" : "";
    o.sql_executed = completed && executed;
    o.arrival_s = arrival;
    o.finished_s = finished;
    o.deadline_s = deadline;
    o.completed = completed;
    o.failed = !completed;
    o.has_gold = gold;
    o.correct = correct;
    r.outcomes.push_back(o);
  };
  add(0, 2, 3, true, true, true, true);       // in time, correct (first candidate too)
  add(1, 5, 4, true, true, true);             // late; revise or selection made it correct
  add(2, 4, 10, true, true, false, false, false);  // in time, wrong: its query did not execute
  add(3, 10, 20, false, true, false); // failed
  r.decision_us = {1, 2, 3, 4, 100};
  RunInfo info;
  info.policy = "x";
  info.rate = 0.5;
  auto m = compute_metrics(r, info);
  CHECK(m.workflows == 4);
  CHECK(m.completed == 3);
  CHECK(m.failed == 1);
  CHECK(m.slo_attainment == Approx(0.5));
  CHECK(m.makespan_s == Approx(10));
  CHECK(m.throughput_wf_per_s == Approx(0.3));
  CHECK(m.goodput_wf_per_s == Approx(0.2));
  CHECK(m.latency_p50_s == Approx(2));  // latencies 2, 4, 2 → median 2
  REQUIRE(m.ex_accuracy);
  CHECK(*m.ex_accuracy == Approx(0.5));
  REQUIRE(m.ex_first_candidate);
  CHECK(*m.ex_first_candidate == Approx(0.25));
  CHECK(m.answers_not_executed == 1);
  CHECK(*m.correct_within_deadline == Approx(0.25));
  CHECK(*m.correct_goodput_wf_per_s == Approx(0.1));
  CHECK(m.sched_decision_us_p50 == Approx(3));
  auto doc = json::parse(metrics_json(m), "metrics");
  for (const char* k : {"policy", "rate", "workflows", "completed", "failed", "slo_attainment", "latency_p50_s",
                        "latency_p95_s", "latency_p99_s", "throughput_wf_per_s", "goodput_wf_per_s", "makespan_s",
                        "ex_accuracy", "ex_first_candidate", "answers_not_executed", "correct_within_deadline", "correct_goodput_wf_per_s", "llm_calls",
                        "sql_executions", "sched_decision_us_p50", "sched_decision_us_p99", "wall_s"})
    CHECK(doc.HasMember(k));
}

TEST_CASE("max rate at SLO from points and by bisection", "[scheduler]") {
  CHECK(max_rate_from_points({{0.5, 0.99}, {1.0, 0.96}, {1.5, 0.9}, {2.0, 0.97}}, 0.95) == 1.0);
  CHECK(max_rate_from_points({{0.5, 0.5}}, 0.95) == 0.0);
  // attainment = 1 − rate/4 → crosses 0.95 at rate 0.2.
  auto f = [](double rate) { return 1.0 - rate / 4.0; };
  CHECK(max_rate_by_bisection(f, 0.05, 2.0, 0.95, 20) == Approx(0.2).margin(1e-4));
  CHECK(max_rate_by_bisection(f, 1.0, 2.0, 0.95) == 0.0);
}

TEST_CASE("keep-up rate: the highest rate whose throughput is still the given fraction of it", "[scheduler]") {
  // A server of capacity 0.3 that completes min(rate, 0.3): keeps up at 90% up to 0.3 / 0.9 = 0.3333.
  auto served = [](double rate) { return std::min(rate, 0.3); };
  const double r = keepup_rate_by_bisection(served, 0.02, 0.8, 0.9, 20);
  CHECK(r <= 0.3 / 0.9);
  CHECK(r == Approx(0.333).margin(1e-9));  // rounded down to 3 significant digits
  CHECK(keepup_rate_by_bisection(served, 0.02, 0.8, 1.0, 20) == Approx(0.3).margin(1e-3));
  CHECK(keepup_rate_by_bisection([](double) { return 0.01; }, 0.02, 0.8, 0.9) == 0.0);  // behind at once
  CHECK(keepup_rate_by_bisection(served, 0.02, 0.25, 0.9) == 0.25);  // keeps up over the whole range
}

namespace {
// Drops the wall-clock fields.
std::string without_wall(std::string s) {
  s = std::regex_replace(s, std::regex(R"re("wall_s": [^,\n]*)re"), "");
  return std::regex_replace(s, std::regex(R"re("sched_decision_us_p(50|99)": [^,\n]*)re"), "");
}
}  // namespace

TEST_CASE("replay is deterministic: same inputs and seed give the same metrics.json", "[scheduler][shared]") {
  workloads::WorkloadSpec ws;
  ws.kind = "hexgen-trace";
  ws.questions_file = test::shared_data("hexgen_traces/formula1.json");
  ws.seed = 9;
  auto reg = default_policy_registry();
  for (const auto& policy : reg.names()) {
    INFO(policy);
    std::string runs[2];
    for (auto& text : runs) {
      ReplaySetup setup = make_setup(ws, "hetero-paper", "sim");
      setup.workflows = 60;
      setup.responder = "trace";
      TraceWriter trace;
      auto out = run_policy(setup, reg, policy, 0.15, "", &trace);
      CHECK(out.metrics.completed == 60);
      CHECK(trace.size() > 60 * 10);
      text = without_wall(metrics_json(out.metrics)) + trace.to_json();  // the trace has no wall-clock fields
    }
    CHECK(runs[0] == runs[1]);
    ReplaySetup other = make_setup(ws, "hetero-paper", "sim");
    other.workflows = 60;
    other.seed = 10;
    auto out = run_policy(other, reg, policy, 0.15);
    CHECK(without_wall(metrics_json(out.metrics)) + "" != runs[0].substr(0, runs[0].find("{\"displayTimeUnit")));
  }
}

TEST_CASE("--backend engine|remote needs a cluster with such instances", "[scheduler]") {
  workloads::WorkloadSpec ws;
  CHECK_THROWS_WITH(make_setup(ws, "hetero-small", "engine"), Catch::Contains("no instance with backend 'engine'"));
  CHECK_THROWS_WITH(make_setup(ws, "hetero-small", "remote"), Catch::Contains("no instance with backend 'remote'"));
  CHECK_THROWS_WITH(make_setup(ws, "hetero-small", "gpu"), Catch::Contains("unknown value 'gpu'"));
}

TEST_CASE("the HTML report inlines Chart.js and its data and needs nothing online", "[scheduler]") {
  ReportData d;
  RunMetrics m;
  m.policy = "rr-fcfs</script>";
  m.rate = 0.5;
  m.workflows = 2;
  m.latencies_s = {2.0, 1.0};
  m.instances.push_back({"a", 0.5, 1, 1, 1, 0, 1, 0, 0.1});
  d.base = {m};
  d.rate_sweep = {m};
  d.scale_sweep = {m};
  d.max_rate_at_slo["rr-fcfs</script>"] = 0.4;
  const std::string html = render_report_html(d);
  CHECK(chartjs_source().size() > 100000);
  CHECK(html.find("Chart.js v4") != std::string::npos);
  CHECK(html.find("http://") == std::string::npos);
  CHECK(html.find("src=") == std::string::npos);
  for (const char* id : {"\"slo\"", "\"cdf\"", "\"thr\"", "\"att\"", "\"util\""}) CHECK(html.find(id) != std::string::npos);
  // The data block parses as JSON and cannot close its <script> early.
  const auto start = html.find("const DATA = ") + 13;
  const auto end = html.find(";\n", start);
  const std::string data = html.substr(start, end - start);
  CHECK(data.find("</") == std::string::npos);
  auto doc = json::parse(data, "report data");
  REQUIRE(doc["base"].Size() == 1);
  CHECK(doc["base"][0]["latencies"][0].GetDouble() == 1.0);
  CHECK(doc["base"][0]["policy"].GetString() == std::string("rr-fcfs</script>"));
  CHECK(html.find("Real runs on the wall clock") == std::string::npos);  // no real part: no section

  // The real part: one row per policy with its accuracy figures, escaped like the rest.
  RunMetrics real = m;
  real.policy = "t2s<b>";
  real.ex_accuracy = 0.875;
  real.ex_first_candidate = 0.75;
  real.llm_calls = 30;
  real.answers_not_executed = 1;
  d.real = {real};
  d.real_note = "2 x cpu engine";
  const std::string with_real = render_report_html(d);
  const auto at = with_real.find("Real runs on the wall clock");
  REQUIRE(at != std::string::npos);
  const std::string section = with_real.substr(at, with_real.find("</table>", at) - at);
  CHECK(section.find("t2s&lt;b&gt;") != std::string::npos);
  CHECK(section.find("<td>88%</td><td>75%</td><td>15.0</td><td>1</td>") != std::string::npos);
}

TEST_CASE("the replay setup's agent options reach the Text-to-SQL agent: --candidates sets the candidate calls",
          "[scheduler]") {
  test::TempDir dir("candidates");
  workloads::WorkloadSpec ws;
  ws.seed = 3;
  ws.limit = 2;
  ws.cache_dir = dir.file("cache");
  auto reg = default_policy_registry();
  auto candidate_dispatches = [&](int candidates) {
    ReplaySetup setup = make_setup(ws, "hetero-small", "sim");
    setup.agent_candidates = candidates;
    TraceWriter trace;
    auto out = run_policy(setup, reg, "rr-fcfs", 1.0, "", &trace);
    REQUIRE(out.metrics.completed == 2);
    const std::string text = trace.to_json();
    size_t n = 0;
    for (size_t at = text.find("\"dispatch candidate_generation\""); at != std::string::npos;
         at = text.find("\"dispatch candidate_generation\"", at + 1))
      ++n;
    return n;
  };
  CHECK(candidate_dispatches(2) == 4);  // 2 workflows x 2 candidates
  CHECK(candidate_dispatches(5) == 10);
}
