#pragma once
//! run.c's SentencePiece encoder, the reference the engine's heap-based merge loop is checked (tests) and timed
//! (bench_tokenizer) against: one token per code point in the vocabulary (else its `<0xNN>` byte tokens), then merge
//! the best-scoring adjacent pair (the leftmost on ties) until none scores above -1e10. Quadratic on purpose.
#include <cstddef>
#include <cstdio>
#include <string>
#include <unordered_map>
#include <vector>

namespace t2s::test {

//! run.c's encoder over one vocabulary (pieces and their scores).
class RunCEncoder {
 public:
  RunCEncoder(const std::vector<std::string>& pieces, const std::vector<float>& scores)
      : pieces_(pieces), scores_(scores) {
    for (size_t i = 0; i < pieces.size(); ++i) index_.emplace(pieces[i], static_cast<int>(i));  // first id wins
  }

  //! The ids run.c gives `text` (a leading " " token as its dummy prefix when the vocabulary has one).
  std::vector<int> encode(const std::string& text) const {
    std::vector<int> work;
    if (!text.empty() && find(" ") >= 0) work.push_back(find(" "));
    for (size_t i = 0; i < text.size();) {
      size_t start = i++;
      while (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xc0) == 0x80 && i - start < 4) ++i;
      std::string cp = text.substr(start, i - start);
      int id = find(cp);
      if (id >= 0) {
        work.push_back(id);
      } else {
        char b[8];
        for (char c : cp) {
          std::snprintf(b, sizeof b, "<0x%02X>", static_cast<unsigned char>(c));
          work.push_back(find(b));
        }
      }
    }
    std::string buf;
    while (true) {
      float best = -1e10f;
      int best_id = -1;
      size_t best_i = 0;
      for (size_t i = 0; i + 1 < work.size(); ++i) {
        buf = pieces_[static_cast<size_t>(work[i])];
        buf += pieces_[static_cast<size_t>(work[i + 1])];
        int id = find(buf);
        if (id >= 0 && scores_[static_cast<size_t>(id)] > best) {
          best = scores_[static_cast<size_t>(id)];
          best_id = id;
          best_i = i;
        }
      }
      if (best_id < 0) break;
      work[best_i] = best_id;
      work.erase(work.begin() + static_cast<std::ptrdiff_t>(best_i) + 1);
    }
    return work;
  }

 private:
  int find(const std::string& s) const {
    auto it = index_.find(s);
    return it == index_.end() ? -1 : it->second;
  }

  const std::vector<std::string>& pieces_;
  const std::vector<float>& scores_;
  std::unordered_map<std::string, int> index_;
};

}  // namespace t2s::test
