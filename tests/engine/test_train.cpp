// The CPU training engine: GEMM against its reference, every op's backward against finite differences, the whole
// model's gradient, overfitting, determinism, resume, and GGUF export through the engine's own loader and backend.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <functional>

#include "common/rng.hpp"
#include "engine/backend.hpp"
#include "engine/generate.hpp"
#include "engine/train/decoder.hpp"
#include "engine/train/gemm.hpp"
#include "engine/train/ops.hpp"
#include "engine/train/train.hpp"
#include "tests/support.hpp"

using namespace t2s;
using namespace t2s::engine;
using namespace t2s::engine::train;

namespace {

std::vector<float> random_vec(size_t n, Rng& rng, double lo = -1.0, double hi = 1.0) {
  std::vector<float> v(n);
  for (auto& x : v) x = static_cast<float>(rng.uniform(lo, hi));
  return v;
}

double dot(const std::vector<float>& a, const std::vector<float>& b) {
  double s = 0;
  for (size_t i = 0; i < a.size(); ++i) s += static_cast<double>(a[i]) * b[i];
  return s;
}

// ‖numeric − analytic‖ / max(‖numeric‖, ‖analytic‖), where numeric is the central difference of `loss` in every
// `stride`-th element of `x` (restored afterwards).
double fd_error(std::vector<float>& x, const std::vector<float>& analytic, const std::function<double()>& loss,
                float eps = 1e-2f, size_t stride = 1) {
  double diff = 0, na = 0, nn = 0;
  for (size_t i = 0; i < x.size(); i += stride) {
    const float keep = x[i];
    x[i] = keep + eps;
    const double up = loss();
    x[i] = keep - eps;
    const double down = loss();
    x[i] = keep;
    const double num = (up - down) / (2.0 * static_cast<double>(eps));
    diff += (num - analytic[i]) * (num - analytic[i]);
    na += static_cast<double>(analytic[i]) * analytic[i];
    nn += num * num;
  }
  REQUIRE(std::max(na, nn) > 0);
  return std::sqrt(diff / std::max(na, nn));
}

ModelConfig tiny_config(int vocab, int ctx) {
  ModelConfig c;
  c.dim = 32, c.hidden_dim = 64, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 8;
  c.vocab_size = vocab, c.max_seq_len = ctx;
  return c;
}

}  // namespace

// {150, 97, 520} takes the packed-B path (≥ 48 rows per thread, ≥ 64 columns, three k blocks) on 1–3 threads.
TEST_CASE("gemm equals the fma-chain reference bit for bit at any shape and thread count", "[train]") {
  Rng rng(3);
  cpu::ThreadPool one(1), two(2), three(3);
  for (auto [M, N, K] : {std::tuple{1, 1, 1}, {13, 33, 7}, {40, 70, 300}, {25, 16, 513}, {12, 32, 256}, {150, 97, 520}}) {
    for (bool acc : {false, true}) {
      const int64_t lda = K + 3, ldb = N + 5, ldc = N + 1;
      auto A = random_vec(static_cast<size_t>(M * lda), rng), B = random_vec(static_cast<size_t>(K * ldb), rng);
      auto init = random_vec(static_cast<size_t>(M * ldc), rng);
      auto ref = init;
      gemm_reference(M, N, K, A.data(), lda, B.data(), ldb, ref.data(), ldc, acc);
      for (cpu::ThreadPool* p : {static_cast<cpu::ThreadPool*>(nullptr), &one, &two, &three}) {
        auto c = init;
        gemm(p, M, N, K, A.data(), lda, B.data(), ldb, c.data(), ldc, acc);
        CHECK(std::memcmp(c.data(), ref.data(), c.size() * sizeof(float)) == 0);
      }
      // gemm_tn reads A transposed: store Aᵀ [K][M] and expect the same bits.
      std::vector<float> At(static_cast<size_t>(K * (M + 2)));
      transpose(A.data(), M, K, lda, At.data(), M + 2);
      for (cpu::ThreadPool* p : {static_cast<cpu::ThreadPool*>(nullptr), &two, &three}) {
        auto c = init;
        gemm_tn(p, M, N, K, At.data(), M + 2, B.data(), ldb, c.data(), ldc, acc);
        CHECK(std::memcmp(c.data(), ref.data(), c.size() * sizeof(float)) == 0);
      }
    }
  }
}

