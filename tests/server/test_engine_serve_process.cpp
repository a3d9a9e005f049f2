// `t2s engine-serve` as separate processes on loopback, used as remote instances of a server::Runtime: greedy text
// through the remote path equals the embedded path; when one of two servers is SIGKILLed while it streams, its calls
// are re-dispatched to the other and every workflow completes. Models are random llama2.c checkpoints written by the
// test (no shared data).
#include <catch2/catch.hpp>

#include <future>
#include <regex>

#include "agents/trace_workflow.hpp"
#include "engine/llama2c.hpp"
#include "runtime/runtime.hpp"
#include "server/http_client.hpp"
#include "tests/engine/tiny_model.hpp"
#include "tests/server/child_process.hpp"
#include "tests/server/runtime_support.hpp"
#include "tests/support.hpp"

using namespace t2s;
using namespace t2s::server;
using t2s::server::test::make_policy;
using t2s::server::test::remote_instance;
using t2s::server::test::run_call;

namespace {

// A running `t2s engine-serve --port 0` child: its URL comes from the line it prints, readiness from /healthz.
struct EngineServeProcess {
  t2s::test::ChildProcess child;
  std::string url;  // http://127.0.0.1:PORT/v1
  uint16_t port = 0;

  EngineServeProcess(const std::string& model, const std::string& tokenizer)
      : child({T2S_EXECUTABLE, "engine-serve", "--model", model, "--tokenizer", tokenizer, "--port", "0",
               "--log-level", "warn", "--max-sequences", "8"}) {
    auto line = child.read_line(60);
    REQUIRE(line.has_value());
    std::smatch m;
    REQUIRE(std::regex_search(*line, m, std::regex(R"(http://127\.0\.0\.1:(\d+)/v1)")));
    port = static_cast<uint16_t>(std::stoi(m[1].str()));
    url = m[0].str();
    // The port is bound before the line is printed; still, wait (bounded) until /healthz answers 200.
    auto until = std::chrono::steady_clock::now() + std::chrono::seconds(30);
    HttpClientOptions ho;
    ho.request_timeout_s = 5;
    for (;;) {
      HttpClient h("127.0.0.1", port, ho);
      if (h.request("GET", "/healthz").status == 200) break;
      REQUIRE(std::chrono::steady_clock::now() < until);
      std::this_thread::sleep_for(std::chrono::milliseconds(50));
    }
  }
  // A Prometheus sample of the child's /metrics (0 when absent).
  double metric(const std::string& name) const {
    HttpClientOptions ho;
    ho.request_timeout_s = 5;
    HttpClient h("127.0.0.1", port, ho);
    auto r = h.request("GET", "/metrics");
    std::smatch m;
    if (!std::regex_search(r.body, m, std::regex("\n" + name + " ([0-9.eE+-]+)"))) return 0;
    return std::stod(m[1].str());
  }
};

}  // namespace

TEST_CASE("engine-serve process: greedy text through the remote path equals the embedded path", "[server]") {
  t2s::test::TinyModel tiny;  // the engine tests' random 2-layer model and synthetic vocabulary
  const std::string model = tiny.dir.file("m.bin"), tok = tiny.dir.file("t.bin");
  const std::vector<std::string> prompts = {"hello", " ab cd", "x", " the quick brown fox"};

  auto embedded = server::test::embedded_texts(model, tok, prompts, 40);
  int nonempty = 0;
  for (const auto& t : embedded) nonempty += !t.empty();
  CHECK(nonempty >= 3);  // the comparison below must compare text, not empty strings

  EngineServeProcess server(model, tok);
  scheduler::ClusterSpec cr{"remote", {remote_instance("far", server.url)}};
  Runtime rt(cr, make_policy("rr-fcfs", cr), RuntimeOptions{}, nullptr);
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto r = run_call(rt, prompts[i], 40);
    REQUIRE(r.ok);
    CHECK(r.instance == "far");
    CHECK(r.text == embedded[i]);
  }
  // Concurrent calls share the server's batch and still give the same text.
  std::vector<std::future<agents::LlmResult>> fs;
  for (size_t i = 0; i < prompts.size(); ++i)
    fs.push_back(std::async(std::launch::async, [&, i] { return run_call(rt, prompts[i], 40); }));
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto r = fs[i].get();
    REQUIRE(r.ok);
    CHECK(r.text == embedded[i]);
  }
  rt.stop();
  CHECK(server.child.running());  // it served everything without dying
}

