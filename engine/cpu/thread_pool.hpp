#pragma once
//! A fixed pool of worker threads for data-parallel loops (no allocation per loop, no task queue).
#include <atomic>
#include <cstdint>
#include <type_traits>
#include <thread>
#include <vector>

namespace t2s::engine::cpu {

//! Runs `fn(begin, end)` over a range split into equal static chunks, one per thread (the caller is thread 0).
//! Static splitting keeps every element's work on a fixed code path, independent of timing.
class ThreadPool {
 public:
  //! `threads` ≥ 1 total, including the calling thread.
  explicit ThreadPool(int threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;
  //! Number of threads including the caller.
  int size() const { return static_cast<int>(workers_.size()) + 1; }
  //! Splits [0, n) into size() chunks aligned to `grain` and runs fn(thread, begin, end) on each; returns when all
  //! finish. `fn` is called through a plain pointer (no std::function, so no allocation per loop).
  template <typename F>
  void parallel_for(int64_t n, int64_t grain, F&& fn) {
    run(n, grain, &fn, [](void* ctx, int t, int64_t b, int64_t e) { (*static_cast<std::remove_reference_t<F>*>(ctx))(t, b, e); });
  }

 private:
  using Trampoline = void (*)(void*, int, int64_t, int64_t);
  void run(int64_t n, int64_t grain, void* ctx, Trampoline fn);
  void worker(int index);
  std::vector<std::thread> workers_;
  void* job_ctx_ = nullptr;
  Trampoline job_ = nullptr;
  int64_t job_n_ = 0, job_grain_ = 1;
  std::atomic<uint32_t> generation_{0};
  std::atomic<int> pending_{0};
  std::atomic<bool> stop_{false};
};

}  // namespace t2s::engine::cpu
