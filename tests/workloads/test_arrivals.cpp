#include <catch2/catch.hpp>

#include <cmath>

#include "common/json.hpp"
#include "common/stats.hpp"
#include "common/status.hpp"
#include "tests/support.hpp"
#include "workloads/arrivals.hpp"
#include "workloads/trace_file.hpp"

using namespace t2s::workloads;
using t2s::InputError;
using t2s::test::TempDir;

namespace {

std::vector<double> gaps(const std::vector<Arrival>& a) {
  std::vector<double> g;
  for (size_t i = 1; i < a.size(); ++i) g.push_back(a[i].arrival_s - a[i - 1].arrival_s);
  return g;
}

Workload small_workload() {
  Workload w;
  w.name = "fixture";
  for (int i = 0; i < 4; ++i) {
    Question q;
    q.id = "q" + std::to_string(i);
    q.db_id = "db";
    q.question = "question \"" + std::to_string(i) + "\"\n";
    q.gold_sql = "SELECT " + std::to_string(i);
    q.difficulty = static_cast<Difficulty>(i);
    if (i == 3) q.trace_calls = {{"revise", 6000, 70}, {"evaluate", 900, 30}};
    w.questions.push_back(q);
  }
  w.databases["db"] = DatabaseInfo{"db", "/data/db.sqlite", "x", {}, {}};
  return w;
}

}  // namespace

TEST_CASE("arrival spec parsing", "[workloads]") {
  CHECK(ArrivalSpec::parse("poisson", 2).kind == ArrivalSpec::Kind::poisson);
  auto g = ArrivalSpec::parse("gamma:2.5", 1);
  CHECK(g.kind == ArrivalSpec::Kind::gamma);
  CHECK(g.cv == 2.5);
  CHECK(g.to_string() == "gamma:2.5");
  auto t = ArrivalSpec::parse("trace:/tmp/x.csv", 1);
  CHECK(t.trace_file == "/tmp/x.csv");
  CHECK_THROWS_AS(ArrivalSpec::parse("uniform", 1), InputError);
  CHECK_THROWS_AS(ArrivalSpec::parse("gamma:abc", 1), InputError);
  CHECK_THROWS_AS(ArrivalSpec::parse("gamma:-1", 1), InputError);
  CHECK_THROWS_AS(ArrivalSpec::parse("poisson", 0), InputError);
}

TEST_CASE("Poisson and Gamma arrivals have the requested rate and CV", "[workloads]") {
  const size_t n = 40000;
  for (double cv : {1.0, 0.5, 2.0, 4.0}) {
    ArrivalSpec spec = cv == 1.0 ? ArrivalSpec::parse("poisson", 2.0) : ArrivalSpec::parse("gamma:" + std::to_string(cv), 2.0);
    auto a = make_arrivals(spec, n, 100, 42);
    REQUIRE(a.size() == n);
    auto g = gaps(a);
    double m = t2s::mean(g), s = t2s::stddev(g);
    INFO("cv " << cv << " mean gap " << m << " sd " << s);
    CHECK(m == Approx(0.5).epsilon(0.03 * cv));
    CHECK(s / m == Approx(cv).epsilon(0.06));
    // Observed rate over the whole run.
    CHECK(static_cast<double>(n - 1) / a.back().arrival_s == Approx(2.0).epsilon(0.03 * cv));
  }
}

TEST_CASE("arrivals are seeded and use every question before repeating", "[workloads]") {
  auto spec = ArrivalSpec::parse("poisson", 1.0);
  auto a = make_arrivals(spec, 25, 10, 7), b = make_arrivals(spec, 25, 10, 7), c = make_arrivals(spec, 25, 10, 8);
  bool same = true, differs = false;
  for (size_t i = 0; i < a.size(); ++i) {
    same = same && a[i].arrival_s == b[i].arrival_s && a[i].question_index == b[i].question_index;
    differs = differs || a[i].arrival_s != c[i].arrival_s;
    CHECK(a[i].workflow_id == i);
  }
  CHECK(same);
  CHECK(differs);
  std::vector<int> used(10, 0);
  for (size_t i = 0; i < 20; ++i) used[a[i].question_index]++;
  for (int u : used) CHECK(u == 2);
}

