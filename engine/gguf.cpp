#include "engine/gguf.hpp"

#include <algorithm>
#include <cstring>
#include <optional>
#include <fstream>

#include "common/status.hpp"

namespace t2s::engine {

namespace {

class Reader {
 public:
  Reader(const MappedFile& f) : f_(f) {}
  size_t off = 0;
  void need(size_t n, const std::string& what) const {
    if (off + n > f_.size() || off + n < off)
      throw InputError(f_.path() + ": truncated while reading " + what + " at byte " + std::to_string(off));
  }
  template <typename T>
  T pod(const std::string& what) {
    need(sizeof(T), what);
    T v;
    std::memcpy(&v, f_.data() + off, sizeof(T));
    off += sizeof(T);
    return v;
  }
  std::string str(const std::string& what) {
    auto n = pod<uint64_t>(what + " length");
    if (n > (1u << 30)) throw InputError(f_.path() + ": " + what + " has an implausible length " + std::to_string(n));
    need(static_cast<size_t>(n), what);
    std::string s(reinterpret_cast<const char*>(f_.data() + off), static_cast<size_t>(n));
    off += static_cast<size_t>(n);
    return s;
  }
  void scalar(GgufType t, GgufValue& v, const std::string& what) {
    switch (t) {
      case GgufType::U8: v.ints.push_back(pod<uint8_t>(what)); break;
      case GgufType::I8: v.ints.push_back(pod<int8_t>(what)); break;
      case GgufType::U16: v.ints.push_back(pod<uint16_t>(what)); break;
      case GgufType::I16: v.ints.push_back(pod<int16_t>(what)); break;
      case GgufType::U32: v.ints.push_back(pod<uint32_t>(what)); break;
      case GgufType::I32: v.ints.push_back(pod<int32_t>(what)); break;
      case GgufType::U64: v.ints.push_back(static_cast<int64_t>(pod<uint64_t>(what))); break;
      case GgufType::I64: v.ints.push_back(pod<int64_t>(what)); break;
      case GgufType::F32: v.floats.push_back(pod<float>(what)); break;
      case GgufType::F64: v.floats.push_back(pod<double>(what)); break;
      case GgufType::BOOL: v.ints.push_back(pod<uint8_t>(what) != 0); break;
      case GgufType::STRING: v.strings.push_back(str(what)); break;
      default: throw InputError(f_.path() + ": " + what + " has unknown value type " + std::to_string(static_cast<uint32_t>(t)));
    }
  }

