// Trained weights → a GGUF "llama" file with a byte-level BPE ("gpt2") tokenizer, read by the engine's loaders.
#include "common/status.hpp"
#include "engine/gguf.hpp"
#include "engine/train/train.hpp"

namespace t2s::engine::train {

void export_gguf(const Weights& w, const GgufTokenizerSpec& tok, const std::string& path, DType dtype) {
  const ModelConfig& c = w.config;
  if (dtype != DType::F32 && dtype != DType::F16 && dtype != DType::Q8_0)
    throw InputError(std::string("export_gguf: type ") + dtype_name(dtype) + " is not supported (F32, F16, Q8_0)");
  if (tok.pieces.size() != static_cast<size_t>(c.vocab_size))
    throw InputError("export_gguf: the tokenizer has " + std::to_string(tok.pieces.size()) + " pieces but the model's vocabulary is " +
                     std::to_string(c.vocab_size));
  if (!tok.token_types.empty() && tok.token_types.size() != tok.pieces.size())
    throw InputError("export_gguf: token_types must be empty or one per piece");
  for (const auto& t : w.tensors)
    if (t.rows > 1 && t.cols % dtype_block_elems(dtype) != 0)
      throw InputError("export_gguf: " + t.name + " has " + std::to_string(t.cols) + " columns, not a multiple of the " +
                       dtype_name(dtype) + " block of " + std::to_string(dtype_block_elems(dtype)));
  GgufWriter g;
  g.add_string("general.architecture", "llama");
  g.add_string("general.name", "t2s");
  g.add_u32("llama.context_length", static_cast<uint32_t>(c.max_seq_len));
  g.add_u32("llama.embedding_length", static_cast<uint32_t>(c.dim));
  g.add_u32("llama.feed_forward_length", static_cast<uint32_t>(c.hidden_dim));
  g.add_u32("llama.block_count", static_cast<uint32_t>(c.n_layers));
  g.add_u32("llama.attention.head_count", static_cast<uint32_t>(c.n_heads));
  g.add_u32("llama.attention.head_count_kv", static_cast<uint32_t>(c.n_kv_heads));
  g.add_u32("llama.attention.key_length", static_cast<uint32_t>(c.head_dim));
  g.add_u32("llama.attention.value_length", static_cast<uint32_t>(c.head_dim));
  g.add_u32("llama.rope.dimension_count", static_cast<uint32_t>(c.head_dim));
  g.add_f32("llama.rope.freq_base", c.rope_theta);
  g.add_f32("llama.attention.layer_norm_rms_epsilon", c.norm_eps);
  g.add_u32("llama.vocab_size", static_cast<uint32_t>(c.vocab_size));
  g.add_string("tokenizer.ggml.model", "gpt2");
  g.add_string("tokenizer.ggml.pre", tok.pre);
  g.add_strings("tokenizer.ggml.tokens", tok.pieces);
  std::vector<int32_t> types(tok.pieces.size(), 1);
  for (size_t i = 0; i < tok.token_types.size(); ++i) types[i] = tok.token_types[i];
  g.add_i32s("tokenizer.ggml.token_type", types);
  g.add_strings("tokenizer.ggml.merges", tok.merges);
  if (tok.bos_id >= 0) g.add_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(tok.bos_id));
  if (tok.eos_id >= 0) g.add_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(tok.eos_id));
  g.add_bool("tokenizer.ggml.add_bos_token", tok.add_bos);
  // The trainer rotates adjacent pairs exactly as the engine does for "llama" files, so q/k need no permutation.
  for (const auto& t : w.tensors)
    g.add_tensor(t.name, t.rows == 1 ? DType::F32 : dtype, t.rows, t.cols, w.data.data() + t.offset);
  g.write(path);
}

}  // namespace t2s::engine::train
