#pragma once
//! The training engine's dense matrix product and transpose (row-major, explicit leading dimensions).
//! Every element of C is one fused-multiply-add chain over k = 0..K-1 in order, starting from 0 (or from the old
//! C value when accumulating), in both the AVX-512 and the portable path: blocking, thread split and ISA never
//! change a single bit of the result.
#include <cstdint>

#include "engine/cpu/thread_pool.hpp"

namespace t2s::engine::train {

//! C[M][N] = (accumulate ? C : 0) + A[M][K] · B[K][N]. Rows of C are split statically over `pool` (null = caller only).
void gemm(cpu::ThreadPool* pool, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
          int64_t ldb, float* C, int64_t ldc, bool accumulate);
//! C[M][N] = (accumulate ? C : 0) + Aᵀ · B where A is stored [K][M] (row stride lda): weight gradients dyᵀ·x
//! and attention's dSᵀ·Q without materialising a transpose. Same per-element fma chain as gemm.
void gemm_tn(cpu::ThreadPool* pool, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
             int64_t ldb, float* C, int64_t ldc, bool accumulate);
//! The same product as gemm computed by plain loops with std::fma (the reference the tests and bench compare to).
void gemm_reference(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                    float* C, int64_t ldc, bool accumulate);
//! dst[c][r] = src[r][c] for r < rows, c < cols.
void transpose(const float* src, int64_t rows, int64_t cols, int64_t lds, float* dst, int64_t ldd);

}  // namespace t2s::engine::train
