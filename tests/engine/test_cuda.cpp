// The CUDA backend. Unit tests of the CPU oracles (engine/cuda/reference.hpp) and of backend selection run in every
// build; the [gpu] tests compare each kernel with its oracle and the whole model with the CPU backend, and exit
// with code 77 (CTest: skipped) when no device is usable.
#include <catch2/catch.hpp>

#include <algorithm>
#include <cmath>
#include <complex>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <numeric>

#include "common/rng.hpp"
#include "common/status.hpp"
#include "engine/backend.hpp"
#include "engine/batch_runner.hpp"
#include "engine/cuda/emulator.hpp"
#include "engine/cuda/reference.hpp"
#include "engine/cuda/step_plan.hpp"
#include "engine/generate.hpp"
#include "engine/sampler.hpp"
#include "tests/engine/gguf_models.hpp"
#include "tests/engine/tiny_model.hpp"

#ifdef T2S_HAVE_CUDA
#include <cuda_runtime.h>

#include "engine/cuda/cuda_backend.hpp"
#include "engine/cuda/kernels.hpp"
#endif

using namespace t2s::engine;
using t2s::Rng;

namespace {

std::vector<float> random_floats(Rng& rng, size_t n, float lo, float hi) {
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.uniform(lo, hi));
  return v;
}

// max |a - b| / max |b|: the normalised error every bound below is stated in.
double norm_err(const std::vector<float>& a, const std::vector<float>& b) {
  double num = 0, den = 1e-30;
  for (size_t i = 0; i < b.size(); ++i) {
    num = std::max(num, static_cast<double>(std::fabs(a[i] - b[i])));
    den = std::max(den, static_cast<double>(std::fabs(b[i])));
  }
  return num / den;
}

// A paged pool of `blocks` blocks holding `seqs` sequences of the given lengths, K/V written through ref_kv_write
// with block tables drawn as a random permutation (so pages are never contiguous).
struct PagedFixture {
  int kv_dim, blocks;
  std::vector<int> lengths, tables, table_of;  // table_of[s]: offset of sequence s's table in `tables`
  std::vector<float> k_pool, v_pool;
  PagedFixture(Rng& rng, int kv_dim_, std::vector<int> lens) : kv_dim(kv_dim_), lengths(std::move(lens)) {
    blocks = 0;
    for (int L : lengths) blocks += (L + 15) / 16;
    std::vector<int> perm(static_cast<size_t>(blocks));
    std::iota(perm.begin(), perm.end(), 0);
    for (size_t i = perm.size(); i > 1; --i) std::swap(perm[i - 1], perm[static_cast<size_t>(rng.uniform_int(0, static_cast<int64_t>(i) - 1))]);
    k_pool.assign(static_cast<size_t>(blocks) * 16 * static_cast<size_t>(kv_dim), 0);
    v_pool = k_pool;
    size_t next = 0;
    for (int L : lengths) {
      table_of.push_back(static_cast<int>(tables.size()));
      for (int b = 0; b < (L + 15) / 16; ++b) tables.push_back(perm[next++]);
    }
    for (size_t s = 0; s < lengths.size(); ++s) {
      const int L = lengths[s];
      auto k = random_floats(rng, static_cast<size_t>(L) * kv_dim, -1, 1), v = random_floats(rng, static_cast<size_t>(L) * kv_dim, -1, 1);
      std::vector<int> pos(static_cast<size_t>(L)), rt(static_cast<size_t>(L), table_of[s]);
      std::iota(pos.begin(), pos.end(), 0);
      cuda::ref_kv_write(k.data(), v.data(), nullptr, pos.data(), rt.data(), tables.data(), L, kv_dim, k_pool.data(),
                         v_pool.data());
    }
  }
};


