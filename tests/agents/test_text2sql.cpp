#include <catch2/catch.hpp>

#include <functional>
#include <map>
#include <optional>
#include <set>

#include "agents/oracle.hpp"
#include "agents/sim_env.hpp"
#include "agents/text2sql.hpp"
#include "common/json.hpp"
#include "engine/literal_guide.hpp"
#include "sqlexec/extract.hpp"
#include "workloads/synthetic.hpp"
#include "tests/agents/recorder.hpp"
#include "tests/support.hpp"

using namespace t2s;
using namespace t2s::agents;

namespace {

// A fake model: a function of the call.
struct ScriptedResponder : Responder {
  std::function<Response(const LlmCall&)> fn;
  explicit ScriptedResponder(std::function<Response(const LlmCall&)> f) : fn(std::move(f)) {}
  Response respond(const LlmCall& c) override { return fn(c); }
  std::string name() const override { return "scripted"; }
};

sqlexec::Column col(const std::string& name, const std::string& type, bool key) {
  sqlexec::Column c;
  c.name = name;
  c.type = type;
  c.primary_key = key;
  return c;
}

sqlexec::Schema concert_schema() {
  sqlexec::Schema s;
  s.db_id = "concert";
  s.tables.push_back({"singer",
                      {col("Singer_ID", "integer", true),
                       col("Name", "text", false),
                       col("Country", "text", false),
                       col("Age", "integer", false)}});
  s.tables.push_back({"concert",
                      {col("concert_ID", "integer", true),
                       col("Year", "text", false),
                       col("Singer_ID", "integer", false)}});
  s.foreign_keys.push_back({"concert", "Singer_ID", "singer", "Singer_ID"});
  return s;
}

workloads::Workload concert_workload() {
  workloads::Workload w;
  w.name = "test";
  workloads::Question q;
  q.id = "test:1";
  q.db_id = "concert";
  q.question = "How many singers are from France?";
  q.evidence = "France refers to Country = 'France'";
  q.gold_sql = "SELECT count(*) FROM singer WHERE Country = 'France'";
  q.difficulty = workloads::Difficulty::easy;
  w.questions.push_back(q);
  w.databases["concert"].db_id = "concert";
  w.execution_available = false;
  return w;
}

// The concert question plus questions of another database, for few-shot examples.
workloads::Workload concert_with_examples() {
  auto w = concert_workload();
  for (int i = 0; i < 3; ++i) {
    workloads::Question other;
    other.id = "test:other" + std::to_string(i);
    other.db_id = "zoo";
    other.question = "How many animals live in enclosure " + std::to_string(i) + "?";
    other.gold_sql = "SELECT count(*) FROM animal WHERE enclosure = " + std::to_string(i);
    w.questions.push_back(other);
  }
  return w;
}

AgentOptions simulated_options() {
  AgentOptions o;
  o.backend = make_simulated_backend({{"concert", concert_schema()}});
  return o;
}

struct Run {
  std::optional<WorkflowOutcome> outcome;
  Recorder rec;
};

// Runs question 0 of `w` with `factory` in a standalone env and returns the outcome.
void run_one(StandaloneEnv& env, WorkflowFactory& factory, const workloads::Workload& w, Run& run,
             double deadline = 1e9, std::function<void(Workflow&)> during = {}) {
  auto wf = factory.make(w.questions[0], {1, 0, 0.0, deadline}, env,
                         [&](const WorkflowOutcome& o) { run.outcome = o; }, &run.rec);
  wf->start();
  if (during) during(*wf);
  env.run();
}

// Runs question 0 of `w` with a Text-to-SQL factory built from `opt`.
void run_with(StandaloneEnv& env, const workloads::Workload& w, const AgentOptions& opt, Run& run) {
  auto factory = make_text2sql_factory(w, opt);
  run_one(env, *factory, w, run);
}

// The concert question answered by a never-erring oracle on simulated execution.
struct PerfectRun {
  workloads::Workload w = concert_workload();
  std::unique_ptr<Responder> oracle = make_oracle_responder(w, [] {
    OracleOptions oo;
    oo.error_scale = 0;
    return oo;
  }());
  StandaloneEnv env{*oracle};
  Run run;
  PerfectRun() {
    auto factory = make_text2sql_factory(w, simulated_options());
    run_one(env, *factory, w, run);
  }
};

}  // namespace

