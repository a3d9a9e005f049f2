#pragma once
// A loopback OpenAI-compatible server for tests: answers /v1/completions and /v1/chat/completions like vLLM and
// llama.cpp do (SSE chunks, a usage chunk, [DONE]) and misbehaves on demand (503, dying mid-stream, silence, a
// 400 "prompt too long", garbage, a drip of keep-alive comments, hanging after some tokens).
#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "server/http_server.hpp"

namespace t2s::server::test {

struct FakeOpenAi {
  std::atomic<int> requests{0};
  std::atomic<int> fail_first{0};    // answer this many requests with 503
  std::atomic<int> drop_after{-1};   // stop the server after this many deltas
  std::atomic<int> delay_ms{0};      // between deltas
  std::atomic<bool> silent{false};   // never answer
  std::atomic<bool> too_long{false};  // answer 400 saying the prompt exceeds the context, as vLLM does
  std::atomic<bool> garbage{false};   // answer 200 with an event stream that is not JSON
  std::atomic<int> drip_ms{0};        // > 0: send only an SSE comment every drip_ms (never a token)
  std::atomic<int> hang_after{-1};    // go silent after this many deltas (until the fake is destroyed)
  std::atomic<int> context{0};        // > 0: /v1/models reports this max_model_len
  std::atomic<bool> closing{false};   // set by the destructor: hanging and dripping workers return
  std::mutex body_mu;
  std::string last_body_;  // guarded by body_mu (handlers run on several io threads)
  std::string last_body() {
    std::lock_guard lk(body_mu);
    return last_body_;
  }
  std::unique_ptr<HttpServer> server;
  std::mutex workers_mu;
  std::vector<std::thread> workers;  // joined before the server goes (replies must not outlive it)

  ~FakeOpenAi() {
    closing = true;
    std::lock_guard lk(workers_mu);
    for (auto& t : workers) t.join();
    server.reset();
  }
  void spawn(std::function<void()> fn) {
    std::lock_guard lk(workers_mu);
    workers.emplace_back(std::move(fn));
  }

  //! `token` non-empty: every request needs `Authorization: Bearer token` (the server answers 401 otherwise).
  explicit FakeOpenAi(const std::string& token = "") {
    ServerOptions so;
    so.token = token;
    server = std::make_unique<HttpServer>(so);
    auto handler = [this](bool chat) {
      return [this, chat](const HttpRequest& req, std::shared_ptr<HttpReply> reply) {
        int n = ++requests;
        {
          std::lock_guard lk(body_mu);
          last_body_ = req.body;
        }
        if (n <= fail_first.load()) return reply->send({503, "text/plain", "busy", {}});
        if (silent.load()) {
          spawn([reply] { std::this_thread::sleep_for(std::chrono::milliseconds(500)); });
          return;
        }
        if (too_long.load())
          return reply->send({400, "application/json",
                              R"({"object":"error","message":"This model's maximum context length is 512 tokens. )"
                              R"(However, you requested 900 tokens (800 in the messages, 100 in the completion).",)"
                              R"("type":"BadRequestError","code":400})",
                              {}});
        if (garbage.load()) {
          return spawn([reply] {
            reply->begin_stream(200, "text/event-stream");
            reply->write("data: <html>502 Bad Gateway</html>\n\n");
            reply->end();
          });
        }
        if (drip_ms.load() > 0) {
          return spawn([this, reply] {
            reply->begin_stream(200, "text/event-stream");
            while (!closing.load() && reply->write(": still thinking\n\n"))
              std::this_thread::sleep_for(std::chrono::milliseconds(drip_ms.load()));
          });
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
            if (hang_after.load() == static_cast<int>(i)) {
              while (!closing.load()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
              return;
            }
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
    server->route("GET", "/v1/models", [this](const HttpRequest&, std::shared_ptr<HttpReply> reply) {
      std::string extra = context.load() > 0 ? R"(,"max_model_len":)" + std::to_string(context.load()) : "";
      reply->send({200, "application/json",
                   R"({"object":"list","data":[{"id":"other","object":"model"},{"id":"fake","object":"model")" +
                       extra + "}]}",
                   {}});
    });
    server->start();
  }
  std::string url() const { return "http://127.0.0.1:" + std::to_string(server->port()) + "/v1"; }
};


}  // namespace t2s::server::test