TEST_CASE("rmsnorm backward matches finite differences", "[train][grad]") {
  Rng rng(1);
  cpu::ThreadPool pool(2);
  const int64_t rows = 3, n = 10;
  auto x = random_vec(rows * n, rng), w = random_vec(n, rng, 0.5, 1.5), r = random_vec(rows * n, rng);
  std::vector<float> y(x.size()), rstd(rows), dx(x.size(), 0.0f), dw(n, 0.0f);
  auto loss = [&] {
    ops::rmsnorm_forward(pool, y.data(), rstd.data(), x.data(), w.data(), rows, n, 1e-5f);
    return dot(y, r);
  };
  loss();
  ops::rmsnorm_backward(pool, dx.data(), dw.data(), r.data(), x.data(), w.data(), rstd.data(), rows, n);
  CHECK(fd_error(x, dx, loss) < 1e-3);
  CHECK(fd_error(w, dw, loss) < 1e-3);
}

TEST_CASE("linear backward matches finite differences", "[train][grad]") {
  Rng rng(2);
  cpu::ThreadPool pool(2);
  const int64_t rows = 30, in = 7, out = 37;  // rows beyond one 12-row block, a ragged 32-column panel
  auto x = random_vec(rows * in, rng), w = random_vec(out * in, rng), r = random_vec(rows * out, rng);
  std::vector<float> y(rows * out), dx(x.size()), dw(w.size(), 0.0f), scratch;
  auto loss = [&] {
    ops::linear_forward(pool, y.data(), x.data(), w.data(), rows, in, out, scratch);
    return dot(y, r);
  };
  loss();
  ops::linear_backward(pool, dx.data(), false, dw.data(), r.data(), x.data(), w.data(), rows, in, out);
  CHECK(fd_error(x, dx, loss) < 1e-3);
  CHECK(fd_error(w, dw, loss) < 1e-3);
}

TEST_CASE("rope backward matches finite differences and forward matches the engine's pairing", "[train][grad]") {
  Rng rng(3);
  cpu::ThreadPool pool(2);
  const int rows = 4, heads = 3, hd = 6;
  std::vector<float> cs, sn;
  ops::rope_table(16, hd, 10000.0f, cs, sn);
  const std::vector<int> pos = {0, 5, 2, 15};
  auto x = random_vec(rows * heads * hd, rng), r = random_vec(x.size(), rng);
  auto loss = [&] {
    auto y = x;
    ops::rope_forward(pool, y.data(), rows, heads, hd, pos.data(), cs.data(), sn.data());
    return dot(y, r);
  };
  auto dx = r;
  ops::rope_backward(pool, dx.data(), rows, heads, hd, pos.data(), cs.data(), sn.data());
  CHECK(fd_error(x, dx, loss) < 1e-3);
  // Pair (2j, 2j+1) of head 1 at position 5 rotates by 5·θ^(−2j/hd) (the engine's GGUF "llama" convention).
  auto y = x;
  ops::rope_forward(pool, y.data(), rows, heads, hd, pos.data(), cs.data(), sn.data());
  const int j = 1;
  const double a = 5.0 * std::pow(10000.0, -2.0 * j / hd);
  const float* x0 = x.data() + (1 * heads + 1) * hd;
  const float* y0 = y.data() + (1 * heads + 1) * hd;
  CHECK(y0[2 * j] == Approx(x0[2 * j] * std::cos(a) - x0[2 * j + 1] * std::sin(a)).margin(1e-6));
  CHECK(y0[2 * j + 1] == Approx(x0[2 * j] * std::sin(a) + x0[2 * j + 1] * std::cos(a)).margin(1e-6));
}

