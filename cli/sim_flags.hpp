#pragma once
//! Flags shared by the simulated-replay commands (replay, compare, demo): workload, cluster, arrivals, SLO, seed.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <map>
#include <string>

#include "common/status.hpp"
#include "harness/replay.hpp"
#include "scheduler/policy.hpp"

namespace t2s::cli {

//! The most workflows (or questions) one run takes: every workflow's arrivals and metrics are held in memory
//! (10 M took 2.9 GB), so more is refused rather than half-run.
inline constexpr size_t kMaxWorkflows = 1000000;

//! Refuses NaN and infinities (CLI11's range checks let NaN through: every comparison with it is false).
inline const CLI::Validator FiniteNumber(
    [](std::string& s) -> std::string {
      char* end = nullptr;
      double v = std::strtod(s.c_str(), &end);
      if (s.empty() || *end != '\0' || !std::isfinite(v)) return "value " + s + " is not a finite number";
      return {};
    },
    "FINITE", "FINITE");

//! Values of the shared replay flags.
struct SimFlags {
  std::string workload = "synthetic", data, questions, cluster = "hetero-paper", arrival = "poisson";
  std::string backend = "sim", responder, slo = "3";
  double rate = 0.2, oracle_error_scale = 1.0, candidate_temperature = 0.7;
  int candidates = 2;
  std::string literals = "guided";
  uint64_t seed = 1;
  size_t limit = 0, workflows = 0;
  std::vector<std::string> params;
  std::string cost_error, slowdown;  // robustness what-ifs (policy sees a wrong cost model; an instance slows down)
};

//! Adds the shared flags to `cmd`.
inline void add_sim_flags(CLI::App* cmd, SimFlags& f) {
  cmd->add_option("--workload", f.workload, "synthetic | spider | bird | hexgen-trace | recorded (--questions OUT/recorded.json of a real `t2s replay --out OUT`)")
      ->capture_default_str();
  cmd->add_option("--data", f.data, "dataset folder (spider/bird layout, or a folder of hexgen trace *.json)");
  cmd->add_option("--questions", f.questions, "question file overriding the dataset's (one trace file for hexgen)");
  cmd->add_option("--cluster", f.cluster, "cluster preset (hetero-small, hetero-paper, local) or cluster JSON file")
      ->capture_default_str();
  cmd->add_option("--rate", f.rate, "arrival rate in workflows/s")->check(FiniteNumber)->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--arrival", f.arrival, "poisson | gamma:CV | trace:FILE")->capture_default_str();
  cmd->add_option("--slo-scale", f.slo,
                  "deadline = arrival + S x standalone latency on the first instance; also easy=S1,hard=S2,... "
                  "or abs:SECONDS")
      ->capture_default_str();
  cmd->add_option("--backend", f.backend, "sim (simulator) | engine | remote (the real-time runtime over the cluster's engine/remote instances; `t2s replay` only; engine: --cluster defaults to local)")
      ->capture_default_str();
  cmd->add_option("--responder", f.responder,
                  "oracle | trace | model: who writes the answers (sim default: oracle; engine/remote default: model, and oracle/trace then answer only the cluster's simulated instances)");
  cmd->add_option("--oracle-error-scale", f.oracle_error_scale, "0 = the oracle never errs, 1 = calibrated default")
      ->check(FiniteNumber)
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--candidates", f.candidates,
                  "Text-to-SQL agent: parallel candidate calls per question (the first greedy, the rest sampled)")
      ->check(CLI::Range(1, 16))
      ->capture_default_str();
  cmd->add_option("--literals", f.literals,
                  "Text-to-SQL agent: guided (the embedded engine lets candidate and revise SQL use only literals "
                  "and comparisons the question states and names the schema has) | free")
      ->check(CLI::IsMember({"guided", "free"}))
      ->capture_default_str();
  cmd->add_option("--candidate-temperature", f.candidate_temperature,
                  "Text-to-SQL agent: sampling temperature of candidates after the first and of revisions")
      ->check(FiniteNumber)
      ->check(CLI::Range(0.0, 2.0))
      ->capture_default_str();
  cmd->add_option("--seed", f.seed, "seed of arrivals, workflows and responders")->capture_default_str();
  cmd->add_option("--limit", f.limit, "use the first N questions of the workload (0 = all)")
      ->check(CLI::Range(size_t(0), kMaxWorkflows));
  cmd->add_option("--workflows", f.workflows, "number of arriving workflows (0 = one per question)")
      ->check(CLI::Range(size_t(0), kMaxWorkflows));
  cmd->add_option("--param", f.params, "policy knob KEY=VALUE (repeatable), e.g. --param alpha=0.3");
  cmd->add_option("--cost-error", f.cost_error,
                  "policies see a mis-estimated cost model: E (every instance) or NAME=E,NAME=E; E = 0.3 makes the "
                  "policy believe an instance 30% slower than the simulated truth");
  cmd->add_option("--slowdown", f.slowdown, "NAME:AT_S:FACTOR: instance NAME really runs FACTOR x slower from AT_S on");
}

