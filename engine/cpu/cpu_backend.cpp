// The CPU implementation of engine::Backend: float32 activations and KV, weights used in place from the mapping.
#include <algorithm>
#include <cmath>
#include <vector>

#include "common/status.hpp"
#include "engine/backend.hpp"
#include "engine/cpu/kernels.hpp"
#include "engine/cpu/thread_pool.hpp"
#include "engine/cuda/reference.hpp"

namespace t2s::engine {

size_t kv_block_bytes(const ModelConfig& c) {
  return size_t{2} * static_cast<size_t>(c.n_layers) * kKvBlockSize * static_cast<size_t>(c.kv_dim()) * sizeof(float);
}

namespace {

using cpu::Isa;

class CpuBackend final : public Backend {
 public:
  CpuBackend(std::shared_ptr<const Model> model, const CpuBackendOptions& o)
      : model_(std::move(model)), cfg_(model_->config), pool_(o.threads), isa_(cpu::detect_isa()) {
    max_rows_ = std::max(1, o.max_batch_tokens);
    max_ctx_ = o.max_context > 0 ? std::min(o.max_context, cfg_.max_seq_len) : cfg_.max_seq_len;
    num_blocks_ = static_cast<int>(o.kv_budget_bytes / kv_block_bytes(cfg_));
    if (num_blocks_ < 1)
      throw InputError("KV budget of " + std::to_string(o.kv_budget_bytes) + " bytes holds no block (one needs " +
                       std::to_string(kv_block_bytes(cfg_)) + ")");
    const size_t R = static_cast<size_t>(max_rows_);
    const size_t dim = static_cast<size_t>(cfg_.dim), qd = static_cast<size_t>(cfg_.q_dim()),
                 kvd = static_cast<size_t>(cfg_.kv_dim()), hid = static_cast<size_t>(cfg_.hidden_dim);
    x_.assign(R * dim, 0);
    xb_.assign(R * std::max(dim, qd), 0);
    q_.assign(R * qd, 0);
    k_.assign(R * kvd, 0);
    v_.assign(R * kvd, 0);
    att_.assign(R * qd, 0);
    h1_.assign(R * hid, 0);
    h3_.assign(R * hid, 0);
    out_.assign(R * std::max(dim, hid), 0);
    const size_t layer_stride = static_cast<size_t>(num_blocks_) * kKvBlockSize * kvd;
    kcache_.assign(static_cast<size_t>(cfg_.n_layers) * layer_stride, 0);
    vcache_.assign(static_cast<size_t>(cfg_.n_layers) * layer_stride, 0);
    scores_.assign(static_cast<size_t>(pool_.size()) * static_cast<size_t>(max_ctx_), 0);
    int64_t max_cols = std::max<int64_t>({cfg_.dim, cfg_.q_dim(), cfg_.hidden_dim});
    deq_.assign(static_cast<size_t>(pool_.size()) * 2 * static_cast<size_t>(max_cols), 0);
    scratch_.rows = deq_.data();
    scratch_.max_cols = max_cols;
    build_rope_table();
  }

  int num_kv_blocks() const override { return num_blocks_; }
  int max_batch_tokens() const override { return max_rows_; }
  int max_context() const override { return max_ctx_; }
  std::string name() const override { return "cpu"; }

  void forward(const ForwardBatch& batch, float* logits) override {
    const int64_t R = static_cast<int64_t>(batch.tokens.size());
    if (R == 0) return;
    if (R > max_rows_) throw std::logic_error("forward: batch larger than max_batch_tokens");
    const int64_t dim = cfg_.dim, qd = cfg_.q_dim(), kvd = cfg_.kv_dim(), hid = cfg_.hidden_dim;
    const Model& m = *model_;
    for (int64_t r = 0; r < R; ++r) {
      int tok = batch.tokens[static_cast<size_t>(r)];
      if (tok < 0 || tok >= cfg_.vocab_size) throw std::logic_error("forward: token id out of range");
      if (batch.positions[static_cast<size_t>(r)] >= max_ctx_) throw std::logic_error("forward: position past context");
      dequantize_row(m.token_embedding.type, m.token_embedding.row(tok), x_.data() + r * dim, dim);
    }
    for (int l = 0; l < cfg_.n_layers; ++l) {
      const LayerWeights& w = m.layers[static_cast<size_t>(l)];
      for (int64_t r = 0; r < R; ++r) cpu::rmsnorm(xb_.data() + r * dim, x_.data() + r * dim, w.attn_norm, dim, cfg_.norm_eps);
      mm(w.wq, xb_.data(), R, q_.data());
      mm(w.wk, xb_.data(), R, k_.data());
      mm(w.wv, xb_.data(), R, v_.data());
      add_bias(q_.data(), w.bq, R, qd);
      add_bias(k_.data(), w.bk, R, kvd);
      add_bias(v_.data(), w.bv, R, kvd);
      for (int64_t r = 0; r < R; ++r) {
        int pos = batch.positions[static_cast<size_t>(r)];
        rope(q_.data() + r * qd, cfg_.n_heads, pos);
        rope(k_.data() + r * kvd, cfg_.n_kv_heads, pos);
        float* kc = kv_slot(kcache_, l, batch.block_tables[static_cast<size_t>(r)], pos);
        float* vc = kv_slot(vcache_, l, batch.block_tables[static_cast<size_t>(r)], pos);
        std::copy_n(k_.data() + r * kvd, kvd, kc);
        std::copy_n(v_.data() + r * kvd, kvd, vc);
      }
      attention(batch, l, R);
      mm(w.wo, att_.data(), R, out_.data());
      for (int64_t i = 0; i < R * dim; ++i) x_[static_cast<size_t>(i)] += out_[static_cast<size_t>(i)];
      for (int64_t r = 0; r < R; ++r) cpu::rmsnorm(xb_.data() + r * dim, x_.data() + r * dim, w.ffn_norm, dim, cfg_.norm_eps);
      mm(w.w_gate, xb_.data(), R, h1_.data());
      mm(w.w_up, xb_.data(), R, h3_.data());
      for (int64_t i = 0; i < R * hid; ++i) {
        float g = h1_[static_cast<size_t>(i)];
        g *= 1.0f / (1.0f + std::exp(-g));
        h1_[static_cast<size_t>(i)] = g * h3_[static_cast<size_t>(i)];
      }
      mm(w.w_down, h1_.data(), R, out_.data());
      for (int64_t i = 0; i < R * dim; ++i) x_[static_cast<size_t>(i)] += out_[static_cast<size_t>(i)];
    }
    const int64_t nl = static_cast<int64_t>(batch.logit_rows.size());
    for (int64_t i = 0; i < nl; ++i) {
      int64_t r = batch.logit_rows[static_cast<size_t>(i)];
      cpu::rmsnorm(xb_.data() + i * dim, x_.data() + r * dim, m.final_norm, dim, cfg_.norm_eps);
    }
    if (nl > 0) mm(m.classifier, xb_.data(), nl, logits);
  }

