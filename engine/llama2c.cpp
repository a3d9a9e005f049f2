#include "engine/llama2c.hpp"

#include <cstdio>
#include <cstring>
#include <fstream>

#include "common/rng.hpp"
#include "common/status.hpp"

namespace t2s::engine {

std::shared_ptr<Model> load_llama2c_checkpoint(const std::string& path) {
  auto file = std::make_shared<MappedFile>(path);
  if (file->size() < 28) throw InputError(path + ": too short for a llama2.c header (28 bytes)");
  int32_t h[7];
  std::memcpy(h, file->data(), sizeof h);
  const char* names[7] = {"dim", "hidden_dim", "n_layers", "n_heads", "n_kv_heads", "vocab_size", "seq_len"};
  for (int i = 0; i < 7; ++i) {
    int v = i == 5 ? std::abs(h[i]) : h[i];
    if (v <= 0 || v > (1 << 24)) throw InputError(path + ": header field " + names[i] + " = " + std::to_string(h[i]) + " is invalid");
  }
  auto model = std::make_shared<Model>();
  model->file = file;
  model->source = path;
  ModelConfig& c = model->config;
  c.arch = "llama";
  c.dim = h[0];
  c.hidden_dim = h[1];
  c.n_layers = h[2];
  c.n_heads = h[3];
  c.n_kv_heads = h[4];
  bool shared = h[5] > 0;
  c.vocab_size = std::abs(h[5]);
  c.max_seq_len = h[6];
  if (c.dim % c.n_heads != 0) throw InputError(path + ": dim is not a multiple of n_heads");
  if (c.n_heads % c.n_kv_heads != 0) throw InputError(path + ": n_heads is not a multiple of n_kv_heads");
  c.head_dim = c.dim / c.n_heads;
  if (c.head_dim % 2 != 0) throw InputError(path + ": head_dim must be even for RoPE");
  c.rope_style = RopeStyle::Interleaved;
  c.llama2c_rope = true;
  c.norm_eps = 1e-5f;

  const int64_t dim = c.dim, hid = c.hidden_dim, L = c.n_layers, kv = c.kv_dim(), V = c.vocab_size;
  // The whole file's size, in long double so that no product of header fields (each up to 2^24) can overflow, is
  // checked before anything is sized from the header: a few bytes claiming millions of layers fail here, not after
  // allocating them (found by fuzz_model_files).
  const long double need =
      28.0L + 4.0L * (static_cast<long double>(V) * dim * (shared ? 1 : 2) +
                      static_cast<long double>(L) * (2.0L * dim + 2.0L * dim * dim + 2.0L * dim * kv + 3.0L * dim * hid) +
                      dim + static_cast<long double>(c.max_seq_len) * c.head_dim);
  if (need > static_cast<long double>(file->size()))
    throw InputError(path + ": truncated: the header (dim " + std::to_string(dim) + ", hidden_dim " +
                     std::to_string(hid) + ", n_layers " + std::to_string(L) + ", vocab_size " + std::to_string(V) +
                     ") needs " + std::to_string(static_cast<double>(need)) + " bytes, the file has " +
                     std::to_string(file->size()));
  size_t off = 28;
  auto take = [&](const char* name, int64_t count) {
    size_t bytes = static_cast<size_t>(count) * 4;
    if (off + bytes > file->size())
      throw InputError(path + ": truncated in tensor " + std::string(name) + " (needs " + std::to_string(off + bytes) +
                       " bytes, file has " + std::to_string(file->size()) + ")");
    const uint8_t* p = file->data() + off;
    off += bytes;
    return p;
  };
  auto mat = [](const uint8_t* p, int64_t rows, int64_t cols) {
    TensorView t;
    t.type = DType::F32;
    t.data = p;
    t.rows = rows;
    t.cols = cols;
    return t;
  };
  model->token_embedding = mat(take("token_embedding", V * dim), V, dim);
  model->layers.resize(static_cast<size_t>(L));
  const uint8_t* rms_att = take("rms_att_weight", L * dim);
  const uint8_t* wq = take("wq", L * dim * dim);
  const uint8_t* wk = take("wk", L * dim * kv);
  const uint8_t* wv = take("wv", L * dim * kv);
  const uint8_t* wo = take("wo", L * dim * dim);
  const uint8_t* rms_ffn = take("rms_ffn_weight", L * dim);
  const uint8_t* w1 = take("w1", L * dim * hid);
  const uint8_t* w2 = take("w2", L * dim * hid);
  const uint8_t* w3 = take("w3", L * dim * hid);
  const uint8_t* rms_final = take("rms_final_weight", dim);
  take("freq_cis_real", int64_t{c.max_seq_len} * c.head_dim / 2);
  take("freq_cis_imag", int64_t{c.max_seq_len} * c.head_dim / 2);
  const uint8_t* wcls = shared ? model->token_embedding.data : take("wcls", V * dim);
  for (int64_t l = 0; l < L; ++l) {
    LayerWeights& w = model->layers[static_cast<size_t>(l)];
    w.attn_norm = reinterpret_cast<const float*>(rms_att) + l * dim;
    w.wq = mat(wq + l * dim * dim * 4, dim, dim);
    w.wk = mat(wk + l * dim * kv * 4, kv, dim);
    w.wv = mat(wv + l * dim * kv * 4, kv, dim);
    w.wo = mat(wo + l * dim * dim * 4, dim, dim);
    w.ffn_norm = reinterpret_cast<const float*>(rms_ffn) + l * dim;
    w.w_gate = mat(w1 + l * dim * hid * 4, hid, dim);
    w.w_down = mat(w2 + l * dim * hid * 4, dim, hid);
    w.w_up = mat(w3 + l * dim * hid * 4, hid, dim);
  }
  model->final_norm = reinterpret_cast<const float*>(rms_final);
  model->classifier = mat(wcls, V, dim);
  if (off != file->size())
    throw InputError(path + ": " + std::to_string(file->size() - off) +
                     " unexpected trailing bytes after the last tensor (header and size disagree)");
  return model;
}

Llama2cVocab read_llama2c_vocab(const std::string& path, int vocab_size) {
  MappedFile f(path);
  Llama2cVocab v;
  size_t off = 0;
  auto rd = [&](void* dst, size_t n, const std::string& what) {
    if (off + n > f.size()) throw InputError(path + ": truncated while reading " + what);
    std::memcpy(dst, f.data() + off, n);
    off += n;
  };
  rd(&v.max_token_length, 4, "max_token_length");
  v.pieces.resize(static_cast<size_t>(vocab_size));
  v.scores.resize(static_cast<size_t>(vocab_size));
  for (int i = 0; i < vocab_size; ++i) {
    std::string what = "token " + std::to_string(i);
    rd(&v.scores[static_cast<size_t>(i)], 4, what + " score");
    int32_t len = 0;
    rd(&len, 4, what + " length");
    if (len < 0 || len > 1 << 16) throw InputError(path + ": " + what + " has invalid length " + std::to_string(len));
    v.pieces[static_cast<size_t>(i)].resize(static_cast<size_t>(len));
    rd(v.pieces[static_cast<size_t>(i)].data(), static_cast<size_t>(len), what + " bytes");
  }
  return v;
}

void write_random_llama2c_checkpoint(const std::string& path, const Llama2cShape& s, uint64_t seed, float scale) {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw InputError("cannot write " + path);
  int32_t h[7] = {s.dim, s.hidden_dim, s.n_layers, s.n_heads, s.n_kv_heads,
                  s.shared_classifier ? s.vocab_size : -s.vocab_size, s.seq_len};
  out.write(reinterpret_cast<const char*>(h), sizeof h);
  Rng rng(seed);
  std::vector<float> buf;
  auto emit = [&](int64_t n, bool norm) {
    buf.resize(static_cast<size_t>(n));
    for (auto& x : buf) x = norm ? static_cast<float>(1.0 + rng.uniform(-0.1, 0.1)) : static_cast<float>(rng.uniform(-scale, scale));
    out.write(reinterpret_cast<const char*>(buf.data()), static_cast<std::streamsize>(buf.size() * 4));
  };
  const int64_t dim = s.dim, hid = s.hidden_dim, L = s.n_layers, V = s.vocab_size;
  const int64_t kv = dim / s.n_heads * s.n_kv_heads, hd = dim / s.n_heads;
  emit(V * dim, false);
  emit(L * dim, true);
  emit(L * dim * dim, false);
  emit(L * dim * kv, false);
  emit(L * dim * kv, false);
  emit(L * dim * dim, false);
  emit(L * dim, true);
  emit(L * dim * hid, false);
  emit(L * dim * hid, false);
  emit(L * dim * hid, false);
  emit(dim, true);
  emit(int64_t{s.seq_len} * hd / 2, false);
  emit(int64_t{s.seq_len} * hd / 2, false);
  if (!s.shared_classifier) emit(V * dim, false);
  if (!out) throw InputError("failed writing " + path);
}

void write_synthetic_llama2c_vocab(const std::string& path, int vocab_size) {
  std::ofstream out(path, std::ios::binary);
  if (!out) throw InputError("cannot write " + path);
  std::vector<std::string> pieces = {"<unk>", "\n<s>\n", "\n</s>\n"};
  char b[16];  // room for any int, so -Wformat-truncation has nothing to say
  for (int i = 0; i < 256 && static_cast<int>(pieces.size()) < vocab_size; ++i) {
    std::snprintf(b, sizeof b, "<0x%02X>", static_cast<unsigned>(i));
    pieces.emplace_back(b);
  }
  // Synthetic multi-letter pieces so decoded random tokens are printable text.
  for (int i = 0; static_cast<int>(pieces.size()) < vocab_size; ++i) {
    std::string p = " ";
    for (int x = i;; x /= 26) {
      p += static_cast<char>('a' + x % 26);
      if (x < 26) break;
    }
    pieces.push_back(p);
  }
  int32_t maxlen = 0;
  for (auto& p : pieces) maxlen = std::max<int32_t>(maxlen, static_cast<int32_t>(p.size()));
  out.write(reinterpret_cast<const char*>(&maxlen), 4);
  for (size_t i = 0; i < pieces.size(); ++i) {
    float score = -static_cast<float>(i);
    auto len = static_cast<int32_t>(pieces[i].size());
    out.write(reinterpret_cast<const char*>(&score), 4);
    out.write(reinterpret_cast<const char*>(&len), 4);
    out.write(pieces[i].data(), len);
  }
  if (!out) throw InputError("failed writing " + path);
}

}  // namespace t2s::engine
