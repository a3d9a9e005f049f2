#include "engine/block_manager.hpp"

#include <algorithm>
#include <stdexcept>

#include "engine/backend.hpp"

namespace t2s::engine {

BlockManager::BlockManager(int num_blocks, bool prefix_caching)
    : refs_(static_cast<size_t>(num_blocks), 0),
      hash_(static_cast<size_t>(num_blocks), 0),
      has_hash_(static_cast<size_t>(num_blocks), 0),
      tokens_(static_cast<size_t>(num_blocks) * kKvBlockSize, 0),
      prev_(static_cast<size_t>(num_blocks), -1),
      next_(static_cast<size_t>(num_blocks), -1),
      prefix_caching_(prefix_caching) {
  free_.reserve(static_cast<size_t>(num_blocks));
  for (int b = num_blocks - 1; b >= 0; --b) free_.push_back(b);
  num_free_ = num_blocks;
}

uint64_t BlockManager::chain_hash(uint64_t parent, std::span<const int> tokens) {
  // FNV-1a over the parent hash and the token ids, then a final avalanche (splitmix64).
  uint64_t h = 0xcbf29ce484222325ULL ^ parent;
  auto mix = [&](uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      h ^= (v >> (8 * i)) & 0xff;
      h *= 0x100000001b3ULL;
    }
  };
  mix(parent);
  for (int t : tokens) mix(static_cast<uint32_t>(t));
  h ^= h >> 30;
  h *= 0xbf58476d1ce4e5b9ULL;
  h ^= h >> 27;
  h *= 0x94d049bb133111ebULL;
  h ^= h >> 31;
  return h;
}

void BlockManager::unlink(int b) {
  auto i = static_cast<size_t>(b);
  if (prev_[i] >= 0) next_[static_cast<size_t>(prev_[i])] = next_[i]; else head_ = next_[i];
  if (next_[i] >= 0) prev_[static_cast<size_t>(next_[i])] = prev_[i]; else tail_ = prev_[i];
  prev_[i] = next_[i] = -1;
  --num_evictable_;
}

void BlockManager::push_back_evictable(int b) {
  auto i = static_cast<size_t>(b);
  prev_[i] = tail_;
  next_[i] = -1;
  if (tail_ >= 0) next_[static_cast<size_t>(tail_)] = b; else head_ = b;
  tail_ = b;
  ++num_evictable_;
}

int BlockManager::allocate() {
  int b;
  if (!free_.empty()) {
    b = free_.back();
    free_.pop_back();
    --num_free_;
  } else if (head_ >= 0) {
    b = head_;
    unlink(b);
    auto it = by_hash_.find(hash_[static_cast<size_t>(b)]);
    if (it != by_hash_.end() && it->second == b) by_hash_.erase(it);
    has_hash_[static_cast<size_t>(b)] = 0;
  } else {
    return -1;
  }
  refs_[static_cast<size_t>(b)] = 1;
  return b;
}

void BlockManager::retain(int b) {
  auto i = static_cast<size_t>(b);
  if (refs_[i] == 0) unlink(b);
  ++refs_[i];
}

void BlockManager::release(int b) {
  auto i = static_cast<size_t>(b);
  if (refs_[i] <= 0) throw std::logic_error("BlockManager: release of an unreferenced block");
  if (--refs_[i] > 0) return;
  auto it = has_hash_[i] ? by_hash_.find(hash_[i]) : by_hash_.end();
  if (it != by_hash_.end() && it->second == b) {
    push_back_evictable(b);
  } else {
    has_hash_[i] = 0;
    free_.push_back(b);
    ++num_free_;
  }
}

uint64_t BlockManager::publish(int b, uint64_t parent, std::span<const int> tokens) {
  uint64_t h = chain_hash(parent, tokens);
  if (!prefix_caching_) return h;
  auto i = static_cast<size_t>(b);
  if (by_hash_.count(h)) return h;  // an identical block is already shared; this one stays private
  hash_[i] = h;
  has_hash_[i] = 1;
  std::copy(tokens.begin(), tokens.end(), tokens_.begin() + static_cast<std::ptrdiff_t>(i * kKvBlockSize));
  by_hash_.emplace(h, b);
  return h;
}

std::vector<int> BlockManager::match_prefix(std::span<const int> tokens, int max_blocks, std::vector<uint64_t>& hashes) {
  std::vector<int> hit;
  hashes.clear();
  if (!prefix_caching_) return hit;
  uint64_t parent = 0;
  for (int k = 0; k < max_blocks && static_cast<size_t>(k + 1) * kKvBlockSize <= tokens.size(); ++k) {
    auto blk = tokens.subspan(static_cast<size_t>(k) * kKvBlockSize, kKvBlockSize);
    uint64_t h = chain_hash(parent, blk);
    auto it = by_hash_.find(h);
    if (it == by_hash_.end()) break;
    int b = it->second;
    if (!std::equal(blk.begin(), blk.end(), tokens_.begin() + static_cast<std::ptrdiff_t>(b) * kKvBlockSize)) break;
    retain(b);
    hit.push_back(b);
    hashes.push_back(h);
    parent = h;
  }
  return hit;
}

}  // namespace t2s::engine
