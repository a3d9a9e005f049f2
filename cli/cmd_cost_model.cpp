// `t2s cost-model`: what the cost model predicts for a cluster's instances, its fit from measured iterations,
// and its error against measured calls.
#include <cstdio>
#include <fstream>
#include <iostream>

#include "cli/commands.hpp"
#include "common/json.hpp"
#include "common/status.hpp"
#include "scheduler/cost_model.hpp"
#include "scheduler/iteration_log.hpp"

namespace t2s::cli {

namespace {

// Reads JSON lines; `fn(obj, where)` per non-empty line.
template <typename Fn>
void for_each_json_line(const std::string& path, Fn fn) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open");
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(n);
    auto doc = json::parse(line, where);
    if (!doc.IsObject()) throw InputError(where + ": expected a JSON object");
    fn(doc, where);
  }
}

}  // namespace

void add_cost_model_command(CLI::App& app) {
  struct Opts {
    std::string cluster = "hetero-paper", fit, calls, instance;
    int prompt = 11748, output = 678, cached = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("cost-model",
                                 "Show the cost model of each instance (standalone latency of one call, prefill rate, "
                                 "decode step, KV capacity); optionally fit it from measured iterations and report "
                                 "its error against measured calls");
  cmd->add_option("--cluster", o->cluster, "cluster preset or cluster JSON file")->capture_default_str();
  cmd->add_option("--prompt", o->prompt, "prompt tokens of the probe call")->capture_default_str();
  cmd->add_option("--output", o->output, "output tokens of the probe call")->capture_default_str();
  cmd->add_option("--cached", o->cached, "prompt tokens served by the prefix cache")->capture_default_str();
  cmd->add_option("--fit", o->fit,
                  "JSON lines of measured iterations {[instance, t_s,] prefill_tokens, prefill_attn, decode_seqs, "
                  "decode_context, seconds}: fit the linear iteration model by least squares and use it");
  cmd->add_option("--instance", o->instance,
                  "with --fit: use only the iterations of this instance (the 'instance' field of a recorded run's "
                  "iterations.jsonl); default: all lines");
  cmd->add_option("--calls", o->calls,
                  "JSON lines of measured standalone calls {prompt_tokens, cached_tokens, output_tokens, seconds}: "
                  "report predicted vs measured error per call");
  cmd->callback([o] {
    if (o->prompt < 1 || o->output < 1 || o->cached < 0) throw InputError("--prompt/--output must be >= 1");
    auto cluster = scheduler::load_cluster(o->cluster);
    std::optional<scheduler::LinearIterationModel> fitted;
    if (!o->fit.empty()) {
      std::vector<scheduler::IterationSample> samples;
      for (const auto& r : scheduler::load_iteration_log(o->fit))
        if (o->instance.empty() || r.instance == o->instance) samples.push_back(r.sample);
      if (samples.empty() && !o->instance.empty())
        throw InputError(o->fit + ": no iterations of instance '" + o->instance + "'");
      auto f = scheduler::fit_instance_iterations(samples);
      if (!f.ok()) throw InputError(o->fit + ": " + f.error().message());
      fitted = *f;
      std::printf("fitted from %zu iterations: t = %.3g + %.3g*prefill + %.3g*attn + %.3g*seqs + %.3g*context "
                  "(rms %.3g s)\n",
                  f->samples, f->c0, f->c_prefill, f->c_attn, f->c_seq, f->c_ctx, f->rms_error_s);
    }
    std::vector<scheduler::MeasuredCall> measured;
    if (!o->calls.empty())
      for_each_json_line(o->calls, [&](const rapidjson::Value& v, const std::string& where) {
        scheduler::MeasuredCall c;
        c.prompt_tokens = static_cast<int>(json::get_int(v, "prompt_tokens", where));
        c.cached_tokens = static_cast<int>(json::opt_int(v, "cached_tokens", 0));
        c.output_tokens = static_cast<int>(json::get_int(v, "output_tokens", where));
        c.seconds = json::get_double(v, "seconds", where);
        measured.push_back(c);
      });
    std::printf("%-10s %-10s %3s %-18s %12s %12s %12s %10s", "instance", "gpu", "tp", "model", "call s",
                "prefill t/s", "decode ms", "KV tokens");
    if (!measured.empty()) std::printf(" %9s %9s %9s", "|err| avg", "|err| p90", "bias");
    std::printf("\n");
    for (const auto& spec : cluster.instances) {
      if (spec.backend != scheduler::Backend::sim) {
        std::printf("%-10s (backend without a GPU profile)\n", spec.name.c_str());
        continue;
      }
      scheduler::CostModel m(spec);
      if (fitted) m.set_fitted(*fitted);
      std::printf("%-10s %-10s %3d %-18s %12.3f %12.0f %12.2f %10lld", spec.name.c_str(), spec.gpu.name.c_str(),
                  spec.tp, spec.model.name.c_str(),
                  m.standalone_s(o->prompt, o->output, o->cached, m.default_chunk_tokens()), m.prefill_tokens_per_s(),
                  1000 * m.decode_step_s(1, o->prompt), static_cast<long long>(m.kv_capacity_blocks()) * m.block_tokens());
      if (!measured.empty()) {
        auto e = scheduler::compare_calls(m, measured);
        std::printf(" %8.1f%% %8.1f%% %+8.1f%%", 100 * e.mean_abs_rel, 100 * e.p90_abs_rel, 100 * e.bias_rel);
      }
      std::printf("\n");
    }
  });
}

}  // namespace t2s::cli
