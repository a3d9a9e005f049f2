// `t2s replay`: one workload under one policy in the simulator; writes metrics.json and trace.json.
#include <filesystem>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/sim_flags.hpp"
#include "common/json.hpp"
#include "common/trace.hpp"
#include "scheduler/metrics.hpp"

namespace t2s::cli {

void add_replay_command(CLI::App& app) {
  struct Opts {
    SimFlags sim;
    std::string policy = "rr-fcfs", out = "out/replay";
    bool no_trace = false;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("replay", "Replay one workload under one policy (simulated cluster); writes "
                                           "<out>/metrics.json and a Perfetto <out>/trace.json");
  add_sim_flags(cmd, o->sim);
  cmd->add_option("--policy", o->policy, "scheduling policy (see `t2s compare --help` for the list)")
      ->capture_default_str();
  cmd->add_option("--out", o->out, "output folder")->capture_default_str();
  cmd->add_flag("--no-trace", o->no_trace, "do not write trace.json");
  cmd->callback([o] {
    auto setup = setup_from_flags(o->sim);
    auto registry = scheduler::default_policy_registry();
    if (!registry.has(o->policy)) registry.make(o->policy, {});  // throws the InputError listing the names
    TraceWriter trace;
    auto run = scheduler::run_policy(setup, registry, o->policy, o->sim.rate, "", o->no_trace ? nullptr : &trace);
    json::write_file(o->out + "/metrics.json", scheduler::metrics_json(run.metrics));
    if (!o->no_trace) trace.write(o->out + "/trace.json");
    std::cout << scheduler::format_table({run.metrics}, o->policy);
    std::cout << "wrote " << o->out << "/metrics.json" << (o->no_trace ? "" : " and trace.json") << "\n";
  });
}

}  // namespace t2s::cli
