// The OpenAI-compatible client against a small loopback server that speaks the protocol the way vLLM and
// llama.cpp do (SSE chunks, a usage chunk, [DONE]), and misbehaves on demand (503, dropped stream, silence).
#include <catch2/catch.hpp>

#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <mutex>
#include <thread>

#include "server/openai_client.hpp"
#include "tests/server/fake_openai.hpp"

using namespace t2s::server;
using t2s::server::test::FakeOpenAi;


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
  sent.Parse(fake.last_body().c_str());
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

TEST_CASE("openai client: connection refused and a server dying mid-stream are retryable failures", "[server][concurrent]") {
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

TEST_CASE("openai client: cancel from another thread and idle timeout", "[server][concurrent]") {
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

TEST_CASE("openai client: a 400 saying the prompt is too long is permanent, garbage is retryable elsewhere",
          "[server][faults]") {
  FakeOpenAi fake;
  fake.too_long = true;
  OpenAiOptions o;
  o.retry_backoff_s = 0.01;
  OpenAiClient c(fake.url(), o);
  CompletionRequest q;
  q.prompt = "x";
  auto r = c.complete(q);
  CHECK_FALSE(r.ok);
  CHECK(r.status == 400);
  CHECK(r.prompt_too_long);
  CHECK_FALSE(r.retryable);
  CHECK(r.attempts == 1);
  CHECK(fake.requests.load() == 1);
  CHECK(says_prompt_too_long(R"({"error":{"code":"context_length_exceeded"}})"));
  CHECK(says_prompt_too_long("the request exceeds the available context size, try increasing it"));  // llama.cpp
  CHECK_FALSE(says_prompt_too_long(R"({"error":"unknown model"})"));
  fake.too_long = false;
  fake.garbage = true;
  auto g = c.complete(q);
  CHECK_FALSE(g.ok);
  CHECK(g.retryable);  // another instance may answer properly
  CHECK(g.attempts == 1);
  CHECK(g.error.find("malformed response") != std::string::npos);
}

TEST_CASE("openai client: the context window comes from /v1/models", "[server][faults]") {
  FakeOpenAi fake;
  OpenAiClient c(fake.url());
  CHECK(c.context_window("fake") == 0);  // none reported
  fake.context = 4096;
  CHECK(c.context_window("fake") == 4096);
  CHECK(c.context_window("") == 0);  // the first model ("other") reports none
  FakeOpenAi* gone = new FakeOpenAi;
  std::string url = gone->url();
  delete gone;
  CHECK(OpenAiClient(url).context_window("fake") == 0);  // a server that is not there reports nothing
}