TEST_CASE("packed GQA attention: backward matches finite differences, forward matches a direct softmax", "[train][grad]") {
  Rng rng(4);
  cpu::ThreadPool pool(2);
  const int B = 2, T = 70, H = 4, KV = 2, hd = 4;  // T > 64 exercises two row blocks
  std::vector<int> seg(B * T);
  for (int t = 0; t < T; ++t) {
    seg[t] = t < 30 ? 0 : (t < 67 ? 30 : 67);  // row 0: three packed sequences
    seg[T + t] = 0;                            // row 1: one sequence
  }
  const ops::AttentionShape s{B, T, H, KV, hd, seg.data()};
  auto q = random_vec(B * T * H * hd, rng, -2, 2), k = random_vec(B * T * KV * hd, rng, -2, 2),
       v = random_vec(B * T * KV * hd, rng), r = random_vec(q.size(), rng);
  std::vector<float> out(q.size()), lse(B * H * T), dq(q.size()), dk(k.size()), dv(v.size()), scratch;
  auto loss = [&] {
    ops::attention_forward(pool, s, out.data(), lse.data(), q.data(), k.data(), v.data(), scratch);
    return dot(out, r);
  };
  loss();
  ops::attention_backward(pool, s, dq.data(), dk.data(), dv.data(), r.data(), q.data(), k.data(), v.data(), out.data(),
                          lse.data(), scratch);
  CHECK(fd_error(q, dq, loss, 1e-2f, 5) < 2e-3);
  CHECK(fd_error(k, dk, loss, 1e-2f, 3) < 2e-3);
  CHECK(fd_error(v, dv, loss, 1e-2f, 3) < 2e-3);
  // Direct evaluation of one output element: row 0, t = 40 (second sequence), head 3 (kv head 1).
  const int t = 40, h = 3, g = 1;
  std::vector<double> sc;
  double mx = -1e30;
  for (int u = 30; u <= t; ++u) {
    double d = 0;
    for (int i = 0; i < hd; ++i) d += q[(t * H + h) * hd + i] * k[(u * KV + g) * hd + i];
    sc.push_back(d / 2.0);
    mx = std::max(mx, sc.back());
  }
  double sum = 0, o = 0;
  for (double& x : sc) sum += (x = std::exp(x - mx));
  for (int u = 30; u <= t; ++u) o += sc[static_cast<size_t>(u - 30)] / sum * v[(u * KV + g) * hd + 2];
  CHECK(out[(t * H + h) * hd + 2] == Approx(o).margin(1e-5));
}

TEST_CASE("swiglu, cross-entropy and embedding backward match finite differences", "[train][grad]") {
  Rng rng(5);
  cpu::ThreadPool pool(2);
  auto g = random_vec(50, rng, -3, 3), u = random_vec(50, rng), r = random_vec(50, rng);
  std::vector<float> y(50), dg(50), du(50);
  auto sw = [&] {
    ops::swiglu_forward(pool, y.data(), g.data(), u.data(), 50);
    return dot(y, r);
  };
  ops::swiglu_backward(pool, dg.data(), du.data(), r.data(), g.data(), u.data(), 50);
  CHECK(fd_error(g, dg, sw) < 1e-3);
  CHECK(fd_error(u, du, sw) < 1e-3);

  const int rows = 3, V = 9;
  const std::vector<int> labels = {2, 0, 8};
  auto z = random_vec(rows * V, rng, -3, 3);
  auto ce = [&] {
    auto tmp = z;
    return ops::cross_entropy(pool, tmp.data(), labels.data(), rows, V, 1.0f) / rows;
  };
  auto dz = z;
  const double total = ops::cross_entropy(pool, dz.data(), labels.data(), rows, V, 1.0f / rows);
  CHECK(total / rows == Approx(ce()));
  CHECK(fd_error(z, dz, ce) < 1e-3);

  const std::vector<int> toks = {3, 1, 3, 0};
  auto table = random_vec(5 * 4, rng), re = random_vec(4 * 4, rng);
  std::vector<float> ye(16), dtable(20, 0.0f);
  auto emb = [&] {
    ops::embedding_forward(ye.data(), table.data(), toks.data(), 4, 4);
    return dot(ye, re);
  };
  ops::embedding_backward(dtable.data(), re.data(), toks.data(), 4, 4);
  CHECK(fd_error(table, dtable, emb) < 1e-4);
}

TEST_CASE("the whole model's gradient matches finite differences (tied and untied)", "[train][grad]") {
  for (bool tied : {true, false}) {
    ModelConfig c;
    c.dim = 16, c.hidden_dim = 24, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 4;
    c.vocab_size = 11, c.max_seq_len = 16;
    Weights w = init_weights(c, tied, 9);
    Rng rng(10);
    for (auto& x : w.data) x += static_cast<float>(rng.uniform(-0.3, 0.3));  // away from the tiny init scale
    PackedBatch b;
    b.rows = 2, b.seq = 12;
    for (int r = 0; r < 2; ++r)
      for (int t = 0; t < 12; ++t) {
        const int start = r == 0 && t >= 5 ? 5 : 0;  // row 0 packs two sequences
        b.tokens.push_back(static_cast<int>(rng.uniform_int(0, 10)));
        b.seg_start.push_back(start);
        b.pos.push_back(t - start);
        const bool labelled = t != 4 && t != 11 && (t % 3 != 0);
        b.labels.push_back(labelled ? static_cast<int>(rng.uniform_int(0, 10)) : -1);
        b.targets += labelled;
      }
    cpu::ThreadPool pool(1);  // ~1000 tiny forward passes: threads only add hand-off latency (ops are checked on 2)
    Decoder dec(c, pool);
    std::vector<float> grad(w.data.size(), 0.0f);
    dec.forward(w, b);
    dec.loss(w, b, grad.data());
    auto loss = [&] {
      dec.forward(w, b);
      return dec.loss(w, b, nullptr) / static_cast<double>(b.targets);
    };
    INFO("tied " << tied);
    CHECK(fd_error(w.data, grad, loss, 1e-2f, 5) < 5e-3);  // every 5th parameter: all tensors, a fifth of each
  }
}

