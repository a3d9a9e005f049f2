// Simulator speed: a 1,000-question replay of hexgen trace1 on hetero-paper at 1 question/s under every policy,
// plus the scheduling decision time with 1,000 waiting calls. Ratios are against rr-fcfs in the same run.
//   build/bench/bench_sim [--trace FILE] [--workflows N] [--rate R]
#include <chrono>
#include <ctime>
#include <cstdio>
#include <cstring>
#include <string>

#include "common/rng.hpp"
#include "common/stats.hpp"
#include "harness/replay.hpp"
#include "scheduler/baselines.hpp"

using namespace t2s;
using namespace t2s::scheduler;

int main(int argc, char** argv) {
  std::string trace = std::string(T2S_SHARED_DIR) + "/data/hexgen_traces/trace1.json";
  size_t workflows = 1000;
  double rate = 1.0;
  for (int i = 1; i + 1 < argc; i += 2) {
    if (!std::strcmp(argv[i], "--trace")) trace = argv[i + 1];
    if (!std::strcmp(argv[i], "--workflows")) workflows = std::stoul(argv[i + 1]);
    if (!std::strcmp(argv[i], "--rate")) rate = std::stod(argv[i + 1]);
  }
  workloads::WorkloadSpec ws;
  ws.kind = "hexgen-trace";
  ws.questions_file = trace;
  ReplaySetup setup = make_setup(ws, "hetero-paper", "sim");
  setup.workflows = workflows;
  setup.responder = "trace";
  auto registry = default_policy_registry();
  std::printf("replay: %zu workflows of %s on hetero-paper at %.2f/s\n", workflows, trace.c_str(), rate);
  standalone_latencies(setup);  // deadlines' reference latencies, computed once and shared by every run
  std::printf("%-14s %8s %8s %10s %12s %12s %9s %9s %8s %8s %7s\n", "policy", "wall s", "cpu s", "vs rr", "calls/s",
              "iters/s", "dec p50", "dec p99", "SLO%", "p95 s", "done");
  double rr_wall = 0;
  for (const auto& name : registry.names()) {
    auto t0 = std::chrono::steady_clock::now();
    const std::clock_t c0 = std::clock();
    auto out = run_policy(setup, registry, name, rate);
    const double cpu = static_cast<double>(std::clock() - c0) / CLOCKS_PER_SEC;
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    const double sim_wall = out.result.wall_s;
    if (name == "rr-fcfs") rr_wall = sim_wall;
    std::printf("%-14s %8.3f %8.3f %9.2fx %12.0f %12.0f %8.2fus %8.2fus %8.1f %8.1f %7zu   (arrivals etc. %.3f s)\n",
                name.c_str(), sim_wall, cpu, rr_wall > 0 ? sim_wall / rr_wall : 1.0,
                static_cast<double>(out.result.calls.size()) / sim_wall,
                static_cast<double>(out.result.iterations) / sim_wall, out.metrics.sched_decision_us_p50,
                out.metrics.sched_decision_us_p99, 100 * out.metrics.slo_attainment, out.metrics.latency_p95_s,
                out.metrics.completed, wall - sim_wall);
  }

  // Decision time with 1,000 waiting calls on each instance.
  ClusterSpec c = cluster_preset("hetero-paper");
  std::vector<CostModel> costs;
  for (const auto& s : c.instances) costs.emplace_back(s);
  std::vector<InstanceState> insts(c.instances.size());
  std::vector<agents::LlmCall> calls(1000);
  Rng rng(3);
  for (size_t k = 0; k < calls.size(); ++k) {
    calls[k].id = k + 1;
    calls[k].prompt_tokens = static_cast<int>(rng.uniform_int(300, 12000));
    calls[k].expected_output_tokens = static_cast<int>(rng.uniform_int(5, 700));
    calls[k].deadline_s = rng.uniform(0, 100);
  }
  for (size_t i = 0; i < insts.size(); ++i) {
    insts[i].index = i;
    insts[i].spec = &c.instances[i];
    insts[i].cost = &costs[i];
    for (auto& call : calls) {
      insts[i].waiting.push_back({&call, 0.0, false});
      insts[i].waiting_prompt_tokens += call.prompt_tokens;
      insts[i].waiting_output_tokens += call.expected_output_tokens;
    }
  }
  std::vector<HeldCall> held;
  ClusterView view{1.0, &insts, &held};
  auto time_us = [](auto&& fn, int reps) {
    std::vector<double> us;
    for (int r = 0; r < reps; ++r) {
      auto t0 = std::chrono::steady_clock::now();
      fn();
      us.push_back(std::chrono::duration<double, std::micro>(std::chrono::steady_clock::now() - t0).count());
    }
    return std::pair{quantile(us, 0.5), quantile(us, 0.99)};
  };
  PolicyContext ctx;
  ctx.cluster = &c;
  std::printf("\ndecision time with 1,000 waiting calls per instance (p50 / p99 µs):\n");
  for (const auto& name : registry.names()) {
    Policy p = registry.make(name, ctx);
    int sink = 0;
    auto local = time_us([&] { sink += p.local[0]->next(insts[0], 1.0); }, 2000);
    const agents::LlmCall* one[] = {&calls[7]};
    std::vector<DispatchDecision> out(1);
    auto global = time_us([&] { p.dispatcher->dispatch(one, view, out); }, 2000);
    std::printf("  %-14s local next %6.2f / %6.2f   dispatch %6.2f / %6.2f   (%d)\n", name.c_str(), local.first,
                local.second, global.first, global.second, sink % 2);
  }
  return 0;
}
