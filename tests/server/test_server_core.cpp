// The HTTP/WebSocket core on loopback: routes, keep-alive, chunked streaming, limits, and the question protocol
// (every frame type and error code) against a scripted backend that runs questions on its own thread.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <set>
#include <thread>

#include "common/status.hpp"
#include "runtime/metrics.hpp"
#include "server/http_client.hpp"
#include "server/http_server.hpp"
#include "server/protocol.hpp"
#include "server/question_api.hpp"

using namespace t2s::server;

namespace {

rapidjson::Document parse(const std::string& s) {
  rapidjson::Document d;
  d.Parse(s.c_str());
  REQUIRE_FALSE(d.HasParseError());
  return d;
}

std::string type_of(const rapidjson::Document& d) { return d["type"].GetString(); }

// A backend whose questions take two stages of `stage_ms` each on a worker thread; "slow" questions take 10×.
class ScriptedBackend : public QuestionBackend {
 public:
  explicit ScriptedBackend(int stage_ms) : stage_ms_(stage_ms), worker_([this] { loop(); }) {}
  ~ScriptedBackend() override {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_all();
    worker_.join();
  }
  bool has_database(const std::string& db) const override { return db == "concert_singer"; }
  std::vector<std::string> databases() const override { return {"concert_singer"}; }
  uint64_t next_workflow_id() override { return ++next_id_; }
  void start(uint64_t id, const AskFrame& ask, StageFn on_stage, DoneFn on_done) override {
    std::lock_guard lk(mu_);
    jobs_.push_back({id, ask.question, now(), std::move(on_stage), std::move(on_done)});
    cv_.notify_all();
  }
  void cancel(uint64_t id) override {
    std::lock_guard lk(mu_);
    cancelled_.insert(id);
    cancel_calls_++;
    cv_.notify_all();
  }
  double now() const override {
    return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0_).count();
  }
  std::string status_json() const override { return "{\"kind\":\"scripted\"}"; }
  int cancel_calls() {
    std::lock_guard lk(mu_);
    return cancel_calls_;
  }

 private:
  struct Job {
    uint64_t id;
    std::string question;
    double arrival;
    StageFn on_stage;
    DoneFn on_done;
  };
  void loop() {
    std::unique_lock lk(mu_);
    while (!stop_) {
      if (jobs_.empty()) {
        cv_.wait(lk);
        continue;
      }
      auto job = std::move(jobs_.front());
      jobs_.pop_front();
      bool slow = job.question.find("slow") != std::string::npos;
      t2s::agents::WorkflowOutcome o;
      o.workflow_id = job.id;
      o.arrival_s = job.arrival;
      o.deadline_s = job.arrival + 60;
      bool cancelled = false;
      for (int s = 0; s < 2 && !cancelled; ++s) {
        t2s::agents::StageEvent e;
        e.workflow_id = job.id;
        e.stage_index = static_cast<uint32_t>(s);
        e.kind = s == 0 ? t2s::agents::StageKind::candidate_generation : t2s::agents::StageKind::sql_execution;
        e.t_s = now();
        lk.unlock();
        job.on_stage(e);
        lk.lock();
        cv_.wait_for(lk, std::chrono::milliseconds(stage_ms_ * (slow ? 10 : 1)),
                     [&] { return stop_ || cancelled_.count(job.id) > 0; });
        cancelled = cancelled_.count(job.id) > 0 || stop_;
        e.done = true;
        e.elapsed_s = now() - e.t_s;
        if (!cancelled) {
          lk.unlock();
          job.on_stage(e);
          lk.lock();
        }
      }
      o.cancelled = cancelled;
      o.completed = !cancelled;
      o.sql = "SELECT count(*) FROM singer";
      o.columns = {"count(*)"};
      o.rows = {{"6"}};
      o.finished_s = now();
      lk.unlock();
      job.on_done(o);
      lk.lock();
    }
  }
  int stage_ms_;
  std::chrono::steady_clock::time_point t0_ = std::chrono::steady_clock::now();
  std::atomic<uint64_t> next_id_{0};
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<Job> jobs_;
  std::set<uint64_t> cancelled_;
  int cancel_calls_ = 0;
  bool stop_ = false;
  std::thread worker_;
};

// Receives frames until one of `type` for `id` arrives (or times out), collecting all on the way.
std::optional<rapidjson::Document> await_frame(WsClient& c, const std::string& type, const std::string& id,
                                               std::vector<std::string>* seen = nullptr, double timeout_s = 5) {
  auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < until) {
    auto f = c.receive(0.2);
    if (!f) continue;
    if (seen) seen->push_back(*f);
    auto d = parse(*f);
    if (type_of(d) == type && (id.empty() || (d.HasMember("id") && d["id"].GetString() == id))) return d;
  }
  return std::nullopt;
}

