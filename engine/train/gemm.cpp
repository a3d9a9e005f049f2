#include "engine/train/gemm.hpp"

#include <algorithm>
#include <cmath>

#if defined(__x86_64__)
#include <immintrin.h>
#define T2S_TRAIN_X86 1
#else
#define T2S_TRAIN_X86 0
#endif

namespace t2s::engine::train {

namespace {

constexpr int64_t kMr = 12;   // rows of C per micro-kernel: 24 accumulators + 2 B vectors fit the 32 zmm registers
constexpr int64_t kNr = 32;   // columns of C per micro-kernel (two zmm)
constexpr int64_t kKc = 256;  // k block: a 12×256 A block stays in L1 while it sweeps the panels of B

bool has_avx512() {
#if T2S_TRAIN_X86
  __builtin_cpu_init();
  return __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma");
#else
  return false;
#endif
}

// Portable path: the same fma chain per element as the vector path, so both give identical bits.
void block_portable(int64_t mr, int64_t nr, int64_t kc, const float* A, int64_t lda, const float* B, int64_t ldb,
                    float* C, int64_t ldc, bool load) {
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j) {
      float c = load ? C[i * ldc + j] : 0.0f;
      for (int64_t k = 0; k < kc; ++k) c = std::fma(A[i * lda + k], B[k * ldb + j], c);
      C[i * ldc + j] = c;
    }
}

#if T2S_TRAIN_X86
template <int MR>
__attribute__((target("avx512f,fma"))) void kernel_avx512(int64_t kc, const float* A, int64_t lda, const float* B,
                                                           int64_t ldb, float* C, int64_t ldc, __mmask16 m0,
                                                           __mmask16 m1, bool load) {
  __m512 c0[MR], c1[MR];
  for (int i = 0; i < MR; ++i) {
    c0[i] = load ? _mm512_maskz_loadu_ps(m0, C + i * ldc) : _mm512_setzero_ps();
    c1[i] = load ? _mm512_maskz_loadu_ps(m1, C + i * ldc + 16) : _mm512_setzero_ps();
  }
  for (int64_t k = 0; k < kc; ++k) {
    const __m512 b0 = _mm512_maskz_loadu_ps(m0, B + k * ldb);
    const __m512 b1 = _mm512_maskz_loadu_ps(m1, B + k * ldb + 16);
    for (int i = 0; i < MR; ++i) {
      const __m512 a = _mm512_set1_ps(A[i * lda + k]);
      c0[i] = _mm512_fmadd_ps(a, b0, c0[i]);
      c1[i] = _mm512_fmadd_ps(a, b1, c1[i]);
    }
  }
  for (int i = 0; i < MR; ++i) {
    _mm512_mask_storeu_ps(C + i * ldc, m0, c0[i]);
    _mm512_mask_storeu_ps(C + i * ldc + 16, m1, c1[i]);
  }
}

template <int MR>
void kernel_rows(int64_t kc, const float* A, int64_t lda, const float* B, int64_t ldb, float* C, int64_t ldc,
                 int64_t nr, bool load) {
  const int64_t n0 = std::min<int64_t>(nr, 16), n1 = std::max<int64_t>(0, nr - 16);
  const auto m0 = static_cast<__mmask16>((1u << n0) - 1u), m1 = static_cast<__mmask16>((1u << n1) - 1u);
  kernel_avx512<MR>(kc, A, lda, B, ldb, C, ldc, m0, m1, load);
}

void block_avx512(int64_t mr, int64_t nr, int64_t kc, const float* A, int64_t lda, const float* B, int64_t ldb,
                  float* C, int64_t ldc, bool load) {
  switch (mr) {
    case 12: kernel_rows<12>(kc, A, lda, B, ldb, C, ldc, nr, load); break;
    case 11: kernel_rows<11>(kc, A, lda, B, ldb, C, ldc, nr, load); break;
    case 10: kernel_rows<10>(kc, A, lda, B, ldb, C, ldc, nr, load); break;
    case 9: kernel_rows<9>(kc, A, lda, B, ldb, C, ldc, nr, load); break;
    case 8: kernel_rows<8>(kc, A, lda, B, ldb, C, ldc, nr, load); break;
    case 7: kernel_rows<7>(kc, A, lda, B, ldb, C, ldc, nr, load); break;
    case 6: kernel_rows<6>(kc, A, lda, B, ldb, C, ldc, nr, load); break;
    case 5: kernel_rows<5>(kc, A, lda, B, ldb, C, ldc, nr, load); break;
    case 4: kernel_rows<4>(kc, A, lda, B, ldb, C, ldc, nr, load); break;
    case 3: kernel_rows<3>(kc, A, lda, B, ldb, C, ldc, nr, load); break;
    case 2: kernel_rows<2>(kc, A, lda, B, ldb, C, ldc, nr, load); break;
    default: kernel_rows<1>(kc, A, lda, B, ldb, C, ldc, nr, load); break;
  }
}
#endif

using BlockFn = void (*)(int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, bool);

// Rows [m_begin, m_end) of C: k blocks outermost, so partial sums are stored and reloaded between blocks (which
// keeps the fma chain and hence the bits), then A row blocks, then B column panels.
void gemm_rows(BlockFn block, int64_t m_begin, int64_t m_end, int64_t N, int64_t K, const float* A, int64_t lda,
               const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  if (K == 0) {
    if (!accumulate)
      for (int64_t i = m_begin; i < m_end; ++i) std::fill_n(C + i * ldc, N, 0.0f);
    return;
  }
  for (int64_t k0 = 0; k0 < K; k0 += kKc) {
    const int64_t kc = std::min(kKc, K - k0);
    const bool load = accumulate || k0 > 0;
    for (int64_t i = m_begin; i < m_end; i += kMr) {
      const int64_t mr = std::min(kMr, m_end - i);
      for (int64_t j = 0; j < N; j += kNr)
        block(mr, std::min(kNr, N - j), kc, A + i * lda + k0, lda, B + k0 * ldb + j, ldb, C + i * ldc + j, ldc, load);
    }
  }
}

}  // namespace

