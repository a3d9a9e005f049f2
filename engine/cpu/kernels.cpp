#include "engine/cpu/kernels.hpp"

#include <cmath>

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#include <immintrin.h>
#define T2S_X86 1
#else
#define T2S_X86 0
#endif

namespace t2s::engine::cpu {

Isa detect_isa() {
#if T2S_X86
  __builtin_cpu_init();
  // F16C through CPUID leaf 1: clang's __builtin_cpu_supports does not know "f16c" (the fuzz build uses clang).
  unsigned eax = 0, ebx = 0, ecx = 0, edx = 0;
  bool f16c = __get_cpuid(1, &eax, &ebx, &ecx, &edx) && (ecx & bit_F16C);
  bool avx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && f16c;
  if (avx2 && __builtin_cpu_supports("avx512f")) return Isa::Avx512;
  if (avx2) return Isa::Avx2;
#endif
  return Isa::Generic;
}

namespace {

// ----- generic path: 8 independent lane sums, then a fixed tree, then the scalar tail ------------------------
inline float generic_finish(const float* lane, const float* w, const float* x, int64_t k8, int64_t n) {
  float s = ((lane[0] + lane[4]) + (lane[2] + lane[6])) + ((lane[1] + lane[5]) + (lane[3] + lane[7]));
  for (int64_t k = k8; k < n; ++k) s += w[k] * x[k];
  return s;
}

float generic_dot(const float* w, const float* x, int64_t n) {
  float lane[8] = {0, 0, 0, 0, 0, 0, 0, 0};
  int64_t k8 = n & ~int64_t{7};
  for (int64_t k = 0; k < k8; k += 8)
    for (int j = 0; j < 8; ++j) lane[j] += w[k + j] * x[k + j];
  return generic_finish(lane, w, x, k8, n);
}

void generic_rows(const float* w0, int64_t nw, int64_t w_stride, const float* x, int64_t batch, int64_t n, float* out,
                  int64_t out_stride) {
  for (int64_t r = 0; r < nw; ++r)
    for (int64_t b = 0; b < batch; ++b) out[b * out_stride + r] = generic_dot(w0 + r * w_stride, x + b * n, n);
}

#if T2S_X86
// ----- AVX2 path ------------------------------------------------------------------------------------------------
__attribute__((target("avx2,fma"))) inline float hsum(__m256 v) {
  __m128 lo = _mm256_castps256_ps128(v), hi = _mm256_extractf128_ps(v, 1);
  lo = _mm_add_ps(lo, hi);                        // lanes (0+4)(1+5)(2+6)(3+7)
  __m128 sh = _mm_movehl_ps(lo, lo);              // (2+6)(3+7)
  lo = _mm_add_ps(lo, sh);                        // (0+4)+(2+6), (1+5)+(3+7)
  sh = _mm_shuffle_ps(lo, lo, 0x1);
  return _mm_cvtss_f32(_mm_add_ss(lo, sh));
}

__attribute__((target("avx2,fma"))) inline float tail(float s, const float* w, const float* x, int64_t k8, int64_t n) {
  for (int64_t k = k8; k < n; ++k) s += w[k] * x[k];
  return s;
}

// NW weight rows against NX x rows: NW*NX independent 8-lane accumulators. Every output element gets the same
// operation sequence (lane FMAs in k order, hsum, scalar tail) whatever the block shape, so all shapes agree bit for bit.
template <int NW, int NX>
__attribute__((target("avx2,fma"))) inline void avx2_block(const float* w, int64_t w_stride, const float* x, int64_t n,
                                                            float* out, int64_t out_stride) {
  __m256 acc[NW][NX];
  for (int i = 0; i < NW; ++i)
    for (int j = 0; j < NX; ++j) acc[i][j] = _mm256_setzero_ps();
  const int64_t k8 = n & ~int64_t{7};
  for (int64_t k = 0; k < k8; k += 8) {
    __m256 wv[NW];
    for (int i = 0; i < NW; ++i) wv[i] = _mm256_loadu_ps(w + i * w_stride + k);
    for (int j = 0; j < NX; ++j) {
      __m256 xv = _mm256_loadu_ps(x + j * n + k);
      for (int i = 0; i < NW; ++i) acc[i][j] = _mm256_fmadd_ps(wv[i], xv, acc[i][j]);
    }
  }
  for (int j = 0; j < NX; ++j)
    for (int i = 0; i < NW; ++i) out[j * out_stride + i] = tail(hsum(acc[i][j]), w + i * w_stride, x + j * n, k8, n);
}

__attribute__((target("avx2,fma"))) float avx2_dot(const float* w, const float* x, int64_t n) {
  float r;
  avx2_block<1, 1>(w, 0, x, n, &r, 0);
  return r;
}

// Four weight rows against one x row (single-stream decode), written out: measurably faster than the template.
__attribute__((target("avx2,fma"))) void avx2_4x1(const float* w, int64_t w_stride, const float* x, int64_t n,
                                                   float* out) {
  __m256 a0 = _mm256_setzero_ps(), a1 = a0, a2 = a0, a3 = a0;
  const float *w0 = w, *w1 = w + w_stride, *w2 = w + 2 * w_stride, *w3 = w + 3 * w_stride;
  int64_t k8 = n & ~int64_t{7};
  for (int64_t k = 0; k < k8; k += 8) {
    __m256 v = _mm256_loadu_ps(x + k);
    a0 = _mm256_fmadd_ps(_mm256_loadu_ps(w0 + k), v, a0);
    a1 = _mm256_fmadd_ps(_mm256_loadu_ps(w1 + k), v, a1);
    a2 = _mm256_fmadd_ps(_mm256_loadu_ps(w2 + k), v, a2);
    a3 = _mm256_fmadd_ps(_mm256_loadu_ps(w3 + k), v, a3);
  }
  out[0] = tail(hsum(a0), w0, x, k8, n);
  out[1] = tail(hsum(a1), w1, x, k8, n);
  out[2] = tail(hsum(a2), w2, x, k8, n);
  out[3] = tail(hsum(a3), w3, x, k8, n);
}

// Weight rows [0, nw) (stride w_stride) times x[batch][n] → out[b*out_stride + r]; 4x3 register blocks.
__attribute__((target("avx2,fma"))) void avx2_rows(const float* w, int64_t nw, int64_t w_stride, const float* x,
                                                    int64_t batch, int64_t n, float* out, int64_t out_stride) {
  int64_t r = 0;
  for (; r + 4 <= nw; r += 4) {
    const float* wr = w + r * w_stride;
    int64_t b = 0;
    for (; b + 3 <= batch; b += 3) avx2_block<4, 3>(wr, w_stride, x + b * n, n, out + b * out_stride + r, out_stride);
    if (batch - b == 2) avx2_block<4, 2>(wr, w_stride, x + b * n, n, out + b * out_stride + r, out_stride);
    if (batch - b == 1) avx2_4x1(wr, w_stride, x + b * n, n, out + b * out_stride + r);
  }
  for (; r < nw; ++r)
    for (int64_t b = 0; b < batch; ++b) out[b * out_stride + r] = avx2_dot(w + r * w_stride, x + b * n, n);
}

// ----- AVX-512 path: 16-lane accumulators; 4x5 register blocks (20 of the 32 zmm registers) for batches -------------
// Fixed-order horizontal sum: upper half onto lower half, then the 8-lane hsum.
__attribute__((target("avx512f,avx2,fma"))) inline float hsum512(__m512 v) {
  // Through memory: GCC 12's 512→256 extract intrinsics trip -Wuninitialized.
  alignas(64) float t[16];
  _mm512_store_ps(t, v);
  return hsum(_mm256_add_ps(_mm256_load_ps(t), _mm256_load_ps(t + 8)));
}

__attribute__((target("avx512f,avx2,fma"))) inline float tail512(float s, const float* w, const float* x, int64_t k16, int64_t n) {
  for (int64_t k = k16; k < n; ++k) s += w[k] * x[k];
  return s;
}

template <int NW, int NX, bool Prefetch = false>
__attribute__((target("avx512f,avx2,fma"))) inline void avx512_block(const float* w, int64_t w_stride, const float* x, int64_t n,
                                                             float* out, int64_t out_stride) {
  __m512 acc[NW][NX];
  for (int i = 0; i < NW; ++i)
    for (int j = 0; j < NX; ++j) acc[i][j] = _mm512_setzero_ps();
  const int64_t k16 = n & ~int64_t{15};
  for (int64_t k = 0; k < k16; k += 16) {
    if constexpr (Prefetch)  // the next weight rows, so streaming them overlaps this block's FMAs
      for (int i = 0; i < NW; ++i) _mm_prefetch(reinterpret_cast<const char*>(w + (NW + i) * w_stride + k), _MM_HINT_T0);
    __m512 wv[NW];
    for (int i = 0; i < NW; ++i) wv[i] = _mm512_loadu_ps(w + i * w_stride + k);
    for (int j = 0; j < NX; ++j) {
      __m512 xv = _mm512_loadu_ps(x + j * n + k);
      for (int i = 0; i < NW; ++i) acc[i][j] = _mm512_fmadd_ps(wv[i], xv, acc[i][j]);
    }
  }
  for (int j = 0; j < NX; ++j)
    for (int i = 0; i < NW; ++i)
      out[j * out_stride + i] = tail512(hsum512(acc[i][j]), w + i * w_stride, x + j * n, k16, n);
}

__attribute__((target("avx512f,avx2,fma"))) float avx512_dot(const float* w, const float* x, int64_t n) {
  float r;
  avx512_block<1, 1>(w, 0, x, n, &r, 0);
  return r;
}

__attribute__((target("avx512f,avx2,fma"))) void avx512_rows(const float* w, int64_t nw, int64_t w_stride, const float* x,
                                                     int64_t batch, int64_t n, float* out, int64_t out_stride) {
  int64_t r = 0;
  if (batch == 1)  // single-stream decode: eight weight rows per pass over x
    for (; r + 8 <= nw; r += 8) avx512_block<8, 1>(w + r * w_stride, w_stride, x, n, out + r, out_stride);
  for (; r + 4 <= nw; r += 4) {
    const float* wr = w + r * w_stride;
    int64_t b = 0;
    if (b + 5 <= batch && r + 8 <= nw) {
      avx512_block<4, 5, true>(wr, w_stride, x, n, out + r, out_stride);
      b += 5;
    }
    for (; b + 5 <= batch; b += 5) avx512_block<4, 5>(wr, w_stride, x + b * n, n, out + b * out_stride + r, out_stride);
    float* o = out + b * out_stride + r;
    const float* xb = x + b * n;
    switch (batch - b) {
      case 4: avx512_block<4, 4>(wr, w_stride, xb, n, o, out_stride); break;
      case 3: avx512_block<4, 3>(wr, w_stride, xb, n, o, out_stride); break;
      case 2: avx512_block<4, 2>(wr, w_stride, xb, n, o, out_stride); break;
      case 1: avx512_block<4, 1>(wr, w_stride, xb, n, o, out_stride); break;
      default: break;
    }
  }
  for (; r < nw; ++r)
    for (int64_t b = 0; b < batch; ++b) out[b * out_stride + r] = avx512_dot(w + r * w_stride, x + b * n, n);
}

__attribute__((target("avx2,fma,f16c"))) void avx2_f16_to_f32(const uint8_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    _mm256_storeu_ps(dst + i, _mm256_cvtph_ps(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i))));
  for (; i < n; ++i) {
    uint16_t h;
    std::memcpy(&h, src + 2 * i, 2);
    dst[i] = fp16_to_fp32(h);
  }
}
// Q8_0 → float: the same float(d) * float(q) products as dequantize_row, eight at a time.
__attribute__((target("avx2,fma,f16c"))) void avx2_q8_0_to_f32(const uint8_t* src, float* dst, int64_t n) {
  for (int64_t b = 0; b < n / 32; ++b) {
    const uint8_t* blk = src + b * 34;
    uint16_t h;
    std::memcpy(&h, blk, 2);
    __m256 d = _mm256_set1_ps(fp16_to_fp32(h));
    for (int i = 0; i < 32; i += 8) {
      __m128i q = _mm_loadl_epi64(reinterpret_cast<const __m128i*>(blk + 2 + i));
      __m256 f = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(q));
      _mm256_storeu_ps(dst + b * 32 + i, _mm256_mul_ps(d, f));
    }
  }
}

