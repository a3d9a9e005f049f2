#include <catch2/catch.hpp>

#include <map>
#include <optional>

#include "agents/sim_env.hpp"
#include "agents/stage_model.hpp"
#include "agents/trace_workflow.hpp"
#include "common/json.hpp"
#include "tests/agents/recorder.hpp"
#include "tests/support.hpp"

using namespace t2s;
using namespace t2s::agents;

namespace {

workloads::Question trace_question(const std::string& id, std::vector<workloads::TraceCall> calls) {
  workloads::Question q;
  q.id = id;
  q.trace_calls = std::move(calls);
  return q;
}

// A recorded query in the hexgen format (from trace1.json, query 0, shortened).
std::vector<workloads::TraceCall> sample_calls() {
  return {{"Information Retriever", 301, 26},        {"extract_keywords", 649, 21},
          {"generate_candidate_llama-agent", 11909, 663}, {"generate_candidate_llama-agent", 8043, 439},
          {"revise", 5859, 74},                       {"revise", 5800, 30},
          {"unit_tester", 271, 6},                    {"generate_unit_test", 1106, 88},
          {"evaluate", 958, 22},                      {"evaluate", 958, 22},
          {"evaluate", 968, 40},                      {"unit_tester", 278, 4}};
}

}  // namespace

TEST_CASE("stage kinds parse our names and the hexgen step names", "[agents]") {
  CHECK(parse_stage_kind("Information Retriever") == StageKind::tool_picker);
  CHECK(parse_stage_kind("unit_tester") == StageKind::tool_picker);
  CHECK(parse_stage_kind("extract_keywords") == StageKind::keyword_extraction);
  CHECK(parse_stage_kind("generate_candidate_llama-agent") == StageKind::candidate_generation);
  CHECK(parse_stage_kind("revise") == StageKind::revise);
  CHECK(parse_stage_kind("generate_unit_test") == StageKind::unit_test_generation);
  CHECK(parse_stage_kind("evaluate") == StageKind::evaluation);
  CHECK(parse_stage_kind("something else") == StageKind::other);
  for (auto k : {StageKind::tool_picker, StageKind::keyword_extraction, StageKind::column_selection,
                 StageKind::candidate_generation, StageKind::revise, StageKind::unit_test_generation,
                 StageKind::evaluation, StageKind::selection, StageKind::sql_execution})
    CHECK(parse_stage_kind(stage_kind_name(k)) == k);
  CHECK_FALSE(is_llm_stage(StageKind::sql_execution));
  CHECK(is_llm_stage(StageKind::revise));
}

TEST_CASE("trace stages group consecutive candidates and evaluations only", "[agents]") {
  auto stages = group_trace_stages(sample_calls());
  REQUIRE(stages.size() == 9);
  CHECK(stages[2].kind == StageKind::candidate_generation);
  CHECK(stages[2].calls.size() == 2);
  CHECK(stages[3].kind == StageKind::revise);  // revise calls stay sequential
  CHECK(stages[4].kind == StageKind::revise);
  CHECK(stages[7].kind == StageKind::evaluation);
  CHECK(stages[7].calls.size() == 3);
  auto no_picker = group_trace_stages(sample_calls(), false);
  CHECK(no_picker.size() == 6);
}

TEST_CASE("trace replay runs the exact calls; a parallel stage ends with its slowest call", "[agents]") {
  auto responder = make_trace_responder();
  StandaloneEnv env(*responder);
  auto factory = make_trace_factory();
  Recorder rec;
  std::optional<WorkflowOutcome> out;
  workloads::Arrival arr{7, 0, 0.0, 1e9};
  auto wf = factory->make(trace_question("t:0", sample_calls()), arr, env,
                          [&](const WorkflowOutcome& o) { out = o; }, &rec);
  wf->start();
  env.run();
  REQUIRE(out);
  CHECK(out->completed);
  CHECK(out->llm_calls == 12);
  CHECK(out->stages == 9);
  REQUIRE(env.calls().size() == 12);
  for (size_t i = 0; i < 12; ++i) {
    CHECK(env.calls()[i].call.prompt_tokens == sample_calls()[i].input_tokens);
    CHECK(env.calls()[i].output_tokens == sample_calls()[i].output_tokens);
    CHECK(env.calls()[i].call.workflow_id == 7);
  }
  // The candidate stage (index 2) lasts as long as its slower call, on the standalone cost model.
  std::map<uint32_t, StageEvent> ends;
  for (const auto& e : rec.events)
    if (e.done) ends[e.stage_index] = e;
  REQUIRE(ends.size() == 9);
  double slow = env.reference_seconds(11909, 663), fast = env.reference_seconds(8043, 439);
  CHECK(ends[2].elapsed_s == Approx(std::max(slow, fast)));
  CHECK(ends[2].calls == 2);
  CHECK(env.calls()[2].call.siblings == 2);
  // Sequential chain: every stage depends on the previous one.
  for (uint32_t s = 1; s < 9; ++s) {
    REQUIRE(ends[s].parents.size() == 1);
    CHECK(ends[s].parents[0] == s - 1);
  }
  // Calls of one kind share a prefix; remaining work shrinks as the workflow advances.
  CHECK(env.calls()[2].call.prefix_id == env.calls()[3].call.prefix_id);
  CHECK(env.calls()[2].call.prefix_tokens == static_cast<int>(0.9 * 8043));
  CHECK(env.calls()[0].call.remaining_mean_s > env.calls()[8].call.remaining_mean_s);
  CHECK(env.calls().back().call.remaining_mean_s == 0.0);
}

