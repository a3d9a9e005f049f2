#include "engine/train/decoder.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "engine/train/ops.hpp"

namespace t2s::engine::train {

namespace {
void resize(std::vector<float>& v, int64_t n) { v.resize(static_cast<size_t>(n)); }
std::string blk(int l, const char* name) { return "blk." + std::to_string(l) + "." + name; }
}  // namespace

PackedBatch single_sequence_batch(const std::vector<int>& tokens) {
  PackedBatch b;
  b.rows = 1;
  b.seq = static_cast<int>(tokens.size());
  b.tokens = tokens;
  b.labels.assign(tokens.size(), -1);
  for (size_t t = 0; t + 1 < tokens.size(); ++t) b.labels[t] = tokens[t + 1];
  b.seg_start.assign(tokens.size(), 0);
  b.pos.resize(tokens.size());
  for (size_t t = 0; t < tokens.size(); ++t) b.pos[t] = static_cast<int>(t);
  b.real_tokens = static_cast<int64_t>(tokens.size());
  b.targets = std::max<int64_t>(0, b.real_tokens - 1);
  return b;
}

Decoder::Decoder(const ModelConfig& config, cpu::ThreadPool& pool) : c_(config), pool_(pool) {
  layers_.resize(static_cast<size_t>(c_.n_layers));
  ops::rope_table(c_.max_seq_len, c_.head_dim, c_.rope_theta, rope_cos_, rope_sin_);
}

void Decoder::forward(const Weights& w, const PackedBatch& batch) {
  const int64_t N = int64_t{batch.rows} * batch.seq, dim = c_.dim, qd = c_.q_dim(), kvd = c_.kv_dim(),
                hid = c_.hidden_dim;
  n_ = N;
  resize(x_, N * dim);
  ops::embedding_forward(x_.data(), w.ptr("token_embd.weight"), batch.tokens.data(), N, dim);
  const ops::AttentionShape shape{batch.rows, batch.seq, c_.n_heads, c_.n_kv_heads, c_.head_dim, batch.seg_start.data()};
  for (int l = 0; l < c_.n_layers; ++l) {
    Layer& a = layers_[static_cast<size_t>(l)];
    resize(a.rstd1, N), resize(a.xn1, N * dim), resize(a.q, N * qd), resize(a.k, N * kvd), resize(a.v, N * kvd);
    resize(a.att, N * qd), resize(a.lse, N * c_.n_heads), resize(a.x_mid, N * dim), resize(a.rstd2, N);
    resize(a.xn2, N * dim), resize(a.h1, N * hid), resize(a.h3, N * hid), resize(a.hg, N * hid);
    a.x_in = x_;
    ops::rmsnorm_forward(pool_, a.xn1.data(), a.rstd1.data(), a.x_in.data(), w.ptr(blk(l, "attn_norm.weight")), N, dim, c_.norm_eps);
    ops::linear_forward(pool_, a.q.data(), a.xn1.data(), w.ptr(blk(l, "attn_q.weight")), N, dim, qd, scratch_);
    ops::linear_forward(pool_, a.k.data(), a.xn1.data(), w.ptr(blk(l, "attn_k.weight")), N, dim, kvd, scratch_);
    ops::linear_forward(pool_, a.v.data(), a.xn1.data(), w.ptr(blk(l, "attn_v.weight")), N, dim, kvd, scratch_);
    ops::rope_forward(pool_, a.q.data(), N, c_.n_heads, c_.head_dim, batch.pos.data(), rope_cos_.data(), rope_sin_.data());
    ops::rope_forward(pool_, a.k.data(), N, c_.n_kv_heads, c_.head_dim, batch.pos.data(), rope_cos_.data(), rope_sin_.data());
    ops::attention_forward(pool_, shape, a.att.data(), a.lse.data(), a.q.data(), a.k.data(), a.v.data(), scratch_);
    ops::linear_forward(pool_, a.x_mid.data(), a.att.data(), w.ptr(blk(l, "attn_output.weight")), N, qd, dim, scratch_);
    for (int64_t i = 0; i < N * dim; ++i) a.x_mid[static_cast<size_t>(i)] += a.x_in[static_cast<size_t>(i)];
    ops::rmsnorm_forward(pool_, a.xn2.data(), a.rstd2.data(), a.x_mid.data(), w.ptr(blk(l, "ffn_norm.weight")), N, dim, c_.norm_eps);
    ops::linear_forward(pool_, a.h1.data(), a.xn2.data(), w.ptr(blk(l, "ffn_gate.weight")), N, dim, hid, scratch_);
    ops::linear_forward(pool_, a.h3.data(), a.xn2.data(), w.ptr(blk(l, "ffn_up.weight")), N, dim, hid, scratch_);
    ops::swiglu_forward(pool_, a.hg.data(), a.h1.data(), a.h3.data(), N * hid);
    ops::linear_forward(pool_, x_.data(), a.hg.data(), w.ptr(blk(l, "ffn_down.weight")), N, hid, dim, scratch_);
    for (int64_t i = 0; i < N * dim; ++i) x_[static_cast<size_t>(i)] += a.x_mid[static_cast<size_t>(i)];
  }
  resize(rstdf_, N), resize(xf_, N * dim);
  ops::rmsnorm_forward(pool_, xf_.data(), rstdf_.data(), x_.data(), w.ptr("output_norm.weight"), N, dim, c_.norm_eps);
}

namespace {
const char* classifier_name(const Weights& w) { return w.tied_classifier ? "token_embd.weight" : "output.weight"; }
}  // namespace

std::vector<float> Decoder::logits(const Weights& w) {
  std::vector<float> out(static_cast<size_t>(n_ * c_.vocab_size));
  ops::linear_forward(pool_, out.data(), xf_.data(), w.ptr(classifier_name(w)), n_, c_.dim, c_.vocab_size, scratch_);
  return out;
}

double Decoder::loss(const Weights& w, const PackedBatch& batch, float* grad) {
  const int64_t dim = c_.dim, V = c_.vocab_size;
  // Only labelled rows reach the classifier: prompt positions cost nothing there.
  std::vector<int64_t> rows;
  std::vector<int> labels;
  for (int64_t i = 0; i < n_; ++i)
    if (batch.labels[static_cast<size_t>(i)] >= 0) {
      rows.push_back(i);
      labels.push_back(batch.labels[static_cast<size_t>(i)]);
    }
  const int64_t R = static_cast<int64_t>(rows.size());
  if (R == 0) return 0.0;
  std::vector<float>&xs = grads_.xs, &z = grads_.logits, &dxs = grads_.dxs, &dxf = grads_.dxf;
  resize(xs, R * dim), resize(z, R * V);
  for (int64_t r = 0; r < R; ++r) std::copy_n(xf_.data() + rows[static_cast<size_t>(r)] * dim, dim, xs.data() + r * dim);
  const float* wc = w.ptr(classifier_name(w));
  ops::linear_forward(pool_, z.data(), xs.data(), wc, R, dim, V, scratch_);
  const double sum = ops::cross_entropy(pool_, z.data(), labels.data(), R, V, 1.0f / static_cast<float>(R));
  if (!grad) return sum;
  resize(dxs, R * dim);
  ops::linear_backward(pool_, dxs.data(), false, grad + w.tensor(classifier_name(w)).offset, z.data(), xs.data(), wc,
                       R, dim, V);
  dxf.assign(static_cast<size_t>(n_ * dim), 0.0f);
  for (int64_t r = 0; r < R; ++r) std::copy_n(dxs.data() + r * dim, dim, dxf.data() + rows[static_cast<size_t>(r)] * dim);
  backward(w, batch, dxf, grad);
  return sum;
}

void Decoder::backward(const Weights& w, const PackedBatch& batch, std::vector<float>& dxf, float* grad) {
  const int64_t N = n_, dim = c_.dim, qd = c_.q_dim(), kvd = c_.kv_dim(), hid = c_.hidden_dim;
  auto g = [&](const std::string& name) { return grad + w.tensor(name).offset; };
  // Gradient buffers live in the decoder so steps reuse their pages; each is fully overwritten before it is read.
  std::vector<float>&dx = grads_.dx, &dxn = grads_.dxn, &dhg = grads_.dhg, &dh1 = grads_.dh1, &dh3 = grads_.dh3,
                    &datt = grads_.datt, &dq = grads_.dq, &dk = grads_.dk, &dv = grads_.dv;
  dx.assign(static_cast<size_t>(N * dim), 0.0f);
  resize(dxn, N * dim), resize(dhg, N * hid), resize(dh1, N * hid), resize(dh3, N * hid), resize(datt, N * qd);
  resize(dq, N * qd), resize(dk, N * kvd), resize(dv, N * kvd);
  ops::rmsnorm_backward(pool_, dx.data(), g("output_norm.weight"), dxf.data(), x_.data(), w.ptr("output_norm.weight"),
                        rstdf_.data(), N, dim);
  const ops::AttentionShape shape{batch.rows, batch.seq, c_.n_heads, c_.n_kv_heads, c_.head_dim, batch.seg_start.data()};
  for (int l = c_.n_layers - 1; l >= 0; --l) {
    Layer& a = layers_[static_cast<size_t>(l)];
    // FFN branch: x_out = x_mid + W_down · swiglu(W_gate · xn2, W_up · xn2).
    ops::linear_backward(pool_, dhg.data(), false, g(blk(l, "ffn_down.weight")), dx.data(), a.hg.data(),
                         w.ptr(blk(l, "ffn_down.weight")), N, hid, dim);
    ops::swiglu_backward(pool_, dh1.data(), dh3.data(), dhg.data(), a.h1.data(), a.h3.data(), N * hid);
    ops::linear_backward(pool_, dxn.data(), false, g(blk(l, "ffn_gate.weight")), dh1.data(), a.xn2.data(),
                         w.ptr(blk(l, "ffn_gate.weight")), N, dim, hid);
    ops::linear_backward(pool_, dxn.data(), true, g(blk(l, "ffn_up.weight")), dh3.data(), a.xn2.data(),
                         w.ptr(blk(l, "ffn_up.weight")), N, dim, hid);
    ops::rmsnorm_backward(pool_, dx.data(), g(blk(l, "ffn_norm.weight")), dxn.data(), a.x_mid.data(),
                          w.ptr(blk(l, "ffn_norm.weight")), a.rstd2.data(), N, dim);
    // Attention branch: x_mid = x_in + W_o · attention(rope(W_q · xn1), rope(W_k · xn1), W_v · xn1).
    ops::linear_backward(pool_, datt.data(), false, g(blk(l, "attn_output.weight")), dx.data(), a.att.data(),
                         w.ptr(blk(l, "attn_output.weight")), N, qd, dim);
    ops::attention_backward(pool_, shape, dq.data(), dk.data(), dv.data(), datt.data(), a.q.data(), a.k.data(),
                            a.v.data(), a.att.data(), a.lse.data(), scratch_);
    ops::rope_backward(pool_, dq.data(), N, c_.n_heads, c_.head_dim, batch.pos.data(), rope_cos_.data(), rope_sin_.data());
    ops::rope_backward(pool_, dk.data(), N, c_.n_kv_heads, c_.head_dim, batch.pos.data(), rope_cos_.data(), rope_sin_.data());
    ops::linear_backward(pool_, dxn.data(), false, g(blk(l, "attn_q.weight")), dq.data(), a.xn1.data(),
                         w.ptr(blk(l, "attn_q.weight")), N, dim, qd);
    ops::linear_backward(pool_, dxn.data(), true, g(blk(l, "attn_k.weight")), dk.data(), a.xn1.data(),
                         w.ptr(blk(l, "attn_k.weight")), N, dim, kvd);
    ops::linear_backward(pool_, dxn.data(), true, g(blk(l, "attn_v.weight")), dv.data(), a.xn1.data(),
                         w.ptr(blk(l, "attn_v.weight")), N, dim, kvd);
    ops::rmsnorm_backward(pool_, dx.data(), g(blk(l, "attn_norm.weight")), dxn.data(), a.x_in.data(),
                          w.ptr(blk(l, "attn_norm.weight")), a.rstd1.data(), N, dim);
  }
  ops::embedding_backward(g("token_embd.weight"), dx.data(), batch.tokens.data(), N, dim);
}

}  // namespace t2s::engine::train
