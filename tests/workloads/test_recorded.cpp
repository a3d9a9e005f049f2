// recorded.json (issue 17): the recorded-run workload file round-trips exactly and rejects bad input by naming the
// entry and field.
#include <catch2/catch.hpp>

#include <memory>
#include <string>

#include "common/status.hpp"
#include "workloads/recorded.hpp"

using namespace t2s;
using namespace t2s::workloads;

namespace {

Workload sample_workload() {
  Workload w;
  w.name = "recorded";
  w.recorded_source = "policy=t2s cluster=two.json backend=engine";
  w.recorded_instances = {{"big", "engine", 64, 1200, 16, 256}, {"small", "engine", 8, 300, 16, 128}};
  for (int k = 0; k < 2; ++k) {
    auto r = std::make_shared<RecordedWorkflow>();
    r->question_id = "synthetic:retail:" + std::to_string(k);
    r->outcome = k == 0 ? "completed" : "ended_early";
    r->sql_executed = true;
    if (k == 0) r->sql = "SELECT count(*) FROM t WHERE c = 'it''s'";
    r->has_gold = true;
    r->correct = k == 0;
    r->latency_s = 1.25 + 0.1 * k;
    RecordedCall c;
    c.prompt_tokens = 311;
    c.output_tokens = 17;
    c.max_output_tokens = 64;
    c.expected_output_tokens = 20;
    c.prefix_id = 0xfedcba9876543211ULL;  // above 2^63: must survive the file
    c.prefix_tokens = 250;
    c.cached_tokens = 240;
    c.instance = "big";
    c.service_s = 0.123456789;
    c.ok = true;
    RecordedCall d = c;
    d.prefix_id = 0;
    d.prefix_tokens = 0;
    d.instance = "small";
    d.output_tokens = 3;
    RecordedStage kw{"keyword_extraction", false, {}, {c}, 0.001, 0.2, true};
    RecordedStage cand{"candidate_generation", false, {0}, {c, d}, 0.21, 0.5, true};
    RecordedStage sql{"sql_execution", true, {1}, {}, 0.72, 0.0031, true};
    RecordedStage cut{"revise", false, {1, 2}, {d}, 0.73, 0.4, k == 0};
    r->stages = {kw, cand, sql, cut};
    Question q;
    q.id = "recorded:" + std::to_string(k + 7);
    q.question = r->question_id;
    q.recorded = r;
    w.questions.push_back(q);
    Arrival a;
    a.workflow_id = static_cast<uint64_t>(k + 7);
    a.question_index = static_cast<size_t>(k);
    a.arrival_s = 0.1 + 0.3333333333333333 * k;
    a.deadline_s = k == 0 ? 2.5 : 1e18;
    w.recorded_arrivals.push_back(a);
  }
  return w;
}

void require_same_call(const RecordedCall& a, const RecordedCall& b) {
  CHECK(a.prompt_tokens == b.prompt_tokens);
  CHECK(a.output_tokens == b.output_tokens);
  CHECK(a.max_output_tokens == b.max_output_tokens);
  CHECK(a.expected_output_tokens == b.expected_output_tokens);
  CHECK(a.prefix_id == b.prefix_id);
  CHECK(a.prefix_tokens == b.prefix_tokens);
  CHECK(a.cached_tokens == b.cached_tokens);
  CHECK(a.instance == b.instance);
  CHECK(a.service_s == b.service_s);
  CHECK(a.ok == b.ok);
}

// `text` with the first occurrence of `from` replaced by `to`.
std::string edit(std::string text, const std::string& from, const std::string& to) {
  auto p = text.find(from);
  REQUIRE(p != std::string::npos);
  return text.replace(p, from.size(), to);
}

}  // namespace

