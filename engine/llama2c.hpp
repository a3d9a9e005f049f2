#pragma once
//! The llama2.c formats: the legacy float32 checkpoint (`stories260K.bin`) and its tokenizer (`tok512.bin`).
#include <memory>
#include <string>
#include <vector>

#include "engine/model.hpp"

namespace t2s::engine {

//! Loads a llama2.c legacy (version 0) checkpoint, memory-mapped.
std::shared_ptr<Model> load_llama2c_checkpoint(const std::string& path);

//! A llama2.c tokenizer file's content: per-token strings and merge scores.
struct Llama2cVocab {
  int max_token_length = 0;            //!< as stored in the header
  std::vector<std::string> pieces;     //!< token strings
  std::vector<float> scores;           //!< merge scores
};
//! Reads a llama2.c tokenizer file with `vocab_size` entries.
Llama2cVocab read_llama2c_vocab(const std::string& path, int vocab_size);

//! Shape of a llama2.c checkpoint to write.
struct Llama2cShape {
  int dim, hidden_dim, n_layers, n_heads, n_kv_heads, vocab_size, seq_len;
  bool shared_classifier = true;  //!< tie the classifier to the embedding
};
//! Writes a llama2.c checkpoint with weights drawn uniformly from [-scale, scale] (seeded; for tests and benches).
void write_random_llama2c_checkpoint(const std::string& path, const Llama2cShape& shape, uint64_t seed,
                                     float scale = 0.05f);
//! Writes a llama2.c tokenizer file: the 3 specials, the 256 `<0xNN>` byte tokens, then synthetic pieces.
void write_synthetic_llama2c_vocab(const std::string& path, int vocab_size);

}  // namespace t2s::engine
