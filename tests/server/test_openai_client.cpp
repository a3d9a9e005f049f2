// The OpenAI-compatible client against a small loopback server that speaks the protocol the way vLLM and
// llama.cpp do (SSE chunks, a usage chunk, [DONE]), and misbehaves on demand (503, dropped stream, silence).
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include "server/http_server.hpp"
#include "server/openai_client.hpp"

using namespace t2s::server;

namespace {

struct FakeOpenAi {
  std::atomic<int> requests{0};
  std::atomic<int> fail_first{0};    // answer this many requests with 503
  std::atomic<int> drop_after{-1};   // stop the server after this many deltas
  std::atomic<int> delay_ms{0};      // between deltas
  std::atomic<bool> silent{false};   // never answer
  std::string last_body;
  std::unique_ptr<HttpServer> server;
  std::mutex workers_mu;
  std::vector<std::thread> workers;  // joined before the server goes (replies must not outlive it)

  ~FakeOpenAi() {
    std::lock_guard lk(workers_mu);
    for (auto& t : workers) t.join();
    server.reset();
  }
  void spawn(std::function<void()> fn) {
    std::lock_guard lk(workers_mu);
    workers.emplace_back(std::move(fn));
  }

  FakeOpenAi() {
    server = std::make_unique<HttpServer>(ServerOptions{});
    auto handler = [this](bool chat) {
      return [this, chat](const HttpRequest& req, std::shared_ptr<HttpReply> reply) {
        int n = ++requests;
        last_body = req.body;
        if (n <= fail_first.load()) return reply->send({503, "text/plain", "busy", {}});
        if (silent.load()) {
          spawn([reply] { std::this_thread::sleep_for(std::chrono::milliseconds(500)); });
          return;
        }
        rapidjson::Document d;
        d.Parse(req.body.c_str());
        bool stream = d.HasMember("stream") && d["stream"].GetBool();
        std::vector<std::string> words = {"SELECT", " count(*)", " FROM", " singer"};
        if (!stream) {
          std::string text = "SELECT count(*) FROM singer";
          std::string body = chat ? R"({"choices":[{"message":{"role":"assistant","content":")" + text +
                                        R"("},"finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":4}})"
                                  : R"({"choices":[{"text":")" + text +
                                        R"(","finish_reason":"stop"}],"usage":{"prompt_tokens":7,"completion_tokens":4}})";
          return reply->send({200, "application/json", body, {}});
        }
        spawn([this, reply, words, chat] {
          reply->begin_stream(200, "text/event-stream");
          for (size_t i = 0; i < words.size(); ++i) {
            if (drop_after.load() == static_cast<int>(i)) {
              std::this_thread::sleep_for(std::chrono::milliseconds(50));  // let the first deltas reach the client
              server->stop();
              return;
            }
            std::string piece = chat ? R"({"choices":[{"delta":{"content":")" + words[i] + R"("}}]})"
                                     : R"({"choices":[{"text":")" + words[i] + R"("}]})";
            // Split one event across two writes, as TCP may.
            std::string ev = "data: " + piece + "\n\n";
            reply->write(ev.substr(0, 9));
            reply->write(ev.substr(9));
            std::this_thread::sleep_for(std::chrono::milliseconds(delay_ms.load()));
          }
          reply->write(R"(data: {"choices":[{"text":"","finish_reason":"stop"}]})" "\n\n");
          reply->write(
              R"(data: {"choices":[],"usage":{"prompt_tokens":7,"completion_tokens":4,"prompt_tokens_details":{"cached_tokens":3}}})"
              "\n\n");
          reply->write("data: [DONE]\n\n");
          reply->end();
        });
      };
    };
    server->route("POST", "/v1/completions", handler(false));
    server->route("POST", "/v1/chat/completions", handler(true));
    server->start();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server->port()) + "/v1"; }
};

}  // namespace

TEST_CASE("sse: events split across pieces, comments and CRLF", "[server]") {
  SseParser p;
  std::vector<std::string> got;
  auto on = [&](std::string_view d) { got.emplace_back(d); };
  p.feed(": keep-alive\r\n\r\nda", on);
  p.feed("ta: {\"a\":1}\r\n", on);
  p.feed("\r\ndata: x\ndata: y\n\n", on);
  REQUIRE(got.size() == 2);
  CHECK(got[0] == "{\"a\":1}");
  CHECK(got[1] == "x\ny");
}

