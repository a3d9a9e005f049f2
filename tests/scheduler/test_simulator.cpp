#include <catch2/catch.hpp>

#include <cmath>
#include <map>

#include "common/rng.hpp"
#include "scheduler/baselines.hpp"
#include "scheduler/simulator.hpp"
#include "tests/scheduler/script_workflow.hpp"

using namespace t2s;
using namespace t2s::scheduler;
using t2s::test::Script;
using t2s::test::ScriptCall;

namespace {

// One instance whose iteration time is an exact linear model: 10 ms + 1 ms per prefill token + 2 ms per decoding
// sequence, no per-call overhead; a 100-token budget.
ClusterSpec linear_cluster(int instances = 1) {
  ClusterSpec c;
  for (int i = 0; i < instances; ++i) {
    InstanceSpec s;
    s.name = "lin" + std::to_string(i);
    s.gpu = gpu_profile("A100-80G");
    s.gpu.call_overhead_s = 0;
    s.model = model_profile("llama-3.1-8b");
    s.max_batch_tokens = 100;
    c.instances.push_back(s);
  }
  return c;
}

SimOptions linear_options(const ClusterSpec& c) {
  SimOptions o;
  for (const auto& s : c.instances) o.fitted_costs[s.name] = LinearIterationModel{0.010, 0.001, 0, 0.002, 0, 0, 0};
  return o;
}

struct StageLog final : agents::WorkflowObserver {
  std::vector<agents::StageEvent> events;
  const Simulator* sim = nullptr;
  bool kv_ok = true;
  void on_stage(const agents::StageEvent& e) override {
    events.push_back(e);
    if (sim)
      for (const auto& st : sim->instances()) kv_ok = kv_ok && st.kv_blocks_used <= st.kv_blocks_total;
  }
};

workloads::Workload questions(size_t n) { return test::numbered_questions(n); }

// Runs one question of `script` on the linear single-instance cluster under rr-fcfs.
SimResult run_linear(const Script& script, agents::WorkflowObserver* log = nullptr) {
  auto c = linear_cluster();
  PolicyContext ctx;
  ctx.cluster = &c;
  Policy p = default_policy_registry().make("rr-fcfs", ctx);
  test::ScriptResponder resp;
  Simulator sim(c, p, resp, linear_options(c));
  test::ScriptFactory f({script});
  auto w = questions(1);
  std::vector<workloads::Arrival> arr{{1, 0, 0.0, 10.0}};
  return sim.run(w, arr, f, log);
}

}  // namespace

TEST_CASE("hand-computed scenario: chunked prefill, fused decode, parallel stage", "[scheduler]") {
  // Stage 0: one call, 250 prompt tokens, 3 output tokens: prefill 100+100+50 tokens in three iterations
  // (0.11 + 0.11 + 0.06 s; the last also samples token 1), then two decode steps of 0.012 s → ends at 0.304 s.
  // Stage 1: two calls of 50 prompt / 2 output: one 100-token prefill iteration (0.11 s) and one decode step of two
  // sequences (0.014 s) → ends at 0.428 s.
  StageLog log;
  auto r = run_linear(Script{{{{250, 3}}}, {{{50, 2}, {50, 2}}}}, &log);
  REQUIRE(r.outcomes.size() == 1);
  REQUIRE(r.outcomes[0].completed);
  CHECK(r.outcomes[0].finished_s == Approx(0.428).margin(1e-9));
  REQUIRE(r.calls.size() == 3);
  CHECK(r.calls[0].finished_s == Approx(0.304).margin(1e-9));
  CHECK(r.calls[1].started_s == Approx(0.304).margin(1e-9));
  CHECK(r.calls[1].finished_s == Approx(0.428).margin(1e-9));
  CHECK(r.calls[2].finished_s == Approx(0.428).margin(1e-9));
  CHECK(r.iterations == 3 + 2 + 1 + 1);
  REQUIRE(log.events.size() == 4);
  CHECK(log.events[1].elapsed_s == Approx(0.304).margin(1e-9));
  CHECK(log.events[3].elapsed_s == Approx(0.124).margin(1e-9));
}