// Runs the same steps (one prefill chunk per sequence, then greedy decodes) on a reference backend and a tested one
// (each with ≥ 32 KV blocks) and checks every step's logits within `bound` (normalised) and the greedy tokens equal.
void check_parity(Backend& ref, Backend& test, int vocab, double bound, int prompt_len = 40, int steps = 12) {
  const int V = vocab;
  // Two sequences with different block tables (the second's blocks in reverse order).
  std::vector<int> t0(16), t1(16);
  for (int i = 0; i < 16; ++i) {
    t0[static_cast<size_t>(i)] = i;
    t1[static_cast<size_t>(i)] = 31 - i;
  }
  Rng rng(9);
  std::vector<int> seq0, seq1;
  for (int i = 0; i < prompt_len; ++i) seq0.push_back(static_cast<int>(rng.uniform_int(1, V - 1)));
  for (int i = 0; i < prompt_len / 2; ++i) seq1.push_back(static_cast<int>(rng.uniform_int(1, V - 1)));
  int pos0 = 0, pos1 = 0;
  double worst = 0;
  for (int step = 0; step <= steps; ++step) {
    std::vector<int> tokens, positions, logit_rows;
    std::vector<const int*> tables;
    for (size_t i = static_cast<size_t>(pos0); i < seq0.size(); ++i) {
      tokens.push_back(seq0[i]);
      positions.push_back(static_cast<int>(i));
      tables.push_back(t0.data());
    }
    logit_rows.push_back(static_cast<int>(tokens.size()) - 1);
    for (size_t i = static_cast<size_t>(pos1); i < seq1.size(); ++i) {
      tokens.push_back(seq1[i]);
      positions.push_back(static_cast<int>(i));
      tables.push_back(t1.data());
    }
    logit_rows.push_back(static_cast<int>(tokens.size()) - 1);
    ForwardBatch fb{tokens, positions, tables, logit_rows};
    std::vector<float> la(2 * static_cast<size_t>(V)), lb(la.size());
    ref.forward(fb, la.data());
    test.forward(fb, lb.data());
    INFO("step " << step);
    worst = std::max(worst, norm_err(lb, la));
    CHECK(norm_err(lb, la) <= bound);
    int next[2];
    for (int s = 0; s < 2; ++s) {
      const float* a = la.data() + static_cast<size_t>(s) * V;
      const float* b = lb.data() + static_cast<size_t>(s) * V;
      const int ia = static_cast<int>(std::max_element(a, a + V) - a), ib = static_cast<int>(std::max_element(b, b + V) - b);
      CHECK(ia == ib);
      next[s] = ia;
    }
    pos0 = static_cast<int>(seq0.size());
    pos1 = static_cast<int>(seq1.size());
    seq0.push_back(next[0]);
    seq1.push_back(next[1]);
  }
  UNSCOPED_INFO("worst normalised logit error " << worst);
}

std::unique_ptr<Backend> small_cpu_backend(const std::shared_ptr<Model>& m) {
  CpuBackendOptions co;
  co.max_batch_tokens = 64;
  co.kv_budget_bytes = kv_block_bytes(m->config) * 32;
  return make_cpu_backend(m, co);
}

// The random GGUF models the parity tests use: Llama (Llama-3 rope factors) and Qwen2 (bias, tied, NeoX, θ = 1e6).
struct ParityCase {
  const char* arch;
  DType type;
  double bound;
};
const std::vector<ParityCase> kParityCases = {
    {"llama", DType::F16, 2e-2},  {"llama", DType::BF16, 5e-2}, {"llama", DType::Q8_0, 2e-2},
    {"llama", DType::Q4_0, 2e-2}, {"qwen2", DType::F16, 2e-2},  {"qwen2", DType::BF16, 5e-2},
    {"qwen2", DType::Q8_0, 2e-2}};

std::shared_ptr<Model> parity_model(const t2s::test::TempDir& dir, const ParityCase& k) {
  t2s::test::GgufSpec s;
  s.arch = k.arch;
  s.type = k.type;
  s.dim = 128;
  s.hidden = 256;
  s.heads = 4;
  s.kv_heads = 2;
  s.vocab = 320;
  s.ctx = 256;
  if (s.arch == "qwen2") {
    s.bias = s.tied = true;
    s.theta = 1e6f;
  } else {
    s.rope_freqs = true;
  }
  std::string path = dir.file(std::string(k.arch) + dtype_name(k.type) + ".gguf");
  t2s::test::write_random_gguf(path, s);
  return load_model(path);
}

// Prompts with a 40-token shared prefix for the batch-runner tests.
std::vector<int> prefixed_prompt(int len, int salt) {
  std::vector<int> p{1};
  for (int i = 1; i < len; ++i) p.push_back(3 + (i < 40 ? i * 7 : i * 37 + salt * 11) % 290);
  return p;
}

// Each prompt's greedy tokens run alone on the CPU backend.
std::vector<std::vector<int>> cpu_solo_outputs(const LoadedModel& lm, int n, const GenerationParams& g) {
  std::vector<std::vector<int>> out;
  for (int i = 0; i < n; ++i) {
    CpuBackendOptions co;
    co.max_batch_tokens = 64;
    co.kv_budget_bytes = kv_block_bytes(lm.model->config) * 64;
    auto cpu = make_cpu_backend(lm.model, co);
    BatchRunner r(*cpu, *lm.tokenizer, RunnerOptions{64, 16, false});
    SequenceId id = r.admit(prefixed_prompt(50 + 9 * i, i), g).value();
    run_to_completion(r);
    out.push_back(r.info(id).output);
  }
  return out;
}