TEST_CASE("the oracle agent builds the CHESS DAG and answers correctly at error scale 0", "[agents]") {
  PerfectRun perfect;
  auto& w = perfect.w;
  auto& env = perfect.env;
  auto& run = perfect.run;
  REQUIRE(run.outcome);
  INFO(run.outcome->error);
  CHECK(run.outcome->completed);
  CHECK(run.outcome->correct);
  CHECK(run.outcome->execution_simulated);
  CHECK(run.outcome->sql == w.questions[0].gold_sql);
  // 7 tool-picker calls, keyword extraction, column selection, 2 candidates, unit-test generation, evaluations.
  auto pickers = run.rec.ended(StageKind::tool_picker);
  CHECK(pickers.size() == 7);
  auto cands = run.rec.ended(StageKind::candidate_generation);
  REQUIRE(cands.size() == 1);
  CHECK(cands[0].calls == 2);
  auto evals = run.rec.ended(StageKind::evaluation);
  REQUIRE(evals.size() == 1);
  CHECK(evals[0].calls >= 1);
  CHECK(run.rec.ended(StageKind::revise).empty());
  // Two executions hang off the candidate stage (parallel branches), and unit-test generation waits for both.
  std::vector<StageEvent> execs;
  for (const auto& e : run.rec.ended(StageKind::sql_execution))
    if (e.parents.size() == 1 && e.parents[0] == cands[0].stage_index) execs.push_back(e);
  REQUIRE(execs.size() == 2);
  auto ut = run.rec.ended(StageKind::unit_test_generation);
  REQUIRE(ut.size() == 1);
  std::vector<StageEvent> ut_picker;
  for (const auto& p : pickers)
    if (p.parents.size() == 2) ut_picker.push_back(p);
  REQUIRE(ut_picker.size() == 1);
  CHECK(ut_picker[0].parents[0] == execs[0].stage_index);
  CHECK(ut_picker[0].parents[1] == execs[1].stage_index);
  CHECK(run.outcome->llm_calls == static_cast<int>(env.calls().size()));
  CHECK(run.outcome->sql_executions == 2);
}

TEST_CASE("prompts contain the schema, question and evidence; calls share the question's prefix", "[agents]") {
  PerfectRun perfect;
  auto& env = perfect.env;
  std::vector<const LlmCall*> cands;
  const LlmCall* colsel = nullptr;
  for (const auto& r : env.calls()) {
    if (r.call.kind == StageKind::candidate_generation) cands.push_back(&r.call);
    if (r.call.kind == StageKind::column_selection) colsel = &r.call;
  }
  REQUIRE(cands.size() == 2);
  REQUIRE(colsel);
  for (const auto* c : cands) {
    CHECK(c->prompt.find("CREATE TABLE singer") != std::string::npos);
    CHECK(c->prompt.find("How many singers are from France?") != std::string::npos);
    CHECK(c->prompt.find("France refers to Country = 'France'") != std::string::npos);
    CHECK(c->prompt_tokens == sqlexec::estimate_tokens(c->prompt));
    CHECK(c->prefix_tokens > 0);
    CHECK(c->prefix_tokens < c->prompt_tokens);
    CHECK(c->deadline_s == 1e9);
    CHECK(c->siblings == 2);
  }
  CHECK(cands[0]->prefix_id == cands[1]->prefix_id);
  CHECK(cands[0]->prompt != cands[1]->prompt);  // different styles
  // The column-selection prompt sees the full schema (both tables); the oracle links only `singer`.
  CHECK(colsel->prompt.find("CREATE TABLE concert") != std::string::npos);
  CHECK(cands[0]->prompt.find("CREATE TABLE concert") == std::string::npos);
  // Remaining work decreases along the workflow and the p90 bounds the mean.
  CHECK(env.calls().front().call.remaining_mean_s > cands[0]->remaining_mean_s);
  CHECK(cands[0]->remaining_p90_s >= cands[0]->remaining_mean_s);
  CHECK(env.calls().back().call.remaining_mean_s == 0.0);
}

TEST_CASE("the revise loop feeds the real SQLite error back and stops at K rounds", "[agents]") {
  auto w = concert_workload();
  // A model that always answers with a query naming a column the schema lacks (a new one each time).
  int n = 0;
  ScriptedResponder model([&](const LlmCall& c) -> Response {
    switch (c.kind) {
      case StageKind::candidate_generation:
      case StageKind::revise:
        return {"```sql\nSELECT nationality" + std::to_string(++n) + " FROM singer\n```", 20};
      case StageKind::unit_test_generation: return {"1. counts singers\n2. filters on France", 20};
      case StageKind::evaluation: return {"Candidate 1: FAIL\nCandidate 2: FAIL", 10};
      default: return {"[]", 5};
    }
  });
  StandaloneEnv env(model);
  auto opt = simulated_options();
  opt.max_revise_rounds = 4;
  Run run;
  run_with(env, w, opt, run);
  REQUIRE(run.outcome);
  CHECK(run.outcome->completed);
  CHECK_FALSE(run.outcome->correct);
  auto revises = run.rec.ended(StageKind::revise);
  CHECK(revises.size() == 8);  // K = 4 per candidate, 2 candidates
  std::vector<const LlmCall*> rev_calls;
  for (const auto& r : env.calls())
    if (r.call.kind == StageKind::revise) rev_calls.push_back(&r.call);
  REQUIRE(rev_calls.size() == 8);
  for (const auto* c : rev_calls) {
    CHECK(c->prompt.find("no such column: nationality") != std::string::npos);
    CHECK(c->prompt.find("How many singers are from France?") != std::string::npos);
  }
  // Each revise depends on the execution that found the error; started events carry that error as detail.
  for (const auto& e : run.rec.events)
    if (!e.done && e.kind == StageKind::revise) CHECK(e.detail.find("no such column") != std::string::npos);
  // 2 first executions + 8 after revisions.
  CHECK(run.outcome->sql_executions == 10);
  // Two evaluation calls (one per test), in one parallel stage.
  auto evals = run.rec.ended(StageKind::evaluation);
  REQUIRE(evals.size() == 1);
  CHECK(evals[0].calls == 2);
}

