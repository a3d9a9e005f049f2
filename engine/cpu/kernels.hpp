#pragma once
//! CPU compute kernels. Every output element is reduced in a fixed order that does not depend on how many rows
//! are batched together or how the work is split across threads, so results are batch-invariant.
#include <cstdint>

#include "engine/cpu/thread_pool.hpp"
#include "engine/tensor.hpp"

namespace t2s::engine::cpu {

//! Which instruction set the kernels use (chosen once per backend).
enum class Isa { Generic, Avx2 };
//! The best ISA this machine supports.
Isa detect_isa();

//! Per-thread scratch for dequantised weight rows: 2 rows of `max_cols` floats per thread.
struct MatmulScratch {
  float* rows = nullptr;  //!< [threads][2][max_cols]
  int64_t max_cols = 0;   //!< capacity per row
};

//! out[b][o] = Σ_k W[o][k] · x[b][k] for b < batch, o < W.rows. `x` is [batch][W.cols], `out` is [batch][W.rows].
void matmul(ThreadPool& pool, Isa isa, const TensorView& w, const float* x, int64_t batch, float* out,
            const MatmulScratch& scratch);
//! Dot product of n floats in the kernels' fixed reduction order.
float dot(Isa isa, const float* a, const float* b, int64_t n);
//! out = weight ⊙ x / rms(x), as llama2.c computes it (sequential float sum of squares).
void rmsnorm(float* out, const float* x, const float* weight, int64_t n, float eps);

}  // namespace t2s::engine::cpu