void gemm(cpu::ThreadPool* pool, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
          int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
#if T2S_TRAIN_X86
  static const bool avx512 = has_avx512();  // a constant fact about the CPU, computed once
  const BlockFn block = avx512 ? block_avx512 : block_portable;
#else
  const BlockFn block = block_portable;
#endif
  if (!pool || pool->size() == 1 || M < 2 * kMr) {
    gemm_rows(block, 0, M, N, K, A, lda, B, ldb, C, ldc, accumulate);
    return;
  }
  pool->parallel_for(M, kMr, [&](int, int64_t b, int64_t e) {
    gemm_rows(block, b, e, N, K, A, lda, B, ldb, C, ldc, accumulate);
  });
}

void gemm_reference(int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B, int64_t ldb,
                    float* C, int64_t ldc, bool accumulate) {
  for (int64_t i = 0; i < M; ++i)
    for (int64_t j = 0; j < N; ++j) {
      float c = accumulate ? C[i * ldc + j] : 0.0f;
      for (int64_t k = 0; k < K; ++k) c = std::fma(A[i * lda + k], B[k * ldb + j], c);
      C[i * ldc + j] = c;
    }
}

void transpose(const float* src, int64_t rows, int64_t cols, int64_t lds, float* dst, int64_t ldd) {
  constexpr int64_t t = 32;  // tiles keep both sides in cache
  for (int64_t r0 = 0; r0 < rows; r0 += t)
    for (int64_t c0 = 0; c0 < cols; c0 += t)
      for (int64_t r = r0; r < std::min(rows, r0 + t); ++r)
        for (int64_t c = c0; c < std::min(cols, c0 + t); ++c) dst[c * ldd + r] = src[r * lds + c];
}

}  // namespace t2s::engine::train
