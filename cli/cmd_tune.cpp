// `t2s tune`: choose a policy's knobs (HexGen's alpha, t2s's; see default_tune_axes) by simulating a
// window of load for each candidate; prints the best as --param flags and writes <out>/tune.json.
#include <cmath>
#include <iostream>
#include <sstream>

#include "cli/commands.hpp"
#include "cli/sim_flags.hpp"
#include "common/json.hpp"
#include "harness/tune.hpp"
#include "workloads/trace_file.hpp"

namespace t2s::cli {

void add_tune_command(CLI::App& app) {
  struct Opts {
    SimFlags sim;
    std::string policy = "hexgen", rates, window, out = "out/tune";
    std::vector<std::string> grid;
    int passes = 1;
    double slo_target = 0.95;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("tune", "Choose a policy's knobs by simulation on a window of load (arrivals at "
                                         "--rates, or a recorded window); prints the best as --param flags");
  add_sim_flags(cmd, o->sim);
  cmd->add_option("--policy", o->policy, "policy to tune (hexgen, balanced-fcfs, t2s, or any with --grid)")
      ->capture_default_str();
  cmd->add_option("--grid", o->grid,
                  "PARAM=V1,V2,... (repeatable); default: alpha 0..1 step 0.1 for hexgen/balanced-fcfs, "
                  "step_stretch/chunk_floor/chunk_rule/offload_home/remaining_q/hopeless_frac for t2s");
  cmd->add_option("--rates", o->rates, "comma-separated rates of the tuning windows (score = mean); default: --rate");
  cmd->add_option("--window", o->window,
                  "a recorded window (workload trace file with arrivals and deadlines, as `t2s replay` saves it); "
                  "replaces --workload/--rates");
  cmd->add_option("--passes", o->passes, "coordinate-search passes over the axes")->capture_default_str();
  cmd->add_option("--slo-target", o->slo_target,
                  "each window's SLO attainment counts up to this target; past it the lower P95 wins (1 = rank by "
                  "raw attainment)")
      ->check(CLI::Range(0.0, 1.0))
      ->capture_default_str();
  cmd->add_option("--out", o->out, "output folder")->capture_default_str();
  cmd->callback([o] {
    auto registry = scheduler::default_policy_registry();
    if (!registry.has(o->policy)) registry.make(o->policy, {});  // throws the InputError listing the names
    scheduler::TuneSpec spec;
    spec.policy = o->policy;
    spec.passes = std::max(1, o->passes);
    spec.slo_target = o->slo_target;
    for (const auto& g : o->grid) spec.axes.push_back(scheduler::parse_tune_axis(g));
    scheduler::TuneResult result;
    auto setup = setup_from_flags(o->sim);
    spec.fixed = setup.params;
    if (!o->window.empty()) {
      auto trace = workloads::load_workload_trace(o->window);
      setup.workload = std::move(trace.workload);
      result = scheduler::tune_on_window(setup, trace.arrivals, registry, spec);
    } else {
      std::vector<double> rates;
      for (const auto& r : split_list(o->rates)) {
        char* end = nullptr;
        const double v = std::strtod(r.c_str(), &end);
        if (*end != '\0' || !(v > 0)) throw InputError("--rates: '" + r + "' is not a positive number");
        rates.push_back(v);
      }
      if (rates.empty()) rates.push_back(o->sim.rate);
      result = scheduler::tune_at_rates(setup, rates, registry, spec);
    }
    std::ostringstream js;
    auto num = [](double x) { return std::isfinite(x) ? std::to_string(x) : std::string("null"); };
    js << "{\"policy\": \"" << o->policy << "\", \"slo_target\": " << spec.slo_target << ", \"best\": {";
    bool first = true;
    for (const auto& [k, v] : result.best) js << (first ? "" : ", ") << "\"" << k << "\": " << v, first = false;
    js << "}, \"best_slo_attainment\": " << result.best_score.slo_attainment
       << ", \"best_counted_attainment\": " << result.best_score.ranked_attainment()
       << ", \"best_latency_p95_s\": " << num(result.best_score.latency_p95_s) << ", \"trials\": [";
    for (size_t i = 0; i < result.trials.size(); ++i) {
      const auto& t = result.trials[i];
      js << (i ? ", " : "") << "{\"params\": {";
      first = true;
      for (const auto& [k, v] : t.params) js << (first ? "" : ", ") << "\"" << k << "\": " << v, first = false;
      js << "}, \"slo_attainment\": " << t.score.slo_attainment
         << ", \"counted_attainment\": " << t.score.ranked_attainment()
         << ", \"latency_p95_s\": " << num(t.score.latency_p95_s) << "}";
    }
    js << "]}\n";
    json::write_file(o->out + "/tune.json", js.str());
    for (const auto& t : result.trials) {
      for (const auto& [k, v] : t.params) std::cout << k << "=" << v << " ";
      std::cout << " SLO " << 100 * t.score.slo_attainment << "% (counted " << 100 * t.score.ranked_attainment()
                << "%)  p95 " << t.score.latency_p95_s << " s\n";
    }
    std::cout << "best:";
    for (const auto& [k, v] : result.best) std::cout << " --param " << k << "=" << v;
    std::cout << "  (SLO " << 100 * result.best_score.slo_attainment << "%, p95 " << result.best_score.latency_p95_s
              << " s)\nwrote " << o->out << "/tune.json\n";
  });
}

}  // namespace t2s::cli