struct Fixture {
  ScriptedBackend backend{20};
  QuestionApiOptions opt;
  std::shared_ptr<QuestionApi> api;
  std::unique_ptr<HttpServer> server;
  std::mutex workers_mu;
  std::vector<std::thread> workers;  // joined before the server goes (replies must not outlive it)
  explicit Fixture(size_t per_conn = 4, size_t total = 64) {
    opt.max_in_flight_per_connection = per_conn;
    opt.max_in_flight_total = total;
    opt.max_frame_bytes = 4096;
    api = std::make_shared<QuestionApi>(backend, opt);
    ServerOptions so;
    so.max_frame_bytes = 4096;
    so.max_body_bytes = 1024;
    server = std::make_unique<HttpServer>(so);
    server->route("GET", "/healthz", [](const HttpRequest&, std::shared_ptr<HttpReply> r) {
      r->send({200, "text/plain", "ok\n", {}});
    });
    server->route("POST", "/echo", [](const HttpRequest& q, std::shared_ptr<HttpReply> r) {
      r->send({200, "application/json", q.body, {}});
    });
    server->route("GET", "/stream", [this](const HttpRequest&, std::shared_ptr<HttpReply> r) {
      // Produced later from another thread, as the engine does.
      std::lock_guard lk(workers_mu);
      workers.emplace_back([r] {
        r->begin_stream(200, "text/event-stream");
        for (int i = 0; i < 5; ++i) {
          r->write("data: " + std::to_string(i) + "\n\n");
          std::this_thread::sleep_for(std::chrono::milliseconds(5));
        }
        r->end();
      });
    });
    server->websocket("/ws", api);
    server->start();
  }
  ~Fixture() {
    for (auto& t : workers) t.join();
    server->stop();
    api->cancel_all();
  }
  uint16_t port() const { return server->port(); }
};

}  // namespace

TEST_CASE("protocol: client frames are parsed and validated", "[server]") {
  auto ask = parse_client_frame(R"({"type":"ask","id":"c1","db":"x","question":"q?","deadline_ms":8000})");
  REQUIRE(std::holds_alternative<AskFrame>(ask));
  CHECK(std::get<AskFrame>(ask).deadline_ms == 8000);
  CHECK(std::holds_alternative<StatusFrame>(parse_client_frame(R"({"type":"status"})")));
  CHECK(std::get<CancelFrame>(parse_client_frame(R"({"type":"cancel","id":"z"})")).id == "z");
  auto code = [](const char* text) {
    auto f = parse_client_frame(text);
    return std::holds_alternative<ProtocolError>(f) ? std::get<ProtocolError>(f).code : std::string("none");
  };
  CHECK(code("{not json") == "bad_json");
  CHECK(code("[1,2]") == "bad_request");
  CHECK(code(R"({"type":"dance","id":"a"})") == "unknown_type");
  CHECK(code(R"({"type":"ask","id":"a","question":"q"})") == "bad_request");  // no db
  CHECK(code(R"({"type":"ask","id":"a","db":"x","question":""})") == "bad_request");
  CHECK(code(R"({"type":"ask","db":"x","question":"q"})") == "bad_request");  // no id
  CHECK(code(R"({"type":"ask","id":"a","db":"x","question":"q","deadline_ms":-3})") == "bad_request");
  CHECK(code(R"({"type":"ask","id":7,"db":"x","question":"q"})") == "bad_request");
  CHECK(code(R"({"type":"cancel"})") == "bad_request");
  auto e = parse(error_frame("c1", "unknown_db", "unknown database 'x'"));
  CHECK(std::string(e["code"].GetString()) == "unknown_db");
  CHECK(std::string(e["id"].GetString()) == "c1");
}

TEST_CASE("protocol: a vanishing deadline and a whitespace-only question are bad requests", "[server]") {
  auto bad = [](const std::string& frame) {
    auto f = parse_client_frame(frame);
    REQUIRE(std::holds_alternative<ProtocolError>(f));
    CHECK(std::get<ProtocolError>(f).code == error_code::bad_request);
    return std::get<ProtocolError>(f).message;
  };
  CHECK(bad(R"({"type":"ask","id":"d","db":"x","question":"q?","deadline_ms":1e-300})") ==
        "field 'deadline_ms' must be in [1, 600000]");
  bad(R"({"type":"ask","id":"d","db":"x","question":"q?","deadline_ms":0.5})");
  CHECK(bad(R"({"type":"ask","id":"w","db":"x","question":" \t\n "})") ==
        "field 'question' is empty or only whitespace");
  auto ok = parse_client_frame(R"({"type":"ask","id":"d","db":"x","question":" q ","deadline_ms":1})");
  CHECK(std::holds_alternative<AskFrame>(ok));
}

