#include <catch2/catch.hpp>

#include <map>
#include <optional>

#include "agents/oracle.hpp"
#include "agents/sim_env.hpp"
#include "agents/text2sql.hpp"
#include "common/json.hpp"
#include "tests/support.hpp"

using namespace t2s;
using namespace t2s::agents;

namespace {

// The Spider dev questions of the shared data with their databases (read here directly, independently of the
// workloads module, so that this test checks the agent alone).
workloads::Workload spider_dev() {
  workloads::Workload w;
  w.name = "spider";
  auto doc = json::parse_file(test::shared_data("spider/dev.json"));
  size_t i = 0;
  for (const auto& item : doc.GetArray()) {
    workloads::Question q;
    q.id = "spider:" + std::to_string(i++);
    q.db_id = item["db_id"].GetString();
    q.question = item["question"].GetString();
    q.gold_sql = item["query"].GetString();
    w.questions.push_back(q);
    w.databases[q.db_id] = {q.db_id, test::shared_data("spider/database/" + q.db_id + "/" + q.db_id + ".sqlite"),
                            "sqlite"};
  }
  return w;
}

workloads::Workload bird_minidev() {
  workloads::Workload w;
  w.name = "bird";
  auto doc = json::parse_file(test::shared_data("bird_minidev/mini_dev_sqlite.json"));
  const std::map<std::string, workloads::Difficulty> diff = {{"simple", workloads::Difficulty::easy},
                                                             {"moderate", workloads::Difficulty::medium},
                                                             {"challenging", workloads::Difficulty::hard}};
  for (const auto& item : doc.GetArray()) {
    workloads::Question q;
    q.id = "bird:" + std::to_string(item["question_id"].GetInt());
    q.db_id = item["db_id"].GetString();
    q.question = item["question"].GetString();
    q.evidence = item["evidence"].GetString();
    q.gold_sql = item["SQL"].GetString();
    q.difficulty = diff.at(item["difficulty"].GetString());
    w.questions.push_back(q);
    w.databases[q.db_id] = {q.db_id, "", test::shared_data("bird_minidev/dev_tables.json")};
  }
  w.execution_available = false;
  w.execution_note = "BIRD database files are not in the shared data";
  return w;
}

// Runs every question (one after another, in one env) and returns the outcomes.
std::vector<WorkflowOutcome> run_all(const workloads::Workload& w, WorkflowFactory& factory, Responder& responder) {
  StandaloneEnv env(responder);
  std::vector<WorkflowOutcome> outs;
  std::vector<std::unique_ptr<Workflow>> live;
  for (size_t i = 0; i < w.questions.size(); ++i) {
    live.push_back(factory.make(w.questions[i], {i + 1, i, 0, 1e12}, env,
                                [&](const WorkflowOutcome& o) { outs.push_back(o); }, nullptr));
    live.back()->start();
    env.run();
    live.clear();
  }
  return outs;
}

}  // namespace

TEST_CASE("on Spider dev with a never-erring oracle every question ends with a query matching gold",
          "[agents][shared]") {
  auto w = spider_dev();
  REQUIRE(w.questions.size() == 778);
  OracleOptions oo;
  oo.error_scale = 0;
  auto oracle = make_oracle_responder(w, oo);
  auto factory = make_text2sql_factory(w);
  auto outs = run_all(w, *factory, *oracle);
  REQUIRE(outs.size() == w.questions.size());
  int correct = 0;
  for (const auto& o : outs) {
    INFO(o.question_id << " " << o.error << " " << o.sql);
    CHECK(o.completed);
    CHECK_FALSE(o.execution_simulated);
    CHECK(o.has_gold);
    correct += o.correct;
  }
  CHECK(correct == static_cast<int>(outs.size()));
}

TEST_CASE("BIRD mini-dev without database files runs on simulated execution", "[agents][shared]") {
  auto w = bird_minidev();
  OracleOptions oo;
  oo.error_scale = 0;
  auto oracle = make_oracle_responder(w, oo);
  auto factory = make_text2sql_factory(w);
  auto outs = run_all(w, *factory, *oracle);
  REQUIRE(outs.size() == 500);
  int correct = 0, simulated = 0;
  for (const auto& o : outs) {
    INFO(o.question_id << " " << o.error << " " << o.sql);
    CHECK(o.completed);
    correct += o.correct;
    simulated += o.execution_simulated;
  }
  CHECK(simulated == 500);
  // Every gold query prepares on the schema-only database, so a perfect oracle is always right.
  CHECK(correct == 500);
}
