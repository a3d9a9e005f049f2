// Training-engine benchmark: tokens/s and achieved GFLOP/s of full training steps (forward, backward, AdamW) for a
// ~4M-parameter Llama config at seq_len 512, and the blocked AVX-512 GEMM against a plain i-j-k triple loop measured
// in the same process on a smaller slice of the same shape. Wall and CPU-time figures are both printed: the build
// machine is shared, and CPU seconds show what the code costs when the cores are not.
#include <CLI/CLI.hpp>

#include <chrono>
#include <sys/resource.h>
#include <cstdio>
#include <vector>

#include "common/rng.hpp"
#include "engine/train/gemm.hpp"
#include "engine/train/train.hpp"

using namespace t2s;
using namespace t2s::engine;
using namespace t2s::engine::train;

namespace {

double now() { return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count(); }

// CPU seconds of this process (all threads): on a shared, oversubscribed machine wall time overstates the cost.
double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return double(u.ru_utime.tv_sec) + double(u.ru_utime.tv_usec) * 1e-6 + double(u.ru_stime.tv_sec) + double(u.ru_stime.tv_usec) * 1e-6;
}

// Model FLOPs of one step: 6·n·in·out per linear matrix (forward 2, backward 4), the classifier on target rows only,
// and attention over the allowed (causal, same-sequence) pairs: 4·hd per pair forward, 8·hd backward.
double step_flops(const ModelConfig& c, int64_t tokens, int64_t targets, int64_t attn_pairs) {
  const double per_layer = double(c.dim) * c.q_dim() * 2 + double(c.dim) * c.kv_dim() * 2 + 3.0 * c.dim * c.hidden_dim;
  return 6.0 * tokens * per_layer * c.n_layers + 6.0 * targets * c.dim * c.vocab_size +
         12.0 * attn_pairs * c.head_dim * c.n_heads * c.n_layers;
}

