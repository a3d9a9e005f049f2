// `t2s serve` end to end on loopback: the Text-to-SQL agent on the runtime over the synthetic databases (oracle
// answers at modelled speed), asked through the WebSocket; the HTTP side serves the page, timeline, trace, metrics.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <filesystem>
#include <fstream>
#include <future>
#include <set>

#include <sqlite3.h>

#include "common/status.hpp"
#include "engine/llama2c.hpp"
#include "sqlexec/database.hpp"
#include "server/http_client.hpp"
#include "server/http_server.hpp"
#include "runtime/engine_models.hpp"
#include "server/serve_app.hpp"
#include "tests/support.hpp"

using namespace t2s;
using namespace t2s::server;

namespace {

// Frames received but not yet asked for (answers of concurrent questions arrive in any order).
std::vector<std::string> backlog;

std::string json_string(const std::string& s) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  return sb.GetString();
}

bool matches(const rapidjson::Document& d, const std::string& type, const std::string& id) {
  return d["type"].GetString() == type && (id.empty() || (d.HasMember("id") && id == d["id"].GetString()));
}

std::optional<rapidjson::Document> next_of(WsClient& c, const std::string& type, const std::string& id,
                                           int* stages = nullptr, double timeout_s = 60) {
  for (auto it = backlog.begin(); it != backlog.end(); ++it) {
    rapidjson::Document d;
    d.Parse(it->c_str());
    if (matches(d, type, id)) {
      backlog.erase(it);
      return d;
    }
  }
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < until) {
    auto f = c.receive(0.5);
    if (!f) continue;
    rapidjson::Document d;
    d.Parse(f->c_str());
    REQUIRE_FALSE(d.HasParseError());
    std::string t = d["type"].GetString();
    if (t == "stage" && stages) ++*stages;
    if (matches(d, type, id)) return d;
    if (t == "error" && type != "error") FAIL("unexpected error frame: " << *f);
    if (t != "stage") backlog.push_back(*f);
  }
  return std::nullopt;
}

}  // namespace

TEST_CASE("serve: questions over WebSocket on the synthetic databases, page, timeline, trace and metrics",
          "[server][slow]") {
  t2s::test::TempDir dir("t2s-serve");
  ServeConfig cfg;
  cfg.responder = "oracle";
  cfg.cache_dir = dir.file("synthetic");
  cfg.runtime.responder_speed = 50;
  cfg.oracle_error_scale = 0;  // the oracle never errs: the answer must be the gold result
  QuestionService svc(cfg);
  auto api = std::make_shared<QuestionApi>(svc, QuestionApiOptions{});
  HttpServer http(ServerOptions{});
  attach_serve_routes(http, svc, api);
  http.start();

  auto examples = svc.examples(2);
  REQUIRE_FALSE(examples.empty());
  const auto& [db, qs] = *examples.begin();
  WsClient c("127.0.0.1", http.port(), "/ws");
  REQUIRE(c.send(R"({"type":"ask","id":"q1","db":)" + json_string(db) + R"(,"question":)" + json_string(qs[0]) + "}"));
  REQUIRE(c.send(R"({"type":"ask","id":"q2","db":)" + json_string(db) + R"(,"question":)" + json_string(qs[1]) + "}"));
  REQUIRE(next_of(c, "accepted", "q1"));
  int stages = 0;
  auto r1 = next_of(c, "result", "q1", &stages);
  REQUIRE(r1);
  CHECK((*r1)["executed"].GetBool());
  CHECK_FALSE(r1->HasMember("error"));
  CHECK(std::string((*r1)["sql"].GetString()).size() > 6);
  CHECK((*r1)["columns"].Size() >= 1);
  CHECK((*r1)["llm_calls"].GetInt() >= 3);
  CHECK(stages >= 4);
  REQUIRE(next_of(c, "result", "q2"));
  // A question the oracle cannot answer is refused clearly; an unknown database too.
  REQUIRE(c.send(R"({"type":"ask","id":"q3","db":")" + db + R"(","question":"What is the meaning of life?"})"));
  auto e3 = next_of(c, "error", "q3");
  REQUIRE(e3);
  CHECK(std::string((*e3)["code"].GetString()) == "failed");
  CHECK(std::string((*e3)["message"].GetString()).find("oracle") != std::string::npos);
  REQUIRE(c.send(R"({"type":"ask","id":"q4","db":"no_such_db","question":"x"})"));
  auto e4 = next_of(c, "error", "q4");
  REQUIRE(e4);
  CHECK(std::string((*e4)["code"].GetString()) == "unknown_db");

  HttpClient h("127.0.0.1", http.port());
  auto page = h.request("GET", "/");
  CHECK(page.status == 200);
  CHECK(page.body.find("t2s serve") != std::string::npos);
  auto tl = h.request("GET", "/timeline.json?since=0");
  rapidjson::Document d;
  d.Parse(tl.body.c_str());
  REQUIRE_FALSE(d.HasParseError());
  CHECK(d["calls"].Size() >= 6);
  CHECK(d["instances"].Size() == 4);  // hetero-small
  auto trace = h.request("GET", "/trace.json");
  rapidjson::Document td;
  td.Parse(trace.body.c_str());
  REQUIRE_FALSE(td.HasParseError());
  CHECK(td["traceEvents"].Size() > 10);
  auto metrics = h.request("GET", "/metrics");
  for (const char* name : {"t2s_instance_queue_depth{instance=\"h100\"}", "t2s_instance_kv_used_ratio",
                           "t2s_llm_call_seconds_bucket", "t2s_question_latency_seconds_count", "t2s_slo_attainment",
                           "t2s_sql_seconds_count"})
    CHECK(metrics.body.find(name) != std::string::npos);
  CHECK(h.request("GET", "/healthz").body == "ok\n");
  c.close();
  http.stop();
  api->cancel_all();
  svc.stop();
}