TEST_CASE("first-candidate accuracy counts the query as first written, not what revise made of it", "[agents]") {
  auto w = concert_workload();
  // Every first draft names a missing column; every revision writes the gold query.
  ScriptedResponder model([&](const LlmCall& c) -> Response {
    switch (c.kind) {
      case StageKind::candidate_generation: return {"```sql\nSELECT count(*) FROM singer WHERE Nation = 'France'\n```", 20};
      case StageKind::revise: return {"```sql\nSELECT count(*) FROM singer WHERE Country = 'France'\n```", 20};
      default: return {"[]", 5};
    }
  });
  StandaloneEnv env(model);
  auto opt = simulated_options();
  opt.unit_tests = false;
  Run run;
  run_with(env, w, opt, run);
  REQUIRE(run.outcome);
  CHECK(run.outcome->completed);
  CHECK(run.outcome->correct);
  CHECK(run.outcome->sql_executed);
  CHECK_FALSE(run.outcome->first_candidate_correct);
  // The oracle's perfect run: the first candidate is already right.
  PerfectRun perfect;
  REQUIRE(perfect.run.outcome);
  CHECK(perfect.run.outcome->first_candidate_correct);
}

TEST_CASE("a model that keeps its query ends the revise loop at once", "[agents]") {
  auto w = concert_workload();
  ScriptedResponder model([&](const LlmCall& c) -> Response {
    if (c.kind == StageKind::candidate_generation || c.kind == StageKind::revise)
      return {"```sql\nSELECT Name FROM singer WHERE Age >\n```", 20};
    return {"[]", 5};
  });
  StandaloneEnv env(model);
  auto opt = simulated_options();
  opt.unit_tests = false;
  Run run;
  run_with(env, w, opt, run);
  REQUIRE(run.outcome);
  CHECK(run.rec.ended(StageKind::revise).size() == 2);  // one round each, then the same query again
  CHECK(run.outcome->completed);  // the first query written is kept even though none ran
}

TEST_CASE("past its deadline a workflow ends early with the best executed candidate", "[agents]") {
  auto w = concert_workload();
  OracleOptions oo;
  oo.error_scale = 0;
  auto oracle = make_oracle_responder(w, oo);
  StandaloneEnv env(*oracle);
  auto factory = make_text2sql_factory(w, simulated_options());
  // Find when the candidates have executed in an unconstrained run, then set the deadline just after it.
  Run full;
  run_one(env, *factory, w, full);
  double exec_end = 0;
  for (const auto& e : full.rec.ended(StageKind::sql_execution)) exec_end = std::max(exec_end, e.t_s);
  StandaloneEnv env2(*oracle);
  Run run;
  run_one(env2, *factory, w, run, exec_end - 0.001);
  REQUIRE(run.outcome);
  CHECK(run.outcome->ended_early);
  CHECK(run.outcome->completed);
  CHECK(run.outcome->correct);
  CHECK(run.outcome->finished_s < full.outcome->finished_s);
  CHECK(env2.running_calls() == 0);

  AgentOptions keep = simulated_options();
  keep.end_at_deadline = false;
  auto factory2 = make_text2sql_factory(w, keep);
  StandaloneEnv env3(*oracle);
  Run late;
  run_one(env3, *factory2, w, late, exec_end - 0.001);
  CHECK_FALSE(late.outcome->ended_early);
  CHECK(late.outcome->finished_s == Approx(full.outcome->finished_s));
}

TEST_CASE("cancelling a Text-to-SQL workflow cancels its parallel candidates", "[agents]") {
  auto w = concert_workload();
  auto oracle = make_oracle_responder(w, {});
  StandaloneEnv env(*oracle);
  auto factory = make_text2sql_factory(w, simulated_options());
  Run run;
  std::unique_ptr<Workflow> wf = factory->make(w.questions[0], {1, 0, 0.0, 1e9}, env,
                                               [&](const WorkflowOutcome& o) { run.outcome = o; }, &run.rec);
  wf->start();
  // Step the loop until the candidate stage has been released, then cancel.
  std::function<void()> probe = [&] {
    bool cands = false;
    for (const auto& r : env.calls()) cands = cands || r.call.kind == StageKind::candidate_generation;
    if (cands) {
      wf->cancel();
      return;
    }
    env.at(env.now() + 0.05, probe);
  };
  env.at(0, probe);
  env.run();
  REQUIRE(run.outcome);
  CHECK(run.outcome->cancelled);
  int cancelled = 0;
  for (const auto& r : env.calls()) cancelled += r.cancelled && r.call.kind == StageKind::candidate_generation;
  CHECK(cancelled == 2);
  CHECK(env.calls().back().call.kind == StageKind::candidate_generation);
}