 private:
  void mm(const TensorView& w, const float* x, int64_t rows, float* out) { cpu::matmul(pool_, isa_, w, x, rows, out, scratch_); }

  static void add_bias(float* y, const float* b, int64_t rows, int64_t n) {
    if (!b) return;
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t i = 0; i < n; ++i) y[r * n + i] += b[i];
  }

  void build_rope_table() { cuda::rope_tables(cfg_, model_->rope_freq_factors, max_ctx_, rope_cos_, rope_sin_); }

  void rope(float* v, int heads, int pos) const {
    const int hd = cfg_.head_dim, half = hd / 2;
    const float* cs = rope_cos_.data() + static_cast<size_t>(pos) * half;
    const float* sn = rope_sin_.data() + static_cast<size_t>(pos) * half;
    for (int h = 0; h < heads; ++h) {
      float* x = v + h * hd;
      for (int j = 0; j < half; ++j) {
        int a = cfg_.rope_style == RopeStyle::Interleaved ? 2 * j : j;
        int b = cfg_.rope_style == RopeStyle::Interleaved ? 2 * j + 1 : j + half;
        float x0 = x[a], x1 = x[b];
        x[a] = x0 * cs[j] - x1 * sn[j];
        x[b] = x0 * sn[j] + x1 * cs[j];
      }
    }
  }

  float* kv_slot(std::vector<float>& cache, int layer, const int* table, int pos) {
    const size_t kvd = static_cast<size_t>(cfg_.kv_dim());
    size_t block = static_cast<size_t>(table[pos / kKvBlockSize]);
    size_t idx = ((static_cast<size_t>(layer) * static_cast<size_t>(num_blocks_) + block) * kKvBlockSize +
                  static_cast<size_t>(pos % kKvBlockSize)) * kvd;
    return cache.data() + idx;
  }

  void attention(const ForwardBatch& batch, int layer, int64_t R) {
    const int hd = cfg_.head_dim, qd = cfg_.q_dim(), group = cfg_.n_heads / cfg_.n_kv_heads;
    const float inv = 1.0f / std::sqrt(static_cast<float>(hd));
    pool_.parallel_for(R * cfg_.n_heads, 1, [&](int thread, int64_t b, int64_t e) {
      float* sc = scores_.data() + static_cast<size_t>(thread) * static_cast<size_t>(max_ctx_);
      for (int64_t i = b; i < e; ++i) {
        int64_t r = i / cfg_.n_heads;
        int h = static_cast<int>(i % cfg_.n_heads);
        int pos = batch.positions[static_cast<size_t>(r)];
        const int* table = batch.block_tables[static_cast<size_t>(r)];
        const float* q = q_.data() + r * qd + h * hd;
        const int kvoff = (h / group) * hd;
        float mx = -INFINITY;
        for (int t = 0; t <= pos; ++t) {
          float s = cpu::dot(isa_, q, kv_slot(kcache_, layer, table, t) + kvoff, hd) * inv;
          sc[t] = s;
          mx = std::max(mx, s);
        }
        float sum = 0;
        for (int t = 0; t <= pos; ++t) {
          sc[t] = std::exp(sc[t] - mx);
          sum += sc[t];
        }
        float* o = att_.data() + r * qd + h * hd;
        std::fill_n(o, hd, 0.0f);
        for (int t = 0; t <= pos; ++t) {
          float a = sc[t] / sum;
          const float* vv = kv_slot(vcache_, layer, table, t) + kvoff;
          for (int d = 0; d < hd; ++d) o[d] += a * vv[d];
        }
      }
    });
  }

  std::shared_ptr<const Model> model_;
  ModelConfig cfg_;
  cpu::ThreadPool pool_;
  Isa isa_;
  int max_rows_ = 0, max_ctx_ = 0, num_blocks_ = 0;
  std::vector<float> x_, xb_, q_, k_, v_, att_, h1_, h3_, out_, kcache_, vcache_, scores_, deq_, rope_cos_, rope_sin_;
  cpu::MatmulScratch scratch_;
};

}  // namespace

std::unique_ptr<Backend> make_cpu_backend(std::shared_ptr<const Model> model, const CpuBackendOptions& options) {
  return std::make_unique<CpuBackend>(std::move(model), options);
}

}  // namespace t2s::engine