// Six prompts through one runner on `backend` (24-token budget: chunked prefill; a pool too small for all: preemption);
// each call's tokens must be its CPU solo tokens. Returns the recomputed positions.
int64_t check_runner(Backend& backend, const LoadedModel& lm, const std::vector<std::vector<int>>& want,
                     const GenerationParams& g) {
  BatchRunner r(backend, *lm.tokenizer, RunnerOptions{24, 16, true});
  std::vector<SequenceId> ids;
  for (int i = 0; i < static_cast<int>(want.size()); ++i) ids.push_back(r.admit(prefixed_prompt(50 + 9 * i, i), g).value());
  run_to_completion(r);
  int64_t recomputed = 0;
  for (size_t i = 0; i < ids.size(); ++i) {
    SequenceInfo info = r.info(ids[i]);
    recomputed += info.recomputed_tokens;
    INFO("call " << i);
    CHECK(info.output == want[i]);
  }
  CHECK(r.totals().cached_tokens > 0);
  return recomputed;
}

}  // namespace

// ----- oracles (every build) --------------------------------------------------------------------------------------

TEST_CASE("rope oracle rotates interleaved and neox pairs by position x frequency, bias first", "[engine][cuda]") {
  ModelConfig c;
  c.head_dim = 8;
  c.rope_theta = 10000.0f;
  std::vector<float> cs, sn;
  cuda::rope_tables(c, {}, 40, cs, sn);
  Rng rng(3);
  const int heads = 2, kv_heads = 1, hd = 8, pos = 37;
  for (bool neox : {false, true}) {
    auto q = random_floats(rng, heads * hd, -1, 1), k = random_floats(rng, kv_heads * hd, -1, 1);
    auto bq = random_floats(rng, heads * hd, -0.5f, 0.5f), bk = random_floats(rng, kv_heads * hd, -0.5f, 0.5f);
    auto q2 = q, k2 = k;
    cuda::ref_rope(q2.data(), k2.data(), bq.data(), bk.data(), &pos, 1, heads, kv_heads, hd, cs.data(), sn.data(), neox);
    for (int h = 0; h < heads; ++h)
      for (int j = 0; j < hd / 2; ++j) {
        const int a = neox ? j : 2 * j, b = neox ? j + hd / 2 : 2 * j + 1;
        const double ang = pos * std::pow(10000.0, -2.0 * j / hd);
        std::complex<double> z(q[h * hd + a] + bq[h * hd + a], q[h * hd + b] + bq[h * hd + b]);
        z *= std::polar(1.0, ang);
        CHECK(q2[h * hd + a] == Approx(z.real()).margin(1e-5));
        CHECK(q2[h * hd + b] == Approx(z.imag()).margin(1e-5));
      }
    std::complex<double> zk(k[0] + bk[0], k[neox ? hd / 2 : 1] + bk[neox ? hd / 2 : 1]);
    zk *= std::polar(1.0, static_cast<double>(pos));
    CHECK(k2[0] == Approx(zk.real()).margin(1e-5));
  }
}

TEST_CASE("paged attention oracle equals dense attention over the same fp16 K/V", "[engine][cuda]") {
  Rng rng(5);
  const int heads = 4, kv_heads = 2, hd = 16, kvd = kv_heads * hd;
  PagedFixture f(rng, kvd, {1, 16, 17, 45});
  for (size_t s = 0; s < f.lengths.size(); ++s) {
    const int L = f.lengths[s], pos = L - 1;
    auto q = random_floats(rng, heads * hd, -1, 1);
    std::vector<float> out(static_cast<size_t>(heads * hd));
    cuda::ref_attention_row(q.data(), pos, f.tables.data() + f.table_of[s], f.k_pool.data(), f.v_pool.data(), heads,
                            kv_heads, hd, out.data(), cuda::Act::F16);
    // Dense: gather the sequence's rows in position order, then softmax(q·k / sqrt(hd)) · v per head.
    for (int h = 0; h < heads; ++h) {
      std::vector<double> w(static_cast<size_t>(L));
      double mx = -1e300, sum = 0;
      auto row = [&](const std::vector<float>& pool, int t) {
        return pool.data() + (static_cast<size_t>(f.tables[static_cast<size_t>(f.table_of[s] + t / 16)]) * 16 + t % 16) * kvd + (h / 2) * hd;
      };
      for (int t = 0; t < L; ++t) {
        double d = 0;
        for (int i = 0; i < hd; ++i) d += q[static_cast<size_t>(h * hd + i)] * row(f.k_pool, t)[i];
        w[static_cast<size_t>(t)] = d / 4.0;
        mx = std::max(mx, w[static_cast<size_t>(t)]);
      }
      for (auto& x : w) sum += (x = std::exp(x - mx));
      for (int i = 0; i < hd; ++i) {
        double o = 0;
        for (int t = 0; t < L; ++t) o += w[static_cast<size_t>(t)] / sum * row(f.v_pool, t)[i];
        CHECK(out[static_cast<size_t>(h * hd + i)] == Approx(o).margin(2e-3));
      }
    }
  }
}

