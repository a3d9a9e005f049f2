// `t2s generate`: raw text generation with the embedded engine (llama2.c run.c-compatible output).
#include <iostream>
#include <string>

#include "cli/commands.hpp"
#include "cli/sim_flags.hpp"
#include "common/log.hpp"
#include "common/status.hpp"
#include "engine/backend.hpp"
#include "engine/generate.hpp"

namespace t2s::cli {

void add_generate_command(CLI::App& app) {
  struct Opts {
    std::string model, tokenizer, prompt, backend = "cpu";
    float temperature = 1.0f, top_p = 1.0f;
    int top_k = 0, steps = 256, threads = 1;
    uint64_t seed = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("generate", "Generate text with the embedded engine; prints the text only");
  cmd->add_option("--model", o->model, "Model file: llama2.c checkpoint (.bin) or GGUF")->required();
  cmd->add_option("--tokenizer", o->tokenizer, "llama2.c tokenizer file (required for a .bin checkpoint)");
  cmd->add_option("--temperature", o->temperature, "Sampling temperature; 0 = greedy")->check(FiniteNumber)->check(CLI::NonNegativeNumber);
  cmd->add_option("--top-p", o->top_p, "Nucleus sampling mass (1 = off)")->check(FiniteNumber)->check(CLI::Range(0.0, 1.0));
  cmd->add_option("--top-k", o->top_k, "Keep the k most likely tokens (0 = off)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--steps", o->steps, "Total positions including the prompt (as llama2.c's -n)")->check(CLI::PositiveNumber);
  cmd->add_option("--prompt", o->prompt, "Prompt text (default: empty, start from BOS)");
  cmd->add_option("--seed", o->seed, "Sampling seed");
  cmd->add_option("--threads", o->threads, "CPU threads")->check(CLI::Range(1, 256));
  cmd->add_option("--backend", o->backend, "cpu or cuda")->check(CLI::IsMember({"cpu", "cuda"}));
  cmd->callback([o] {
    std::string backend = o->backend, why;
    if (backend == "cuda" && !engine::cuda_device_available(&why)) {
      // One clear line, then the CPU: a machine without a device still answers.
      Logger(LogLevel::warn).warn("backend_fallback", {{"requested", "cuda"}, {"using", "cpu"}, {"reason", why}});
      backend = "cpu";
    }
    engine::LoadedModel lm = engine::load_model_and_tokenizer(o->model, o->tokenizer);
    engine::TextGenerationOptions g;
    g.prompt = o->prompt;
    g.steps = o->steps;
    g.sampling.temperature = o->temperature;
    g.sampling.top_p = o->top_p;
    g.sampling.top_k = o->top_k;
    g.seed = o->seed;
    g.threads = o->threads;
    g.backend = backend;
    std::cout << engine::generate_text(lm, g) << "\n";
  });
}

}  // namespace t2s::cli
