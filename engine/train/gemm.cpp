#include "engine/train/gemm.hpp"

#include <algorithm>
#include <cmath>
#include <vector>

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

// A blocks arrive as element (i, k) at ap[k * as + i]: packed [kc][kMr] (as = kMr), or read in place when A is
// stored transposed (gemm_tn, as = its row stride). The kernel's 12 broadcasts per k then come from one pointer
// with constant offsets instead of 12 strided row pointers.

// Portable path: the same fma chain per element as the vector path, so both give identical bits.
void block_portable(int64_t mr, int64_t nr, int64_t kc, const float* ap, int64_t as, const float* B, int64_t ldb,
                    float* C, int64_t ldc, bool load) {
  for (int64_t i = 0; i < mr; ++i)
    for (int64_t j = 0; j < nr; ++j) {
      float c = load ? C[i * ldc + j] : 0.0f;
      for (int64_t k = 0; k < kc; ++k) c = std::fma(ap[k * as + i], B[k * ldb + j], c);
      C[i * ldc + j] = c;
    }
}

#if T2S_TRAIN_X86
// The 12×32 micro-kernel with its 24 accumulators in named variables (GCC keeps an array of them in memory and
// stores every accumulator on every k). Rows ≥ mr of the packed A block are zero and are computed but not stored.
#define T2S_ROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11)
__attribute__((target("avx512f,fma"))) void block_avx512(int64_t mr, int64_t nr, int64_t kc, const float* ap,
                                                          int64_t as, const float* B, int64_t ldb, float* C,
                                                          int64_t ldc, bool load) {
  const int64_t n0 = std::min<int64_t>(nr, 16), n1 = std::max<int64_t>(0, nr - 16);
  const auto m0 = static_cast<__mmask16>((1u << n0) - 1u), m1 = static_cast<__mmask16>((1u << n1) - 1u);
#define T2S_INIT(i)                                                                                  \
  __m512 a##i = load && (i) < mr ? _mm512_maskz_loadu_ps(m0, C + (i) * ldc) : _mm512_setzero_ps();  \
  __m512 b##i = load && (i) < mr ? _mm512_maskz_loadu_ps(m1, C + (i) * ldc + 16) : _mm512_setzero_ps();
  T2S_ROWS(T2S_INIT)
#undef T2S_INIT
  for (int64_t k = 0; k < kc; ++k, ap += as, B += ldb) {
    const __m512 v0 = _mm512_maskz_loadu_ps(m0, B), v1 = _mm512_maskz_loadu_ps(m1, B + 16);
#define T2S_FMA(i)                               \
  {                                              \
    const __m512 x = _mm512_set1_ps(ap[i]);      \
    a##i = _mm512_fmadd_ps(x, v0, a##i);         \
    b##i = _mm512_fmadd_ps(x, v1, b##i);         \
  }
    T2S_ROWS(T2S_FMA)
#undef T2S_FMA
  }
#define T2S_STORE(i)                                     \
  if ((i) < mr) {                                        \
    _mm512_mask_storeu_ps(C + (i) * ldc, m0, a##i);      \
    _mm512_mask_storeu_ps(C + (i) * ldc + 16, m1, b##i); \
  }
  T2S_ROWS(T2S_STORE)
#undef T2S_STORE
}
#undef T2S_ROWS
#endif

using BlockFn = void (*)(int64_t, int64_t, int64_t, const float*, int64_t, const float*, int64_t, float*, int64_t, bool);

// Rows [m_begin, m_end) of C: k blocks outermost, so partial sums are stored and reloaded between blocks (which
// keeps the fma chain and hence the bits), then A row blocks, then B column panels. When enough rows share it, each
// k block of B is first copied into contiguous zero-padded 32-column panels: the micro-kernel then streams
// sequential memory instead of touching a new page every few k (B rows are up to several KB apart).
void gemm_rows(BlockFn block, int64_t m_begin, int64_t m_end, int64_t N, int64_t K, const float* A, int64_t ars,
               int64_t acs, const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  if (K == 0) {
    if (!accumulate)
      for (int64_t i = m_begin; i < m_end; ++i) std::fill_n(C + i * ldc, N, 0.0f);
    return;
  }
  const int64_t panels = (N + kNr - 1) / kNr;
  const bool pack = m_end - m_begin >= 4 * kMr && N >= 2 * kNr;
  std::vector<float> packed(pack ? static_cast<size_t>(panels * kKc * kNr) : 0);
  float apack[kKc * kMr];  // 12 KB: one A block, refilled per row block and k block
  for (int64_t k0 = 0; k0 < K; k0 += kKc) {
    const int64_t kc = std::min(kKc, K - k0);
    const bool load = accumulate || k0 > 0;
    if (pack)
      for (int64_t p = 0; p < panels; ++p) {
        const int64_t j0 = p * kNr, nr = std::min(kNr, N - j0);
        float* dst = packed.data() + p * kc * kNr;
        for (int64_t k = 0; k < kc; ++k) {
          std::copy_n(B + (k0 + k) * ldb + j0, nr, dst + k * kNr);
          std::fill(dst + k * kNr + nr, dst + (k + 1) * kNr, 0.0f);
        }
      }
    for (int64_t i = m_begin; i < m_end; i += kMr) {
      const int64_t mr = std::min(kMr, m_end - i);
      // A stored transposed with a full 12-row block is read in place; otherwise the block is packed, zero rows
      // beyond mr (they are computed, never stored).
      const bool direct = ars == 1 && mr == kMr;
      const float* ap = direct ? A + i + k0 * acs : apack;
      const int64_t as = direct ? acs : kMr;
      if (!direct) {
        if (mr < kMr) std::fill_n(apack, kc * kMr, 0.0f);
        if (acs == 1) {
          for (int64_t r = 0; r < mr; ++r) {
            const float* src = A + (i + r) * ars + k0;
            for (int64_t k = 0; k < kc; ++k) apack[k * kMr + r] = src[k];
          }
        } else {
          for (int64_t k = 0; k < kc; ++k)
            for (int64_t r = 0; r < mr; ++r) apack[k * kMr + r] = A[(i + r) * ars + (k0 + k) * acs];
        }
      }
      for (int64_t j = 0; j < N; j += kNr) {
        const float* b = pack ? packed.data() + (j / kNr) * kc * kNr : B + k0 * ldb + j;
        block(mr, std::min(kNr, N - j), kc, ap, as, b, pack ? kNr : ldb, C + i * ldc + j, ldc, load);
      }
    }
  }
}

}  // namespace

namespace {
void gemm_strided(cpu::ThreadPool* pool, int64_t M, int64_t N, int64_t K, const float* A, int64_t ars, int64_t acs,
                  const float* B, int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  if (M <= 0 || N <= 0) return;
#if T2S_TRAIN_X86
  static const bool avx512 = has_avx512();  // a constant fact about the CPU, computed once
  const BlockFn block = avx512 ? block_avx512 : block_portable;
#else
  const BlockFn block = block_portable;
#endif
  if (!pool || pool->size() == 1 || M < 2 * kMr) {
    gemm_rows(block, 0, M, N, K, A, ars, acs, B, ldb, C, ldc, accumulate);
    return;
  }
  pool->parallel_for(M, kMr, [&](int, int64_t b, int64_t e) {
    gemm_rows(block, b, e, N, K, A, ars, acs, B, ldb, C, ldc, accumulate);
  });
}
}  // namespace

void gemm(cpu::ThreadPool* pool, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
          int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  gemm_strided(pool, M, N, K, A, lda, 1, B, ldb, C, ldc, accumulate);
}

void gemm_tn(cpu::ThreadPool* pool, int64_t M, int64_t N, int64_t K, const float* A, int64_t lda, const float* B,
             int64_t ldb, float* C, int64_t ldc, bool accumulate) {
  gemm_strided(pool, M, N, K, A, 1, lda, B, ldb, C, ldc, accumulate);
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