TEST_CASE("sampling with a given draw is the rng sampler, draw for draw", "[engine][cuda]") {
  Rng data(11);
  std::vector<int> scratch;
  for (int trial = 0; trial < 60; ++trial) {
    auto logits = random_floats(data, 97, -4, 4);
    SamplingParams p;
    p.temperature = trial % 4 == 0 ? 0.0f : 0.7f;
    p.top_k = trial % 3 == 0 ? 0 : 5;
    p.top_p = trial % 2 == 0 ? 1.0f : 0.8f;
    Rng a(100 + static_cast<uint64_t>(trial)), b(100 + static_cast<uint64_t>(trial));
    auto l1 = logits, l2 = logits;
    int t1 = sample_token(l1.data(), 97, p, a, scratch);
    double u = p.temperature > 0 ? b.uniform() : 0.0;
    CHECK(t1 == sample_token_with(l2.data(), 97, p, u, scratch));
    CHECK(t1 == cuda::ref_sample(logits.data(), 97, p, u));
    CHECK(a.next_u64() == b.next_u64());  // the same number of draws
  }
}

TEST_CASE("activation rounding is fp16 / bf16 round-to-nearest-even", "[engine][cuda]") {
  CHECK(cuda::round_to_act(1.0f + 1.0f / 4096, cuda::Act::F16) == 1.0f);          // below half an ulp (2^-10)
  CHECK(cuda::round_to_act(1.0f + 3.0f / 2048, cuda::Act::F16) == 1.0f + 1.0f / 512);  // 1.5 ulp → even (2 ulp)
  CHECK(cuda::round_to_act(1.0f + 1.0f / 256, cuda::Act::BF16) == 1.0f);          // half an ulp (2^-7) → even
  CHECK(cuda::round_to_act(3.0f, cuda::Act::BF16) == 3.0f);
  CHECK(cuda::round_to_half(65504.0f) == 65504.0f);
}

TEST_CASE("backend selection: cpu, cuda with a fallback line when no device, unknown kinds refused", "[engine][cuda]") {
  t2s::test::TinyModel tm;
  BackendChoice cpu = make_backend("cpu", tm.lm.model, {}, {});
  CHECK(cpu.backend->name() == "cpu");
  CHECK(cpu.fallback.empty());
  std::string why;
  if (!cuda_device_available(&why)) {
    CHECK(!why.empty());
    BackendChoice c = make_backend("cuda", tm.lm.model, {}, {});
    CHECK(c.backend->name() == "cpu");
    CHECK(c.fallback.find("cuda backend unavailable") != std::string::npos);
    CHECK_THROWS_AS(make_cuda_backend(tm.lm.model, {}), t2s::InputError);
  }
  CHECK_THROWS_AS(make_backend("tpu", tm.lm.model, {}, {}), t2s::InputError);
}

TEST_CASE("step plan: runs of one sequence, decode rows, 16-row tiles, tables copied once, graph eligibility",
          "[engine][cuda]") {
  std::vector<int> ta{7, 3, 9}, tb{5}, tc{0, 1, 2, 4, 6, 8};
  // A: 20 prefill rows at positions 5..24; B: one decode row at 3; C: a decode row at 80; A again (a new run: its
  // positions restart) at 30.
  std::vector<int> tokens, pos;
  std::vector<const int*> tables;
  for (int p = 5; p < 25; ++p) {
    tokens.push_back(p);
    pos.push_back(p);
    tables.push_back(ta.data());
  }
  tokens.push_back(1), pos.push_back(3), tables.push_back(tb.data());
  tokens.push_back(2), pos.push_back(80), tables.push_back(tc.data());
  tokens.push_back(3), pos.push_back(30), tables.push_back(ta.data());
  std::vector<int> logits{19, 20, 21, 22};
  cuda::StepPlan plan;
  cuda::plan_step(ForwardBatch{tokens, pos, tables, logits}, 100, 128, 10, plan);
  CHECK(plan.tiles == std::vector<int>{0, 16, 16, 4});
  CHECK(plan.decode_rows == std::vector<int>{20, 21, 22});
  CHECK(plan.tables == std::vector<int>{7, 3, 5, 0, 1, 2, 4, 6, 8, 7, 3});
  CHECK(plan.row_table[0] == 0);
  CHECK(plan.row_table[19] == 0);
  CHECK(plan.row_table[20] == 2);
  CHECK(plan.row_table[21] == 3);
  CHECK(plan.row_table[22] == 9);
  CHECK(!plan.pure_decode);
  // Pure decode (every row alone, logits for all in order) is what CUDA Graphs replay.
  std::vector<int> dt{1, 2}, dp{3, 80}, dl{0, 1};
  std::vector<const int*> dtab{tb.data(), tc.data()};
  cuda::plan_step(ForwardBatch{dt, dp, dtab, dl}, 100, 128, 10, plan);
  CHECK(plan.pure_decode);
  std::vector<int> dl1{1};
  cuda::plan_step(ForwardBatch{dt, dp, dtab, dl1}, 100, 128, 10, plan);
  CHECK(!plan.pure_decode);
  // Bad input names the problem.
  std::vector<int> bad_tok{100, 2}, bad_pos{3, 128};
  CHECK_THROWS_WITH(cuda::plan_step(ForwardBatch{bad_tok, dp, dtab, dl}, 100, 128, 10, plan), Catch::Contains("token id"));
  CHECK_THROWS_WITH(cuda::plan_step(ForwardBatch{dt, bad_pos, dtab, dl}, 100, 128, 10, plan), Catch::Contains("position"));
  CHECK_THROWS_WITH(cuda::plan_step(ForwardBatch{dt, dp, dtab, dl}, 100, 128, 5, plan), Catch::Contains("block id"));
}