// BF16 → float: a 16-bit shift per element.
__attribute__((target("avx2,fma"))) void avx2_bf16_to_f32(const uint8_t* src, float* dst, int64_t n) {
  int64_t i = 0;
  for (; i + 8 <= n; i += 8) {
    __m256i v = _mm256_cvtepu16_epi32(_mm_loadu_si128(reinterpret_cast<const __m128i*>(src + 2 * i)));
    _mm256_storeu_ps(dst + i, _mm256_castsi256_ps(_mm256_slli_epi32(v, 16)));
  }
  if (i < n) dequantize_row(DType::BF16, src + 2 * i, dst + i, n - i);
}
#endif

void dequant(Isa isa, DType t, const uint8_t* src, float* dst, int64_t n) {
#if T2S_X86
  if (isa == Isa::Avx2 || isa == Isa::Avx512) {
    if (t == DType::F16) return avx2_f16_to_f32(src, dst, n);
    if (t == DType::Q8_0) return avx2_q8_0_to_f32(src, dst, n);
    if (t == DType::BF16) return avx2_bf16_to_f32(src, dst, n);
  }
#endif
  (void)isa;
  dequantize_row(t, src, dst, n);
}

void rows_f32(Isa isa, const float* w, int64_t nw, int64_t w_stride, const float* x, int64_t batch, int64_t n,
              float* out, int64_t out_stride) {
#if T2S_X86
  if (isa == Isa::Avx512) {
    avx512_rows(w, nw, w_stride, x, batch, n, out, out_stride);
    return;
  }
  if (isa == Isa::Avx2) {
    avx2_rows(w, nw, w_stride, x, batch, n, out, out_stride);
    return;
  }
#endif
  (void)isa;
  generic_rows(w, nw, w_stride, x, batch, n, out, out_stride);
}

}  // namespace