TEST_CASE("hand-computed scenario: prefix-cache hit after the first call's prefill", "[scheduler]") {
  // Stage 0 as above but with a 200-token shared prefix (id 7): 12 full blocks = 192 tokens become resident.
  // Stage 1: two 250-token calls with the same prefix: 58 tokens each to prefill. Iteration 1: 58 + 42 tokens
  // (0.11 s; the first call samples its first token); iteration 2: first call decodes, second prefills 16
  // (0.01 + 0.016 + 0.002 = 0.028 s; first call done at 0.442); iteration 3: second call decodes (0.012) → 0.454.
  auto r = run_linear(Script{{{{250, 3, 7, 200}}}, {{{250, 2, 7, 200}, {250, 2, 7, 200}}}});
  REQUIRE(r.outcomes[0].completed);
  REQUIRE(r.calls.size() == 3);
  CHECK(r.calls[1].cached_tokens == 192);
  CHECK(r.calls[2].cached_tokens == 192);
  CHECK(r.calls[1].finished_s == Approx(0.442).margin(1e-9));
  CHECK(r.outcomes[0].finished_s == Approx(0.454).margin(1e-9));
  CHECK(r.instances[0].cached_tokens == 384);
}

TEST_CASE("single-call simulation agrees with the cost model's standalone latency", "[scheduler]") {
  InstanceSpec s = cluster_preset("hetero-paper").instances[0];
  CostModel m(s);
  for (auto [p, o] : {std::pair{11748, 678}, {5963, 79}, {300, 15}}) {
    INFO(p << "/" << o);
    CHECK(simulate_single_call(s, p, o) == Approx(m.standalone_s(p, o, 0, m.default_chunk_tokens())).epsilon(1e-9));
  }
}

namespace {
std::vector<Script> random_scripts(Rng& rng, int n) {
  std::vector<Script> v;
  for (int q = 0; q < n; ++q) {
    Script s;
    const uint64_t pid = static_cast<uint64_t>(q) + 1;
    const int stages = static_cast<int>(rng.uniform_int(2, 6));
    for (int k = 0; k < stages; ++k) {
      test::ScriptStage st;
      if (rng.bernoulli(0.2)) {
        s.push_back(st);  // tool stage
        continue;
      }
      const int fan = rng.bernoulli(0.3) ? static_cast<int>(rng.uniform_int(2, 4)) : 1;
      for (int j = 0; j < fan; ++j) {
        const int prompt = static_cast<int>(rng.uniform_int(200, 6000));
        st.calls.push_back({prompt, static_cast<int>(rng.uniform_int(1, 300)), pid,
                            static_cast<int>(prompt * rng.uniform(0, 0.9))});
      }
      s.push_back(st);
    }
    v.push_back(s);
  }
  return v;
}
}  // namespace

TEST_CASE("simulator invariants hold under load for every baseline (small KV forces preemption)", "[scheduler]") {
  ClusterSpec c = cluster_preset("hetero-small");
  for (auto& s : c.instances) s.kv_blocks = 900;  // 14.4k tokens: a handful of long calls fill it
  Rng rng(11);
  auto scripts = random_scripts(rng, 40);
  auto w = questions(40);
  std::vector<workloads::Arrival> arr;
  double t = 0;
  for (size_t i = 0; i < 40; ++i) {
    t += rng.exponential(4.0);
    arr.push_back({i + 1, i, t, t + 30});
  }
  size_t expected_calls = 0;
  for (const auto& s : scripts)
    for (const auto& st : s) expected_calls += st.calls.size();
  auto reg = default_policy_registry();
  for (const auto& name : reg.names()) {
    INFO(name);
    PolicyContext ctx;
    ctx.cluster = &c;
    Policy p = reg.make(name, ctx);
    test::ScriptResponder resp;
    Simulator sim(c, p, resp);
    test::ScriptFactory f(scripts);
    StageLog log;
    log.sim = &sim;
    auto r = sim.run(w, arr, f, &log);
    CHECK(log.kv_ok);
    size_t completed = 0;
    for (const auto& o : r.outcomes) completed += o.completed;
    CHECK(completed == 40);
    CHECK(r.calls.size() == expected_calls);
    uint64_t preemptions = 0;
    for (const auto& is : r.instances) {
      CHECK(is.peak_kv_blocks <= is.kv_blocks_total);
      preemptions += is.preemptions;
    }
    CHECK(preemptions > 0);
    // No call starts before its stage was released; it is queued no earlier than released.
    std::map<std::pair<uint64_t, uint32_t>, double> stage_end;
    for (const auto& rec : r.calls) {
      CHECK(rec.ok);
      CHECK(rec.queued_s >= rec.released_s);
      CHECK(rec.started_s >= rec.queued_s);
      CHECK(rec.finished_s > rec.started_s);
      auto& e = stage_end[{rec.workflow_id, rec.stage_index}];
      e = std::max(e, rec.finished_s);
    }
    // A stage ends when its last call ends.
    for (const auto& e : log.events)
      if (e.done && e.calls > 0) CHECK(e.t_s == Approx(stage_end[{e.workflow_id, e.stage_index}]).margin(1e-12));
  }
}

