#include <catch2/catch.hpp>

#include <map>
#include <optional>

#include "agents/oracle.hpp"
#include "agents/sim_env.hpp"
#include "agents/text2sql.hpp"
#include "workloads/loaders.hpp"
#include "tests/support.hpp"

using namespace t2s;
using namespace t2s::agents;

namespace {

workloads::Workload load(const std::string& kind, const std::string& dir) {
  workloads::WorkloadSpec spec;
  spec.kind = kind;
  spec.data_dir = test::shared_data(dir);
  return workloads::load_workload(spec);
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
  auto w = load("spider", "spider");
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
  auto w = load("bird", "bird_minidev");
  REQUIRE_FALSE(w.execution_available);
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

TEST_CASE("schemas known from tables.json convert to sqlexec schemas", "[agents][shared]") {
  auto dbs = workloads::load_tables_json(test::shared_data("bird_minidev/dev_tables.json"));
  REQUIRE(dbs.size() == 11);
  auto s = schema_from_database_info(dbs.at("debit_card_specializing"));
  REQUIRE(!s.tables.empty());
  CHECK(s.tables[0].name == "customers");
  CHECK(s.tables[0].columns[0].name == "CustomerID");
  CHECK(s.tables[0].columns[0].primary_key);
  CHECK(sqlexec::schema_prompt(s).find("CREATE TABLE customers") != std::string::npos);
}