TEST_CASE("protocol: error text sent to clients names files, not the server's folders", "[server]") {
  CHECK(redact_paths("cannot open database '/home/alice/t2s/out/synthetic/retail.sqlite': no such file") ==
        "cannot open database '.../retail.sqlite': no such file");
  CHECK(redact_paths("could not start: /srv/data/x.db (symlink to /mnt/secret/y.db) is unreadable") ==
        "could not start: .../x.db (symlink to .../y.db) is unreadable");
  CHECK(redact_paths("SELECT a / b FROM t") == "SELECT a / b FROM t");
  CHECK(redact_paths("route /healthz") == "route /healthz");
}

TEST_CASE("metrics: Prometheus text with cumulative histogram buckets", "[server]") {
  MetricsRegistry m;
  m.counter("t2s_calls_total", "calls");
  m.histogram("t2s_latency_seconds", "latency", {0.1, 1.0});
  m.add("t2s_calls_total", {{"instance", "a"}}, 2);
  m.observe("t2s_latency_seconds", {}, 0.05);
  m.observe("t2s_latency_seconds", {}, 0.5);
  m.observe("t2s_latency_seconds", {}, 5);
  auto text = m.render();
  CHECK(text.find("# TYPE t2s_calls_total counter\nt2s_calls_total{instance=\"a\"} 2\n") != std::string::npos);
  CHECK(text.find("t2s_latency_seconds_bucket{le=\"0.1\"} 1\n") != std::string::npos);
  CHECK(text.find("t2s_latency_seconds_bucket{le=\"1\"} 2\n") != std::string::npos);
  CHECK(text.find("t2s_latency_seconds_bucket{le=\"+Inf\"} 3\n") != std::string::npos);
  CHECK(text.find("t2s_latency_seconds_sum 5.55\n") != std::string::npos);
}

TEST_CASE("url parsing", "[server]") {
  auto u = parse_url("http://127.0.0.1:8001/v1/");
  CHECK(u.host == "127.0.0.1");
  CHECK(u.port == 8001);
  CHECK(u.base_path == "/v1");
  CHECK(parse_url("http://localhost").port == 80);
  CHECK_THROWS_AS(parse_url("https://x/v1"), t2s::InputError);
  CHECK_THROWS_AS(parse_url("http://x:99999/"), t2s::InputError);
}

TEST_CASE("http: routes, keep-alive, chunked streaming and body limit on loopback", "[server][concurrent]") {
  Fixture f;
  HttpClient c("127.0.0.1", f.port());
  auto r = c.request("GET", "/healthz");
  REQUIRE(r.ok);
  CHECK(r.status == 200);
  CHECK(r.body == "ok\n");
  CHECK(c.request("GET", "/nope").status == 404);
  CHECK(c.request("POST", "/healthz", "{}").status == 405);
  auto e = c.request("POST", "/echo", R"({"a":1})");
  CHECK(e.body == R"({"a":1})");
  CHECK(c.reused_connections() >= 3);  // one TCP connection for all of them
  std::vector<std::string> pieces;
  auto s = c.request("GET", "/stream", "", "", [&](std::string_view p) {
    pieces.emplace_back(p);
    return true;
  });
  REQUIRE(s.ok);
  CHECK(s.body == "data: 0\n\ndata: 1\n\ndata: 2\n\ndata: 3\n\ndata: 4\n\n");
  CHECK(pieces.size() >= 2);  // arrived incrementally
  auto big = c.request("POST", "/echo", std::string(4000, 'x'));
  CHECK(big.status == 413);
  CHECK(c.request("GET", "/healthz").status == 200);  // a fresh connection after the 413 closed the old one
}

TEST_CASE("ws: ask streams accepted, stage and result frames; many questions per connection", "[server][concurrent]") {
  Fixture f;
  WsClient c("127.0.0.1", f.port(), "/ws");
  REQUIRE(c.send(R"({"type":"ask","id":"a","db":"concert_singer","question":"How many singers?"})"));
  REQUIRE(c.send(R"({"type":"ask","id":"b","db":"concert_singer","question":"How many singers?"})"));
  for (std::string id : {"a", "b"}) {
    std::vector<std::string> seen;
    auto res = await_frame(c, "result", id, &seen);
    REQUIRE(res);
    CHECK(std::string((*res)["sql"].GetString()) == "SELECT count(*) FROM singer");
    CHECK(std::string((*res)["rows"][0][0].GetString()) == "6");
    CHECK((*res)["deadline_met"].GetBool());
    CHECK((*res)["latency_ms"].GetDouble() > 0);
  }
  auto st = (c.send(R"({"type":"status"})"), await_frame(c, "status", ""));
  REQUIRE(st);
  CHECK((*st)["in_flight"].GetInt() == 0);
  CHECK(std::string((*st)["backend"]["kind"].GetString()) == "scripted");
}