//! Items of a comma-separated --cost-error value.
inline std::vector<std::string> split_cost_error_list(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < s.size()) {
    const auto comma = s.find(',', pos);
    out.push_back(s.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos));
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return out;
}

//! The replay setup the flags describe.
inline scheduler::ReplaySetup setup_from_flags(const SimFlags& f) {
  workloads::WorkloadSpec ws;
  ws.kind = f.workload;
  ws.data_dir = f.data;
  ws.questions_file = f.questions;
  ws.limit = f.limit;
  ws.seed = f.seed;
  // Flags first, before the workload is loaded or generated.
  std::map<std::string, double> params;
  for (const auto& kv : f.params) {
    auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0) throw InputError("--param '" + kv + "': expected KEY=VALUE");
    char* end = nullptr;
    const std::string value = kv.substr(eq + 1);
    const double v = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || !std::isfinite(v))
      throw InputError("--param '" + kv + "': VALUE must be a finite number");
    const std::string key = kv.substr(0, eq);
    const auto& known = scheduler::policy_param_names();
    if (std::find(known.begin(), known.end(), key) == known.end()) {
      std::string list;
      for (const auto& k : known) list += (list.empty() ? "" : ", ") + k;
      throw InputError("--param '" + kv + "': unknown knob '" + key + "' (known: " + list + ")");
    }
    params[key] = v;
  }
  auto setup = scheduler::make_setup(ws, f.cluster, f.backend);
  setup.arrival = f.arrival;
  setup.slo = f.slo;
  setup.responder = f.responder.empty() ? (f.backend == "sim" ? "oracle" : "model") : f.responder;
  if (setup.responder != "oracle" && setup.responder != "trace" && setup.responder != "model")
    throw InputError("--responder: unknown value '" + f.responder + "' (expected oracle, trace or model)");
  setup.oracle_error_scale = f.oracle_error_scale;
  setup.agent_candidates = f.candidates;
  setup.agent_literal_guide = f.literals == "guided";
  setup.candidate_temperature = f.candidate_temperature;
  if (f.oracle_error_scale < 0) throw InputError("--oracle-error-scale must be >= 0");
  setup.seed = f.seed;
  setup.workflows = f.workflows;
  setup.params = std::move(params);
  for (const auto& item : split_cost_error_list(f.cost_error)) {
    const auto eq = item.find('=');
    const std::string name = eq == std::string::npos ? "*" : item.substr(0, eq);
    const std::string value = eq == std::string::npos ? item : item.substr(eq + 1);
    char* end = nullptr;
    const double e = std::strtod(value.c_str(), &end);
    if (value.empty() || *end != '\0' || !(e > -1))
      throw InputError("--cost-error '" + item + "': expected E or NAME=E with E > -1");
    setup.sim.policy_cost_error[name] = e;
  }
  if (!f.slowdown.empty()) {
    const auto a = f.slowdown.find(':'), b = f.slowdown.rfind(':');
    if (a == std::string::npos || a == b) throw InputError("--slowdown '" + f.slowdown + "': expected NAME:AT_S:FACTOR");
    setup.sim.slowdown_instance = f.slowdown.substr(0, a);
    setup.sim.slowdown_at_s = std::strtod(f.slowdown.substr(a + 1, b - a - 1).c_str(), nullptr);
    setup.sim.slowdown_factor = std::strtod(f.slowdown.substr(b + 1).c_str(), nullptr);
    if (!(setup.sim.slowdown_factor > 0)) throw InputError("--slowdown: FACTOR must be > 0");
  }
  return setup;
}

//! Splits "a,b,c".
inline std::vector<std::string> split_list(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= s.size()) {
    size_t comma = s.find(',', start);
    if (comma == std::string::npos) comma = s.size();
    if (comma > start) out.push_back(s.substr(start, comma - start));
    start = comma + 1;
  }
  return out;
}

}  // namespace t2s::cli