TEST_CASE("openai client: streamed completion with usage, chat, and non-streamed", "[server]") {
  FakeOpenAi fake;
  OpenAiClient c(fake.url());
  CompletionRequest q;
  q.model = "m";
  q.prompt = "-- SQL:";
  q.max_tokens = 16;
  q.stop = {";"};
  std::string streamed;
  auto r = c.complete(q, [&](std::string_view d) { streamed += d; });
  REQUIRE(r.ok);
  CHECK(r.text == "SELECT count(*) FROM singer");
  CHECK(streamed == r.text);
  CHECK(r.deltas == 4);
  CHECK(r.usage_reported);
  CHECK(r.completion_tokens == 4);
  CHECK(r.prompt_tokens == 7);
  CHECK(r.cached_tokens == 3);
  CHECK(r.finish_reason == "stop");
  rapidjson::Document sent;
  sent.Parse(fake.last_body.c_str());
  CHECK(std::string(sent["prompt"].GetString()) == "-- SQL:");
  CHECK(std::string(sent["stop"][0].GetString()) == ";");
  CHECK(sent["stream"].GetBool());

  q.chat = true;
  auto rc = c.complete(q);
  REQUIRE(rc.ok);
  CHECK(rc.text == "SELECT count(*) FROM singer");
  q.stream = false;
  auto rn = c.complete(q);
  REQUIRE(rn.ok);
  CHECK(rn.text == "SELECT count(*) FROM singer");
  CHECK(rn.completion_tokens == 4);
  CHECK(fake.requests.load() == 3);
}

TEST_CASE("openai client: retries a 503 before any token, then succeeds", "[server]") {
  FakeOpenAi fake;
  fake.fail_first = 2;
  OpenAiOptions o;
  o.retry_backoff_s = 0.01;
  OpenAiClient c(fake.url(), o);
  CompletionRequest q;
  q.prompt = "x";
  auto r = c.complete(q);
  REQUIRE(r.ok);
  CHECK(r.attempts == 3);
  fake.fail_first = 100;
  auto bad = c.complete(q);
  CHECK_FALSE(bad.ok);
  CHECK(bad.retryable);
  CHECK(bad.status == 503);
  CHECK(bad.attempts == 3);
}

TEST_CASE("openai client: connection refused and a server dying mid-stream are retryable failures", "[server]") {
  OpenAiOptions o;
  o.retry_backoff_s = 0.01;
  o.max_retries = 1;
  {
    uint16_t port;
    {
      FakeOpenAi gone;
      port = gone.server->port();
    }
    OpenAiClient c("http://127.0.0.1:" + std::to_string(port) + "/v1", o);
    CompletionRequest q;
    q.prompt = "x";
    auto r = c.complete(q);
    CHECK_FALSE(r.ok);
    CHECK(r.retryable);
    CHECK(r.attempts == 2);
  }
  FakeOpenAi fake;
  fake.drop_after = 2;
  OpenAiClient c(fake.url(), o);
  CompletionRequest q;
  q.prompt = "x";
  auto r = c.complete(q);
  CHECK_FALSE(r.ok);
  CHECK(r.retryable);
  CHECK(r.deltas == 2);
  CHECK(r.text == "SELECT count(*)");
  CHECK(r.attempts == 1);  // tokens were delivered: never repeated by the client itself
}

TEST_CASE("openai client: cancel from another thread and idle timeout", "[server]") {
  FakeOpenAi fake;
  fake.delay_ms = 200;
  OpenAiClient c(fake.url());
  CompletionRequest q;
  q.prompt = "x";
  std::thread t([&] {
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    c.cancel();
  });
  auto t0 = std::chrono::steady_clock::now();
  auto r = c.complete(q);
  t.join();
  CHECK(r.cancelled);
  CHECK_FALSE(r.ok);
  CHECK(std::chrono::steady_clock::now() - t0 < std::chrono::milliseconds(600));

  FakeOpenAi quiet;
  quiet.silent = true;
  OpenAiOptions o;
  o.http.idle_timeout_s = 0.2;
  o.max_retries = 0;
  OpenAiClient c2(quiet.url(), o);
  auto r2 = c2.complete(q);
  CHECK_FALSE(r2.ok);
  CHECK(r2.error.find("timed out") != std::string::npos);
}