TEST_CASE("device emulator (the CUDA numerics on the CPU) matches the CPU backend within the [gpu] bounds",
          "[engine][cuda]") {
  t2s::test::TempDir dir("cuda-emulator");
  for (const ParityCase& k : kParityCases) {
    INFO(k.arch << " " << dtype_name(k.type));
    auto model = parity_model(dir, k);
    auto cpu = small_cpu_backend(model);
    auto emu = cuda::make_device_emulator(model, 32, 64);
    check_parity(*cpu, *emu, model->config.vocab_size, k.bound);
  }
}

TEST_CASE("device emulator matches the CPU backend on stories260K", "[engine][cuda][shared]") {
  auto model = load_model(t2s::test::shared_data("llama2c/stories260K.bin"));
  auto cpu = small_cpu_backend(model);
  auto emu = cuda::make_device_emulator(model, 32, 64);
  check_parity(*cpu, *emu, model->config.vocab_size, 2e-2, 40, 20);
}

TEST_CASE("device emulator under the batch runner gives the CPU's greedy tokens (shared prefix, chunked prefill, "
          "preemption/recompute)", "[engine][cuda]") {
  t2s::test::TinyModel tm;
  GenerationParams g;
  g.max_tokens = 24;
  g.ignore_eos = true;
  const auto want = cpu_solo_outputs(tm.lm, 6, g);
  auto emu = cuda::make_device_emulator(tm.lm.model, 20, 24);
  CHECK(check_runner(*emu, tm.lm, want, g) > 0);
}

// ----- device ------------------------------------------------------------------------------------------------------
#ifdef T2S_HAVE_CUDA
namespace {

void require_device() {
  std::string why;
  if (!cuda_device_available(&why)) {
    std::printf("SKIPPED [gpu] tests: %s\n", why.c_str());
    std::fflush(stdout);
    std::_Exit(77);
  }
}

void ok(cudaError_t e) {
  if (e != cudaSuccess) FAIL(cudaGetErrorString(e));
}

// A device copy of a host vector, freed at scope end.
template <typename T>
struct Dev {
  T* p = nullptr;
  size_t n = 0;
  explicit Dev(size_t count) : n(count) {
    ok(cudaMalloc(&p, std::max<size_t>(1, n) * sizeof(T)));
    ok(cudaMemset(p, 0, std::max<size_t>(1, n) * sizeof(T)));
  }
  explicit Dev(const std::vector<T>& v) : Dev(v.size()) { ok(cudaMemcpy(p, v.data(), n * sizeof(T), cudaMemcpyHostToDevice)); }
  ~Dev() { cudaFree(p); }
  Dev(const Dev&) = delete;
  Dev& operator=(const Dev&) = delete;
  std::vector<T> get() const {
    ok(cudaDeviceSynchronize());
    std::vector<T> v(n);
    ok(cudaMemcpy(v.data(), p, n * sizeof(T), cudaMemcpyDeviceToHost));
    return v;
  }
};

// Device activations (fp16/bf16 bits) → floats.
std::vector<float> act_to_float(const std::vector<uint16_t>& bits, cuda::Act act) {
  std::vector<float> f(bits.size());
  for (size_t i = 0; i < bits.size(); ++i) f[i] = act == cuda::Act::BF16 ? bf16_to_fp32(bits[i]) : fp16_to_fp32(bits[i]);
  return f;
}

std::vector<uint16_t> to_half_bits(const std::vector<float>& f) {
  std::vector<uint16_t> h(f.size());
  for (size_t i = 0; i < f.size(); ++i) h[i] = fp32_to_fp16(f[i]);
  return h;
}

// Quantised / converted bytes of a random [rows][cols] matrix in `t`.
std::vector<uint8_t> make_matrix(Rng& rng, DType t, int64_t rows, int64_t cols) {
  auto f = random_floats(rng, static_cast<size_t>(rows * cols), -1, 1);
  std::vector<uint8_t> bytes(dtype_row_bytes(t, cols) * static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    uint8_t* dst = bytes.data() + static_cast<size_t>(r) * dtype_row_bytes(t, cols);
    const float* src = f.data() + r * cols;
    if (t == DType::Q8_0) quantize_row_q8_0(src, dst, cols);
    else if (t == DType::Q4_0) quantize_row_q4_0(src, dst, cols);
    else
      for (int64_t c = 0; c < cols; ++c) {
        if (t == DType::F32) std::memcpy(dst + 4 * c, src + c, 4);
        uint16_t h = t == DType::F16 ? fp32_to_fp16(src[c]) : fp32_to_bf16(src[c]);
        if (t != DType::F32) std::memcpy(dst + 2 * c, &h, 2);
      }
  }
  return bytes;
}

}  // namespace

