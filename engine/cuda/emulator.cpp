#include "engine/cuda/emulator.hpp"

#include <algorithm>
#include <stdexcept>

#include "engine/cuda/reference.hpp"
#include "engine/cuda/step_plan.hpp"

namespace t2s::engine::cuda {
namespace {

// A weight matrix as the device multiplies it: every element rounded to the activation type.
struct Matrix {
  std::vector<float> w;
  int64_t rows = 0, cols = 0;
};

class DeviceEmulator final : public Backend {
 public:
  DeviceEmulator(std::shared_ptr<const Model> model, int kv_blocks, int max_rows, int max_ctx)
      : model_(std::move(model)), cfg_(model_->config), blocks_(kv_blocks), max_rows_(max_rows) {
    const Model& m = *model_;
    max_ctx_ = max_ctx > 0 ? std::min(max_ctx, cfg_.max_seq_len) : cfg_.max_seq_len;
    act_ = (m.layers.empty() ? m.token_embedding.type : m.layers[0].wq.type) == DType::BF16 ? Act::BF16 : Act::F16;
    for (const LayerWeights& w : m.layers)
      layers_.push_back({round(w.wq), round(w.wk), round(w.wv), round(w.wo), round(w.w_gate), round(w.w_up), round(w.w_down)});
    classifier_ = round(m.classifier);
    rope_tables(cfg_, m.rope_freq_factors, max_ctx_, cos_, sin_);
    const size_t layer = static_cast<size_t>(blocks_) * kKvBlockSize * static_cast<size_t>(cfg_.kv_dim());
    k_pool_.assign(layer * static_cast<size_t>(cfg_.n_layers), 0);
    v_pool_.assign(k_pool_.size(), 0);
  }

  int num_kv_blocks() const override { return blocks_; }
  int max_batch_tokens() const override { return max_rows_; }
  int max_context() const override { return max_ctx_; }
  std::string name() const override { return "cuda-emulator"; }

  void forward(const ForwardBatch& batch, float* logits) override {
    const int R = static_cast<int>(batch.tokens.size());
    if (R == 0) return;
    if (R > max_rows_) throw std::logic_error("forward: batch larger than max_batch_tokens");
    plan_step(batch, cfg_.vocab_size, max_ctx_, blocks_, plan_);
    const Model& m = *model_;
    const int dim = cfg_.dim, qd = cfg_.q_dim(), kvd = cfg_.kv_dim(), hid = cfg_.hidden_dim;
    const size_t layer = static_cast<size_t>(blocks_) * kKvBlockSize * static_cast<size_t>(kvd);
    std::vector<float> x(static_cast<size_t>(R) * dim), xn(x.size()), q(static_cast<size_t>(R) * qd),
        k(static_cast<size_t>(R) * kvd), v(k.size()), att(q.size()), h1(static_cast<size_t>(R) * hid), h3(h1.size()),
        ha(h1.size());
    ref_embedding(m.token_embedding, plan_.tokens.data(), R, x.data());
    for (int l = 0; l < cfg_.n_layers; ++l) {
      const LayerWeights& w = m.layers[static_cast<size_t>(l)];
      const Layer& d = layers_[static_cast<size_t>(l)];
      float* kp = k_pool_.data() + static_cast<size_t>(l) * layer;
      float* vp = v_pool_.data() + static_cast<size_t>(l) * layer;
      ref_rmsnorm(x.data(), nullptr, R, w.attn_norm, dim, cfg_.norm_eps, xn.data(), act_);
      gemm(d.wq, xn.data(), R, q.data(), false);
      gemm(d.wk, xn.data(), R, k.data(), false);
      gemm(d.wv, xn.data(), R, v.data(), false);
      ref_rope(q.data(), k.data(), w.bq, w.bk, plan_.positions.data(), R, cfg_.n_heads, cfg_.n_kv_heads, cfg_.head_dim,
               cos_.data(), sin_.data(), cfg_.rope_style == RopeStyle::Neox);
      ref_kv_write(k.data(), v.data(), w.bv, plan_.positions.data(), plan_.row_table.data(), plan_.tables.data(), R, kvd,
                   kp, vp);
      for (int r = 0; r < R; ++r)
        ref_attention_row(q.data() + static_cast<size_t>(r) * qd, plan_.positions[static_cast<size_t>(r)],
                          plan_.tables.data() + plan_.row_table[static_cast<size_t>(r)], kp, vp, cfg_.n_heads,
                          cfg_.n_kv_heads, cfg_.head_dim, att.data() + static_cast<size_t>(r) * qd, act_);
      gemm(d.wo, att.data(), R, x.data(), true);
      ref_rmsnorm(x.data(), nullptr, R, w.ffn_norm, dim, cfg_.norm_eps, xn.data(), act_);
      gemm(d.w_gate, xn.data(), R, h1.data(), false);
      gemm(d.w_up, xn.data(), R, h3.data(), false);
      ref_swiglu(h1.data(), h3.data(), static_cast<int64_t>(R) * hid, ha.data(), act_);
      gemm(d.w_down, ha.data(), R, x.data(), true);
    }
    const int nl = static_cast<int>(plan_.logit_rows.size());
    if (nl == 0) return;
    ref_rmsnorm(x.data(), plan_.logit_rows.data(), nl, m.final_norm, dim, cfg_.norm_eps, xn.data(), act_);
    gemm(classifier_, xn.data(), nl, logits, false);
  }

 private:
  struct Layer {
    Matrix wq, wk, wv, wo, w_gate, w_up, w_down;
  };

  Matrix round(const TensorView& t) const {
    Matrix m{std::vector<float>(static_cast<size_t>(t.rows * t.cols)), t.rows, t.cols};
    ref_dequantize(t, m.w.data(), act_);
    return m;
  }

  // y[r][o] (+)= Σ_k W[o][k] x[r][k], accumulated in double (the device accumulates in FP32).
  static void gemm(const Matrix& w, const float* x, int rows, float* y, bool accumulate) {
    for (int r = 0; r < rows; ++r)
      for (int64_t o = 0; o < w.rows; ++o) {
        const float* wr = w.w.data() + o * w.cols;
        const float* xr = x + static_cast<int64_t>(r) * w.cols;
        double s = 0;
        for (int64_t c = 0; c < w.cols; ++c) s += static_cast<double>(wr[c]) * xr[c];
        float& out = y[static_cast<int64_t>(r) * w.rows + o];
        out = accumulate ? out + static_cast<float>(s) : static_cast<float>(s);
      }
  }

  std::shared_ptr<const Model> model_;
  ModelConfig cfg_;
  int blocks_, max_rows_, max_ctx_ = 0;
  Act act_ = Act::F16;
  std::vector<Layer> layers_;
  Matrix classifier_;
  std::vector<float> cos_, sin_, k_pool_, v_pool_;
  StepPlan plan_;
};

}  // namespace

std::unique_ptr<Backend> make_device_emulator(std::shared_ptr<const Model> model, int kv_blocks, int max_batch_tokens,
                                              int max_context) {
  if (kv_blocks < 1) throw std::logic_error("device emulator: needs at least one KV block");
  return std::make_unique<DeviceEmulator>(std::move(model), kv_blocks, std::max(1, max_batch_tokens), max_context);
}

}  // namespace t2s::engine::cuda
