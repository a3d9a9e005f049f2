#pragma once
// Random-weight GGUF models for tests: Llama (Llama-2 layout, optional Llama-3 rope_freqs) and Qwen2 (QKV bias,
// tied embeddings, NeoX RoPE, θ = 1e6).
#include <functional>
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
  bool tokenizer = false;  // add a byte-level BPE vocabulary (256 bytes + 3 specials; vocab becomes 259) and a ChatML template
  float theta = 10000.0f, eps = 1e-5f;
  uint64_t seed = 1;
  std::function<void(engine::GgufWriter&)> extra_metadata;  // written after the usual keys (a repeated key wins)
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
  GgufSpec sp = s;
  if (s.tokenizer) {
    std::vector<std::string> pieces;
    std::vector<int32_t> types;
    int extra = 0;
    for (int b = 0; b < 256; ++b) {
      bool keep = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
      uint32_t cp = keep ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + extra++);
      std::string u;
      if (cp < 0x80) u += static_cast<char>(cp);
      else { u += static_cast<char>(0xc0 | (cp >> 6)); u += static_cast<char>(0x80 | (cp & 0x3f)); }
      pieces.push_back(u);
      types.push_back(1);
    }
    for (const char* sp_tok : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
      pieces.emplace_back(sp_tok);
      types.push_back(3);
    }
    sp.vocab = static_cast<int>(pieces.size());
    w.add_string("tokenizer.ggml.model", "gpt2");
    w.add_string("tokenizer.ggml.pre", "qwen2");
    w.add_strings("tokenizer.ggml.tokens", pieces);
    w.add_strings("tokenizer.ggml.merges", {});
    w.add_i32s("tokenizer.ggml.token_type", types);
    w.add_u32("tokenizer.ggml.eos_token_id", 256);
    w.add_string("tokenizer.chat_template", "{% for message in messages %}<|im_start|>{{ message.role }}\n...");
  }
  if (s.extra_metadata) s.extra_metadata(w);
  Rng rng(s.seed);
  std::vector<float> buf;
  auto rnd = [&](int64_t n, float lo, float hi) -> const float* {
    buf.resize(static_cast<size_t>(n));
    for (auto& x : buf) x = static_cast<float>(rng.uniform(lo, hi));
    return buf.data();
  };
  const int hd = s.dim / s.heads, kvd = hd * s.kv_heads;
  w.add_tensor("token_embd.weight", s.type, sp.vocab, s.dim, rnd(int64_t{sp.vocab} * s.dim, -0.5f, 0.5f));
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
  if (!s.tied) w.add_tensor("output.weight", s.type, sp.vocab, s.dim, rnd(int64_t{sp.vocab} * s.dim, -0.3f, 0.3f));
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
