// Calls per question and tokens per stage of the Text-to-SQL agent (driven by the oracle in a standalone
// event loop) on the synthetic benchmark, Spider dev and BIRD mini-dev, next to the paper's hexgen traces
// replayed the same way. Prints one markdown table per workload and a ratio summary against the traces.
//
//   build/bench/bench_agent_stats --data ../shared/data [--limit N] [--oracle-error-scale S] [--seed N]
#include <CLI/CLI.hpp>

#include <cstdio>
#include <filesystem>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agents/oracle.hpp"
#include "agents/sim_env.hpp"
#include "agents/text2sql.hpp"
#include "agents/trace_workflow.hpp"
#include "common/stats.hpp"
#include "common/status.hpp"
#include "workloads/workload.hpp"

using namespace t2s;
using namespace t2s::agents;

namespace {

struct KindStats {
  double calls = 0, prompt = 0, output = 0, cached = 0;
};

struct WorkloadStats {
  std::string name;
  size_t questions = 0, completed = 0, correct = 0, simulated = 0;
  std::vector<double> calls_per_q, prompt_per_q, output_per_q, latency_s;
  std::map<StageKind, KindStats> kinds;
};

// Runs every question of `w` alone through `factory` and gathers per-stage call statistics.
WorkloadStats measure(const std::string& name, const workloads::Workload& w, WorkflowFactory& factory,
                      Responder& responder) {
  WorkloadStats st;
  st.name = name;
  for (size_t i = 0; i < w.questions.size(); ++i) {
    StandaloneEnv env(responder);
    std::optional<WorkflowOutcome> out;
    auto wf = factory.make(w.questions[i], {i + 1, i, 0.0, 1e12}, env,
                           [&](const WorkflowOutcome& o) { out = o; }, nullptr);
    wf->start();
    double end = env.run();
    ++st.questions;
    if (!out || !out->completed) continue;
    ++st.completed;
    st.correct += out->correct;
    st.simulated += out->execution_simulated;
    double prompt = 0, output = 0;
    for (const auto& r : env.calls()) {
      auto& k = st.kinds[r.call.kind];
      k.calls += 1;
      k.prompt += r.call.prompt_tokens;
      k.output += r.output_tokens;
      prompt += r.call.prompt_tokens;
      output += r.output_tokens;
    }
    st.calls_per_q.push_back(static_cast<double>(env.calls().size()));
    st.prompt_per_q.push_back(prompt);
    st.output_per_q.push_back(output);
    st.latency_s.push_back(end);
  }
  return st;
}

void print(const WorkloadStats& st) {
  const double n = static_cast<double>(std::max<size_t>(st.completed, 1));
  std::printf("\n### %s: %zu questions, %zu completed", st.name.c_str(), st.questions, st.completed);
  if (st.correct || st.name.find("trace") == std::string::npos)
    std::printf(", EX %.3f%s", static_cast<double>(st.correct) / n, st.simulated ? " (simulated execution)" : "");
  std::printf("\n\ncalls/question mean %.1f (p10 %.0f, p90 %.0f, max %.0f); prompt tokens/question %.0f; output "
              "tokens/question %.0f; standalone latency mean %.1f s, p90 %.1f s\n\n",
              mean(st.calls_per_q), quantile(st.calls_per_q, 0.1), quantile(st.calls_per_q, 0.9),
              quantile(st.calls_per_q, 1.0), mean(st.prompt_per_q), mean(st.output_per_q), mean(st.latency_s),
              quantile(st.latency_s, 0.9));
  std::printf("| stage | calls/question | prompt tokens/call | output tokens/call |\n|---|---|---|---|\n");
  for (const auto& [kind, k] : st.kinds)
    std::printf("| %s | %.2f | %.0f | %.0f |\n", std::string(stage_kind_name(kind)).c_str(), k.calls / n,
                k.prompt / k.calls, k.output / k.calls);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"Calls per question and tokens per stage of the agent vs the paper's traces"};
  std::string data = "../shared/data", cache = "out/synthetic";
  size_t limit = 0;
  double error_scale = 1.0;
  uint64_t seed = 42;
  bool no_picker = false;
  app.add_option("--data", data, "shared data folder (spider/, bird_minidev/, hexgen_traces/)");
  app.add_option("--limit", limit, "questions per workload (0 = all)");
  app.add_option("--oracle-error-scale", error_scale, "0 = the oracle never errs, 1 = calibrated default");
  app.add_option("--seed", seed, "oracle seed");
  app.add_option("--synthetic-cache", cache, "where the synthetic databases are generated");
  app.add_flag("--no-tool-picker", no_picker, "drop the agentic tool-picker calls");
  CLI11_PARSE(app, argc, argv);
  try {
    std::printf("# agent_stats (responder: oracle, error scale %.2f, seed %llu; standalone reference instance)\n",
                error_scale, static_cast<unsigned long long>(seed));
    std::vector<WorkloadStats> all;
    // The paper's traces, replayed call for call.
    for (const char* f : {"trace1", "trace2", "financial", "formula1"}) {
      workloads::WorkloadSpec spec;
      spec.kind = "hexgen-trace";
      spec.questions_file = data + "/hexgen_traces/" + f + ".json";
      spec.limit = limit;
      auto w = workloads::load_workload(spec);
      TraceFactoryOptions to;
      to.tool_picker = !no_picker;
      auto factory = make_trace_factory(w, to);
      auto responder = make_trace_responder();
      all.push_back(measure(std::string("paper trace ") + f, w, *factory, *responder));
      print(all.back());
    }
    const size_t traces = all.size();
    struct Spec {
      const char* label;
      std::string kind, dir;
    };
    for (const Spec& s : {Spec{"synthetic", "synthetic", ""}, Spec{"Spider dev", "spider", data + "/spider"},
                          Spec{"BIRD mini-dev", "bird", data + "/bird_minidev"}}) {
      workloads::WorkloadSpec spec;
      spec.kind = s.kind;
      spec.data_dir = s.dir;
      spec.limit = limit;
      spec.seed = seed;
      spec.cache_dir = cache;
      auto w = workloads::load_workload(spec);
      OracleOptions oo;
      oo.seed = seed;
      oo.error_scale = error_scale;
      auto oracle = make_oracle_responder(w, oo);
      AgentOptions ao;
      ao.tool_picker = !no_picker;
      auto factory = make_text2sql_factory(w, ao);
      all.push_back(measure(s.label, w, *factory, *oracle));
      print(all.back());
    }
    // Ratios against the traces (pooled over the four files), measured in this run.
    double tc = 0, tp = 0, to = 0;
    for (size_t i = 0; i < traces; ++i)
      tc += mean(all[i].calls_per_q), tp += mean(all[i].prompt_per_q), to += mean(all[i].output_per_q);
    tc /= traces, tp /= traces, to /= traces;
    std::printf("\n### ratio to the paper's traces (mean of the four files: %.1f calls, %.0f prompt tokens, %.0f output "
                "tokens per question)\n\n| workload | calls/question | prompt tokens/question | output tokens/question |\n"
                "|---|---|---|---|\n", tc, tp, to);
    for (size_t i = traces; i < all.size(); ++i)
      std::printf("| %s | %.2fx | %.2fx | %.2fx |\n", all[i].name.c_str(), mean(all[i].calls_per_q) / tc,
                  mean(all[i].prompt_per_q) / tp, mean(all[i].output_per_q) / to);
  } catch (const InputError& e) {
    std::cerr << "agent_stats: " << e.what() << "\n";
    return 2;
  }
  return 0;
}