TEST_CASE("recorded.json: format then parse gives back the workload bit for bit", "[workloads][recorded]") {
  const auto w = sample_workload();
  const auto text = format_recorded_run(w);
  const auto back = parse_recorded_run(text, "recorded.json");
  CHECK(back.name == "recorded");
  CHECK_FALSE(back.execution_available);
  CHECK(back.recorded_source == w.recorded_source);
  REQUIRE(back.recorded_instances.size() == 2);
  CHECK(back.recorded_instances[1].name == "small");
  CHECK(back.recorded_instances[1].capacity == 8);
  CHECK(back.recorded_instances[1].kv_blocks == 300);
  CHECK(back.recorded_instances[1].max_batch_tokens == 128);
  REQUIRE(back.questions.size() == 2);
  REQUIRE(back.recorded_arrivals.size() == 2);
  for (size_t k = 0; k < 2; ++k) {
    INFO("workflow " << k);
    const auto& a = w.recorded_arrivals[k];
    const auto& b = back.recorded_arrivals[k];
    CHECK(b.workflow_id == a.workflow_id);
    CHECK(b.question_index == k);
    CHECK(b.arrival_s == a.arrival_s);
    CHECK(b.deadline_s == a.deadline_s);
    const auto& ra = *w.questions[k].recorded;
    const auto& rb = *back.questions[k].recorded;
    CHECK(back.questions[k].id == w.questions[k].id);
    CHECK(rb.question_id == ra.question_id);
    CHECK(rb.outcome == ra.outcome);
    CHECK(rb.correct == ra.correct);
    CHECK(rb.sql == ra.sql);
    CHECK(rb.latency_s == ra.latency_s);
    REQUIRE(rb.stages.size() == ra.stages.size());
    for (size_t s = 0; s < ra.stages.size(); ++s) {
      INFO("stage " << s);
      CHECK(rb.stages[s].kind == ra.stages[s].kind);
      CHECK(rb.stages[s].tool == ra.stages[s].tool);
      CHECK(rb.stages[s].parents == ra.stages[s].parents);
      CHECK(rb.stages[s].start_s == ra.stages[s].start_s);
      CHECK(rb.stages[s].duration_s == ra.stages[s].duration_s);
      CHECK(rb.stages[s].done == ra.stages[s].done);
      REQUIRE(rb.stages[s].calls.size() == ra.stages[s].calls.size());
      for (size_t c = 0; c < ra.stages[s].calls.size(); ++c) require_same_call(rb.stages[s].calls[c], ra.stages[s].calls[c]);
    }
  }
  CHECK(format_recorded_run(back) == text);
}

TEST_CASE("recorded.json: bad input is refused naming the entry and field", "[workloads][recorded]") {
  const auto text = format_recorded_run(sample_workload());
  auto refused = [](const std::string& t, const std::string& needle) {
    INFO(needle);
    try {
      parse_recorded_run(t, "rec.json");
      FAIL("accepted");
    } catch (const InputError& e) {
      CHECK_THAT(e.what(), Catch::Contains(needle));
    }
  };
  refused(edit(text, "\"format\":\"t2s-recorded-run\"", "\"format\":\"hexgen\""), "rec.json: field 'format'");
  refused(edit(text, "\"prompt_tokens\":311", "\"prompt_tokens\":-1"),
          "rec.json: workflows[0].stages[0].calls[0]: field 'prompt_tokens'");
  refused(edit(text, "\"parents\":[0]", "\"parents\":[1]"), "workflows[0].stages[1]: parents[0] must be the index of an earlier stage");
  refused(edit(text, "\"index\":1", "\"index\":5"), "workflows[0].stages[1]: field 'index' must be 1");
  refused(edit(text, "\"workflow_id\":8", "\"workflow_id\":7"), "workflows[1]: duplicate workflow_id 7");
  refused(edit(text, "\"outcome\":\"completed\"", "\"outcome\":\"done\""), "workflows[0]: field 'outcome'");
  refused(edit(text, "\"prefix_id\":\"fedcba9876543211\"", "\"prefix_id\":\"xyz\""), "field 'prefix_id' must be a hex");
  refused(edit(text, "\"deadline_s\":2.5", "\"deadline_s\":0.01"), "workflows[0]: field 'deadline_s' is before");
  refused(edit(text, "\"tool\":true,\"parents\":[1],", "\"tool\":true,\"parents\":[1],\"surprise\":1,"),
          "workflows[0].stages[2]: unknown field 'surprise'");
  refused(edit(text, "\"service_s\":0.123456789", "\"service_s\":\"fast\""), "field 'service_s'");
  refused(edit(text, "\"name\":\"small\"", "\"name\":\"big\""), "instances[1]: duplicate instance name 'big'");
  refused("{\"format\":\"t2s-recorded-run\",\"version\":1,\"instances\":[],\"workflows\":[]}", "'workflows' is empty");
  refused("[1,2]", "expected a JSON object");
}

TEST_CASE("load_workload: --workload recorded needs --questions and keeps arrivals with --limit", "[workloads][recorded]") {
  WorkloadSpec spec;
  spec.kind = "recorded";
  CHECK_THROWS_WITH(load_workload(spec), Catch::Contains("needs --questions FILE"));
}