TEST_CASE("mutations produce the errors they model on a real SQLite schema", "[agents]") {
  auto backend = make_simulated_backend({{"concert", concert_schema()}});
  workloads::Question q;
  q.db_id = "concert";
  q.gold_sql = "SELECT T1.Name, max(T1.Age) FROM singer AS T1 JOIN concert AS T2 ON T1.Singer_ID = T2.Singer_ID "
               "WHERE T1.Country = 'France' GROUP BY T1.Name";
  std::vector<std::string> cols = {"Singer_ID", "Name", "Country", "Age", "concert_ID", "Year"};
  Rng rng(5);
  auto col = mutate_sql(q.gold_sql, Mutation::misspelled_column, cols, rng);
  REQUIRE(col);
  CHECK(backend->execute(q, *col).error == sqlexec::ErrorClass::no_such_column);
  auto syn = mutate_sql(q.gold_sql, Mutation::syntax_slip, cols, rng);
  REQUIRE(syn);
  CHECK(backend->execute(q, *syn).error == sqlexec::ErrorClass::syntax);
  auto join = mutate_sql(q.gold_sql, Mutation::missing_join_condition, cols, rng);
  REQUIRE(join);
  CHECK(join->find(" ON ") == std::string::npos);
  CHECK(backend->execute(q, *join).ok());
  auto agg = mutate_sql(q.gold_sql, Mutation::wrong_aggregate, cols, rng);
  REQUIRE(agg);
  CHECK(agg->find("MIN(T1.Age)") != std::string::npos);
  auto cond = mutate_sql(q.gold_sql, Mutation::wrong_condition, cols, rng);
  REQUIRE(cond);
  CHECK(cond->find("T1.Country != 'France'") != std::string::npos);
  CHECK(backend->execute(q, q.gold_sql).ok());
  CHECK(backend->correct(q, q.gold_sql).value());
  CHECK_FALSE(backend->correct(q, *agg).value());
  // Not applicable: no JOIN ... ON, no aggregate.
  CHECK_FALSE(mutate_sql("SELECT Name FROM singer", Mutation::missing_join_condition, cols, rng));
  CHECK_FALSE(mutate_sql("SELECT Name FROM singer", Mutation::wrong_aggregate, cols, rng));
}

TEST_CASE("the oracle is deterministic and its error and fix rates match its parameters", "[agents]") {
  workloads::Workload w;
  w.name = "test";
  for (int i = 0; i < 2000; ++i) {
    workloads::Question q;
    q.id = "q" + std::to_string(i);
    q.db_id = "concert";
    q.gold_sql = "SELECT Name FROM singer WHERE Age > " + std::to_string(20 + i % 30) + " ORDER BY Name";
    q.difficulty = static_cast<workloads::Difficulty>(i % 4);
    w.questions.push_back(q);
  }
  OracleOptions oo;
  auto oracle = make_oracle_responder(w, oo);
  auto oracle2 = make_oracle_responder(w, oo);
  auto cols = std::make_shared<const std::vector<std::string>>(
      std::vector<std::string>{"Singer_ID", "Name", "Country", "Age"});
  std::array<int, 4> wrong{}, total{};
  int revise_total = 0, revise_fixed = 0;
  for (const auto& q : w.questions) {
    LlmCall c;
    c.kind = StageKind::candidate_generation;
    auto m = std::make_shared<Text2SqlCallMeta>();
    m->question_id = q.id;
    m->candidate = 0;
    m->columns = cols;
    c.meta = m;
    auto r = oracle->respond(c);
    auto r2 = oracle2->respond(c);
    CHECK(r.text == r2.text);
    CHECK(r.output_tokens == r2.output_tokens);
    auto sql = sqlexec::extract_sql(r.text);
    REQUIRE(sql);
    auto d = static_cast<size_t>(q.difficulty);
    ++total[d];
    if (normalize_sql(*sql) != normalize_sql(q.gold_sql)) {
      ++wrong[d];
      LlmCall rc;
      rc.kind = StageKind::revise;
      auto rm = std::make_shared<Text2SqlCallMeta>(*m);
      rm->round = 1;
      rm->previous_sql = *sql;
      rc.meta = rm;
      auto fixed = sqlexec::extract_sql(oracle->respond(rc).text);
      REQUIRE(fixed);
      ++revise_total;
      revise_fixed += normalize_sql(*fixed) == normalize_sql(q.gold_sql);
    }
  }
  for (size_t d = 0; d < 4; ++d) {
    double rate = static_cast<double>(wrong[d]) / total[d];
    // 500 draws: 3 standard errors of a binomial proportion.
    double se = std::sqrt(oo.p_wrong[d] * (1 - oo.p_wrong[d]) / total[d]);
    CHECK(std::abs(rate - oo.p_wrong[d]) < 3 * se);
  }
  double fix = static_cast<double>(revise_fixed) / revise_total;
  CHECK(std::abs(fix - oo.q_fix) < 3 * std::sqrt(oo.q_fix * (1 - oo.q_fix) / revise_total));

  OracleOptions never;
  never.error_scale = 0;
  auto perfect = make_oracle_responder(w, never);
  for (size_t i = 0; i < 200; ++i) {
    LlmCall c;
    c.kind = StageKind::candidate_generation;
    auto m = std::make_shared<Text2SqlCallMeta>();
    m->question_id = w.questions[i].id;
    c.meta = m;
    CHECK(sqlexec::extract_sql(perfect->respond(c).text).value_or("") == w.questions[i].gold_sql);
  }
}