 private:
  const MappedFile& f_;
};

bool dtype_from_ggml(uint32_t id, DType& t) {
  switch (id) {
    case 0: t = DType::F32; return true;
    case 1: t = DType::F16; return true;
    case 2: t = DType::Q4_0; return true;
    case 8: t = DType::Q8_0; return true;
    case 30: t = DType::BF16; return true;
    default: return false;
  }
}

}  // namespace

uint32_t ggml_type_id(DType t) {
  switch (t) {
    case DType::F32: return 0;
    case DType::F16: return 1;
    case DType::Q4_0: return 2;
    case DType::Q8_0: return 8;
    case DType::BF16: return 30;
  }
  return 0;
}

const GgufTensor* GgufFile::find(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return &t;
  return nullptr;
}

int64_t GgufFile::get_int(const std::string& key, int64_t def) const {
  auto it = kv.find(key);
  if (it == kv.end()) return def;
  if (!it->second.ints.empty()) return it->second.ints[0];
  if (!it->second.floats.empty()) {
    double f = it->second.floats[0];
    // Only whole numbers in range convert: a NaN or 1e30 cast to an integer is undefined behaviour.
    if (!(f >= -9.0e18 && f <= 9.0e18) || f != static_cast<double>(static_cast<int64_t>(f)))
      throw InputError(file->path() + ": metadata " + key + " is not an integer");
    return static_cast<int64_t>(f);
  }
  throw InputError(file->path() + ": metadata " + key + " is not a number");
}

int64_t GgufFile::require_int(const std::string& key) const {
  if (!kv.count(key)) throw InputError(file->path() + ": missing metadata field " + key);
  return get_int(key, 0);
}

double GgufFile::get_float(const std::string& key, double def) const {
  auto it = kv.find(key);
  if (it == kv.end()) return def;
  if (!it->second.floats.empty()) return it->second.floats[0];
  if (!it->second.ints.empty()) return static_cast<double>(it->second.ints[0]);
  throw InputError(file->path() + ": metadata " + key + " is not a number");
}

std::string GgufFile::get_string(const std::string& key, const std::string& def) const {
  auto it = kv.find(key);
  if (it == kv.end()) return def;
  if (it->second.type != GgufType::STRING || it->second.strings.empty())
    throw InputError(file->path() + ": metadata " + key + " is not a string");
  return it->second.strings[0];
}

GgufFile read_gguf(const std::string& path) {
  GgufFile g;
  g.file = std::make_shared<MappedFile>(path);
  Reader r(*g.file);
  r.need(4, "magic");
  if (std::memcmp(g.file->data(), "GGUF", 4) != 0) throw InputError(path + ": not a GGUF file (bad magic)");
  r.off = 4;
  g.version = r.pod<uint32_t>("version");
  if (g.version != 2 && g.version != 3) throw InputError(path + ": unsupported GGUF version " + std::to_string(g.version));
  auto n_tensors = r.pod<uint64_t>("tensor count");
  auto n_kv = r.pod<uint64_t>("metadata count");
  if (n_tensors > (1u << 20) || n_kv > (1u << 20)) throw InputError(path + ": implausible tensor or metadata count");
  for (uint64_t i = 0; i < n_kv; ++i) {
    std::string key = r.str("metadata key #" + std::to_string(i));
    GgufValue v;
    v.type = static_cast<GgufType>(r.pod<uint32_t>("type of " + key));
    if (v.type == GgufType::ARRAY) {
      v.elem_type = static_cast<GgufType>(r.pod<uint32_t>("element type of " + key));
      auto n = r.pod<uint64_t>("length of " + key);
      if (n > (1u << 26)) throw InputError(path + ": metadata " + key + " has an implausible length");
      for (uint64_t k = 0; k < n; ++k) r.scalar(v.elem_type, v, key);
    } else {
      r.scalar(v.type, v, key);
    }
    g.kv[key] = std::move(v);
  }
  for (uint64_t i = 0; i < n_tensors; ++i) {
    GgufTensor t;
    t.name = r.str("tensor name #" + std::to_string(i));
    auto nd = r.pod<uint32_t>("dimension count of " + t.name);
    if (nd == 0 || nd > 4) throw InputError(path + ": tensor " + t.name + " has " + std::to_string(nd) + " dimensions");
    for (uint32_t d = 0; d < nd; ++d) t.dims.push_back(r.pod<uint64_t>("dimensions of " + t.name));
    t.type = r.pod<uint32_t>("type of " + t.name);
    t.offset = r.pod<uint64_t>("offset of " + t.name);
    g.tensors.push_back(std::move(t));
  }
  uint64_t align = static_cast<uint64_t>(g.get_int("general.alignment", 32));
  if (align == 0 || (align & (align - 1)) != 0) throw InputError(path + ": general.alignment must be a power of two");
  uint64_t data_start = (r.off + align - 1) / align * align;
  for (auto& t : g.tensors) {
    DType dt;
    uint64_t elems = 1;
    for (auto d : t.dims) elems *= d;
    if (dtype_from_ggml(t.type, dt)) {
      if (t.dims[0] % static_cast<uint64_t>(dtype_block_elems(dt)) != 0)
        throw InputError(path + ": tensor " + t.name + " row length is not a multiple of the " + dtype_name(dt) + " block");
      t.bytes = static_cast<size_t>(elems / static_cast<uint64_t>(dtype_block_elems(dt)) * static_cast<uint64_t>(dtype_block_bytes(dt)));
    }
    uint64_t start = data_start + t.offset;
    if (start > g.file->size() || start + t.bytes > g.file->size())
      throw InputError(path + ": tensor " + t.name + " extends past the end of the file (truncated?)");
    t.data = g.file->data() + start;
  }
  return g;
}

std::shared_ptr<Model> load_gguf_model(const std::string& path) { return load_gguf_model(read_gguf(path)); }

std::shared_ptr<Model> load_gguf_model(const GgufFile& g) {
  const std::string& path = g.file->path();
  std::string arch = g.get_string("general.architecture", "");
  if (arch != "llama" && arch != "qwen2")
    throw InputError(path + ": general.architecture '" + arch + "' is not supported (llama, qwen2)");
  auto m = std::make_shared<Model>();
  m->file = g.file;
  m->source = path;
  ModelConfig& c = m->config;
  c.arch = arch;
  // Every number is range-checked before it sizes anything: a 3 KB file claiming 4 M layers allocated 1 GB, and
  // 2^32 + 1 layers read as 1 through a narrowing cast.
  auto field = [&](const std::string& key, std::optional<int64_t> def, int64_t lo, int64_t hi) {
    int64_t v = def ? g.get_int(key, *def) : g.require_int(key);
    if (v < lo || v > hi)
      throw InputError(path + ": metadata " + key + " = " + std::to_string(v) + " is outside [" + std::to_string(lo) +
                       ", " + std::to_string(hi) + "]");
    return static_cast<int>(v);
  };
  auto positive_real = [&](const std::string& key, double def, double hi) {
    double v = g.get_float(key, def);
    if (!(v > 0 && v <= hi))  // false for NaN too
      throw InputError(path + ": metadata " + key + " = " + std::to_string(v) + " is not a number in (0, " +
                       std::to_string(hi) + "]");
    return static_cast<float>(v);
  };
  c.dim = field(arch + ".embedding_length", std::nullopt, 1, 1 << 20);
  c.hidden_dim = field(arch + ".feed_forward_length", std::nullopt, 1, 1 << 22);
  c.n_layers = field(arch + ".block_count", std::nullopt, 1, 4096);
  c.n_heads = field(arch + ".attention.head_count", std::nullopt, 1, 4096);
  c.n_kv_heads = field(arch + ".attention.head_count_kv", c.n_heads, 1, 4096);
  c.max_seq_len = field(arch + ".context_length", 2048, 1, 1 << 24);
  c.rope_theta = positive_real(arch + ".rope.freq_base", 10000.0, 1e12);
  c.norm_eps = positive_real(arch + ".attention.layer_norm_rms_epsilon", 1e-5, 1.0);
  // Every layer has tensors: refuse a layer count the file cannot hold before allocating per-layer state.
  if (g.tensors.size() < static_cast<size_t>(c.n_layers))
    throw InputError(path + ": metadata " + arch + ".block_count = " + std::to_string(c.n_layers) +
                     " but the file has only " + std::to_string(g.tensors.size()) + " tensors");
  c.rope_style = arch == "qwen2" ? RopeStyle::Neox : RopeStyle::Interleaved;
  if (c.n_heads <= 0 || c.n_kv_heads <= 0 || c.n_heads % c.n_kv_heads != 0)
    throw InputError(path + ": attention.head_count must be a positive multiple of attention.head_count_kv");
  c.head_dim = field(arch + ".attention.key_length", c.dim / c.n_heads, 0, 1 << 16);
  if (c.dim <= 0 || c.hidden_dim <= 0 || c.n_layers <= 0 || c.head_dim <= 0 || c.head_dim % 2 != 0 || c.max_seq_len <= 0)
    throw InputError(path + ": inconsistent model dimensions in the metadata");
  const GgufTensor* emb = g.find("token_embd.weight");
  if (!emb) throw InputError(path + ": missing tensor token_embd.weight");
  c.vocab_size = static_cast<int>(emb->dims.size() > 1 ? emb->dims[1] : 0);

  auto matrix = [&](const std::string& name, int64_t rows, int64_t cols) {
    const GgufTensor* t = g.find(name);
    if (!t) throw InputError(path + ": missing tensor " + name);
    DType dt;
    if (!dtype_from_ggml(t->type, dt))
      throw InputError(path + ": tensor " + name + " has unsupported type id " + std::to_string(t->type) +
                       " (supported: F32, F16, BF16, Q8_0, Q4_0)");
    uint64_t r = t->dims.size() > 1 ? t->dims[1] : 1;
    if (t->dims[0] != static_cast<uint64_t>(cols) || r != static_cast<uint64_t>(rows) || t->dims.size() > 2)
      throw InputError(path + ": tensor " + name + " has shape [" + std::to_string(t->dims[0]) + ", " + std::to_string(r) +
                       "], expected [" + std::to_string(cols) + ", " + std::to_string(rows) + "]");
    TensorView v;
    v.type = dt;
    v.data = t->data;
    v.rows = rows;
    v.cols = cols;
    return v;
  };
  auto vec = [&](const std::string& name, int64_t n, bool required) -> const float* {
    if (!required && !g.find(name)) return nullptr;
    TensorView v = matrix(name, 1, n);
    if (v.type == DType::F32 && reinterpret_cast<uintptr_t>(v.data) % alignof(float) == 0)
      return reinterpret_cast<const float*>(v.data);
    m->owned.emplace_back(static_cast<size_t>(n));
    dequantize_row(v.type, v.data, m->owned.back().data(), n);
    return m->owned.back().data();
  };
  const int64_t dim = c.dim, qd = c.q_dim(), kvd = c.kv_dim(), hid = c.hidden_dim, V = c.vocab_size;
  m->token_embedding = matrix("token_embd.weight", V, dim);
  m->layers.resize(static_cast<size_t>(c.n_layers));
  for (int l = 0; l < c.n_layers; ++l) {
    std::string p = "blk." + std::to_string(l) + ".";
    LayerWeights& w = m->layers[static_cast<size_t>(l)];
    w.attn_norm = vec(p + "attn_norm.weight", dim, true);
    w.wq = matrix(p + "attn_q.weight", qd, dim);
    w.wk = matrix(p + "attn_k.weight", kvd, dim);
    w.wv = matrix(p + "attn_v.weight", kvd, dim);
    w.wo = matrix(p + "attn_output.weight", dim, qd);
    w.bq = vec(p + "attn_q.bias", qd, false);
    w.bk = vec(p + "attn_k.bias", kvd, false);
    w.bv = vec(p + "attn_v.bias", kvd, false);
    w.ffn_norm = vec(p + "ffn_norm.weight", dim, true);
    w.w_gate = matrix(p + "ffn_gate.weight", hid, dim);
    w.w_down = matrix(p + "ffn_down.weight", dim, hid);
    w.w_up = matrix(p + "ffn_up.weight", hid, dim);
  }
  m->final_norm = vec("output_norm.weight", dim, true);
  m->classifier = g.find("output.weight") ? matrix("output.weight", V, dim) : m->token_embedding;
  if (const float* f = vec("rope_freqs.weight", c.head_dim / 2, false)) m->rope_freq_factors.assign(f, f + c.head_dim / 2);
  return m;
}

std::unique_ptr<Tokenizer> load_gguf_tokenizer(const GgufFile& g) {
  const std::string& path = g.file->path();
  std::string kind = g.get_string("tokenizer.ggml.model", "");
  auto it = g.kv.find("tokenizer.ggml.tokens");
  if (it == g.kv.end() || it->second.strings.empty()) throw InputError(path + ": missing metadata tokenizer.ggml.tokens");
  std::vector<std::string> pieces = it->second.strings;
  // Token ids index the vocabulary: -1 (none) or a valid id, else the field is named (not an internal error later).
  auto token_id = [&](const std::string& key) {
    int64_t v = g.get_int(key, -1);
    if (v < -1 || v >= static_cast<int64_t>(pieces.size()))
      throw InputError(path + ": metadata " + key + " = " + std::to_string(v) + " is not a token id (vocabulary of " +
                       std::to_string(pieces.size()) + ")");
    return static_cast<int>(v);
  };
  int bos = token_id("tokenizer.ggml.bos_token_id");
  int eos = token_id("tokenizer.ggml.eos_token_id");
  int eot = token_id("tokenizer.ggml.eot_token_id");
  std::vector<int64_t> types;
  if (auto t = g.kv.find("tokenizer.ggml.token_type"); t != g.kv.end()) types = t->second.ints;
  std::unique_ptr<Tokenizer> tok;
  if (kind == "llama") {
    std::vector<float> scores(pieces.size(), 0.0f);
    if (auto s = g.kv.find("tokenizer.ggml.scores"); s != g.kv.end()) {
      if (s->second.floats.size() != pieces.size())
        throw InputError(path + ": tokenizer.ggml.scores has " + std::to_string(s->second.floats.size()) +
                         " entries for " + std::to_string(pieces.size()) + " tokens");
      for (size_t i = 0; i < pieces.size(); ++i) scores[i] = static_cast<float>(s->second.floats[i]);
    }
    const std::string marker = "\xe2\x96\x81";  // U+2581 "▁"
    for (auto& p : pieces) {
      std::string plain;
      for (size_t pos = 0; pos < p.size();) {
        size_t hit = p.find(marker, pos);
        plain.append(p, pos, hit == std::string::npos ? std::string::npos : hit - pos);
        if (hit == std::string::npos) break;
        plain += ' ';
        pos = hit + marker.size();
      }
      p = std::move(plain);
    }
    bool prefix = g.get_int("tokenizer.ggml.add_space_prefix", 1) != 0;
    tok = std::make_unique<SentencePieceTokenizer>(std::move(pieces), std::move(scores), bos, eos, prefix);
  } else if (kind == "gpt2") {
    auto mg = g.kv.find("tokenizer.ggml.merges");
    if (mg == g.kv.end()) throw InputError(path + ": missing metadata tokenizer.ggml.merges");
    std::vector<int> special;
    for (size_t i = 0; i < types.size() && i < pieces.size(); ++i)
      if (types[i] == 3 || types[i] == 4) special.push_back(static_cast<int>(i));
    std::string pre = g.get_string("tokenizer.ggml.pre", "gpt2");
    PreTokenizer pt = pre == "qwen2" ? PreTokenizer::Qwen2
                      : (pre == "llama-bpe" || pre == "llama3" || pre == "llama-v3") ? PreTokenizer::Llama3
                                                                                      : PreTokenizer::Gpt2;
    bool add_bos = g.get_int("tokenizer.ggml.add_bos_token", pt == PreTokenizer::Llama3 ? 1 : 0) != 0;
    tok = std::make_unique<ByteLevelBpeTokenizer>(std::move(pieces), mg->second.strings, bos, eos, std::move(special), pt, add_bos);
  } else {
    throw InputError(path + ": tokenizer.ggml.model '" + kind + "' is not supported (llama, gpt2)");
  }
  tok->add_stop_id(eot);
  for (const char* s : {"<|im_end|>", "<|eot_id|>", "<|endoftext|>", "<|end_of_text|>"}) tok->add_stop_id(tok->find_piece(s));
  return tok;
}

// ---------------------------------------------------------------------------------------------------------------

namespace {
template <typename T>
void put(std::vector<uint8_t>& b, T v) {
  const auto* p = reinterpret_cast<const uint8_t*>(&v);
  b.insert(b.end(), p, p + sizeof(T));
}
void put_str(std::vector<uint8_t>& b, const std::string& s) {
  put<uint64_t>(b, s.size());
  b.insert(b.end(), s.begin(), s.end());
}
}  // namespace

void GgufWriter::add_string(const std::string& key, const std::string& v) {
  put_str(meta_, key);
  put<uint32_t>(meta_, 8);
  put_str(meta_, v);
  ++kv_count_;
}
void GgufWriter::add_u32(const std::string& key, uint32_t v) {
  put_str(meta_, key);
  put<uint32_t>(meta_, 4);
  put<uint32_t>(meta_, v);
  ++kv_count_;
}
void GgufWriter::add_u64(const std::string& key, uint64_t v) {
  put_str(meta_, key);
  put<uint32_t>(meta_, 10);
  put<uint64_t>(meta_, v);
  ++kv_count_;
}
void GgufWriter::add_f32(const std::string& key, float v) {
  put_str(meta_, key);
  put<uint32_t>(meta_, 6);
  put<float>(meta_, v);
  ++kv_count_;
}
void GgufWriter::add_bool(const std::string& key, bool v) {
  put_str(meta_, key);
  put<uint32_t>(meta_, 7);
  put<uint8_t>(meta_, v ? 1 : 0);
  ++kv_count_;
}
void GgufWriter::add_strings(const std::string& key, const std::vector<std::string>& v) {
  put_str(meta_, key);
  put<uint32_t>(meta_, 9);
  put<uint32_t>(meta_, 8);
  put<uint64_t>(meta_, v.size());
  for (auto& s : v) put_str(meta_, s);
  ++kv_count_;
}
void GgufWriter::add_f32s(const std::string& key, const std::vector<float>& v) {
  put_str(meta_, key);
  put<uint32_t>(meta_, 9);
  put<uint32_t>(meta_, 6);
  put<uint64_t>(meta_, v.size());
  for (float f : v) put<float>(meta_, f);
  ++kv_count_;
}
void GgufWriter::add_i32s(const std::string& key, const std::vector<int32_t>& v) {
  put_str(meta_, key);
  put<uint32_t>(meta_, 9);
  put<uint32_t>(meta_, 5);
  put<uint64_t>(meta_, v.size());
  for (int32_t x : v) put<int32_t>(meta_, x);
  ++kv_count_;
}

void GgufWriter::add_tensor(const std::string& name, DType type, int64_t rows, int64_t cols, const float* data) {
  Tensor t;
  t.name = name;
  t.dims = rows == 1 ? std::vector<uint64_t>{static_cast<uint64_t>(cols)}
                     : std::vector<uint64_t>{static_cast<uint64_t>(cols), static_cast<uint64_t>(rows)};
  t.type = ggml_type_id(type);
  t.bytes.resize(dtype_row_bytes(type, cols) * static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) {
    const float* src = data + r * cols;
    uint8_t* dst = t.bytes.data() + static_cast<size_t>(r) * dtype_row_bytes(type, cols);
    switch (type) {
      case DType::F32: std::memcpy(dst, src, static_cast<size_t>(cols) * 4); break;
      case DType::F16:
        for (int64_t i = 0; i < cols; ++i) {
          uint16_t h = fp32_to_fp16(src[i]);
          std::memcpy(dst + 2 * i, &h, 2);
        }
        break;
      case DType::BF16:
        for (int64_t i = 0; i < cols; ++i) {
          uint16_t h = fp32_to_bf16(src[i]);
          std::memcpy(dst + 2 * i, &h, 2);
        }
        break;
      case DType::Q8_0: quantize_row_q8_0(src, dst, cols); break;
      case DType::Q4_0: quantize_row_q4_0(src, dst, cols); break;
    }
  }
  tensors_.push_back(std::move(t));
}

void GgufWriter::write(const std::string& path) const {
  std::vector<uint8_t> out;
  out.insert(out.end(), {'G', 'G', 'U', 'F'});
  put<uint32_t>(out, 3);
  put<uint64_t>(out, tensors_.size());
  put<uint64_t>(out, kv_count_);
  out.insert(out.end(), meta_.begin(), meta_.end());
  uint64_t offset = 0;
  std::vector<uint64_t> offsets;
  for (const auto& t : tensors_) {
    put_str(out, t.name);
    put<uint32_t>(out, static_cast<uint32_t>(t.dims.size()));
    for (auto d : t.dims) put<uint64_t>(out, d);
    put<uint32_t>(out, t.type);
    put<uint64_t>(out, offset);
    offsets.push_back(offset);
    offset += (t.bytes.size() + 31) / 32 * 32;
  }
  while (out.size() % 32) out.push_back(0);
  for (const auto& t : tensors_) {
    out.insert(out.end(), t.bytes.begin(), t.bytes.end());
    while (out.size() % 32) out.push_back(0);
  }
  std::ofstream f(path, std::ios::binary);
  f.write(reinterpret_cast<const char*>(out.data()), static_cast<std::streamsize>(out.size()));
  if (!f) throw InputError("failed writing " + path);
}

}  // namespace t2s::engine
