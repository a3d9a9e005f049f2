// Engine benchmark: our CPU backend against llama2.c's run.c (built here from the shared peers folder with
// gcc -O3 -march=native -fopenmp), on stories260K and random-weight llama2.c checkpoints of the 15M and 110M shapes.
// Prints single-stream decode tok/s for both and their ratio, our 16-sequence batched decode throughput, prefill
// tok/s, and the prefill work the prefix cache saves for 8 calls sharing 90% of a 1000-token prompt.
#include <CLI/CLI.hpp>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>

#include "common/rng.hpp"
#include "engine/backend.hpp"
#include "engine/batch_runner.hpp"
#include "engine/generate.hpp"
#include "engine/llama2c.hpp"

using namespace t2s::engine;
namespace fs = std::filesystem;

namespace {

struct Bench {
  std::string name, model, tokenizer;
  int steps;
};

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// run.c's own figure: "achieved tok/s" on stderr (timer starts after the first token, like ours below).
double run_c(const std::string& exe, const Bench& b, int threads, const fs::path& dir) {
  std::string err = (dir / "runc.err").string();
  std::string cmd = "OMP_NUM_THREADS=" + std::to_string(threads) + " " + exe + " " + b.model + " -z " + b.tokenizer +
                    " -t 0 -n " + std::to_string(b.steps) + " > /dev/null 2> " + err;
  if (std::system(cmd.c_str()) != 0) throw std::runtime_error("run.c failed: " + cmd);
  std::ifstream f(err);
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("achieved tok/s: ", 0) == 0) return std::stod(line.substr(16));
  throw std::runtime_error("run.c printed no tok/s line");
}

std::unique_ptr<Backend> backend_for(const LoadedModel& lm, int threads, int budget, int ctx) {
  CpuBackendOptions o;
  o.threads = threads;
  o.max_batch_tokens = budget;
  o.max_context = ctx;
  o.kv_budget_bytes = kv_block_bytes(lm.model->config) * static_cast<size_t>(BatchRunner::blocks_for(ctx) * 17 + 8);
  return make_cpu_backend(lm.model, o);
}

// Single-stream greedy decode from BOS, `steps` positions; tok/s after the first token.
double ours_single(const LoadedModel& lm, int threads, int steps) {
  auto be = backend_for(lm, threads, 64, steps + 1);
  BatchRunner r(*be, *lm.tokenizer, RunnerOptions{64, 1, false});
  GenerationParams g;
  g.max_tokens = steps;
  g.ignore_eos = true;
  r.admit({1}, g).value();
  r.step();
  double t0 = now();
  int n = 0;
  while (r.has_work()) n += r.step().decode_tokens;
  return n / (now() - t0);
}

// 16 concurrent sequences; decode-only iterations' tokens per second.
double ours_batched(const LoadedModel& lm, int threads, int steps, int seqs) {
  auto be = backend_for(lm, threads, 64, steps + 4);
  BatchRunner r(*be, *lm.tokenizer, RunnerOptions{64, seqs, false});
  GenerationParams g;
  g.max_tokens = steps;
  g.ignore_eos = true;
  for (int i = 0; i < seqs; ++i) r.admit({1, 3 + i}, g).value();
  double secs = 0;
  int64_t toks = 0;
  while (r.has_work()) {
    StepReport rep = r.step();
    if (rep.prefill_tokens == 0 && rep.decode_tokens == seqs) {
      secs += rep.seconds;
      toks += rep.decode_tokens;
    }
  }
  return static_cast<double>(toks) / secs;
}

std::vector<int> random_prompt(int n, int vocab, uint64_t seed) {
  t2s::Rng rng(seed);
  std::vector<int> p{1};
  while (static_cast<int>(p.size()) < n) p.push_back(static_cast<int>(rng.uniform_int(3, vocab - 1)));
  return p;
}