TEST_CASE("gpu: embedding gather and dequantisation decode every weight type exactly as the host", "[gpu][.]") {
  require_device();
  Rng rng(21);
  const int64_t rows = 24, cols = 96;
  for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
    INFO(dtype_name(t));
    auto bytes = make_matrix(rng, t, rows, cols);
    Dev<uint8_t> dw(bytes);
    TensorView view{t, bytes.data(), rows, cols};
    cuda::DevMatrix dm{t, dw.p, rows, cols};
    std::vector<int> tokens{3, 0, 23, 3, 11};
    Dev<int> dt(tokens);
    Dev<float> dx(tokens.size() * cols);
    cuda::embedding(dm, dt.p, static_cast<int>(tokens.size()), dx.p, nullptr);
    std::vector<float> want(tokens.size() * cols);
    cuda::ref_embedding(view, tokens.data(), static_cast<int>(tokens.size()), want.data());
    CHECK(dx.get() == want);
    for (cuda::Act act : {cuda::Act::F16, cuda::Act::BF16}) {
      Dev<uint16_t> out(static_cast<size_t>(rows * cols));
      cuda::dequantize(dm, out.p, act, nullptr);
      std::vector<float> ref(static_cast<size_t>(rows * cols));
      cuda::ref_dequantize(view, ref.data(), act);
      CHECK(act_to_float(out.get(), act) == ref);
    }
  }
}

TEST_CASE("gpu: rmsnorm, rope (both layouts, bias), swiglu and kv_write match their oracles", "[gpu][.]") {
  require_device();
  Rng rng(22);
  const int rows = 7, dim = 160, heads = 4, kv_heads = 2, hd = 40;
  auto x = random_floats(rng, rows * dim, -2, 2), w = random_floats(rng, dim, 0.5f, 1.5f);
  std::vector<int> idx{6, 0, 3};
  Dev<float> dx(x), dw(w);
  Dev<int> didx(idx);
  for (cuda::Act act : {cuda::Act::F16, cuda::Act::BF16}) {
    Dev<uint16_t> out(idx.size() * dim);
    cuda::rmsnorm(dx.p, didx.p, 3, dw.p, dim, 1e-5f, out.p, act, nullptr);
    std::vector<float> ref(idx.size() * dim);
    cuda::ref_rmsnorm(x.data(), idx.data(), 3, w.data(), dim, 1e-5f, ref.data(), act);
    CHECK(norm_err(act_to_float(out.get(), act), ref) <= (act == cuda::Act::F16 ? 2e-3 : 1.6e-2));
  }
  ModelConfig c;
  c.head_dim = hd;
  c.rope_theta = 1e6f;
  std::vector<float> cs, sn;
  cuda::rope_tables(c, {}, 300, cs, sn);
  std::vector<int> pos{0, 1, 17, 100, 255, 299, 5};
  Dev<float> dcs(cs), dsn(sn);
  Dev<int> dpos(pos);
  for (bool neox : {false, true}) {
    auto q = random_floats(rng, rows * heads * hd, -1, 1), k = random_floats(rng, rows * kv_heads * hd, -1, 1);
    auto bq = random_floats(rng, heads * hd, -1, 1), bk = random_floats(rng, kv_heads * hd, -1, 1);
    Dev<float> dq(q), dk(k), dbq(bq), dbk(bk);
    cuda::rope(dq.p, dk.p, dbq.p, dbk.p, dpos.p, rows, heads, kv_heads, hd, dcs.p, dsn.p, neox, nullptr);
    cuda::ref_rope(q.data(), k.data(), bq.data(), bk.data(), pos.data(), rows, heads, kv_heads, hd, cs.data(), sn.data(), neox);
    CHECK(norm_err(dq.get(), q) <= 1e-6);
    CHECK(norm_err(dk.get(), k) <= 1e-6);
  }
  auto g = random_floats(rng, 999, -6, 6), u = random_floats(rng, 999, -2, 2);
  Dev<float> dg(g), du(u);
  for (cuda::Act act : {cuda::Act::F16, cuda::Act::BF16}) {
    Dev<uint16_t> out(999);
    cuda::swiglu(dg.p, du.p, 999, out.p, act, nullptr);
    std::vector<float> ref(999);
    cuda::ref_swiglu(g.data(), u.data(), 999, ref.data(), act);
    CHECK(norm_err(act_to_float(out.get(), act), ref) <= (act == cuda::Act::F16 ? 1e-3 : 8e-3));
  }
  // kv_write: two sequences sharing nothing, rows scattered over a permuted pool; pools compared bit for bit.
  const int kvd = kv_heads * hd, blocks = 6;
  std::vector<int> tables{4, 1, 5, 0, 2, 3}, row_table{0, 0, 0, 3, 3, 3, 3}, wpos{14, 15, 16, 0, 1, 2, 33};
  auto k = random_floats(rng, rows * kvd, -3, 3), v = random_floats(rng, rows * kvd, -3, 3), bv = random_floats(rng, kvd, -1, 1);
  std::vector<float> kp(blocks * 16 * kvd, 0), vp(kp.size(), 0);
  cuda::ref_kv_write(k.data(), v.data(), bv.data(), wpos.data(), row_table.data(), tables.data(), rows, kvd, kp.data(), vp.data());
  Dev<float> dkk(k), dvv(v), dbv(bv);
  Dev<int> dtab(tables), drt(row_table), dwp(wpos);
  Dev<uint16_t> dkp(kp.size()), dvp(vp.size());
  cuda::kv_write(dkk.p, dvv.p, dbv.p, dwp.p, drt.p, dtab.p, rows, kvd, dkp.p, dvp.p, nullptr);
  CHECK(act_to_float(dkp.get(), cuda::Act::F16) == kp);
  CHECK(act_to_float(dvp.get(), cuda::Act::F16) == vp);
}