namespace {

// Byte-level vocabulary in GPT-2's byte-to-unicode form plus <|endoftext|> (id 256), as the engine reads it.
GgufTokenizerSpec byte_tokenizer() {
  GgufTokenizerSpec t;
  int extra = 0;
  for (int b = 0; b < 256; ++b) {
    const bool keep = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    const uint32_t cp = keep ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + extra++);
    std::string u;
    if (cp < 0x80) {
      u += static_cast<char>(cp);
    } else {
      u += static_cast<char>(0xc0 | (cp >> 6));
      u += static_cast<char>(0x80 | (cp & 0x3f));
    }
    t.pieces.push_back(u);
    t.token_types.push_back(1);
  }
  t.pieces.emplace_back("<|endoftext|>");
  t.token_types.push_back(3);
  t.eos_id = 256;
  return t;
}

// "prompt" + "answer" + EOS as bytes, loss on the answer and the EOS.
TokenSequence qa(const std::string& prompt, const std::string& answer) {
  TokenSequence s;
  for (unsigned char ch : prompt) s.tokens.push_back(ch), s.target.push_back(0);
  for (unsigned char ch : answer) s.tokens.push_back(ch), s.target.push_back(1);
  s.tokens.push_back(256), s.target.push_back(1);
  return s;
}

std::vector<TokenSequence> tiny_set() {
  return {qa("hello", " world"), qa("good", " night moon"), qa("the cat", " sat on the mat"), qa("sql:", " SELECT 1;")};
}

TrainOptions tiny_options(int threads) {
  TrainOptions o;
  o.model = tiny_config(257, 64);
  o.seq_len = 32, o.batch = 2, o.steps = 150, o.lr = 1e-2f, o.min_lr = 1e-3f, o.warmup_steps = 10;
  o.weight_decay = 0.0f, o.seed = 5, o.threads = threads, o.progress = false;
  return o;
}

bool same_bytes(const std::vector<float>& a, const std::vector<float>& b) {
  return a.size() == b.size() && std::memcmp(a.data(), b.data(), a.size() * sizeof(float)) == 0;
}

}  // namespace

TEST_CASE("learning rate: linear warmup, cosine to min_lr", "[train]") {
  TrainOptions o;
  o.lr = 1.0f, o.min_lr = 0.1f, o.warmup_steps = 10, o.steps = 110;
  CHECK(learning_rate(o, 1) == Approx(0.1));
  CHECK(learning_rate(o, 10) == Approx(1.0));
  CHECK(learning_rate(o, 60) == Approx(0.55));
  CHECK(learning_rate(o, 110) == Approx(0.1));
}

TEST_CASE("a tiny model overfits a tiny set to near-zero loss", "[train]") {
  Trainer tr(tiny_options(1), tiny_set());
  const double before = tr.evaluate(tiny_set());
  TrainResult r = tr.run();
  const double after = tr.evaluate(tiny_set());
  INFO("loss before " << before << " after " << after);
  CHECK(r.steps_done == 150);
  CHECK(before > 4.0);
  CHECK(after < 0.05);
}

TEST_CASE("training is deterministic for a seed, across thread counts, and resume equals an uninterrupted run",
          "[train]") {
  auto run = [](int threads, int64_t steps) {
    TrainOptions o = tiny_options(threads);
    o.steps = steps;
    Trainer tr(o, tiny_set());
    tr.run();
    return tr.weights().data;
  };
  const auto a = run(2, 8);
  CHECK(same_bytes(a, run(2, 8)));
  CHECK(same_bytes(a, run(1, 8)));
  CHECK(same_bytes(a, run(3, 8)));
  TrainOptions o = tiny_options(2);
  o.seed = 6;
  o.steps = 8;
  Trainer other(o, tiny_set());
  other.run();
  CHECK_FALSE(same_bytes(a, other.weights().data));

  // 3 steps, checkpoint, a fresh trainer resumes and takes the other 5 (batch 2 over 2 rows: epochs wrap).
  test::TempDir dir("train-resume");
  const std::string ck = dir.file("ck.bin");
  TrainOptions first = tiny_options(2);
  first.steps = 8;
  Trainer t1(first, tiny_set());
  for (int i = 0; i < 3; ++i) t1.step();
  t1.save_checkpoint(ck);
  Trainer t2(first, tiny_set());
  t2.load_checkpoint(ck);
  CHECK(t2.steps_done() == 3);
  t2.run();
  CHECK(t2.steps_done() == 8);
  CHECK(same_bytes(a, t2.weights().data));

  TrainOptions wrong = first;
  wrong.seed = 99;
  Trainer t3(wrong, tiny_set());
  CHECK_THROWS_AS(t3.load_checkpoint(ck), InputError);
}