TEST_CASE("engine-serve processes: one SIGKILLed mid-stream, its calls are re-dispatched, every workflow completes",
          "[server]") {
  // A random model large enough that a 160-token call streams for a while (~0.1 s or more on one core), so the
  // kill lands while calls are streaming (the whole case takes about a second).
  t2s::test::TempDir dir("engine-serve-kill");
  const std::string model = dir.file("m.bin"), tok = dir.file("t.bin");
  engine::write_random_llama2c_checkpoint(model, {192, 512, 4, 6, 2, 300, 512, false}, 11, 0.3f);
  engine::write_synthetic_llama2c_vocab(tok, 300);
  EngineServeProcess victim(model, tok), survivor(model, tok);

  workloads::Workload w;
  w.name = "kill-test";
  for (int k = 0; k < 6; ++k) {
    workloads::Question q;
    q.id = "k:" + std::to_string(k);
    q.trace_calls = {{"agent", 16, 40}, {"generate_candidate", 16, 160}, {"generate_candidate", 16, 160},
                     {"revise", 16, 80}};
    w.questions.push_back(q);
  }
  std::vector<workloads::Arrival> arrivals;
  for (size_t k = 0; k < w.questions.size(); ++k) arrivals.push_back({k + 1, k, 0.0, 300.0});

  scheduler::ClusterSpec cluster{"two", {remote_instance("victim", victim.url), remote_instance("survivor", survivor.url)}};
  RuntimeOptions o;
  o.unhealthy_s = 300;  // the dead server gets nothing new after its failure
  o.max_attempts = 3;
  Runtime rt(cluster, make_policy("rr-fcfs", cluster), o, nullptr);
  auto factory = agents::make_trace_factory(w);
  auto replay = std::async(std::launch::async, [&] { return replay_realtime(rt, w, arrivals, *factory, 240); });

  // Kill the victim once it has requests open and has generated tokens: they are mid-stream.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60);
  bool killed = false;
  double open_at_kill = 0;
  while (std::chrono::steady_clock::now() < until) {
    double open = victim.metric("t2s_engine_open_requests");
    double iterations = victim.metric("t2s_engine_iteration_seconds_count");
    if (open >= 1 && iterations >= 20) {
      victim.child.kill(SIGKILL);
      killed = true;
      open_at_kill = open;
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  REQUIRE(killed);
  int status = victim.child.wait();
  CHECK(WIFSIGNALED(status));
  CHECK(WTERMSIG(status) == SIGKILL);

  REQUIRE(replay.wait_for(std::chrono::seconds(250)) == std::future_status::ready);
  auto r = replay.get();
  REQUIRE(r.outcomes.size() == w.questions.size());
  for (const auto& out : r.outcomes) {
    CHECK(out.completed);
    CHECK_FALSE(out.failed);
  }
  auto st = rt.stats();
  INFO("open requests at kill " << open_at_kill);
  CHECK(st.redispatched >= 1);
  CHECK(st.calls_ok == 24);
  int moved = 0;
  for (const auto& c : rt.calls()) {
    CHECK(c.ok);
    if (c.attempts >= 2) {
      ++moved;
      CHECK(c.instance == 1);  // finished on the survivor
    }
  }
  CHECK(moved >= 1);
  rt.stop();
  CHECK(survivor.child.running());
}

TEST_CASE("engine-serve process: --token guards every route but /healthz; binding beyond loopback without a token "
          "exits 2",
          "[server][net]") {
  t2s::test::TinyModel tiny;
  const std::string model = tiny.dir.file("m.bin"), tok = tiny.dir.file("t.bin");
  t2s::test::ChildProcess child({T2S_EXECUTABLE, "engine-serve", "--model", model, "--tokenizer", tok, "--port", "0",
                                 "--log-level", "warn", "--token", "tok-123"});
  auto line = child.read_line(60);
  REQUIRE(line.has_value());
  std::smatch m;
  REQUIRE(std::regex_search(*line, m, std::regex(R"(http://127\.0\.0\.1:(\d+)/v1)")));
  auto port = static_cast<uint16_t>(std::stoi(m[1].str()));
  HttpClientOptions ho;
  ho.request_timeout_s = 10;
  HttpClient plain("127.0.0.1", port, ho);
  CHECK(plain.request("GET", "/healthz").status == 200);
  CHECK(plain.request("GET", "/v1/models").status == 401);
  CHECK(plain.request("POST", "/v1/completions", R"({"prompt":"hi","max_tokens":2})").status == 401);
  ho.bearer_token = "tok-123";
  HttpClient authed("127.0.0.1", port, ho);
  auto models = authed.request("GET", "/v1/models");
  CHECK(models.status == 200);
  CHECK(models.body.find("\"max_model_len\":") != std::string::npos);  // the window remotes fit prompts to
  CHECK(authed.request("POST", "/v1/completions", R"({"prompt":"hi","max_tokens":2})").status == 200);
  child.kill(SIGTERM);
  child.wait();

  t2s::test::ChildProcess open({T2S_EXECUTABLE, "engine-serve", "--model", model, "--tokenizer", tok, "--host",
                                "0.0.0.0", "--port", "0", "--log-level", "warn"});
  int status = open.wait();
  REQUIRE(WIFEXITED(status));
  CHECK(WEXITSTATUS(status) == 2);
}