TEST_CASE("gpu: decode and tiled prefill attention over permuted pages match the oracle (GQA, ragged lengths)", "[gpu][.]") {
  require_device();
  Rng rng(23);
  for (int hd : {8, 64, 128}) {
    INFO("head_dim " << hd);
    const int heads = 8, kv_heads = 2, kvd = kv_heads * hd;
    PagedFixture f(rng, kvd, {1, 15, 16, 33, 70});
    Dev<uint16_t> dk(to_half_bits(f.k_pool)), dv(to_half_bits(f.v_pool));
    Dev<int> dtab(f.tables);
    // Rows: for each sequence its last 1..20 positions (prefill chunk) or just the last (decode).
    std::vector<int> pos, row_table, decode_rows;
    std::vector<int2> tiles;
    for (size_t s = 0; s < f.lengths.size(); ++s) {
      const int L = f.lengths[s];
      const int n = s % 2 == 0 ? 1 : std::min(L, 20);
      const int first = static_cast<int>(pos.size());
      for (int p = L - n; p < L; ++p) {
        pos.push_back(p);
        row_table.push_back(f.table_of[s]);
      }
      if (n == 1) decode_rows.push_back(first);
      else
        for (int t = first; t < first + n; t += 16) tiles.push_back(int2{t, std::min(16, first + n - t)});
    }
    const int R = static_cast<int>(pos.size());
    auto q = random_floats(rng, static_cast<size_t>(R) * heads * hd, -1.5f, 1.5f);
    Dev<float> dq(q);
    Dev<int> dpos(pos), drt(row_table), ddec(decode_rows);
    Dev<int2> dtiles(tiles);
    for (cuda::Act act : {cuda::Act::F16, cuda::Act::BF16}) {
      Dev<uint16_t> out(static_cast<size_t>(R) * heads * hd);
      const cuda::AttnShape shape{heads, kv_heads, hd};
      cuda::paged_attention(dq.p, ddec.p, static_cast<int>(decode_rows.size()), dpos.p, drt.p, dtab.p, dk.p, dv.p, shape, out.p, act, nullptr);
      cuda::prefill_attention(dq.p, dtiles.p, static_cast<int>(tiles.size()), dpos.p, drt.p, dtab.p, dk.p, dv.p, shape, out.p, act, nullptr);
      auto got = act_to_float(out.get(), act);
      std::vector<float> want(got.size());
      for (int r = 0; r < R; ++r)
        cuda::ref_attention_row(q.data() + static_cast<size_t>(r) * heads * hd, pos[static_cast<size_t>(r)],
                                f.tables.data() + row_table[static_cast<size_t>(r)], f.k_pool.data(), f.v_pool.data(),
                                heads, kv_heads, hd, want.data() + static_cast<size_t>(r) * heads * hd, act);
      CHECK(norm_err(got, want) <= (act == cuda::Act::F16 ? 2e-3 : 1.6e-2));
    }
  }
}

