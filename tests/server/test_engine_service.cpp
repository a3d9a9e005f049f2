// engine-serve on loopback: the embedded engine behind the OpenAI API, as a remote instance of a runtime, must give
// the same greedy text as the embedded path; concurrent requests are batched and stay identical.
#include <catch2/catch.hpp>

#include <future>
#include <thread>

#include "runtime/runtime.hpp"
#include "scheduler/policy.hpp"
#include "server/engine_service.hpp"
#include "server/http_client.hpp"
#include "server/openai_client.hpp"
#include "tests/server/runtime_support.hpp"
#include "tests/support.hpp"

using namespace t2s;
using namespace t2s::server;
using t2s::server::test::make_policy;
using t2s::server::test::run_call;

namespace {

EngineServiceOptions engine_options() {
  EngineServiceOptions o;
  o.model_file = t2s::test::shared_data("llama2c/stories260K.bin");
  o.tokenizer_file = t2s::test::shared_data("llama2c/tok512.bin");
  o.model_name = "stories260K";
  o.max_sequences = 8;
  return o;
}

}  // namespace

TEST_CASE("engine-serve: completions, chat, usage and errors over HTTP", "[server][shared]") {
  EngineService svc(engine_options());
  HttpServer http(ServerOptions{});
  svc.attach(http);
  http.start();
  std::string url = "http://127.0.0.1:" + std::to_string(http.port()) + "/v1";
  OpenAiClient c(url);
  CompletionRequest q;
  q.prompt = "Once upon a time";
  q.max_tokens = 24;
  std::string streamed;
  auto r = c.complete(q, [&](std::string_view d) { streamed += d; });
  REQUIRE(r.ok);
  CHECK(r.usage_reported);
  CHECK(r.completion_tokens > 0);
  CHECK(r.completion_tokens <= 24);
  CHECK(r.prompt_tokens > 1);
  CHECK(streamed == r.text);
  CHECK(r.deltas >= 2);
  q.stream = false;
  auto rn = c.complete(q);
  REQUIRE(rn.ok);
  CHECK(rn.text == r.text);  // greedy: streamed and non-streamed agree
  CHECK(rn.completion_tokens == r.completion_tokens);
  q.chat = true;
  auto rc = c.complete(q);
  CHECK(rc.ok);
  HttpClient h("127.0.0.1", http.port());
  CHECK(h.request("POST", "/v1/completions", R"({"max_tokens":3})").status == 400);
  CHECK(h.request("POST", "/v1/completions", "nope").status == 400);
  CHECK(h.request("POST", "/v1/chat/completions", R"({"messages":[]})").status == 400);
  // Prompts past the byte cap are refused before tokenizing; prompts past the context after tokenizing on the HTTP
  // thread (a 20 KB prompt took 7 s on the engine thread before, stalling every other request).
  auto huge = h.request("POST", "/v1/completions", "{\"prompt\":\"" + std::string(300 << 10, 'a') + "\"}");
  CHECK(huge.status == 413);
  CHECK_THAT(huge.body, Catch::Contains("--max-prompt-bytes"));
  std::string long_prompt;
  while (long_prompt.size() < 20000) long_prompt += "Once upon a time ";
  auto too_long = h.request("POST", "/v1/completions", "{\"prompt\":\"" + long_prompt + "\"}");
  CHECK(too_long.status == 400);
  CHECK_THAT(too_long.body, Catch::Contains("context is 512 tokens"));
  auto models = h.request("GET", "/v1/models");
  CHECK(models.body.find("stories260K") != std::string::npos);
  auto metrics = h.request("GET", "/metrics");
  CHECK(metrics.body.find("t2s_engine_completion_tokens_total") != std::string::npos);
  svc.stop();
  http.stop();
}

TEST_CASE("engine-serve as a remote instance gives the embedded path's greedy text; concurrent requests batch",
          "[server][shared][concurrent]") {
  EngineService svc(engine_options());
  HttpServer http(ServerOptions{});
  svc.attach(http);
  http.start();
  const std::vector<std::string> prompts = {"Once upon a time", "The cat", "Lily wanted to", "One day, a big"};

  auto embedded = server::test::embedded_texts(t2s::test::shared_data("llama2c/stories260K.bin"),
                                               t2s::test::shared_data("llama2c/tok512.bin"), prompts, 32);
  scheduler::InstanceSpec rem;
  rem.name = "remote";
  rem.backend = scheduler::Backend::remote;
  rem.url = "http://127.0.0.1:" + std::to_string(http.port()) + "/v1";
  rem.max_running = 8;
  scheduler::ClusterSpec cr{"remote", {rem}};
  {
    Runtime rt(cr, make_policy("rr-fcfs", cr), RuntimeOptions{}, nullptr);
    for (size_t i = 0; i < prompts.size(); ++i) {
      auto r = run_call(rt, prompts[i], 32);
      REQUIRE(r.ok);
      CHECK(r.text == embedded[i]);
      CHECK(r.instance == "remote");
    }
  }
  // Concurrent HTTP requests share batches and still produce the same greedy text.
  std::vector<std::future<CompletionResult>> fs;
  for (size_t i = 0; i < prompts.size(); ++i)
    fs.push_back(std::async(std::launch::async, [&, i] {
      OpenAiClient c("http://127.0.0.1:" + std::to_string(http.port()) + "/v1");
      CompletionRequest q;
      q.prompt = prompts[i];
      q.max_tokens = 32;
      return c.complete(q);
    }));
  for (size_t i = 0; i < prompts.size(); ++i) {
    auto r = fs[i].get();
    REQUIRE(r.ok);
    CHECK(r.text == embedded[i]);
  }
  svc.stop();
  http.stop();
}
