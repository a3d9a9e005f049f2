#include "engine/tokenizer.hpp"

#include <algorithm>
#include <climits>
#include <cstdio>
#include <cstring>
#include <optional>
#include <queue>

#include "common/status.hpp"
#include "engine/llama2c.hpp"

namespace t2s::engine {

namespace {

// Decodes one UTF-8 code point at s[i]; advances i. Invalid bytes come back as themselves (0x80..0xFF).
uint32_t next_codepoint(std::string_view s, size_t& i) {
  auto c = static_cast<unsigned char>(s[i]);
  int len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
  if (len == 0 || i + static_cast<size_t>(len) > s.size()) {
    ++i;
    return c;
  }
  uint32_t cp = len == 1 ? c : len == 2 ? (c & 0x1fu) : len == 3 ? (c & 0x0fu) : (c & 0x07u);
  for (int k = 1; k < len; ++k) {
    auto cc = static_cast<unsigned char>(s[i + static_cast<size_t>(k)]);
    if ((cc & 0xc0) != 0x80) {
      ++i;
      return c;
    }
    cp = (cp << 6) | (cc & 0x3fu);
  }
  i += static_cast<size_t>(len);
  return cp;
}

void append_utf8(std::string& out, uint32_t cp) {
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else if (cp < 0x800) {
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else if (cp < 0x10000) {
    out += static_cast<char>(0xe0 | (cp >> 12));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  } else {
    out += static_cast<char>(0xf0 | (cp >> 18));
    out += static_cast<char>(0x80 | ((cp >> 12) & 0x3f));
    out += static_cast<char>(0x80 | ((cp >> 6) & 0x3f));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
}

bool is_space_cp(uint32_t c) {
  return c == ' ' || (c >= 0x09 && c <= 0x0d) || c == 0x85 || c == 0xa0 || c == 0x1680 ||
         (c >= 0x2000 && c <= 0x200a) || c == 0x2028 || c == 0x2029 || c == 0x202f || c == 0x205f || c == 0x3000;
}
bool is_digit_cp(uint32_t c) { return c >= '0' && c <= '9'; }
// Letters: ASCII letters, and non-ASCII code points outside the common punctuation/symbol/emoji blocks.
// (An approximation of \p{L}; docs/engine.md states it.)
bool is_letter_cp(uint32_t c) {
  if (c < 0x80) return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z');
  if (is_space_cp(c)) return false;
  if (c <= 0xbf) return c == 0xaa || c == 0xb5 || c == 0xba;
  if (c == 0xd7 || c == 0xf7) return false;
  if (c >= 0x2000 && c <= 0x2bff) return false;
  if (c >= 0x3000 && c <= 0x303f) return false;
  if (c >= 0xff00 && c <= 0xff0f) return false;
  if (c >= 0x1f000 && c <= 0x1faff) return false;
  return true;
}

// Greedy adjacent-pair merging in O(n log n): repeatedly merge the adjacent pair of lowest rank, the leftmost among
// equal ranks, until no pair has a rank. A heap holds every adjacent pair (stale entries are skipped by a version
// check) and a linked list the surviving symbols; the heap breaks rank ties by the left symbol's index, which the
// list keeps in text order, so the result is that of rescanning all pairs each round (run.c, GPT-2's bpe()), which
// is quadratic in the text. `rank(a, b)` gives the rank of merging symbol a with its right neighbour b, or nothing;
// `merge(a, b)` folds b into a. Returns the surviving symbols' indices in order.
template <class Rank, class RankFn, class MergeFn>
std::vector<size_t> merge_adjacent(size_t n, RankFn rank, MergeFn merge) {
  constexpr size_t kNone = SIZE_MAX;
  std::vector<size_t> prev(n), next(n);
  std::vector<uint32_t> version(n, 0);
  std::vector<char> alive(n, 1);
  for (size_t i = 0; i < n; ++i) {
    prev[i] = i == 0 ? kNone : i - 1;
    next[i] = i + 1 < n ? i + 1 : kNone;
  }
  struct Entry {
    Rank rank;
    size_t left, right;
    uint32_t left_version, right_version;
  };
  auto after = [](const Entry& x, const Entry& y) {  // priority_queue keeps the greatest on top: invert
    if (y.rank < x.rank) return true;
    if (x.rank < y.rank) return false;
    return x.left > y.left;
  };
  std::priority_queue<Entry, std::vector<Entry>, decltype(after)> heap(after);
  auto push = [&](size_t a, size_t b) {
    if (std::optional<Rank> r = rank(a, b)) heap.push(Entry{*r, a, b, version[a], version[b]});
  };
  for (size_t i = 0; i + 1 < n; ++i) push(i, i + 1);
  while (!heap.empty()) {
    Entry e = heap.top();
    heap.pop();
    if (!alive[e.left] || !alive[e.right] || next[e.left] != e.right || version[e.left] != e.left_version ||
        version[e.right] != e.right_version)
      continue;
    merge(e.left, e.right);
    alive[e.right] = 0;
    ++version[e.left];
    next[e.left] = next[e.right];
    if (next[e.left] != kNone) prev[next[e.left]] = e.left;
    if (prev[e.left] != kNone) push(prev[e.left], e.left);
    if (next[e.left] != kNone) push(e.left, next[e.left]);
  }
  std::vector<size_t> order;
  for (size_t i = n == 0 ? kNone : 0; i != kNone; i = next[i]) order.push_back(i);
  return order;
}

}  // namespace

Tokenizer::Tokenizer(std::vector<std::string> pieces, int bos, int eos)
    : pieces_(std::move(pieces)), bos_(bos), eos_(eos) {
  index_.reserve(pieces_.size());
  for (size_t i = 0; i < pieces_.size(); ++i) index_.emplace(pieces_[i], static_cast<int>(i));
  if (eos_ >= 0) stop_ids_.push_back(eos_);
}

void Tokenizer::add_stop_id(int id) {
  if (id >= 0 && std::find(stop_ids_.begin(), stop_ids_.end(), id) == stop_ids_.end()) stop_ids_.push_back(id);
}

int Tokenizer::find_piece(std::string_view s) const {
  auto it = index_.find(std::string(s));
  return it == index_.end() ? -1 : it->second;
}

std::string Tokenizer::decode_all(const std::vector<int>& tokens) const {
  std::string out;
  int prev = -1;
  for (int t : tokens) {
    if (t != bos_) out += decode(prev, t);
    prev = t;
  }
  return out;
}

// ---------------------------------------------------------------------------------------------------------------

SentencePieceTokenizer::SentencePieceTokenizer(std::vector<std::string> pieces, std::vector<float> scores, int bos,
                                               int eos, bool add_dummy_prefix)
    : Tokenizer(std::move(pieces), bos, eos), scores_(std::move(scores)), add_dummy_prefix_(add_dummy_prefix) {
  if (scores_.size() != pieces_.size()) throw InputError("tokenizer: scores and tokens differ in count");
  char b[8];
  for (int i = 0; i < 256; ++i) {
    std::snprintf(b, sizeof b, "<0x%02X>", i);
    int id = find_piece(b);
    byte_ids_[i] = id >= 0 ? id : (i + 3 < vocab_size() ? i + 3 : 0);
  }
}

std::vector<int> SentencePieceTokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int> tokens;
  if (add_bos && bos_ >= 0) tokens.push_back(bos_);
  std::vector<int> work;
  if (!text.empty() && add_dummy_prefix_) {
    int sp = find_piece(" ");
    if (sp >= 0) work.push_back(sp);
  }
  // One token per code point when it is in the vocabulary, else its bytes (byte fallback).
  for (size_t i = 0; i < text.size();) {
    size_t start = i;
    ++i;
    while (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xc0) == 0x80 && i - start < 4) ++i;
    std::string_view cp = text.substr(start, i - start);
    int id = find_piece(cp);
    if (id >= 0) {
      work.push_back(id);
    } else {
      for (char c : cp) work.push_back(byte_ids_[static_cast<unsigned char>(c)]);
    }
  }
  // Merge the best-scoring adjacent pair until none merges (ties: the leftmost, as run.c, which also never merges
  // a pair scoring -1e10 or less, nor one whose score is NaN).
  std::string buf;
  auto rank = [&](size_t a, size_t b) -> std::optional<float> {
    buf = pieces_[static_cast<size_t>(work[a])];
    buf += pieces_[static_cast<size_t>(work[b])];
    int id = find_piece(buf);
    if (id < 0) return std::nullopt;
    float score = scores_[static_cast<size_t>(id)];
    if (!(score > -1e10f)) return std::nullopt;
    return -score;
  };
  auto merge = [&](size_t a, size_t b) {
    buf = pieces_[static_cast<size_t>(work[a])];
    buf += pieces_[static_cast<size_t>(work[b])];
    work[a] = find_piece(buf);
  };
  std::vector<size_t> order = merge_adjacent<float>(work.size(), rank, merge);
  tokens.reserve(tokens.size() + order.size());
  for (size_t i : order) tokens.push_back(work[i]);
  return tokens;
}

std::string SentencePieceTokenizer::decode(int prev, int token) const {
  if (token < 0 || token >= vocab_size()) return {};
  std::string_view p = pieces_[static_cast<size_t>(token)];
  if (prev == bos_ && bos_ >= 0 && !p.empty() && p[0] == ' ') p.remove_prefix(1);
  unsigned v = 0;
  if (p.size() == 6 && p.substr(0, 3) == "<0x" && p[5] == '>' && std::sscanf(std::string(p).c_str(), "<0x%02X>", &v) == 1)
    return std::string(1, static_cast<char>(v));
  return std::string(p);
}

std::unique_ptr<Tokenizer> load_llama2c_tokenizer(const std::string& path, int vocab_size) {
  Llama2cVocab v = read_llama2c_vocab(path, vocab_size);
  auto tok = std::make_unique<SentencePieceTokenizer>(std::move(v.pieces), std::move(v.scores), 1, 2, true);
  tok->add_stop_id(1);  // run.c: "the BOS (=1) token delimits sequences"
  return tok;
}

// ---------------------------------------------------------------------------------------------------------------

ByteLevelBpeTokenizer::ByteLevelBpeTokenizer(std::vector<std::string> pieces, const std::vector<std::string>& merges,
                                             int bos, int eos, std::vector<int> special, PreTokenizer pre,
                                             bool add_bos_default)
    : Tokenizer(std::move(pieces), bos, eos), special_(std::move(special)), pre_(pre), add_bos_default_(add_bos_default) {
  // GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the rest to U+0100 onwards.
  int n = 0;
  for (int b = 0; b < 256; ++b) {
    bool keep = (b >= 0x21 && b <= 0x7e) || (b >= 0xa1 && b <= 0xac) || (b >= 0xae && b <= 0xff);
    uint32_t cp = keep ? static_cast<uint32_t>(b) : static_cast<uint32_t>(256 + n++);
    append_utf8(byte_to_unicode_[b], cp);
    unicode_to_byte_[cp] = static_cast<uint8_t>(b);
  }
  merge_rank_.reserve(merges.size());
  for (size_t i = 0; i < merges.size(); ++i) merge_rank_.emplace(merges[i], static_cast<int>(i));
  // Longest specials first so "<|im_start|>" wins over a shorter prefix.
  std::sort(special_.begin(), special_.end(),
            [&](int a, int b) { return pieces_[static_cast<size_t>(a)].size() > pieces_[static_cast<size_t>(b)].size(); });
}

std::vector<std::string> ByteLevelBpeTokenizer::pre_tokenize(std::string_view text) const {
  std::vector<uint32_t> cps;
  std::vector<size_t> at;  // byte offset of each code point
  for (size_t i = 0; i < text.size();) {
    at.push_back(i);
    cps.push_back(next_codepoint(text, i));
  }
  at.push_back(text.size());
  const size_t n = cps.size();
  std::vector<std::string> out;
  auto emit = [&](size_t a, size_t b) { out.emplace_back(text.substr(at[a], at[b] - at[a])); };
  auto lower = [](uint32_t c) { return c >= 'A' && c <= 'Z' ? c + 32 : c; };
  const bool ci = pre_ != PreTokenizer::Gpt2;  // Llama-3 and Qwen2 match contractions case-insensitively
  auto contraction = [&](size_t i) -> size_t {
    if (cps[i] != '\'' || i + 1 >= n) return 0;
    uint32_t a = ci ? lower(cps[i + 1]) : cps[i + 1];
    if (a == 's' || a == 't' || a == 'm' || a == 'd') return 2;
    if (i + 2 < n) {
      uint32_t b = ci ? lower(cps[i + 2]) : cps[i + 2];
      if ((a == 'r' && b == 'e') || (a == 'v' && b == 'e') || (a == 'l' && b == 'l')) return 3;
    }
    return 0;
  };
  auto other = [&](uint32_t c) { return !is_space_cp(c) && !is_letter_cp(c) && !is_digit_cp(c); };
  size_t i = 0;
  while (i < n) {
    if (size_t k = contraction(i)) {
      emit(i, i + k);
      i += k;
      continue;
    }
    uint32_t c = cps[i];
    if (pre_ == PreTokenizer::Gpt2) {
      size_t j = i + (c == ' ' && i + 1 < n ? 1 : 0);
      uint32_t d = cps[j];
      if (j < n && (is_letter_cp(d) || is_digit_cp(d) || other(d))) {  // " ?\p{L}+" | " ?\p{N}+" | " ?[^\s\p{L}\p{N}]+"
        auto cls = is_letter_cp(d) ? is_letter_cp : is_digit_cp(d) ? is_digit_cp : nullptr;
        size_t k = j;
        while (k < n && (cls ? cls(cps[k]) : other(cps[k]))) ++k;
        emit(i, k);
        i = k;
        continue;
      }
    } else {
      // "[^\r\n\p{L}\p{N}]?\p{L}+"
      size_t j = i;
      if (!is_letter_cp(c) && !is_digit_cp(c) && c != '\r' && c != '\n' && i + 1 < n && is_letter_cp(cps[i + 1])) j = i + 1;
      if (is_letter_cp(cps[j])) {
        size_t k = j;
        while (k < n && is_letter_cp(cps[k])) ++k;
        emit(i, k);
        i = k;
        continue;
      }
      if (is_digit_cp(c)) {  // "\p{N}" (Qwen2) or "\p{N}{1,3}" (Llama-3)
        size_t k = i + 1;
        if (pre_ == PreTokenizer::Llama3)
          while (k < n && k < i + 3 && is_digit_cp(cps[k])) ++k;
        emit(i, k);
        i = k;
        continue;
      }
      // " ?[^\s\p{L}\p{N}]+[\r\n]*"
      size_t j2 = i + (c == ' ' && i + 1 < n && other(cps[i + 1]) ? 1 : 0);
      if (other(cps[j2])) {
        size_t k = j2;
        while (k < n && other(cps[k])) ++k;
        while (k < n && (cps[k] == '\r' || cps[k] == '\n')) ++k;
        emit(i, k);
        i = k;
        continue;
      }
      // "\s*[\r\n]+"
      {
        size_t k = i, last_nl = SIZE_MAX;
        while (k < n && is_space_cp(cps[k])) {
          if (cps[k] == '\r' || cps[k] == '\n') last_nl = k;
          ++k;
        }
        if (last_nl != SIZE_MAX) {
          emit(i, last_nl + 1);
          i = last_nl + 1;
          continue;
        }
      }
    }
    // "\s+(?!\S)" | "\s+"
    size_t k = i;
    while (k < n && is_space_cp(cps[k])) ++k;
    if (k < n && k - i > 1) --k;  // leave the last space to prefix the next word
    if (k == i) k = i + 1;
    emit(i, k);
    i = k;
  }
  return out;
}

void ByteLevelBpeTokenizer::bpe(const std::string& word, std::vector<int>& out) const {
  std::vector<std::string> parts;
  for (char ch : word) parts.push_back(byte_to_unicode_[static_cast<unsigned char>(ch)]);
  std::string key;
  auto rank = [&](size_t a, size_t b) -> std::optional<int> {
    key = parts[a];
    key += ' ';
    key += parts[b];
    auto it = merge_rank_.find(key);
    if (it == merge_rank_.end()) return std::nullopt;
    return it->second;
  };
  auto merge = [&](size_t a, size_t b) {
    parts[a] += parts[b];
    parts[b].clear();
  };
  std::vector<size_t> order = merge_adjacent<int>(parts.size(), rank, merge);
  for (size_t k : order) {
    const std::string& p = parts[k];
    int id = find_piece(p);
    if (id >= 0) {
      out.push_back(id);
    } else {  // an unmerged piece missing from the vocabulary: fall back to its single-byte tokens
      size_t i = 0;
      while (i < p.size()) {
        size_t s = i;
        uint32_t cp = next_codepoint(p, i);
        int bid = find_piece(p.substr(s, i - s));
        if (bid < 0) throw InputError("byte-level BPE: vocabulary lacks the byte token for U+" + std::to_string(cp));
        out.push_back(bid);
      }
    }
  }
}

std::vector<int> ByteLevelBpeTokenizer::encode(std::string_view text, bool add_bos) const {
  std::vector<int> out;
  if (add_bos && add_bos_default_ && bos_ >= 0) out.push_back(bos_);
  // Each special's next occurrence at or after i, searched again only once i has passed it: linear in the text
  // for each special, however many of them the text holds.
  std::vector<size_t> next_at(special_.size(), 0);
  std::vector<char> searched(special_.size(), 0);
  size_t i = 0;
  while (i < text.size()) {
    // Find the earliest special token occurrence.
    size_t best_pos = std::string_view::npos;
    int best_id = -1;
    for (size_t k = 0; k < special_.size(); ++k) {
      int id = special_[k];
      const std::string& s = pieces_[static_cast<size_t>(id)];
      if (s.empty()) continue;
      if (!searched[k] || (next_at[k] != std::string_view::npos && next_at[k] < i)) {
        next_at[k] = text.find(s, i);
        searched[k] = 1;
      }
      size_t p = next_at[k];
      if (p != std::string_view::npos && (best_pos == std::string_view::npos || p < best_pos)) {
        best_pos = p;
        best_id = id;
      }
    }
    size_t end = best_pos == std::string_view::npos ? text.size() : best_pos;
    for (const auto& w : pre_tokenize(text.substr(i, end - i))) bpe(w, out);
    if (best_id < 0) break;
    out.push_back(best_id);
    i = end + pieces_[static_cast<size_t>(best_id)].size();
  }
  return out;
}

std::string ByteLevelBpeTokenizer::decode(int /*prev*/, int token) const {
  if (token < 0 || token >= vocab_size()) return {};
  const std::string& p = pieces_[static_cast<size_t>(token)];
  if (std::find(special_.begin(), special_.end(), token) != special_.end()) return p;
  std::string out;
  for (size_t i = 0; i < p.size();) {
    size_t s = i;
    uint32_t cp = next_codepoint(p, i);
    auto it = unicode_to_byte_.find(cp);
    if (it != unicode_to_byte_.end()) {
      out += static_cast<char>(it->second);
    } else {
      out.append(p, s, i - s);
    }
  }
  return out;
}

}  // namespace t2s::engine
