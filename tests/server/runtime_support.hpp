#pragma once
// Helpers for tests that drive a server::Runtime directly: a policy by name and one call run to completion.
#include <catch2/catch.hpp>

#include <chrono>
#include <future>
#include <string>
#include <vector>

#include "runtime/runtime.hpp"
#include "scheduler/policy.hpp"

namespace t2s::server::test {

//! The registry's policy `name` over `cluster`.
inline scheduler::Policy make_policy(const std::string& name, const scheduler::ClusterSpec& cluster) {
  scheduler::PolicyContext ctx;
  ctx.cluster = &cluster;
  return scheduler::default_policy_registry().make(name, ctx);
}

//! A remote (OpenAI-compatible) instance at `url` taking 4 calls at once.
inline scheduler::InstanceSpec remote_instance(const std::string& name, const std::string& url) {
  scheduler::InstanceSpec s;
  s.name = name;
  s.backend = scheduler::Backend::remote;
  s.url = url;
  s.max_running = 4;
  return s;
}

//! Runs one greedy call of `prompt` through `rt` and returns its result (fails the test after 60 s).
inline agents::LlmResult run_call(Runtime& rt, const std::string& prompt, int max_tokens) {
  agents::LlmCall c;
  c.id = rt.next_call_id();
  c.workflow_id = 1;
  c.prompt = prompt;
  c.prompt_tokens = 8;
  c.max_output_tokens = max_tokens;
  c.expected_output_tokens = max_tokens;
  std::promise<agents::LlmResult> p;
  rt.llm().submit({c}, {[&p](const agents::LlmResult& r) { p.set_value(r); }});
  auto f = p.get_future();
  REQUIRE(f.wait_for(std::chrono::seconds(60)) == std::future_status::ready);
  return f.get();
}

//! The greedy text of each prompt on an embedded CPU engine instance of `model_file` (the reference output).
inline std::vector<std::string> embedded_texts(const std::string& model_file, const std::string& tokenizer_file,
                                               const std::vector<std::string>& prompts, int max_tokens,
                                               const std::string& device = "", Logger* log = nullptr) {
  scheduler::InstanceSpec eng;
  eng.name = "embedded";
  eng.backend = scheduler::Backend::engine;
  eng.model_file = model_file;
  eng.device = device;
  eng.max_running = 8;
  scheduler::ClusterSpec cluster{"embedded", {eng}};
  RuntimeOptions ro;
  ro.engine_tokenizer = tokenizer_file;
  Runtime rt(cluster, make_policy("rr-fcfs", cluster), ro, nullptr, log);
  std::vector<std::string> texts;
  for (const auto& p : prompts) {
    auto r = run_call(rt, p, max_tokens);
    REQUIRE(r.ok);
    texts.push_back(r.text);
  }
  return texts;
}

}  // namespace t2s::server::test