TEST_CASE("exact remaining work equals the rest of the recorded critical path", "[agents]") {
  auto responder = make_trace_responder();
  StandaloneEnv env(*responder);
  TraceFactoryOptions opt;
  opt.exact_remaining = true;
  auto factory = make_trace_factory(opt);
  std::optional<WorkflowOutcome> out;
  auto wf = factory->make(trace_question("t:0", sample_calls()), {1, 0, 0, 1e9}, env,
                          [&](const WorkflowOutcome& o) { out = o; }, nullptr);
  wf->start();
  double end = env.run();
  REQUIRE(out);
  // After the first call, the remaining critical path is the run's makespan minus that call.
  double first = env.reference_seconds(301, 26);
  CHECK(env.calls()[0].call.remaining_mean_s == Approx(end - first));
}

TEST_CASE("cancelling a workflow cancels its running calls and reports cancelled once", "[agents]") {
  auto responder = make_trace_responder();
  StandaloneEnv env(*responder);
  auto factory = make_trace_factory();
  int fired = 0;
  WorkflowOutcome last;
  auto wf = factory->make(trace_question("t:0", sample_calls()), {1, 0, 0, 1e9}, env,
                          [&](const WorkflowOutcome& o) { ++fired, last = o; }, nullptr);
  wf->start();
  // Cancel while the candidate stage (2 calls) runs.
  double t_cand = env.reference_seconds(301, 26) + env.reference_seconds(649, 21) + 0.1;
  env.at(t_cand, [&] {
    CHECK(env.running_calls() == 2);
    wf->cancel();
    wf->cancel();  // idempotent
  });
  env.run();
  CHECK(fired == 1);
  CHECK(last.cancelled);
  CHECK_FALSE(last.completed);
  CHECK(env.calls().size() == 4);  // nothing released after the cancel
  CHECK(env.calls()[2].cancelled);
  CHECK(env.calls()[3].cancelled);
  CHECK(env.running_calls() == 0);
}

TEST_CASE("a question without trace calls fails with a clear error", "[agents]") {
  auto responder = make_trace_responder();
  StandaloneEnv env(*responder);
  auto factory = make_trace_factory();
  std::optional<WorkflowOutcome> out;
  auto wf = factory->make(trace_question("spider:1", {}), {1, 0, 0, 1e9}, env,
                          [&](const WorkflowOutcome& o) { out = o; }, nullptr);
  wf->start();
  env.run();
  REQUIRE(out);
  CHECK(out->failed);
  CHECK(out->error.find("spider:1") != std::string::npos);
}

TEST_CASE("fitted stage lengths match the hexgen traces", "[agents][shared]") {
  // Independent re-computation from the shared trace files: mean output per step vs the fitted distribution.
  std::map<StageKind, std::vector<double>> out;
  for (const char* f : {"trace1", "trace2", "financial", "formula1"}) {
    auto doc = json::parse_file(test::shared_data(std::string("hexgen_traces/") + f + ".json"));
    for (const auto& q : doc.GetArray())
      for (const auto& c : q["Text2SQLRequest"].GetArray())
        out[parse_stage_kind(c["step"].GetString())].push_back(c["output_length"].GetInt());
  }
  for (auto kind : {StageKind::tool_picker, StageKind::keyword_extraction, StageKind::candidate_generation,
                    StageKind::revise, StageKind::unit_test_generation, StageKind::evaluation}) {
    INFO(stage_kind_name(kind));
    double emp = 0;
    for (double v : out[kind]) emp += v;
    emp /= static_cast<double>(out[kind].size());
    // Log-normal fits get the bulk right; heavy clamped tails (revise, evaluate) within 25%.
    CHECK(trace_fitted_lengths(kind).output.mean() == Approx(emp).epsilon(0.25));
  }
  Rng rng(3);
  double s = 0;
  for (int i = 0; i < 20000; ++i) s += trace_fitted_lengths(StageKind::candidate_generation).output.draw(rng);
  CHECK(s / 20000 == Approx(trace_fitted_lengths(StageKind::candidate_generation).output.mean()).epsilon(0.02));
}