double ours_prefill(const LoadedModel& lm, int threads, int tokens) {
  auto be = backend_for(lm, threads, 256, tokens + 2);
  BatchRunner r(*be, *lm.tokenizer, RunnerOptions{256, 1, false});
  GenerationParams g;
  g.max_tokens = 1;
  g.ignore_eos = true;
  r.admit(random_prompt(tokens, lm.model->config.vocab_size, 5), g).value();
  double t0 = now();
  while (r.has_work()) r.step();
  return tokens / (now() - t0);
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_engine: t2s CPU engine vs llama2.c run.c"};
  int threads = 1, steps_small = 256, steps_110m = 24;
  std::string models = "260k,15m,110m", shared = T2S_SHARED_DIR_DEFAULT;
  bool prefix = true;
  app.add_option("--threads", threads, "Threads for both engines (OMP_NUM_THREADS for run.c)");
  app.add_option("--models", models, "Comma list of 260k, 15m, 110m");
  app.add_option("--steps", steps_small, "Decode positions for 260k and 15m");
  app.add_option("--steps-110m", steps_110m, "Decode positions for 110m (keep it short)");
  app.add_option("--shared", shared, "The shared folder (data/ and peers/)");
  app.add_flag("!--no-prefix", prefix, "Skip the prefix-cache measurement");
  CLI11_PARSE(app, argc, argv);

  fs::path dir = fs::temp_directory_path() / ("t2s-bench-engine-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  std::string runc = (dir / "runc").string();
  std::string build = "gcc -O3 -march=native -fopenmp -o " + runc + " " + shared + "/peers/llama2c/run.c -lm";
  if (std::system(build.c_str()) != 0) {
    std::cerr << "cannot build run.c: " << build << "\n";
    return 1;
  }
  std::vector<Bench> benches;
  auto want = [&](const std::string& m) { return ("," + models + ",").find("," + m + ",") != std::string::npos; };
  if (want("260k"))
    benches.push_back({"stories260K", shared + "/data/llama2c/stories260K.bin", shared + "/data/llama2c/tok512.bin", steps_small});
  std::string tok32k = (dir / "tok32k.bin").string();
  if (want("15m") || want("110m") || prefix) write_synthetic_llama2c_vocab(tok32k, 32000);
  if (want("15m")) {
    write_random_llama2c_checkpoint((dir / "15m.bin").string(), {288, 768, 6, 6, 6, 32000, 256, true}, 15);
    benches.push_back({"random-15M", (dir / "15m.bin").string(), tok32k, steps_small});
  }
  if (want("110m")) {
    write_random_llama2c_checkpoint((dir / "110m.bin").string(), {768, 2048, 12, 12, 12, 32000, 1024, true}, 110);
    benches.push_back({"random-110M", (dir / "110m.bin").string(), tok32k, steps_110m});
  }
  std::printf("threads=%d (run.c: OMP_NUM_THREADS=%d), best of 2 alternating runs each\n", threads, threads);
  std::printf("%-12s %6s %12s %12s %7s %14s %9s %12s\n", "model", "steps", "run.c tok/s", "ours tok/s", "ratio",
              "ours 16-seq", "x single", "prefill t/s");
  for (const Bench& b : benches) {
    LoadedModel lm = load_model_and_tokenizer(b.model, b.tokenizer);
    double rc = 0, us = 0;
    for (int rep = 0; rep < 2; ++rep) {
      rc = std::max(rc, run_c(runc, b, threads, dir));
      us = std::max(us, ours_single(lm, threads, b.steps));
    }
    int bsteps = std::min(b.steps, 64);
    double batched = ours_batched(lm, threads, bsteps, 16);
    int ptoks = std::min(lm.model->config.max_seq_len - 2, b.name == "random-110M" ? 256 : 240);
    double pf = ours_prefill(lm, threads, ptoks);
    std::printf("%-12s %6d %12.1f %12.1f %6.2fx %14.1f %8.2fx %12.1f\n", b.name.c_str(), b.steps, rc, us, us / rc, batched,
                batched / us, pf);
    std::fflush(stdout);
  }
  if (prefix) {
    // 8 calls, 1000-token prompts sharing the first 900 tokens, on a 15M-shape model with a 1152 context.
    std::string m = (dir / "15m-long.bin").string();
    write_random_llama2c_checkpoint(m, {288, 768, 6, 6, 6, 32000, 1152, true}, 16);
    LoadedModel lm = load_model_and_tokenizer(m, tok32k);
    auto shared_part = random_prompt(900, 32000, 9);
    auto be = backend_for(lm, threads, 256, 1024);
    BatchRunner r(*be, *lm.tokenizer, RunnerOptions{256, 8, true});
    GenerationParams g;
    g.max_tokens = 1;
    g.ignore_eos = true;
    double t0 = now();
    for (int i = 0; i < 8; ++i) {
      auto p = shared_part;
      auto tail = random_prompt(101, 32000, 100 + static_cast<uint64_t>(i));
      p.insert(p.end(), tail.begin() + 1, tail.end());
      r.admit(p, g).value();
      if (i == 0) run_to_completion(r);  // the first call publishes the shared blocks
    }
    run_to_completion(r);
    double secs = now() - t0;
    const auto& t = r.totals();
    std::printf("prefix cache: 8 calls x 1000 prompt tokens (90%% shared): requested %lld, computed %lld, from cache %lld "
                "(%.1f%% of prefill work saved), %.2f s\n",
                static_cast<long long>(t.prompt_tokens), static_cast<long long>(t.computed_prefill_tokens),
                static_cast<long long>(t.cached_tokens),
                100.0 * static_cast<double>(t.cached_tokens) / static_cast<double>(t.prompt_tokens), secs);
  }
  fs::remove_all(dir);
  return 0;
}
