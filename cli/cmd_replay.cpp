// `t2s replay`: one workload under one policy, in the simulator (--backend sim) or for real through the runtime
// (--backend engine|remote); writes metrics.json and trace.json either way.
#include <cstdio>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/sim_flags.hpp"
#include "common/json.hpp"
#include "common/trace.hpp"
#include "harness/realtime_replay.hpp"
#include "harness/recorded_run.hpp"
#include "runtime/engine_models.hpp"
#include "scheduler/iteration_log.hpp"
#include "scheduler/metrics.hpp"
#include "workloads/recorded.hpp"

namespace t2s::cli {
void add_replay_command(CLI::App& app) {
  struct Opts {
    SimFlags sim;
    std::string policy = "rr-fcfs", out = "out/replay", tokenizer, model, fit, recorded_prefix = "measured";
    bool no_trace = false;
    double time_limit_s = 600;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("replay", "Replay one workload under one policy (simulated cluster, or real "
                                           "engine/remote instances with --backend); writes <out>/metrics.json and "
                                           "a Perfetto <out>/trace.json");
  add_sim_flags(cmd, o->sim);
  cmd->add_option("--policy", o->policy, "scheduling policy (see `t2s compare --help` for the list)")
      ->capture_default_str();
  cmd->add_option("--out", o->out, "output folder")->capture_default_str();
  cmd->add_flag("--no-trace", o->no_trace, "do not write trace.json");
  cmd->add_option("--time-limit", o->time_limit_s,
                  "engine/remote: wall-clock seconds after which running workflows are cancelled (counted failed)")
      ->check(FiniteNumber)
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--tokenizer", o->tokenizer,
                  "engine: tokenizer of llama2.c checkpoints (default: tokenizer.bin or tok512.bin beside the model)");
  cmd->add_option("--model", o->model,
                  "engine with --cluster local: the model file of the local instances (default: t2s's bundled "
                  "models/t2s-sql.gguf, else the shared data's llama2c/stories260K.bin)");
  cmd->add_option("--fit", o->fit,
                  "iterations.jsonl of a recorded run (or any JSON lines of measured iterations with 'instance'): "
                  "sim: each named instance's cost model is fitted on its own iterations before simulating; "
                  "engine/remote: each named instance's online cost model starts from them (warm start)");
  cmd->add_option("--recorded-prefix", o->recorded_prefix,
                  "--workload recorded: 'measured' gives each call, under one prefix id per recorded instance, the "
                  "prompt tokens that instance served from its cache (the engine hashes every shared block, more than "
                  "the agent declares; per-call service times then match the recording); 'declared' replays the "
                  "prefix ids the scheduler saw")
      ->check(CLI::IsMember({"declared", "measured"}))
      ->capture_default_str();
  cmd->callback([o, cmd] {
    // contracts.md: `local` (embedded CPU engine instances of this machine) is --backend engine's default cluster.
    if (o->sim.backend == "engine" && cmd->get_option("--cluster")->count() == 0) o->sim.cluster = "local";
    if (!o->model.empty() && o->sim.backend != "engine")
      throw InputError("--model applies to --backend engine (the local cluster's model)");
    auto setup = setup_from_flags(o->sim);
    auto registry = scheduler::default_policy_registry();
    if (!registry.has(o->policy)) registry.make(o->policy, {});  // throws the InputError listing the names
    const bool recorded = !setup.workload.recorded_arrivals.empty();
    if (cmd->get_option("--recorded-prefix")->count() > 0 && !recorded)
      throw InputError("--recorded-prefix applies to --workload recorded");
    setup.measured_prefix = o->recorded_prefix == "measured";
    if (recorded && setup.backend != "sim")
      throw InputError("--workload recorded: replays a recorded run in the simulator (--backend sim)");
    double rate = o->sim.rate;
    if (recorded) {
      // The recorded arrivals replace --rate; the reported rate is theirs.
      const auto& a = setup.workload.recorded_arrivals;
      double lo = a.front().arrival_s, hi = lo;
      for (const auto& x : a) lo = std::min(lo, x.arrival_s), hi = std::max(hi, x.arrival_s);
      rate = a.size() > 1 && hi > lo ? static_cast<double>(a.size() - 1) / (hi - lo) : 0.0;
      std::cout << "recorded run (" << setup.workload.recorded_source << "): " << a.size()
                << " workflows at their recorded arrivals and deadlines\n";
    }
    if (setup.backend == "sim" && (recorded || !o->fit.empty())) {
      std::vector<scheduler::IterationRecord> iterations;
      if (!o->fit.empty()) iterations = scheduler::load_iteration_log(o->fit);
      for (const auto& line : scheduler::prepare_fitted_setup(setup, iterations)) std::cout << "  " << line << "\n";
    }
    if (setup.backend != "sim") {
      server::RealtimeRunOptions ro;
      ro.record = true;
      ro.time_limit_s = o->time_limit_s;
      ro.runtime.engine_tokenizer = o->tokenizer;
      if (!o->fit.empty()) {
        ro.runtime.initial_samples = scheduler::samples_by_instance(scheduler::load_iteration_log(o->fit));
        for (const auto& [name, v] : ro.runtime.initial_samples) {
          bool known = false;
          for (const auto& in : setup.cluster.instances) known = known || in.name == name;
          std::cout << "  " << (name.empty() ? std::string("(unnamed)") : name) << ": " << v.size()
                    << (known ? " iterations seed its online cost model\n" : " iterations, no such instance: ignored\n");
        }
      }
      server::resolve_engine_models(setup.cluster, o->sim.cluster, o->model, ro.runtime);
      auto run = server::run_policy_realtime(setup, registry, o->policy, o->sim.rate, "", ro);
      json::write_file(o->out + "/metrics.json", server::realtime_metrics_json(run, setup.backend, o->time_limit_s));
      if (!o->no_trace) json::write_file(o->out + "/trace.json", run.trace_json);
      json::write_file(o->out + "/recorded.json", workloads::format_recorded_run(*run.recorded));
      std::string lines;
      for (const auto& it : run.iterations) lines += scheduler::format_iteration_line(it) + "\n";
      json::write_file(o->out + "/iterations.jsonl", lines);
      std::cout << scheduler::format_table({run.metrics}, o->policy);
      char line[200];
      std::snprintf(line, sizeof line,
                    "prediction error (service time, |predicted-measured|/measured over %zu calls): mean %.3f p50 "
                    "%.3f p95 %.3f\n",
                    run.prediction.calls, run.prediction.mean_abs_rel, run.prediction.p50_abs_rel,
                    run.prediction.p95_abs_rel);
      std::cout << line;
      std::cout << scheduler::format_answer_summary(run.metrics);
      std::cout << "wrote " << o->out << "/metrics.json, recorded.json (" << run.recorded->questions.size()
                << " workflows), iterations.jsonl (" << run.iterations.size() << " iterations)"
                << (o->no_trace ? "" : " and trace.json") << "\n";
    } else {
      TraceWriter trace;
      auto run = scheduler::run_policy(setup, registry, o->policy, rate, "", o->no_trace ? nullptr : &trace);
      std::string metrics = scheduler::metrics_json(run.metrics);
      if (recorded) {
        const auto e = scheduler::service_error(run.service);
        metrics = scheduler::with_service_error(metrics, e);
        char line[400];
        std::snprintf(line, sizeof line,
                      "replayed vs recorded service time over %zu calls: |error| mean %.3f p50 %.3f p95 %.3f, bias "
                      "%+.3f; the %zu on their recorded instance: mean %.3f p50 %.3f p95 %.3f, bias %+.3f\n",
                      e.calls, e.mean_abs_rel, e.p50_abs_rel, e.p95_abs_rel, e.bias_rel, e.same_instance,
                      e.same_mean_abs_rel, e.same_p50_abs_rel, e.same_p95_abs_rel, e.same_bias_rel);
        std::cout << line;
      }
      json::write_file(o->out + "/metrics.json", metrics);
      if (!o->no_trace) trace.write(o->out + "/trace.json");
      std::cout << scheduler::format_table({run.metrics}, o->policy);
      std::cout << "wrote " << o->out << "/metrics.json" << (o->no_trace ? "" : " and trace.json") << "\n";
    }
  });
}

}  // namespace t2s::cli