TEST_CASE("bad training input is rejected with a clear error", "[train]") {
  TrainOptions o = tiny_options(1);
  auto bad = tiny_set();
  bad[1].tokens[0] = 300;
  CHECK_THROWS_WITH(Trainer(o, bad), Catch::Contains("token id 300"));
  bad = tiny_set();
  bad[0].target.pop_back();
  CHECK_THROWS_WITH(Trainer(o, bad), Catch::Contains("target flags"));
  o.seq_len = 100;
  CHECK_THROWS_WITH(Trainer(o, tiny_set()), Catch::Contains("seq_len"));
}

namespace {
// max |a − b| / max |b| over one sequence's logits.
double normalised_error(const std::vector<float>& a, const std::vector<float>& b) {
  double err = 0, scale = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    err = std::max(err, static_cast<double>(std::fabs(a[i] - b[i])));
    scale = std::max(scale, static_cast<double>(std::fabs(b[i])));
  }
  return err / scale;
}
}  // namespace

TEST_CASE("exported GGUF runs in the engine with the trainer's logits and generates what it learned", "[train]") {
  test::TempDir dir("train-export");
  for (bool tied : {false, true}) {
    TrainOptions o = tiny_options(1);
    o.tied_classifier = tied;
    Trainer tr(o, tiny_set());
    tr.run();
    const std::vector<int> seq = qa("good", " night moon").tokens;
    const auto want = forward_logits(tr.weights(), seq, 2);
    for (auto [dtype, bound] : {std::pair{DType::F32, 1e-5}, {DType::F16, 2e-2}, {DType::Q8_0, 5e-2}}) {
      INFO(dtype_name(dtype) << (tied ? " tied" : " untied"));
      const std::string path = dir.file(std::string("m-") + dtype_name(dtype) + (tied ? "-tied" : "") + ".gguf");
      export_gguf(tr.weights(), byte_tokenizer(), path, dtype);
      LoadedModel lm = load_model_and_tokenizer(path, "");
      CHECK(lm.model->config.vocab_size == 257);
      auto backend = make_cpu_backend(lm.model, CpuBackendOptions{1, 256, 0, size_t{1} << 20});
      const int n = static_cast<int>(seq.size());
      std::vector<int> pos(static_cast<size_t>(n)), rows(static_cast<size_t>(n));
      for (int i = 0; i < n; ++i) pos[static_cast<size_t>(i)] = rows[static_cast<size_t>(i)] = i;
      std::vector<int> table = {0, 1};
      std::vector<const int*> tables(static_cast<size_t>(n), table.data());
      std::vector<float> got(static_cast<size_t>(n) * 257);
      backend->forward(ForwardBatch{seq, pos, tables, rows}, got.data());
      CHECK(normalised_error(got, want) < bound);
      TextGenerationOptions g;
      g.prompt = "good";
      g.steps = 40;
      // run.c-style output starts after the first token when there is no BOS: "ood", then the learned answer.
      CHECK(generate_text(lm, g) == "ood night moon");
      // The CLI's `t2s generate` reads the same file and prints the same text (checked for Q8_0, the shipping type).
      if (dtype != DType::Q8_0) continue;
      const std::string out = dir.file("gen.txt");
      const std::string cmd = std::string(T2S_BINARY_DIR) + "/t2s generate --model " + path +
                              " --temperature 0 --steps 40 --prompt good > " + out;
      REQUIRE(std::system(cmd.c_str()) == 0);
      std::ifstream f(out);
      std::string text((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
      CHECK(text.find("ood night moon") == 0);
    }
    CHECK_THROWS_AS(export_gguf(tr.weights(), GgufTokenizerSpec{}, dir.file("x.gguf"), DType::F32), InputError);
  }
}
