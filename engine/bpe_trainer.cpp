#include "engine/bpe_trainer.hpp"

#include <algorithm>
#include <queue>

#include "common/status.hpp"

namespace t2s::engine {

std::string byte_piece(unsigned char b) {
  // GPT-2's bytes_to_unicode: printable Latin-1 bytes map to themselves, the rest to U+0100 onwards in order.
  auto keep = [](int x) { return (x >= 0x21 && x <= 0x7e) || (x >= 0xa1 && x <= 0xac) || (x >= 0xae && x <= 0xff); };
  uint32_t cp = b;
  if (!keep(b)) {
    int n = 0;
    for (int x = 0; x < b; ++x) n += keep(x) ? 0 : 1;
    cp = 256u + static_cast<uint32_t>(n);
  }
  std::string out;
  if (cp < 0x80) {
    out += static_cast<char>(cp);
  } else {  // every mapped code point is below U+0800
    out += static_cast<char>(0xc0 | (cp >> 6));
    out += static_cast<char>(0x80 | (cp & 0x3f));
  }
  return out;
}

std::unique_ptr<ByteLevelBpeTokenizer> BpeVocab::tokenizer() const {
  std::vector<int> special;
  for (size_t i = 0; i < token_types.size(); ++i)
    if (token_types[i] == 3) special.push_back(static_cast<int>(i));
  return std::make_unique<ByteLevelBpeTokenizer>(pieces, merges, bos, eos, std::move(special), PreTokenizer::Gpt2,
                                                 false);
}

BpeTrainer::BpeTrainer(std::vector<std::string> special) : special_(std::move(special)) {
  std::vector<std::string> bytes;
  for (int b = 0; b < 256; ++b) bytes.push_back(byte_piece(static_cast<unsigned char>(b)));
  splitter_ = std::make_unique<ByteLevelBpeTokenizer>(std::move(bytes), std::vector<std::string>{}, -1, -1,
                                                      std::vector<int>{}, PreTokenizer::Gpt2, false);
  for (const auto& s : special_)
    if (s.empty()) throw InputError("BPE trainer: an empty special token");
}

// Calls on_piece(pre_token, -1) for each pre-token and on_piece({}, k) for special token k, in text order,
// splitting at the earliest (then longest) special occurrence exactly as ByteLevelBpeTokenizer::encode does.
template <class F>
void BpeTrainer::split(std::string_view text, F&& on_piece) const {
  size_t i = 0;
  while (i < text.size()) {
    size_t best_pos = std::string_view::npos;
    int best = -1;
    for (size_t k = 0; k < special_.size(); ++k) {
      size_t p = text.find(special_[k], i);
      if (p == std::string_view::npos) continue;
      if (best_pos == std::string_view::npos || p < best_pos ||
          (p == best_pos && special_[k].size() > special_[static_cast<size_t>(best)].size())) {
        best_pos = p;
        best = static_cast<int>(k);
      }
    }
    size_t end = best_pos == std::string_view::npos ? text.size() : best_pos;
    for (const auto& w : splitter_->pre_tokenize(text.substr(i, end - i))) on_piece(std::string_view(w), -1);
    if (best < 0) break;
    on_piece(std::string_view{}, best);
    i = end + special_[static_cast<size_t>(best)].size();
  }
}

void BpeTrainer::add_text(std::string_view text) {
  if (trained_) throw std::logic_error("BpeTrainer::add_text after train()");
  split(text, [&](std::string_view w, int special) {
    if (special >= 0) return;
    auto [it, fresh] = word_index_.try_emplace(std::string(w), words_.size());
    if (fresh) {
      words_.emplace_back(w);
      freq_.push_back(0);
    }
    ++freq_[it->second];
  });
}

namespace {

uint64_t pair_key(int a, int b) { return (static_cast<uint64_t>(static_cast<uint32_t>(a)) << 32) | static_cast<uint32_t>(b); }
int left_of(uint64_t k) { return static_cast<int>(k >> 32); }
int right_of(uint64_t k) { return static_cast<int>(k & 0xffffffffu); }

struct HeapEntry {
  int64_t count;
  uint64_t key;
};

}  // namespace

BpeVocab BpeTrainer::train(const BpeTrainOptions& opt) {
  if (trained_) throw std::logic_error("BpeTrainer::train called twice");
  trained_ = true;
  const int n_special = static_cast<int>(special_.size());
  if (opt.vocab_size < 256 + n_special)
    throw InputError("BPE trainer: vocab_size " + std::to_string(opt.vocab_size) + " is below 256 bytes + " +
                     std::to_string(n_special) + " special tokens");
  BpeVocab v;
  for (int b = 0; b < 256; ++b) v.pieces.push_back(byte_piece(static_cast<unsigned char>(b)));
  std::unordered_map<std::string, int> piece_id;
  for (int b = 0; b < 256; ++b) piece_id.emplace(v.pieces[static_cast<size_t>(b)], b);

  symbols_.assign(words_.size(), {});
  std::unordered_map<uint64_t, int64_t> count;
  std::unordered_map<uint64_t, std::vector<uint32_t>> where;  // pair → words that had it (may hold stale entries)
  for (size_t w = 0; w < words_.size(); ++w) {
    auto& s = symbols_[w];
    for (char c : words_[w]) s.push_back(static_cast<unsigned char>(c));
    for (size_t i = 0; i + 1 < s.size(); ++i) {
      uint64_t k = pair_key(s[i], s[i + 1]);
      count[k] += freq_[w];
      auto& ws = where[k];
      if (ws.empty() || ws.back() != w) ws.push_back(static_cast<uint32_t>(w));
    }
  }
  // The top is the highest count; ties go to the larger (left, right) piece strings, as the reference trainer
  // (tests/reference/bpe_reference.py: max over (count, pair)) breaks them. Strings order as code points do.
  const auto& pieces = v.pieces;
  auto below = [&pieces](const HeapEntry& x, const HeapEntry& y) {
    if (x.count != y.count) return x.count < y.count;
    const auto& xa = pieces[static_cast<size_t>(left_of(x.key))];
    const auto& ya = pieces[static_cast<size_t>(left_of(y.key))];
    if (xa != ya) return xa < ya;
    return pieces[static_cast<size_t>(right_of(x.key))] < pieces[static_cast<size_t>(right_of(y.key))];
  };
  std::vector<HeapEntry> init;
  init.reserve(count.size());
  for (const auto& [k, c] : count) init.push_back({c, k});
  std::priority_queue<HeapEntry, std::vector<HeapEntry>, decltype(below)> heap(below, std::move(init));
  std::vector<uint32_t> seen(words_.size(), 0);
  uint32_t stamp = 0;
  std::unordered_map<uint64_t, int64_t> delta;
  const int target_pieces = opt.vocab_size - n_special;
  while (static_cast<int>(v.pieces.size()) < target_pieces && !heap.empty()) {
    HeapEntry top = heap.top();
    heap.pop();
    auto cit = count.find(top.key);
    if (cit == count.end() || cit->second != top.count) continue;  // stale entry
    if (top.count < opt.min_frequency) break;
    const int a = left_of(top.key), b = right_of(top.key);
    std::string merged = v.pieces[static_cast<size_t>(a)] + v.pieces[static_cast<size_t>(b)];
    v.merges.push_back(v.pieces[static_cast<size_t>(a)] + " " + v.pieces[static_cast<size_t>(b)]);
    auto [pit, fresh] = piece_id.try_emplace(merged, static_cast<int>(v.pieces.size()));
    if (fresh) v.pieces.push_back(merged);
    const int c = pit->second;  // two merge paths can spell the same piece: it keeps one id

    ++stamp;
    delta.clear();
    std::vector<uint32_t> words = std::move(where[top.key]);
    where.erase(top.key);
    for (uint32_t w : words) {
      if (seen[w] == stamp) continue;
      seen[w] = stamp;
      auto& s = symbols_[w];
      const int64_t f = freq_[w];
      bool hit = false;
      for (size_t i = 0; i + 1 < s.size(); ++i) hit = hit || (s[i] == a && s[i + 1] == b);
      if (!hit) continue;
      for (size_t i = 0; i + 1 < s.size(); ++i) delta[pair_key(s[i], s[i + 1])] -= f;
      std::vector<int> out;
      out.reserve(s.size());
      for (size_t i = 0; i < s.size();) {  // left to right, non-overlapping: what rank-order encoding gives
        if (i + 1 < s.size() && s[i] == a && s[i + 1] == b) {
          out.push_back(c);
          i += 2;
        } else {
          out.push_back(s[i++]);
        }
      }
      s = std::move(out);
      for (size_t i = 0; i + 1 < s.size(); ++i) {
        uint64_t k = pair_key(s[i], s[i + 1]);
        delta[k] += f;
        if (s[i] == c || s[i + 1] == c) {
          auto& ws = where[k];
          if (ws.empty() || ws.back() != w) ws.push_back(w);
        }
      }
    }
    count.erase(top.key);
    delta.erase(top.key);
    std::vector<uint64_t> changed;
    for (const auto& [k, d] : delta)
      if (d != 0) changed.push_back(k);
    std::sort(changed.begin(), changed.end());  // the heap's order does not depend on this, but keep it fixed
    for (uint64_t k : changed) {
      int64_t& cnt = count[k];
      cnt += delta[k];
      if (cnt <= 0) {
        count.erase(k);
        continue;
      }
      heap.push({cnt, k});
    }
  }
  for (int k = 0; k < n_special; ++k) {
    special_ids_.push_back(static_cast<int>(v.pieces.size()));
    v.pieces.push_back(special_[static_cast<size_t>(k)]);
  }
  v.token_types.assign(v.pieces.size(), 1);
  for (int id : special_ids_) v.token_types[static_cast<size_t>(id)] = 3;
  for (size_t k = 0; k < special_.size(); ++k) {
    if (special_[k] == "<|bos|>") v.bos = special_ids_[k];
    if (special_[k] == "<|eos|>") v.eos = special_ids_[k];
  }
  return v;
}

std::vector<int> BpeTrainer::segmentation(std::string_view text) const {
  if (!trained_) throw std::logic_error("BpeTrainer::segmentation before train()");
  std::vector<int> out;
  split(text, [&](std::string_view w, int special) {
    if (special >= 0) {
      out.push_back(special_ids_[static_cast<size_t>(special)]);
      return;
    }
    auto it = word_index_.find(std::string(w));
    if (it == word_index_.end()) throw InputError("BPE trainer: segmentation of a word never added");
    const auto& s = symbols_[it->second];
    out.insert(out.end(), s.begin(), s.end());
  });
  return out;
}

}  // namespace t2s::engine