TEST_CASE("trace arrivals from CSV and JSON lines", "[workloads]") {
  TempDir dir("t2s-arr");
  t2s::json::write_file(dir.file("a.csv"), "id,arrival_s\n1,10.5\n2,10.0\n3,12.25\n");
  auto a = make_arrivals(ArrivalSpec::parse("trace:" + dir.file("a.csv"), 1), 100, 3, 1);
  REQUIRE(a.size() == 3);
  CHECK(a[0].arrival_s == 0.0);
  CHECK(a[1].arrival_s == 0.5);
  CHECK(a[2].arrival_s == 2.25);
  t2s::json::write_file(dir.file("b.csv"), "1\n2\n4\n");
  CHECK(make_arrivals(ArrivalSpec::parse("trace:" + dir.file("b.csv"), 1), 2, 3, 1).size() == 2);
  t2s::json::write_file(dir.file("c.jsonl"), "{\"arrival_s\": 3}\n{\"timestamp\": 5}\n");
  CHECK(read_arrival_timestamps(dir.file("c.jsonl")) == std::vector<double>{0, 2});
  t2s::json::write_file(dir.file("d.csv"), "1\nabc\n");
  try {
    read_arrival_timestamps(dir.file("d.csv"));
    FAIL("expected an error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("d.csv line 2") != std::string::npos);
  }
}

TEST_CASE("deadlines: scale, per-difficulty scale, absolute budget", "[workloads]") {
  Workload w = small_workload();
  std::vector<Arrival> a;
  for (size_t i = 0; i < 4; ++i) a.push_back(Arrival{i, i, 10.0 * static_cast<double>(i), 1e18});
  auto lat = [](const Question& q) { return 1.0 + static_cast<double>(q.difficulty); };  // 1,2,3,4 s
  assign_deadlines(a, w, lat, SloSpec::parse("3"));
  CHECK(a[0].deadline_s == Approx(3.0));
  CHECK(a[3].deadline_s == Approx(30 + 12.0));
  assign_deadlines(a, w, lat, SloSpec::parse("easy=2,extra=10,default=5"));
  CHECK(a[0].deadline_s == Approx(2.0));
  CHECK(a[1].deadline_s == Approx(10 + 10.0));
  CHECK(a[3].deadline_s == Approx(30 + 40.0));
  assign_deadlines(a, w, lat, SloSpec::parse("abs:8"));
  CHECK(a[2].deadline_s == Approx(28.0));
  CHECK_THROWS_AS(SloSpec::parse("fast"), InputError);
  CHECK_THROWS_AS(SloSpec::parse("easy=0"), InputError);
  CHECK_THROWS_AS(assign_deadlines(a, w, [](const Question&) { return 0.0; }, SloSpec{}), InputError);
  a[0].question_index = 9;
  CHECK_THROWS_AS(assign_deadlines(a, w, lat, SloSpec{}), InputError);
}

TEST_CASE("workload trace files round-trip exactly", "[workloads]") {
  TempDir dir("t2s-trace");
  Workload w = small_workload();
  auto a = make_arrivals(ArrivalSpec::parse("gamma:3", 0.7), 9, w.questions.size(), 5);
  assign_deadlines(a, w, [](const Question& q) { return 0.1 + 1.0 / 3.0 * static_cast<double>(q.id.size()); },
                   SloSpec{});
  save_workload_trace(dir.file("run.jsonl"), w, a);
  auto t = load_workload_trace(dir.file("run.jsonl"));
  REQUIRE(t.arrivals.size() == a.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(t.arrivals[i].workflow_id == a[i].workflow_id);
    CHECK(t.arrivals[i].arrival_s == a[i].arrival_s);  // bit-exact
    CHECK(t.arrivals[i].deadline_s == a[i].deadline_s);
    const auto& q0 = w.questions[a[i].question_index];
    const auto& q1 = t.workload.questions[t.arrivals[i].question_index];
    CHECK(q0.id == q1.id);
    CHECK(q0.question == q1.question);
    CHECK(q0.gold_sql == q1.gold_sql);
    CHECK(q0.difficulty == q1.difficulty);
    CHECK(q0.trace_calls.size() == q1.trace_calls.size());
  }
  CHECK(t.workload.name == "fixture");
  CHECK(t.workload.databases.at("db").path == "/data/db.sqlite");
  // Saving the loaded trace gives the same bytes.
  CHECK(format_workload_trace(t.workload, t.arrivals) == t2s::json::read_file(dir.file("run.jsonl")));

  t2s::json::write_file(dir.file("bad.jsonl"), "{\"workflow\": 0, \"arrival_s\": 1}\n");
  try {
    load_workload_trace(dir.file("bad.jsonl"));
    FAIL("expected an error");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("bad.jsonl line 1") != std::string::npos);
  }
}