TEST_CASE("answer parsers accept the forms models write", "[agents]") {
  CHECK(parse_keywords("Keywords: [\"France\", 'singer age', \"2014\"]") ==
        std::vector<std::string>{"France", "singer age", "2014"});
  CHECK(parse_keywords("France, singer") == std::vector<std::string>{"France", "singer"});
  auto sel = parse_column_selection("Here: {\"SINGER\": [\"name\", \"bogus\"], \"nope\": []}", concert_schema());
  REQUIRE(sel.size() == 1);
  CHECK(sel[0].first == "singer");
  CHECK(sel[0].second == std::vector<std::string>{"Name"});
  CHECK(parse_unit_tests("Tests:\n1. first\n2) second\n- third\nprose") ==
        std::vector<std::string>{"first", "second", "third"});
  CHECK(parse_judgement("Candidate 1: PASS\ncandidate 2: fail", 3) == std::vector<int>{1, 0, -1});
}

TEST_CASE("few-shot examples come from other databases, never the question's own", "[agents]") {
  auto w = concert_with_examples();
  OracleOptions oo;
  oo.error_scale = 0;
  auto oracle = make_oracle_responder(w, oo);
  StandaloneEnv env(*oracle);
  auto opt = simulated_options();
  opt.few_shot_examples = 2;
  Run run;
  run_with(env, w, opt, run);
  REQUIRE(run.outcome);
  CHECK(run.outcome->correct);
  int seen = 0;
  for (const auto& r : env.calls())
    if (r.call.kind == StageKind::candidate_generation) {
      ++seen;
      CHECK(r.call.prompt.find("FROM animal WHERE enclosure") != std::string::npos);
      CHECK(r.call.prompt.find(w.questions[0].gold_sql) == std::string::npos);
      size_t n = 0;
      for (size_t p = 0; (p = r.call.prompt.find("FROM animal", p)) != std::string::npos; ++p) ++n;
      CHECK(n == 2);
    }
  CHECK(seen == 2);
}

TEST_CASE("score_correctness=false skips the gold check (a live server's loop never runs it)", "[agents]") {
  // Counts the gold checks a workflow asks of its backend.
  struct CountingBackend final : ExecutionBackend {
    std::shared_ptr<ExecutionBackend> inner;
    int checks = 0;
    explicit CountingBackend(std::shared_ptr<ExecutionBackend> b) : inner(std::move(b)) {}
    const sqlexec::Schema& schema(const std::string& db) override { return inner->schema(db); }
    ExecOutcome execute(const workloads::Question& q, std::string_view sql) override { return inner->execute(q, sql); }
    std::vector<ValueMatch> match_values(const std::string& db, const std::vector<std::string>& k, size_t n) override {
      return inner->match_values(db, k, n);
    }
    std::optional<bool> correct(const workloads::Question& q, std::string_view sql) override {
      ++checks;
      return inner->correct(q, sql);
    }
    bool simulated() const override { return inner->simulated(); }
  };
  auto w = concert_workload();
  OracleOptions oo;
  oo.error_scale = 0;
  auto oracle = make_oracle_responder(w, oo);
  for (bool score : {true, false}) {
    StandaloneEnv env(*oracle);
    auto counting = std::make_shared<CountingBackend>(simulated_options().backend);
    auto opt = simulated_options();
    opt.backend = counting;
    opt.score_correctness = score;
    Run run;
    run_with(env, w, opt, run);
    REQUIRE(run.outcome);
    CHECK(run.outcome->completed);
    CHECK(run.outcome->sql == w.questions[0].gold_sql);
    CHECK(run.outcome->has_gold == score);
    CHECK(run.outcome->correct == score);
    CHECK(counting->checks == (score ? 1 : 0));
  }
}

namespace {

// Prompts of one oracle run of the concert question with a context window (0 = unlimited).
std::vector<LlmCall> prompts_with_context(int window, std::optional<WorkflowOutcome>* outcome = nullptr) {
  auto w = concert_with_examples();
  OracleOptions oo;
  oo.error_scale = 0;
  auto oracle = make_oracle_responder(w, oo);
  StandaloneEnvOptions eo;
  eo.context_tokens = window;
  StandaloneEnv env(*oracle, eo);
  auto schema = concert_schema();  // with sample values, as introspected schemas have
  schema.tables[0].columns[1].samples = {"Joe Sharp", "Timbaland", "Justin Brown"};
  schema.tables[0].columns[2].samples = {"Netherlands", "United States", "France"};
  schema.tables[1].columns[1].samples = {"2014", "2015"};
  AgentOptions opt;
  opt.backend = make_simulated_backend({{"concert", schema}});
  opt.few_shot_examples = 2;
  Run run;
  run_with(env, w, opt, run);
  if (outcome) *outcome = run.outcome;
  std::vector<LlmCall> calls;
  for (const auto& r : env.calls()) calls.push_back(r.call);
  return calls;
}

const LlmCall& first_of(const std::vector<LlmCall>& calls, StageKind kind) {
  for (const auto& c : calls)
    if (c.kind == kind) return c;
  FAIL("no call of kind " << stage_kind_name(kind));
  return calls.front();
}

}  // namespace