TEST_CASE("gpu: sampling picks the oracle's token (greedy exactly; sampled except at a CDF boundary)", "[gpu][.]") {
  require_device();
  Rng rng(24);
  const int rows = 64, vocab = 3001;
  auto logits = random_floats(rng, static_cast<size_t>(rows) * vocab, -6, 6);
  std::vector<cuda::DevSampleRow> params(rows);
  for (int r = 0; r < rows; ++r) {
    auto& p = params[static_cast<size_t>(r)];
    p.temperature = r % 4 == 0 ? 0.0f : 0.5f + 0.1f * static_cast<float>(r % 7);
    p.top_k = r % 3 == 0 ? 0 : 1 + r % 50;
    p.top_p = r % 5 == 0 ? 1.0f : 0.5f + 0.05f * static_cast<float>(r % 9);
    p.uniform = rng.uniform();
  }
  Dev<float> dl(logits), probs(logits.size());
  Dev<int> order(logits.size()), tokens(rows);
  Dev<cuda::DevSampleRow> dp(params);
  cuda::sample(dl.p, rows, vocab, dp.p, probs.p, order.p, tokens.p, nullptr);
  auto got = tokens.get();
  for (int r = 0; r < rows; ++r) {
    const auto& p = params[static_cast<size_t>(r)];
    const float* lg = logits.data() + static_cast<size_t>(r) * vocab;
    SamplingParams sp{p.temperature, p.top_k, p.top_p};
    const int want = cuda::ref_sample(lg, vocab, sp, p.uniform);
    if (got[static_cast<size_t>(r)] == want) continue;
    // Float sums in another order may move a CDF boundary by an ulp: only then may the pick differ.
    const bool boundary = cuda::ref_sample(lg, vocab, sp, p.uniform - 1e-6) != cuda::ref_sample(lg, vocab, sp, p.uniform + 1e-6);
    INFO("row " << r << " temperature " << p.temperature << " top_k " << p.top_k << " top_p " << p.top_p);
    CHECK((p.temperature > 0 && boundary));
  }
}

namespace {

std::unique_ptr<Backend> small_cuda_backend(const std::shared_ptr<Model>& m) {
  CudaBackendOptions go;
  go.max_batch_tokens = 64;
  go.kv_budget_bytes = cuda_kv_block_bytes(m->config) * 32;
  return make_cuda_backend(m, go);
}

}  // namespace

TEST_CASE("gpu: random Llama and Qwen2 models (F16, BF16, Q8_0, Q4_0) match the CPU backend", "[gpu][.]") {
  require_device();
  t2s::test::TempDir dir("cuda-parity");
  for (const ParityCase& k : kParityCases) {
    INFO(k.arch << " " << dtype_name(k.type));
    auto model = parity_model(dir, k);
    auto cpu = small_cpu_backend(model);
    auto gpu = small_cuda_backend(model);
    check_parity(*cpu, *gpu, model->config.vocab_size, k.bound);
  }
}

TEST_CASE("gpu: stories260K and the bundled model match the CPU backend", "[gpu][.]") {
  require_device();
  const std::string stories = t2s::test::shared_data("llama2c/stories260K.bin");
  if (std::ifstream(stories).good()) {
    auto model = load_model(stories);
    auto cpu = small_cpu_backend(model);
    auto gpu = small_cuda_backend(model);
    check_parity(*cpu, *gpu, model->config.vocab_size, 2e-2, 40, 20);
  } else {
    WARN("stories260K not found under " << t2s::test::shared_dir() << " (set T2S_SHARED_DIR): not compared");
  }
  if (const char* bundled = std::getenv("T2S_BUNDLED_MODEL"); bundled && *bundled) {
    auto model = load_model(bundled);
    auto cpu = small_cpu_backend(model);
    auto gpu = small_cuda_backend(model);
    check_parity(*cpu, *gpu, model->config.vocab_size, 5e-2, 40, 20);
  } else {
    WARN("T2S_BUNDLED_MODEL not set: the bundled model is not compared");
  }
}

TEST_CASE("gpu: the batch runner on CUDA gives the CPU's greedy tokens with shared prefixes, chunked prefill and "
          "preemption/recompute, with and without CUDA Graphs", "[gpu][.]") {
  require_device();
  t2s::test::TinyModel tm;
  GenerationParams g;
  g.max_tokens = 24;
  g.ignore_eos = true;
  const auto want = cpu_solo_outputs(tm.lm, 6, g);
  for (bool graphs : {true, false}) {
    INFO("cuda graphs " << graphs);
    CudaBackendOptions go;
    go.max_batch_tokens = 24;
    go.cuda_graphs = graphs;
    go.kv_budget_bytes = cuda_kv_block_bytes(tm.lm.model->config) * 20;
    auto gpu = make_cuda_backend(tm.lm.model, go);
    CHECK(check_runner(*gpu, tm.lm, want, g) > 0);
    if (graphs) CHECK(dynamic_cast<cuda::CudaBackend&>(*gpu).graphs_captured() > 0);
  }
}
#endif
