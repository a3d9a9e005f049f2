#include "engine/cpu/thread_pool.hpp"

#include <algorithm>

namespace t2s::engine::cpu {

ThreadPool::ThreadPool(int threads) {
  for (int i = 1; i < std::max(1, threads); ++i) workers_.emplace_back([this, i] { worker(i); });
}

ThreadPool::~ThreadPool() {
  stop_.store(true);
  generation_.fetch_add(1);
  generation_.notify_all();
  for (auto& t : workers_) t.join();
}

namespace {
void chunk_of(int64_t n, int64_t grain, int parts, int index, int64_t& b, int64_t& e) {
  int64_t units = (n + grain - 1) / grain;
  int64_t per = units / parts, extra = units % parts;
  int64_t ub = index * per + std::min<int64_t>(index, extra);
  int64_t ue = ub + per + (index < extra ? 1 : 0);
  b = std::min(n, ub * grain);
  e = std::min(n, ue * grain);
}
}  // namespace

void ThreadPool::run(int64_t n, int64_t grain, void* ctx, Trampoline fn) {
  if (n <= 0) return;
  grain = std::max<int64_t>(1, grain);
  if (workers_.empty() || n <= grain) {
    fn(ctx, 0, 0, n);
    return;
  }
  job_ctx_ = ctx;
  job_ = fn;
  job_n_ = n;
  job_grain_ = grain;
  pending_.store(static_cast<int>(workers_.size()), std::memory_order_relaxed);
  generation_.fetch_add(1, std::memory_order_release);
  generation_.notify_all();
  int64_t b, e;
  chunk_of(n, grain, size(), 0, b, e);
  if (b < e) fn(ctx, 0, b, e);
  // Spin briefly (the workers finish at about the same time), then block.
  for (int spin = 0; pending_.load(std::memory_order_acquire) != 0; ++spin) {
    if (spin > 20000) {
      int p = pending_.load(std::memory_order_acquire);
      if (p != 0) pending_.wait(p, std::memory_order_acquire);
    }
  }
  job_ = nullptr;
}

void ThreadPool::worker(int index) {
  uint32_t seen = 0;
  while (true) {
    // Spin a little before sleeping: decode issues many short loops back to back.
    uint32_t g;
    for (int spin = 0;; ++spin) {
      g = generation_.load(std::memory_order_acquire);
      if (g != seen) break;
      if (spin > 20000) {
        generation_.wait(seen, std::memory_order_acquire);
      }
    }
    seen = g;
    if (stop_.load()) return;
    int64_t b, e;
    chunk_of(job_n_, job_grain_, size(), index, b, e);
    if (b < e) job_(job_ctx_, index, b, e);
    if (pending_.fetch_sub(1, std::memory_order_acq_rel) == 1) pending_.notify_all();
  }
}

}  // namespace t2s::engine::cpu