TEST_CASE("prompts are fitted to the serving model's context window, deterministically", "[agents]") {
  auto full = prompts_with_context(0);
  const auto& cand_full = first_of(full, StageKind::candidate_generation);
  REQUIRE(cand_full.prompt.find("Solved questions from other databases") != std::string::npos);
  REQUIRE(cand_full.prompt.find(" -- e.g. ") != std::string::npos);  // sample values in the schema
  const int need = cand_full.prompt_tokens;

  // Each window keeps a quarter for the answer; the candidate prompt gives up, in order, the examples, the
  // schema's sample values, schema lines, and at last the start of its text.
  std::set<int> phases;  // 0 untouched, 1 without examples, 2 without sample values, 3 without the schema
  for (int window : {need * 4 / 3 + 8, need, need * 12 / 13, need * 6 / 7, need * 4 / 5, need * 2 / 3, need / 3, 120}) {
    INFO("window " << window << " (the unlimited candidate prompt has " << need << " tokens)");
    std::optional<WorkflowOutcome> outcome;
    auto calls = prompts_with_context(window, &outcome);
    REQUIRE(outcome);
    CHECK(outcome->completed);  // the oracle answers from the call's metadata, so every workflow still completes
    CHECK(outcome->correct);
    for (const auto& c : calls) {
      CHECK(c.max_output_tokens <= std::max(16, window / 4));
      CHECK(c.prompt_tokens == sqlexec::estimate_tokens(c.prompt));
      CHECK(c.prompt_tokens + c.max_output_tokens <= window);
    }
    const auto& cand = first_of(calls, StageKind::candidate_generation);
    const bool examples = cand.prompt.find("Solved questions from other databases") != std::string::npos;
    const bool samples = cand.prompt.find(" -- e.g. ") != std::string::npos;
    const bool schema = cand.prompt.find("CREATE TABLE singer") != std::string::npos;
    CHECK(cand.prompt.find("in a ```sql code block.") != std::string::npos);  // the instruction at the end stays
    if (window > need * 4 / 3) CHECK(cand.prompt == cand_full.prompt);     // fits: untouched
    if (samples) CHECK(examples == (window > need * 4 / 3));                // examples go before samples
    if (examples) CHECK(samples);
    if (!schema) CHECK_FALSE(samples);                                        // and samples before tables
    if (window <= need / 3) CHECK_FALSE(examples);
    phases.insert(examples ? 0 : samples ? 1 : schema ? 2 : 3);
    // Deterministic: the same window gives the same prompts.
    auto again = prompts_with_context(window);
    REQUIRE(again.size() == calls.size());
    for (size_t i = 0; i < calls.size(); ++i) CHECK(again[i].prompt == calls[i].prompt);
  }
  CHECK(phases == std::set<int>{0, 1, 2, 3});  // the windows walked through every step
}

TEST_CASE("an answer without SQL is executed as written: SQLite's error drives the revise loop", "[agents]") {
  auto w = concert_workload();
  int revise_with_error = 0;
  ScriptedResponder prose([&](const LlmCall& c) {
    Response r;
    if (c.kind == StageKind::revise && c.prompt.find("syntax error") != std::string::npos) ++revise_with_error;
    r.text = c.kind == StageKind::tool_picker ? "{\"tool\": \"x\"}" : "Once upon a time there was a little cat.";
    r.output_tokens = 10;
    return r;
  });
  StandaloneEnv env(prose);
  auto opt = simulated_options();
  opt.max_revise_rounds = 2;
  Run run;
  run_with(env, w, opt, run);
  REQUIRE(run.outcome);
  INFO(run.outcome->error);
  CHECK(run.outcome->completed);  // ends with the first query written, scored wrong
  CHECK(run.outcome->sql == "Once upon a time there was a little cat.");
  CHECK_FALSE(run.outcome->correct);
  CHECK(run.outcome->sql_executions >= 2);
  CHECK(revise_with_error >= 2);  // both candidates' SQLite errors went back to the model
  CHECK(run.rec.ended(StageKind::revise).size() >= 2);
}