TEST_CASE("ws: frame order for one question is accepted, stages, result", "[server]") {
  Fixture f;
  WsClient c("127.0.0.1", f.port(), "/ws");
  REQUIRE(c.send(R"({"type":"ask","id":"q","db":"concert_singer","question":"How many?"})"));
  std::vector<std::string> seen;
  REQUIRE(await_frame(c, "result", "q", &seen));
  REQUIRE(seen.size() == 6);  // accepted, 2 × (started, done), result
  CHECK(type_of(parse(seen[0])) == "accepted");
  auto s0 = parse(seen[1]);
  CHECK(type_of(s0) == "stage");
  CHECK(std::string(s0["stage"].GetString()) == "candidate_generation");
  CHECK(std::string(s0["state"].GetString()) == "started");
  auto s1 = parse(seen[2]);
  CHECK(std::string(s1["state"].GetString()) == "done");
  CHECK(s1["ms"].GetDouble() >= 15);
}

TEST_CASE("ws: every error code, and errors never end the connection", "[server]") {
  Fixture f(2, 64);
  WsClient c("127.0.0.1", f.port(), "/ws");
  auto expect_error = [&](const std::string& frame, const std::string& code) {
    REQUIRE(c.send(frame));
    auto e = await_frame(c, "error", "");
    REQUIRE(e);
    CHECK(std::string((*e)["code"].GetString()) == code);
  };
  expect_error("{oops", "bad_json");
  expect_error(R"({"type":"fly"})", "unknown_type");
  expect_error(R"({"type":"ask","id":"x","db":"concert_singer"})", "bad_request");
  expect_error(R"({"type":"ask","id":"x","db":"nope","question":"q"})", "unknown_db");
  expect_error(R"({"type":"cancel","id":"ghost"})", "unknown_id");
  expect_error(std::string(R"({"type":"ask","id":"big","db":"concert_singer","question":")") +
                   std::string(10000, 'q') + "\"}",
               "frame_too_large");
  // Admission control: two slow questions fill this connection's limit; a third is refused; a duplicate id too.
  REQUIRE(c.send(R"({"type":"ask","id":"s1","db":"concert_singer","question":"slow one"})"));
  REQUIRE(await_frame(c, "accepted", "s1"));
  expect_error(R"({"type":"ask","id":"s1","db":"concert_singer","question":"slow"})", "duplicate_id");
  REQUIRE(c.send(R"({"type":"ask","id":"s2","db":"concert_singer","question":"slow two"})"));
  REQUIRE(await_frame(c, "accepted", "s2"));
  expect_error(R"({"type":"ask","id":"s3","db":"concert_singer","question":"slow three"})", "overloaded");
  // Cancel answers with an error frame coded `cancelled`.
  REQUIRE(c.send(R"({"type":"cancel","id":"s1"})"));
  auto ce = await_frame(c, "error", "s1");
  REQUIRE(ce);
  CHECK(std::string((*ce)["code"].GetString()) == "cancelled");
  // The connection still works.
  auto r = (c.send(R"({"type":"ask","id":"ok","db":"concert_singer","question":"fine"})"),
            await_frame(c, "result", "ok"));
  CHECK(r);
  CHECK_FALSE(c.closed());
}

TEST_CASE("ws: global in-flight limit answers overloaded on another connection", "[server][concurrent]") {
  Fixture f(8, 1);
  WsClient a("127.0.0.1", f.port(), "/ws");
  WsClient b("127.0.0.1", f.port(), "/ws");
  REQUIRE(a.send(R"({"type":"ask","id":"1","db":"concert_singer","question":"slow"})"));
  REQUIRE(await_frame(a, "accepted", "1"));
  REQUIRE(b.send(R"({"type":"ask","id":"2","db":"concert_singer","question":"q"})"));
  auto e = await_frame(b, "error", "2");
  REQUIRE(e);
  CHECK(std::string((*e)["code"].GetString()) == "overloaded");
  CHECK(await_frame(a, "result", "1"));  // the other client's work is untouched
}

TEST_CASE("ws: a client that disconnects has its workflows cancelled", "[server][concurrent]") {
  Fixture f;
  {
    WsClient c("127.0.0.1", f.port(), "/ws");
    REQUIRE(c.send(R"({"type":"ask","id":"1","db":"concert_singer","question":"slow"})"));
    REQUIRE(await_frame(c, "accepted", "1"));
  }
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (f.backend.cancel_calls() == 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(f.backend.cancel_calls() == 1);
  until = std::chrono::steady_clock::now() + std::chrono::seconds(3);
  while (f.api->stats().in_flight > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  CHECK(f.api->stats().in_flight == 0);
  CHECK(f.api->stats().cancelled == 1);
}
