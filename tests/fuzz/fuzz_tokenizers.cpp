// Both tokenizers on arbitrary text: byte-level BPE must round-trip every byte string exactly, SentencePiece must
// round-trip its text behind the dummy-prefix space; ids stay inside the vocabulary.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "engine/tokenizer.hpp"

namespace {

using namespace t2s::engine;

std::string byte_unicode(int b) {
  static int extra[256] = {};
  static bool init = false;
  if (!init) {
    int n = 0;
    for (int i = 0; i < 256; ++i) {
      bool keep = (i >= 0x21 && i <= 0x7e) || (i >= 0xa1 && i <= 0xac) || (i >= 0xae && i <= 0xff);
      extra[i] = keep ? i : 256 + n++;
    }
    init = true;
  }
  uint32_t cp = static_cast<uint32_t>(extra[b]);
  std::string u;
  if (cp < 0x80) {
    u += static_cast<char>(cp);
  } else {
    u += static_cast<char>(0xc0 | (cp >> 6));
    u += static_cast<char>(0x80 | (cp & 0x3f));
  }
  return u;
}

// A small byte-level vocabulary with merges of common SQL pieces and three specials.
std::unique_ptr<ByteLevelBpeTokenizer> byte_level() {
  std::vector<std::string> pieces;
  for (int b = 0; b < 256; ++b) pieces.push_back(byte_unicode(b));
  std::vector<std::string> merges;
  auto g = byte_unicode(' ');
  for (auto [a, b] : std::vector<std::pair<std::string, std::string>>{
           {"S", "E"}, {"SE", "L"}, {"SEL", "E"}, {"SELE", "C"}, {"SELEC", "T"}, {g, "SELECT"}, {"a", "a"},
           {"aa", "aa"}, {"e", "s"}, {"1", "2"}, {g, "a"}, {"f", "r"}, {"fr", "o"}, {"fro", "m"}}) {
    merges.push_back(a + " " + b);
    pieces.push_back(a + b);
  }
  std::vector<int> special;
  for (const char* s : {"<|endoftext|>", "<|im_start|>", "<|im_end|>"}) {
    special.push_back(static_cast<int>(pieces.size()));
    pieces.emplace_back(s);
  }
  return std::make_unique<ByteLevelBpeTokenizer>(pieces, merges, -1, special.back(), special, PreTokenizer::Qwen2,
                                                 false);
}

// A SentencePiece vocabulary: byte pieces, letters, a few merges with tied scores.
std::unique_ptr<SentencePieceTokenizer> sentence_piece() {
  std::vector<std::string> pieces = {"<unk>", "<s>", "</s>"};
  char b[8];
  for (int i = 0; i < 256; ++i) {
    std::snprintf(b, sizeof b, "<0x%02X>", i);
    pieces.emplace_back(b);
  }
  for (const char* p : {" ", "a", "b", "c", "ab", "bc", "abc", " a", " ab", "aa", "aaa", "aaaa"}) pieces.emplace_back(p);
  std::vector<float> scores(pieces.size());
  for (size_t i = 0; i < scores.size(); ++i) scores[i] = static_cast<float>(i % 3);
  return std::make_unique<SentencePieceTokenizer>(pieces, scores, 1, 2, true);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const auto bl = byte_level();
  static const auto sp = sentence_piece();
  std::string text(reinterpret_cast<const char*>(data), size);
  auto ids = bl->encode(text, false);
  for (int id : ids)
    if (id < 0 || id >= bl->vocab_size()) std::abort();
  if (bl->decode_all(ids) != text) std::abort();
  auto sids = sp->encode(text, false);
  for (int id : sids)
    if (id < 0 || id >= sp->vocab_size()) std::abort();
  if (!text.empty() && sp->decode_all(sids) != " " + text) std::abort();
  return 0;
}