float dot(Isa isa, const float* a, const float* b, int64_t n) {
#if T2S_X86
  if (isa == Isa::Avx512) return avx512_dot(a, b, n);
  if (isa == Isa::Avx2) return avx2_dot(a, b, n);
#endif
  (void)isa;
  return generic_dot(a, b, n);
}

void matmul(ThreadPool& pool, Isa isa, const TensorView& w, const float* x, int64_t batch, float* out,
            const MatmulScratch& scratch) {
  const int64_t n = w.cols, rows = w.rows;
  if (w.type == DType::F32) {
    const auto* wf = reinterpret_cast<const float*>(w.data);
    pool.parallel_for(rows, 16, [&](int, int64_t b, int64_t e) {
      rows_f32(isa, wf + b * n, e - b, n, x, batch, n, out + b, rows);
    });
    return;
  }
  // Other types: dequantise two weight rows at a time into this thread's scratch, then the float kernel.
  pool.parallel_for(rows, 16, [&](int thread, int64_t b, int64_t e) {
    float* buf = scratch.rows + static_cast<int64_t>(thread) * 2 * scratch.max_cols;
    for (int64_t r = b; r < e; r += 2) {
      int64_t nr = std::min<int64_t>(2, e - r);
      for (int64_t i = 0; i < nr; ++i) dequant(isa, w.type, w.row(r + i), buf + i * n, n);
      rows_f32(isa, buf, nr, n, x, batch, n, out + r, rows);
    }
  });
}

void rmsnorm(float* out, const float* x, const float* weight, int64_t n, float eps) {
  float ss = 0.0f;
  for (int64_t j = 0; j < n; ++j) ss += x[j] * x[j];
  ss /= static_cast<float>(n);
  ss += eps;
  ss = 1.0f / std::sqrt(ss);
  for (int64_t j = 0; j < n; ++j) out[j] = weight[j] * (ss * x[j]);
}

}  // namespace t2s::engine::cpu