TEST_CASE("candidate and revise calls carry the question's literal rules; other calls and literal_guide=false do not",
          "[agents][literal]") {
  PerfectRun perfect;
  int with_rules = 0;
  for (const auto& r : perfect.env.calls()) {
    const bool sql_stage = r.call.kind == StageKind::candidate_generation || r.call.kind == StageKind::revise;
    CHECK(static_cast<bool>(r.call.literals) == sql_stage);
    if (!r.call.literals) continue;
    ++with_rules;
    const auto& s = r.call.literals->strings;
    // No value in double quotes: the question's and the evidence's words, with LIKE's wildcards; no numbers but
    // 1 after LIMIT.
    const auto& like = r.call.literals->like_patterns;
    CHECK(r.call.literals->named_values.empty());
    CHECK(std::find(s.begin(), s.end(), "France") != s.end());
    CHECK(std::find(s.begin(), s.end(), "singers are from France") != s.end());
    CHECK(std::find(like.begin(), like.end(), "%France%") != like.end());
    CHECK(std::find(s.begin(), s.end(), "Germany") == s.end());
    CHECK(r.call.literals->numbers.empty());
    CHECK(r.call.literals->limit_numbers == std::vector<std::string>{"1"});
    // The whole schema's names, not only the linked tables.
    using Tables = std::vector<std::pair<std::string, std::vector<std::string>>>;
    CHECK(r.call.literals->tables == Tables{{"singer", {"Singer_ID", "Name", "Country", "Age"}},
                                            {"concert", {"concert_ID", "Year", "Singer_ID"}}});
  }
  CHECK(with_rules == 2);

  auto w = concert_workload();
  auto oracle = make_oracle_responder(w, OracleOptions{});
  StandaloneEnv env(*oracle);
  AgentOptions free = simulated_options();
  free.literal_guide = false;
  Run run;
  run_with(env, w, free, run);
  for (const auto& r : env.calls()) CHECK_FALSE(r.call.literals);
}

TEST_CASE("question literal rules: named values, numbers in digits and words, date words, spans", "[agents][literal]") {
  auto has = [](const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
  };
  auto r = question_literal_rules("Which 4 \"North Wing\" rooms, built after 2020-03-01, cost over 12.5 or three?");
  CHECK(r.named_values == std::vector<std::string>{"North Wing", "2020-03-01"});  // in the question's order
  for (const char* n : {"4", "2020", "03", "01", "12.5", "3"}) CHECK(has(r.numbers, n));
  for (const char* n : {"12", "5", "1", "0"}) CHECK_FALSE(has(r.numbers, n));
  CHECK(r.limit_numbers == std::vector<std::string>{"1"});
  for (const char* s : {"12.5", "4"}) CHECK(has(r.strings, s));
  CHECK(has(r.formats, "%Y"));
  for (const char* s : {"rooms", "North", "\"North Wing\"", "%Y"}) CHECK_FALSE(has(r.strings, s));
  for (const char* s : {"%North Wing%", "North Wing%", "2020-03-01%"}) CHECK(has(r.like_patterns, s));
  // Digits inside a name are no number.
  auto model = question_literal_rules("Count the flights whose aircraft has model \"B777\" or A320x2.");
  CHECK(model.numbers.empty());
  CHECK(model.named_values == std::vector<std::string>{"B777"});
  // Without named values every run of up to six words is a possible value.
  auto free = question_literal_rules("Which singers live in New York City?");
  CHECK(free.named_values.empty());
  for (const char* s : {"New York City", "New York", "singers live in New York City", "Which"}) CHECK(has(free.strings, s));
  CHECK_FALSE(has(free.strings, "New Yor"));  // spans are whole words
  CHECK_FALSE(has(free.strings, "City?"));
  auto clauses = question_literal_rules("Which loans run from May to June? Give their borrower names, sorted.");
  CHECK(has(clauses.strings, "from May to June"));
  CHECK_FALSE(has(clauses.strings, "June? Give"));           // a value does not run past a clause's end
  CHECK_FALSE(has(clauses.strings, "borrower names, sorted"));
  auto level = question_literal_rules("List courses whose level is \"100\" or whose credits are above 4.");
  CHECK(level.numbers == std::vector<std::string>{"4"});  // "100" is a string value here, not a number
}

TEST_CASE("question literal rules admit every gold query of a synthetic seed and refuse a changed literal",
          "[agents][literal]") {
  test::TempDir dir("agents-literals");
  workloads::SyntheticOptions so;
  so.seed = 42;  // the evaluation seed: the rules must never rule out its right answers
  so.questions_per_db = 40;
  auto w = workloads::generate_synthetic(dir.file("synthetic-42"), so);
  REQUIRE(w.questions.size() == 240);
  size_t with_literal = 0, refused_changes = 0, with_comparison = 0, refused_reversals = 0;
  size_t counts = 0;
  for (const auto& q : w.questions) {
    // The rules as the agent builds them: the question's literals and comparisons, the schema's names, the count.
    auto rules = question_literal_rules(q.question);
    for (const auto& t : w.databases.at(q.db_id).tables) {
      rules.tables.emplace_back(t.name, std::vector<std::string>{});
      for (const auto& c : t.columns) rules.tables.back().second.push_back(c.name);
    }
    REQUIRE_FALSE(rules.tables.empty());
    rules.first_item = question_answer_functions(q.question, rules.tables);
    counts += !rules.first_item.empty();
    auto tries = std::make_shared<const engine::LiteralTries>(rules);
    const std::string answer = "Here it is.\n```sql\n" + q.gold_sql + "\n```";
    INFO(q.question << "\n" << q.gold_sql);
    CHECK(engine::SqlLiteralGuide(tries).accepts(answer));
    // The same query with its comparison turned round is refused too.
    std::string reversed = q.gold_sql;
    if (size_t op = reversed.find_first_of("<>"); op != std::string::npos) {
      reversed[op] = reversed[op] == '<' ? '>' : '<';
      ++with_comparison;
      if (!engine::SqlLiteralGuide(tries).accepts("Here it is.\n```sql\n" + reversed + "\n```")) ++refused_reversals;
    }
    // The same query with its first literal changed (a digit bumped, a letter doubled) is refused.
    std::string changed = q.gold_sql;
    size_t quote = changed.find('\'');
    size_t digit = std::string::npos;  // the first numeric literal (not a digit of a name like T1)
    for (size_t i = 1; i < changed.size() && digit == std::string::npos; ++i)
      if (std::isdigit(static_cast<unsigned char>(changed[i])) &&
          !(std::isalnum(static_cast<unsigned char>(changed[i - 1])) || changed[i - 1] == '_' || changed[i - 1] == '.'))
        digit = i;
    if (quote != std::string::npos) {
      changed.insert(quote + 1, "x");
    } else if (digit != std::string::npos) {
      changed[digit] = changed[digit] == '9' ? '8' : static_cast<char>(changed[digit] + 1);
    } else {
      continue;
    }
    ++with_literal;
    if (!engine::SqlLiteralGuide(tries).accepts("Here it is.\n```sql\n" + changed + "\n```")) ++refused_changes;
  }
  CHECK(with_literal > 60);
  CHECK(refused_changes == with_literal);
  CHECK(with_comparison > 20);
  CHECK(refused_reversals == with_comparison);
  CHECK(counts > 60);
}

