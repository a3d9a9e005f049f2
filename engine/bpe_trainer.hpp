#pragma once
//! A byte-level BPE trainer producing a GPT-2-format vocabulary (pieces, ranked merges, token types) that the
//! engine's ByteLevelBpeTokenizer loads; pre-tokenization is the engine's own Gpt2 splitter, so the encoder
//! segments training text exactly as the trainer did.
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "engine/tokenizer.hpp"

namespace t2s::engine {

//! How far to train.
struct BpeTrainOptions {
  int vocab_size = 2048;   //!< total tokens: 256 bytes + merges + special tokens
  int64_t min_frequency = 2;  //!< stop when the most frequent pair occurs fewer times than this
};

//! A trained vocabulary in the GGUF `gpt2` tokenizer layout.
struct BpeVocab {
  std::vector<std::string> pieces;  //!< byte-to-unicode mapped strings: 256 bytes, merged pieces, special tokens
  std::vector<std::string> merges;  //!< "left right" in rank order
  std::vector<int> token_types;     //!< GGUF token types: 1 normal, 3 control (special)
  int bos = -1, eos = -1;           //!< ids of "<|bos|>" / "<|eos|>" when they are among the specials
  //! The engine tokenizer over this vocabulary (Gpt2 pre-tokenizer, no automatic BOS).
  std::unique_ptr<ByteLevelBpeTokenizer> tokenizer() const;
};

//! Counts pre-tokens of added texts, then learns merges by frequency (ties: the larger left piece string, then
//! the larger right one, as tests/reference/bpe_reference.py) with incremental pair-count updates.
class BpeTrainer {
 public:
  //! `special` tokens are matched verbatim in text (never merged into) and get the last ids.
  explicit BpeTrainer(std::vector<std::string> special = {"<|bos|>", "<|eos|>"});
  //! Adds one text (its special tokens are split out as the encoder does).
  void add_text(std::string_view text);
  //! Learns the vocabulary; call once, after every add_text.
  BpeVocab train(const BpeTrainOptions& options);
  //! After train(): the ids the trainer's own final segmentation gives `text` (every pre-token of it must have
  //! been added); the encoder must produce the same.
  std::vector<int> segmentation(std::string_view text) const;
  //! Distinct pre-tokens counted so far.
  size_t distinct_words() const { return word_index_.size(); }

 private:
  template <class F>
  void split(std::string_view text, F&& on_piece) const;
  std::vector<std::string> special_;
  std::unique_ptr<ByteLevelBpeTokenizer> splitter_;  // bytes only: its pre_tokenize and byte mapping
  std::unordered_map<std::string, size_t> word_index_;
  std::vector<std::string> words_;
  std::vector<int64_t> freq_;
  std::vector<std::vector<int>> symbols_;  // per word, after train()
  std::vector<int> special_ids_;
  bool trained_ = false;
};

//! GPT-2's byte → printable code point mapping as UTF-8 (the piece of byte `b`).
std::string byte_piece(unsigned char b);

}  // namespace t2s::engine