TEST_CASE("serve --db-dir: a user's folder is served read-only, and an answer that did not execute says so",
          "[server]") {
  namespace fs = std::filesystem;
  t2s::test::TempDir dir("t2s-dbdir-serve");
  fs::create_directories(dir.path() / "dbs" / "shop");
  {
    sqlite3* db = nullptr;
    REQUIRE(sqlite3_open(dir.file("dbs/shop/shop.sqlite").c_str(), &db) == SQLITE_OK);
    REQUIRE(sqlite3_exec(db, "CREATE TABLE orders(id INTEGER PRIMARY KEY, amount REAL); "
                             "INSERT INTO orders(amount) VALUES (3.5), (7.25);",
                         nullptr, nullptr, nullptr) == SQLITE_OK);
    sqlite3_close(db);
  }
  fs::create_directories(dir.path() / "model");
  std::string model = dir.file("model/m.bin");
  t2s::engine::write_random_llama2c_checkpoint(model, {48, 96, 2, 6, 2, 300, 256, false}, 3, 0.3f);
  t2s::engine::write_synthetic_llama2c_vocab(dir.file("model/tok512.bin"), 300);
  const auto before = t2s::test::folder_state(dir.path() / "dbs");

  ServeConfig cfg;
  cfg.db_dir = dir.file("dbs");
  cfg.cache_dir = dir.file("cache");
  // The oracle answers only benchmark questions: a folder of the user's own databases needs a model.
  cfg.cluster = "hetero-small";
  CHECK_THROWS_WITH(QuestionService(cfg), Catch::Contains("--db-dir serves free-text questions"));

  cfg.cluster = "local";
  cfg.model = model;  // a random model: its SQL will not run, and the answer must say so
  cfg.deadline_ms = 3000;
  {
    QuestionService svc(cfg);
    CHECK(svc.databases() == std::vector<std::string>{"shop"});
    AskFrame ask;
    ask.id = "c1";
    ask.db = "shop";
    ask.question = "What is the total amount of all orders?";
    std::promise<t2s::agents::WorkflowOutcome> done;
    svc.start(svc.next_workflow_id(), ask, nullptr, [&](const t2s::agents::WorkflowOutcome& o) { done.set_value(o); });
    auto fut = done.get_future();
    REQUIRE(fut.wait_for(std::chrono::seconds(120)) == std::future_status::ready);
    auto o = fut.get();
    svc.stop();
    if (o.completed && !o.failed) {
      // sql_executed must agree with what SQLite itself says of the selected query.
      auto db = t2s::sqlexec::Database::open(dir.file("dbs/shop/shop.sqlite"));
      bool runs = db->execute(o.sql).ok();
      CHECK(o.sql_executed == runs);
      if (!o.sql_executed) CHECK_FALSE(o.sql_error.empty());
      auto frame = result_frame("c1", o);
      CHECK(frame.find(o.sql_executed ? "\"executed\":true" : "\"executed\":false") != std::string::npos);
      CHECK((frame.find("\"error\":") != std::string::npos) == !o.sql_executed);
    } else {
      CHECK_FALSE(o.error.empty());
    }
  }
  // Nothing was written into the user's folder: same files, same bytes (no journal, WAL or generated benchmark).
  CHECK(t2s::test::folder_state(dir.path() / "dbs") == before);
}

TEST_CASE("serve: the default cluster follows --responder and whether the bundled model exists", "[server]") {
  t2s::test::TempDir dir("t2s-responder");
  CHECK(default_serve_cluster("oracle", dir.path().string()) == "hetero-small");
  CHECK(default_serve_cluster("model", dir.path().string()) == "local");
  CHECK(default_serve_cluster("auto", dir.path().string()) == "hetero-small");
  std::ofstream(dir.file(kBundledModelFile)) << "GGUF";
  CHECK(default_serve_cluster("auto", dir.path().string()) == "local");
  CHECK_THROWS_WITH(default_serve_cluster("gpt", dir.path().string()), Catch::Contains("--responder 'gpt'"));
  // An explicit cluster that contradicts the responder is refused by name.
  ServeConfig cfg;
  cfg.cache_dir = dir.file("synthetic");
  cfg.responder = "model";
  cfg.cluster = "hetero-small";
  CHECK_THROWS_WITH(QuestionService(cfg), Catch::Contains("--responder model"));
}
