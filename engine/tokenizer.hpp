#pragma once
//! Tokenizers: SentencePiece-style score-merged BPE (llama2.c, GGUF "llama") and GPT-2 byte-level BPE (GGUF "gpt2").
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace t2s::engine {

//! Text ↔ token ids. Immutable after construction, safe to share between threads.
class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  //! Token ids for `text`, with the BOS id first when `add_bos` (and the model has one).
  virtual std::vector<int> encode(std::string_view text, bool add_bos) const = 0;
  //! The bytes that token `token` contributes when it follows `prev` (-1 at the start).
  virtual std::string decode(int prev, int token) const = 0;
  //! Concatenated decode of a sequence; BOS tokens contribute nothing.
  std::string decode_all(const std::vector<int>& tokens) const;
  //! Vocabulary size.
  int vocab_size() const { return static_cast<int>(pieces_.size()); }
  //! Beginning-of-sequence id, or -1.
  int bos_id() const { return bos_; }
  //! End-of-sequence id, or -1.
  int eos_id() const { return eos_; }
  //! Ids that end generation (EOS, end-of-turn tokens, or BOS for llama2.c compatibility).
  const std::vector<int>& stop_ids() const { return stop_ids_; }
  //! Adds an id that ends generation.
  void add_stop_id(int id);
  //! The stored string of token `id` (internal form: "▁" already mapped to " " for SentencePiece).
  const std::string& piece(int id) const { return pieces_.at(static_cast<size_t>(id)); }
  //! Id of the exact piece `s`, or -1.
  int find_piece(std::string_view s) const;

 protected:
  Tokenizer(std::vector<std::string> pieces, int bos, int eos);
  std::vector<std::string> pieces_;
  std::unordered_map<std::string, int> index_;
  int bos_ = -1, eos_ = -1;
  std::vector<int> stop_ids_;
};

//! SentencePiece-style BPE: repeatedly merge the adjacent pair whose merged piece has the highest score
//! (the llama2.c `run.c` algorithm), with a dummy-prefix space and `<0xNN>` byte fallback.
class SentencePieceTokenizer : public Tokenizer {
 public:
  //! `pieces` use " " for spaces (a GGUF "▁" is converted by the loader); `scores` has one entry per piece.
  SentencePieceTokenizer(std::vector<std::string> pieces, std::vector<float> scores, int bos, int eos,
                         bool add_dummy_prefix = true);
  std::vector<int> encode(std::string_view text, bool add_bos) const override;
  std::string decode(int prev, int token) const override;

 private:
  std::vector<float> scores_;
  bool add_dummy_prefix_;
  int byte_ids_[256];
};

//! Pre-tokenizer regex family of a byte-level BPE vocabulary.
enum class PreTokenizer { Gpt2, Llama3, Qwen2 };

//! GPT-2 byte-level BPE: bytes mapped to printable code points, split by the pre-tokenizer, merged by rank.
//! Special tokens (control / user-defined types) are matched verbatim before splitting.
class ByteLevelBpeTokenizer : public Tokenizer {
 public:
  //! `merges` are "left right" strings in rank order; `special` lists ids matched verbatim in text.
  ByteLevelBpeTokenizer(std::vector<std::string> pieces, const std::vector<std::string>& merges, int bos, int eos,
                        std::vector<int> special, PreTokenizer pre, bool add_bos_default);
  std::vector<int> encode(std::string_view text, bool add_bos) const override;
  std::string decode(int prev, int token) const override;
  //! Splits `text` into pre-tokens (exposed for tests).
  std::vector<std::string> pre_tokenize(std::string_view text) const;

 private:
  void bpe(const std::string& word, std::vector<int>& out) const;
  std::unordered_map<std::string, int> merge_rank_;
  std::vector<int> special_;
  PreTokenizer pre_;
  bool add_bos_default_;
  std::string byte_to_unicode_[256];
  std::unordered_map<uint32_t, uint8_t> unicode_to_byte_;
};

//! Loads a llama2.c tokenizer file (`tok512.bin`) for a model with `vocab_size` tokens; BOS=1, EOS=2, and BOS
//! also stops generation as in run.c.
std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path, int vocab_size);

}  // namespace t2s::engine
