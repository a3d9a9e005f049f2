// Decision latency of every registered policy with 1,000 waiting calls on hetero-paper: one global dispatch of a
// two-call stage (1,000 calls queued over the 4 instances) and one local admission choice (1,000 calls queued on
// one instance). Prints p50/p99 in µs and the ratio against rr-fcfs measured in the same run.
//   ./build/bench/bench_policies [waiting=1000] [reps=2000]
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <map>
#include <string>
#include <vector>

#include "common/rng.hpp"
#include "common/stats.hpp"
#include "scheduler/cost_model.hpp"
#include "scheduler/policy.hpp"

using namespace t2s;
using namespace t2s::scheduler;

namespace {

struct Timing {
  double p50 = 0, p99 = 0;
};

Timing summarize(std::vector<double>& us) { return {quantile(us, 0.5), quantile(us, 0.99)}; }

// Calls shaped like the paper's traces: tool-picker, candidates, revises, evaluations, with deadlines and
// remaining-work estimates spread over a minute.
std::vector<agents::LlmCall> make_calls(size_t n, Rng& rng) {
  std::vector<agents::LlmCall> calls(n);
  const int prompts[] = {300, 11000, 7000, 1500};
  const int outputs[] = {15, 600, 200, 30};
  for (size_t i = 0; i < n; ++i) {
    auto& c = calls[i];
    const int k = static_cast<int>(rng.uniform(0, 4));
    c.id = i + 1;
    c.workflow_id = i / 8;
    c.prompt_tokens = prompts[k];
    c.expected_output_tokens = outputs[k];
    c.prefix_id = (c.workflow_id * 7 + static_cast<uint64_t>(k)) | 1;
    c.prefix_tokens = c.prompt_tokens * 8 / 10;
    c.arrival_s = rng.uniform(0, 60);
    c.released_s = c.arrival_s + rng.uniform(0, 10);
    c.deadline_s = c.arrival_s + rng.uniform(30, 200);
    c.remaining_mean_s = rng.uniform(0, 60);
    c.remaining_p90_s = c.remaining_mean_s * 1.5;
  }
  return calls;
}

}  // namespace

int main(int argc, char** argv) {
  const size_t waiting = argc > 1 ? std::strtoul(argv[1], nullptr, 10) : 1000;
  const int reps = argc > 2 ? std::atoi(argv[2]) : 2000;
  ClusterSpec cluster = cluster_preset("hetero-paper");
  std::vector<CostModel> costs;
  for (const auto& s : cluster.instances) costs.emplace_back(s);
  Rng rng(7);
  auto queued = make_calls(waiting, rng);
  auto stage = make_calls(2, rng);
  for (auto& c : stage) c.id += 1u << 30;
  const size_t n = cluster.instances.size();

  auto fresh_states = [&](bool spread) {
    std::vector<InstanceState> st(n);
    for (size_t i = 0; i < n; ++i) {
      st[i].index = i;
      st[i].spec = &cluster.instances[i];
      st[i].cost = &costs[i];
      st[i].kv_blocks_total = costs[i].kv_capacity_blocks();
    }
    for (size_t k = 0; k < queued.size(); ++k) {
      auto& s = st[spread ? k % n : 0];
      s.waiting.push_back({&queued[k], queued[k].released_s, false});
      s.waiting_prompt_tokens += queued[k].prompt_tokens;
      s.waiting_output_tokens += queued[k].expected_output_tokens;
    }
    return st;
  };
  const auto spread = fresh_states(true);
  const auto single = fresh_states(false);
  std::vector<HeldCall> held;

  // The same queues with a running batch of 32 on every instance (a few of them still prefilling): the state in
  // which t2s's chunk-aware estimates (chunk_wait, prefill_spread) do their work.
  auto busy = spread;
  auto running = make_calls(32 * n, rng);
  for (size_t k = 0; k < running.size(); ++k) {
    auto& s = busy[k % n];
    const auto& c = running[k];
    const int prefilled = k % 8 == 0 ? c.prompt_tokens / 2 : c.prompt_tokens;
    s.running.push_back({&c, 0, prefilled, prefilled < c.prompt_tokens ? 0 : 10, 0, 60.0, 65.0});
    s.running_context += prefilled;
    s.running_prefill_left += c.prompt_tokens - prefilled;
  }

  auto registry = default_policy_registry();
  PolicyContext ctx;
  ctx.cluster = &cluster;
  std::printf("decision latency, %zu waiting calls, %d reps (µs)\n", waiting, reps);
  std::printf("%-16s %10s %10s %10s %10s %12s\n", "policy", "disp p50", "disp p99", "local p50", "local p99",
              "p99 vs rr");
  double rr_p99 = 0;
  using Clock = std::chrono::steady_clock;
  struct Row {
    std::string label, policy;
    std::map<std::string, double> params;
    const std::vector<InstanceState>* states;
  };
  std::vector<Row> rows;
  for (const auto& name : registry.names()) rows.push_back({name, name, {}, &spread});
  rows.push_back({"t2s busy", "t2s", {}, &busy});
  rows.push_back({"t2s busy spread", "t2s", {{"prefill_spread", 16.0}}, &busy});
  for (const auto& row : rows) {
    const auto& name = row.label;
    ctx.params = row.params;
    Policy p = registry.make(row.policy, ctx);
    std::vector<double> d_us, l_us;
    const agents::LlmCall* calls[] = {&stage[0], &stage[1]};
    std::vector<DispatchDecision> out(2);
    ClusterView view{70.0, row.states, &held};
    for (int r = 0; r < reps; ++r) {
      auto t0 = Clock::now();
      p.dispatcher->dispatch(calls, view, out);
      d_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      t0 = Clock::now();
      const int pick = p.local[0]->next(single[0], 70.0);
      l_us.push_back(std::chrono::duration<double, std::micro>(Clock::now() - t0).count());
      if (pick < -1) std::abort();
    }
    const Timing d = summarize(d_us), l = summarize(l_us);
    const double worst = std::max(d.p99, l.p99);
    if (name == "rr-fcfs") rr_p99 = worst;
    std::printf("%-16s %10.2f %10.2f %10.2f %10.2f %11.1fx\n", name.c_str(), d.p50, d.p99, l.p50, l.p99,
                rr_p99 > 0 ? worst / rr_p99 : 0.0);
  }
  return 0;
}
