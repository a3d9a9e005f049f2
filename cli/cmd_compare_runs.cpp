// `t2s compare-runs REAL SIM`: a real run's metrics against its simulated replay's (recorded runs, issue 17).
#include <iostream>

#include "cli/commands.hpp"
#include "common/json.hpp"
#include "harness/recorded_run.hpp"

namespace t2s::cli {

void add_compare_runs_command(CLI::App& app) {
  struct Opts {
    std::string real, sim, json;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "compare-runs",
      "Compare a real run with its simulated replay: P50/P95 workflow latency, SLO attainment and the replay's "
      "per-call service-time error (REAL and SIM: metrics.json files or the --out folders holding them)");
  cmd->add_option("real", o->real, "metrics.json (or its folder) of the real run (`t2s replay --backend engine|remote`)")
      ->required();
  cmd->add_option("sim", o->sim,
                  "metrics.json (or its folder) of its replay (`t2s replay --backend sim --workload recorded --fit`)")
      ->required();
  cmd->add_option("--json", o->json, "also write the comparison as JSON to this file");
  cmd->callback([o] {
    auto c = scheduler::compare_runs(o->real, o->sim);
    std::cout << scheduler::format_comparison(c);
    if (!o->json.empty()) {
      json::write_file(o->json, scheduler::comparison_json(c));
      std::cout << "wrote " << o->json << "\n";
    }
  });
}

}  // namespace t2s::cli