TEST_CASE("count and aggregate questions: how many, the minimum …, unless per group or the number of a column",
          "[agents][literal]") {
  const std::vector<std::pair<std::string, std::vector<std::string>>> courses{{"courses", {"id", "title", "credits"}}};
  CHECK(question_asks_count("Count the plays whose listener has country \"USA\".", {}));
  CHECK(question_asks_count("  How many sections have semester \"Fall\"?", courses));
  CHECK(question_asks_count("What is the number of courses with 3 credits?", courses));
  CHECK(question_asks_count("How many people live in Asia?\nUse each country's population.", {}));  // evidence
  CHECK_FALSE(question_asks_count("For each rank, how many instructors are there?", {}));
  CHECK_FALSE(question_asks_count("Count the customers per year of join date.", {}));
  CHECK_FALSE(question_asks_count("What is the number of credits of the course \"Algebra\"?", courses));
  CHECK_FALSE(question_asks_count("Which airlines have more than 3 aircraft?", {}));
  using V = std::vector<std::string>;
  CHECK(question_answer_functions("How many albums are there?", {}) == V{"COUNT", "SUM", "CAST"});
  CHECK(question_answer_functions("What is the total number of authors?", {}) == V{"COUNT", "SUM", "CAST"});
  CHECK(question_answer_functions("Compute the minimum founding year over airlines.", {}) == V{"MIN"});
  CHECK(question_answer_functions("Give the largest and smallest founding year among airlines.", {}) == V{"MAX"});
  CHECK(question_answer_functions("What is the average cost of admissions?", {}) == V{"AVG", "CAST"});
  CHECK(question_answer_functions("What is the total cost of admissions?", {}) == V{"SUM", "COUNT", "CAST"});
  CHECK(question_answer_functions("What is the average score? List the schools too.", {}).empty());
  CHECK(question_answer_functions("What is the maximum horsepower and the make of the cars?", {}).empty());
  CHECK(question_answer_functions("What is the average age per city?", {}).empty());
  CHECK(question_answer_functions("What is the averaged thing?", {}).empty());  // whole words only
  CHECK(question_answer_functions("Which airline has the largest fleet?", {}).empty());
}

TEST_CASE("question comparisons: the directions a question states, or none when it is unclear", "[agents][literal]") {
  using V = std::vector<std::string>;
  CHECK(question_comparisons("Give the names of airlines whose founding year is below 1968.") == V{"<"});
  CHECK(question_comparisons("Which wards have floor greater than 1? List their names.") == V{">"});
  CHECK(question_comparisons("Find airlines with 3 or more aircraft.") == V{">="});
  CHECK(question_comparisons("Find airlines with at least 3 aircraft and at most nine pilots.") == V{"<=", ">="});
  CHECK(question_comparisons("How many museums opened after 2013 or before 2008?") == V{"<", ">"});
  CHECK(question_comparisons("Which dogs cost no more than 1000?") == V{"<=", ">"});  // <= or NOT IN (… > 1000)
  CHECK(question_comparisons("List salaries less than or equal to 5.") == V{"<", "<="});
  CHECK(question_comparisons("Elder users: Age > 65; a score of over 19: Score > = 20") == V{">", ">="});
  CHECK(question_comparisons("Which singers are older than 40?").empty());  // age > 40 or birth year < …
  CHECK(question_comparisons("Which rooms have between 3 and 5 beds?").empty());
  CHECK(question_comparisons("Which students are wealthier than average?").empty());
  CHECK(question_comparisons("Which airlines have a higher average delay in minutes than all flights?") == V{">"});
  CHECK(question_comparisons("List the names of all students.").empty());
}
