#pragma once
// Random-weight GGUF models for tests: Llama (Llama-2 layout, optional Llama-3 rope_freqs) and Qwen2 (QKV bias,
// tied embeddings, NeoX RoPE, θ = 1e6).
#include <string>
#include <vector>

#include "common/rng.hpp"
#include "engine/gguf.hpp"

namespace t2s::test {

//! Shape and flavour of a test model.
struct GgufSpec {
  std::string arch = "llama";
  engine::DType type = engine::DType::F32;
  int dim = 64, hidden = 96, layers = 2, heads = 4, kv_heads = 2, vocab = 128, ctx = 128;
  bool tied = false, bias = false, rope_freqs = false;
  float theta = 10000.0f, eps = 1e-5f;
  uint64_t seed = 1;
};

//! Writes `spec` to `path`; matrices use spec.type, norms and biases stay F32.
inline void write_random_gguf(const std::string& path, const GgufSpec& s) {
  engine::GgufWriter w;
  const std::string a = s.arch;
  w.add_string("general.architecture", a);
  w.add_u32(a + ".embedding_length", static_cast<uint32_t>(s.dim));
  w.add_u32(a + ".feed_forward_length", static_cast<uint32_t>(s.hidden));
  w.add_u32(a + ".block_count", static_cast<uint32_t>(s.layers));
  w.add_u32(a + ".attention.head_count", static_cast<uint32_t>(s.heads));
  w.add_u32(a + ".attention.head_count_kv", static_cast<uint32_t>(s.kv_heads));
  w.add_u32(a + ".context_length", static_cast<uint32_t>(s.ctx));
  w.add_f32(a + ".rope.freq_base", s.theta);
  w.add_f32(a + ".attention.layer_norm_rms_epsilon", s.eps);
  Rng rng(s.seed);
  std::vector<float> buf;
  auto rnd = [&](int64_t n, float lo, float hi) -> const float* {
    buf.resize(static_cast<size_t>(n));
    for (auto& x : buf) x = static_cast<float>(rng.uniform(lo, hi));
    return buf.data();
  };
  const int hd = s.dim / s.heads, kvd = hd * s.kv_heads;
  w.add_tensor("token_embd.weight", s.type, s.vocab, s.dim, rnd(int64_t{s.vocab} * s.dim, -0.5f, 0.5f));
  for (int l = 0; l < s.layers; ++l) {
    std::string p = "blk." + std::to_string(l) + ".";
    w.add_tensor(p + "attn_norm.weight", engine::DType::F32, 1, s.dim, rnd(s.dim, 0.8f, 1.2f));
    w.add_tensor(p + "attn_q.weight", s.type, s.dim, s.dim, rnd(int64_t{s.dim} * s.dim, -0.2f, 0.2f));
    w.add_tensor(p + "attn_k.weight", s.type, kvd, s.dim, rnd(int64_t{kvd} * s.dim, -0.2f, 0.2f));
    w.add_tensor(p + "attn_v.weight", s.type, kvd, s.dim, rnd(int64_t{kvd} * s.dim, -0.2f, 0.2f));
    if (s.bias) {
      w.add_tensor(p + "attn_q.bias", engine::DType::F32, 1, s.dim, rnd(s.dim, -0.3f, 0.3f));
      w.add_tensor(p + "attn_k.bias", engine::DType::F32, 1, kvd, rnd(kvd, -0.3f, 0.3f));
      w.add_tensor(p + "attn_v.bias", engine::DType::F32, 1, kvd, rnd(kvd, -0.3f, 0.3f));
    }
    w.add_tensor(p + "attn_output.weight", s.type, s.dim, s.dim, rnd(int64_t{s.dim} * s.dim, -0.2f, 0.2f));
    w.add_tensor(p + "ffn_norm.weight", engine::DType::F32, 1, s.dim, rnd(s.dim, 0.8f, 1.2f));
    w.add_tensor(p + "ffn_gate.weight", s.type, s.hidden, s.dim, rnd(int64_t{s.hidden} * s.dim, -0.2f, 0.2f));
    w.add_tensor(p + "ffn_down.weight", s.type, s.dim, s.hidden, rnd(int64_t{s.hidden} * s.dim, -0.2f, 0.2f));
    w.add_tensor(p + "ffn_up.weight", s.type, s.hidden, s.dim, rnd(int64_t{s.hidden} * s.dim, -0.2f, 0.2f));
  }
  w.add_tensor("output_norm.weight", engine::DType::F32, 1, s.dim, rnd(s.dim, 0.8f, 1.2f));
  if (!s.tied) w.add_tensor("output.weight", s.type, s.vocab, s.dim, rnd(int64_t{s.vocab} * s.dim, -0.3f, 0.3f));
  if (s.rope_freqs) {
    // Llama-3.1 rope scaling factors (factor 8, low 1, high 4, original context 8192), as llama.cpp precomputes.
    std::vector<float> f;
    for (int j = 0; j < hd / 2; ++j) {
      double freq = std::pow(static_cast<double>(s.theta), -2.0 * j / hd);
      double wavelen = 2 * 3.141592653589793 / freq;
      double low_wl = 8192.0 / 1.0, high_wl = 8192.0 / 4.0;
      if (wavelen < high_wl) f.push_back(1.0f);
      else if (wavelen > low_wl) f.push_back(8.0f);
      else {
        double smooth = (8192.0 / wavelen - 1.0) / (4.0 - 1.0);
        f.push_back(static_cast<float>(1.0 / ((1 - smooth) / 8.0 + smooth)));
      }
    }
    w.add_tensor("rope_freqs.weight", engine::DType::F32, 1, static_cast<int64_t>(f.size()), f.data());
  }
  w.write(path);
}

}  // namespace t2s::test