namespace {
// Holds every call while any instance has a queue; asks to be offered again 0.5 s later. Counts holds.
struct HoldingDispatcher final : GlobalDispatcher {
  int holds = 0;
  size_t next = 0;
  void dispatch(std::span<const agents::LlmCall* const> calls, const ClusterView& view,
                std::span<DispatchDecision> out) override {
    for (size_t k = 0; k < calls.size(); ++k) {
      bool queued = false;
      for (size_t i = 0; i < view.size(); ++i) queued = queued || !view.instance(i).waiting.empty();
      if (queued || view.instance(next % view.size()).running.size() >= 2) {
        ++holds;
        out[k].retry_at_s = view.now + 0.5;
        continue;
      }
      out[k].instance = static_cast<int>(next++ % view.size());
    }
  }
};
}  // namespace

TEST_CASE("held calls are offered again on completions and at their retry time", "[scheduler]") {
  ClusterSpec c = cluster_preset("hetero-small");
  Policy p;
  auto holder = std::make_unique<HoldingDispatcher>();
  auto* h = holder.get();
  p.dispatcher = std::move(holder);
  for (size_t i = 0; i < c.instances.size(); ++i) p.local.push_back(std::make_unique<FcfsLocal>());
  Rng rng(5);
  auto scripts = random_scripts(rng, 20);
  auto w = questions(20);
  std::vector<workloads::Arrival> arr;
  for (size_t i = 0; i < 20; ++i) arr.push_back({i + 1, i, 0.1 * static_cast<double>(i), 1e9});
  test::ScriptResponder resp;
  Simulator sim(c, p, resp);
  test::ScriptFactory f(scripts);
  auto r = sim.run(w, arr, f);
  size_t completed = 0;
  for (const auto& o : r.outcomes) completed += o.completed;
  CHECK(completed == 20);
  CHECK(h->holds > 0);
  for (const auto& rec : r.calls) CHECK(rec.queued_s >= rec.released_s);
}

TEST_CASE("same inputs give identical results (no shared data needed)", "[scheduler]") {
  ClusterSpec c = cluster_preset("hetero-small");
  for (auto& s : c.instances) s.kv_blocks = 1200;
  auto once = [&](const std::string& policy) {
    Rng rng(21);
    auto scripts = random_scripts(rng, 30);
    auto w = questions(30);
    std::vector<workloads::Arrival> arr;
    double t = 0;
    for (size_t i = 0; i < 30; ++i) {
      t += rng.exponential(2.0);
      arr.push_back({i + 1, i, t, t + 20});
    }
    PolicyContext ctx;
    ctx.cluster = &c;
    Policy p = default_policy_registry().make(policy, ctx);
    test::ScriptResponder resp;
    Simulator sim(c, p, resp);
    test::ScriptFactory f(scripts);
    auto r = sim.run(w, arr, f);
    std::string sig;
    for (const auto& rec : r.calls)
      sig += std::to_string(rec.call_id) + ":" + std::to_string(rec.instance) + ":" + std::to_string(rec.finished_s) +
             ";";
    return sig;
  };
  const auto registry = default_policy_registry();
  for (const auto& name : registry.names()) CHECK(once(name) == once(name));
}