// The textbook i-j-k triple loop: the naive peer the blocked kernel is measured against.
void naive_gemm(int64_t M, int64_t N, int64_t K, const float* A, const float* B, float* C) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      float c = 0.0f;
      for (int64_t k = 0; k < K; ++k) c += A[i * K + k] * B[k * N + j];
      C[i * N + j] = c;
    }
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"t2s training benchmark"};
  int threads = 2, steps = 3, batch = 8, seq = 512, dim = 256, layers = 4, hidden = 704, vocab = 4096;
  app.add_option("--threads", threads, "threads");
  app.add_option("--steps", steps, "timed steps (after one warm-up step)");
  app.add_option("--batch", batch, "rows per step");
  app.add_option("--seq-len", seq, "tokens per row");
  app.add_option("--dim", dim, "model width");
  app.add_option("--layers", layers, "decoder blocks");
  app.add_option("--hidden", hidden, "SwiGLU width");
  app.add_option("--vocab", vocab, "vocabulary size");
  CLI11_PARSE(app, argc, argv);

  // GEMM: the FFN up-projection shape of one step, [batch·seq][dim] · [dim][hidden].
  {
    Rng rng(1);
    const int64_t M = int64_t{batch} * seq, N = hidden, K = dim, m_naive = 96;
    std::vector<float> A(static_cast<size_t>(M * K)), B(static_cast<size_t>(K * N)), C(static_cast<size_t>(M * N));
    for (auto& x : A) x = static_cast<float>(rng.uniform(-1, 1));
    for (auto& x : B) x = static_cast<float>(rng.uniform(-1, 1));
    cpu::ThreadPool pool(threads);
    gemm(&pool, M, N, K, A.data(), K, B.data(), N, C.data(), N, false);
    double t0 = now(), c0 = cpu_seconds();
    int reps = 0;
    while (now() - t0 < 1.0 || reps < 3) gemm(&pool, M, N, K, A.data(), K, B.data(), N, C.data(), N, false), ++reps;
    const double fast = 2.0 * M * N * K * reps / (now() - t0) / 1e9, fast_cpu = 2.0 * M * N * K * reps / (cpu_seconds() - c0) / 1e9;
    t0 = now(), c0 = cpu_seconds();
    reps = 0;
    while (now() - t0 < 1.0 || reps < 2) naive_gemm(m_naive, N, K, A.data(), B.data(), C.data()), ++reps;
    const double naive = 2.0 * m_naive * N * K * reps / (now() - t0) / 1e9, naive_cpu = 2.0 * m_naive * N * K * reps / (cpu_seconds() - c0) / 1e9;
    std::printf("gemm %lldx%lldx%lld: blocked AVX-512 %.1f GFLOP/s wall on %d threads (%.1f per CPU-second); naive loop "
                "%.2f GFLOP/s on 1 thread (%.2f per CPU-second, %lld-row slice); ratio per CPU-second %.1fx\n",
                static_cast<long long>(M), static_cast<long long>(N), static_cast<long long>(K), fast, threads, fast_cpu,
                naive, naive_cpu, static_cast<long long>(m_naive), fast_cpu / naive_cpu);
  }

  TrainOptions o;
  o.model.dim = dim, o.model.hidden_dim = hidden, o.model.n_layers = layers, o.model.n_heads = dim / 32;
  o.model.n_kv_heads = dim / 64, o.model.head_dim = 32, o.model.vocab_size = vocab, o.model.max_seq_len = seq;
  o.seq_len = seq, o.batch = batch, o.steps = steps + 1, o.threads = threads, o.progress = false;
  // Synthetic corpus shaped like prompt + answer pairs: 120–500 tokens, the last quarter is the answer.
  Rng rng(7);
  std::vector<TokenSequence> data(400);
  for (auto& s : data) {
    const auto n = static_cast<size_t>(rng.uniform_int(120, 500));
    for (size_t i = 0; i < n; ++i) {
      s.tokens.push_back(static_cast<int>(rng.uniform_int(0, vocab - 1)));
      s.target.push_back(i >= n * 3 / 4);
    }
  }
  Trainer tr(o, data);
  const Weights& w = tr.weights();
  std::printf("model: dim %d, %d layers, %d heads (%d kv), hidden %d, vocab %d: %.2fM parameters; batch %d x %d tokens\n",
              dim, layers, o.model.n_heads, o.model.n_kv_heads, hidden, vocab, static_cast<double>(w.data.size()) / 1e6,
              batch, seq);
  tr.step();  // warm-up: allocations, page faults
  double secs = 0, flops = 0, cpu = 0;
  int64_t tokens = 0;
  for (int i = 0; i < steps; ++i) {
    const double t0 = now(), c0 = cpu_seconds();
    StepStats st = tr.step();
    secs += now() - t0;
    cpu += cpu_seconds() - c0;
    tokens += st.tokens;
    // Attention pairs: packed sequences of ~uniform length; estimated from the data's mean square length.
    double pairs = 0;
    for (const auto& s : data) pairs += 0.5 * double(s.tokens.size()) * double(s.tokens.size() + 1);
    pairs *= static_cast<double>(st.tokens) / [&] { double t = 0; for (const auto& s : data) t += double(s.tokens.size()); return t; }();
    flops += step_flops(o.model, st.tokens, st.targets, static_cast<int64_t>(pairs));
    std::printf("step %lld: loss %.4f, %lld tokens, %.2f s\n", static_cast<long long>(st.step), st.loss,
                static_cast<long long>(st.tokens), now() - t0);
  }
  std::printf("training: %.0f tokens/s wall, %.1f GFLOP/s achieved (model FLOPs) on %d threads; per CPU-second: "
              "%.0f tokens, %.1f GFLOP (wall/CPU = %.2f; 1/threads when the cores are ours alone)\n",
              tokens / secs, flops / secs / 1e9, threads, tokens / cpu, flops / cpu / 1e9, secs / cpu);
  std::printf("60-minute budget at this rate: %.1fM tokens\n", tokens / secs * 3600 / 1e6);
  return 0;
}
