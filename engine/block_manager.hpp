#pragma once
//! Paged KV bookkeeping: reference-counted blocks of kKvBlockSize positions, with prefix hashing so sequences that
//! share a prompt prefix share its full blocks. Freed full blocks stay cached (LRU) until their memory is needed.
#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

namespace t2s::engine {

//! Owns the ids [0, num_blocks) of a backend's KV pool. Not thread-safe (the batch runner owns it).
class BlockManager {
 public:
  //! `prefix_caching` false disables sharing (every block is private and forgotten on release).
  explicit BlockManager(int num_blocks, bool prefix_caching = true);
  //! Total blocks.
  int num_blocks() const { return static_cast<int>(refs_.size()); }
  //! Blocks obtainable now by allocate(): free plus cached-but-unreferenced.
  int num_available() const { return num_free_ + num_evictable_; }
  //! A block with reference count 1 and no content hash, or -1 when none is available. Evicts the least recently
  //! released cached block when no free block is left.
  int allocate();
  //! Adds a reference to `block` (a cached block leaves the eviction list).
  void retain(int block);
  //! Drops a reference; at zero the block becomes evictable (if hashed) or free.
  void release(int block);
  //! Records that `block` now holds exactly the 16 `tokens` after the prefix whose chain hash is `parent`; returns
  //! the block's chain hash. If an identical block is already cached, `block` stays private (no duplicate entry).
  uint64_t publish(int block, uint64_t parent, std::span<const int> tokens);
  //! Looks up the longest run of cached full blocks for `tokens` (at most `max_blocks`), retaining each hit.
  //! Returns their ids; `hashes` receives their chain hashes.
  std::vector<int> match_prefix(std::span<const int> tokens, int max_blocks, std::vector<uint64_t>& hashes);
  //! The chain hash of a block holding `tokens` after a prefix with hash `parent` (0 for the first block).
  static uint64_t chain_hash(uint64_t parent, std::span<const int> tokens);
  //! Reference count of `block` (tests).
  int refs(int block) const { return refs_.at(static_cast<size_t>(block)); }

 private:
  void unlink(int b);
  void push_back_evictable(int b);
  std::vector<int> refs_;
  std::vector<uint64_t> hash_;         // chain hash when published (has_hash_)
  std::vector<uint8_t> has_hash_;
  std::vector<int> tokens_;            // [block][16] content of published blocks, for exact verification
  std::vector<int> free_;              // stack of free ids
  std::vector<int> prev_, next_;       // intrusive LRU list of evictable blocks
  int head_ = -1, tail_ = -1;
  int num_free_ = 0, num_evictable_ = 0;
  bool prefix_caching_;
  std::unordered_map<uint64_t, int> by_hash_;
};

}  // namespace t2s::engine
