#include "engine/cpu/kernels.hpp"

#include <cmath>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define T2S_X86 1
#else
#define T2S_X86 0
#endif

namespace t2s::engine::cpu {

Isa detect_isa() {
#if T2S_X86
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma") && __builtin_cpu_supports("f16c")) return Isa::Avx2;
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

__attribute__((target("avx2,fma"))) float avx2_dot(const float* w, const float* x, int64_t n) {
  __m256 acc = _mm256_setzero_ps();
  int64_t k8 = n & ~int64_t{7};
  for (int64_t k = 0; k < k8; k += 8) acc = _mm256_fmadd_ps(_mm256_loadu_ps(w + k), _mm256_loadu_ps(x + k), acc);
  return tail(hsum(acc), w, x, k8, n);
}

// Two weight rows against four x rows: 8 independent accumulators, each with the same lane order as avx2_dot.
__attribute__((target("avx2,fma"))) void avx2_2x4(const float* w0, const float* w1, const float* x, int64_t n,
                                                   float* out, int64_t out_stride) {
  __m256 a00 = _mm256_setzero_ps(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
  const float *x0 = x, *x1 = x + n, *x2 = x + 2 * n, *x3 = x + 3 * n;
  int64_t k8 = n & ~int64_t{7};
  for (int64_t k = 0; k < k8; k += 8) {
    __m256 p = _mm256_loadu_ps(w0 + k), q = _mm256_loadu_ps(w1 + k);
    __m256 v = _mm256_loadu_ps(x0 + k);
    a00 = _mm256_fmadd_ps(p, v, a00);
    a10 = _mm256_fmadd_ps(q, v, a10);
    v = _mm256_loadu_ps(x1 + k);
    a01 = _mm256_fmadd_ps(p, v, a01);
    a11 = _mm256_fmadd_ps(q, v, a11);
    v = _mm256_loadu_ps(x2 + k);
    a02 = _mm256_fmadd_ps(p, v, a02);
    a12 = _mm256_fmadd_ps(q, v, a12);
    v = _mm256_loadu_ps(x3 + k);
    a03 = _mm256_fmadd_ps(p, v, a03);
    a13 = _mm256_fmadd_ps(q, v, a13);
  }
  out[0] = tail(hsum(a00), w0, x0, k8, n);
  out[1] = tail(hsum(a10), w1, x0, k8, n);
  out[out_stride] = tail(hsum(a01), w0, x1, k8, n);
  out[out_stride + 1] = tail(hsum(a11), w1, x1, k8, n);
  out[2 * out_stride] = tail(hsum(a02), w0, x2, k8, n);
  out[2 * out_stride + 1] = tail(hsum(a12), w1, x2, k8, n);
  out[3 * out_stride] = tail(hsum(a03), w0, x3, k8, n);
  out[3 * out_stride + 1] = tail(hsum(a13), w1, x3, k8, n);
}

// Four weight rows against one x row (single-stream decode: more independent streams per load of x).
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

// Weight rows [0, nw) (contiguous with stride w_stride) times x[batch][n] → out[b*out_stride + r].
__attribute__((target("avx2,fma"))) void avx2_rows(const float* w, int64_t nw, int64_t w_stride, const float* x,
                                                    int64_t batch, int64_t n, float* out, int64_t out_stride) {
  if (batch == 1) {
    int64_t r = 0;
    for (; r + 4 <= nw; r += 4) avx2_4x1(w + r * w_stride, w_stride, x, n, out + r);
    for (; r < nw; ++r) out[r] = avx2_dot(w + r * w_stride, x, n);
    return;
  }
  int64_t r = 0;
  for (; r + 2 <= nw; r += 2) {
    const float *w0 = w + r * w_stride, *w1 = w0 + w_stride;
    int64_t b = 0;
    for (; b + 4 <= batch; b += 4) avx2_2x4(w0, w1, x + b * n, n, out + b * out_stride + r, out_stride);
    for (; b < batch; ++b) {
      out[b * out_stride + r] = avx2_dot(w0, x + b * n, n);
      out[b * out_stride + r + 1] = avx2_dot(w1, x + b * n, n);
    }
  }
  for (; r < nw; ++r)
    for (int64_t b = 0; b < batch; ++b) out[b * out_stride + r] = avx2_dot(w + r * w_stride, x + b * n, n);
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
#endif

void dequant(Isa isa, DType t, const uint8_t* src, float* dst, int64_t n) {
#if T2S_X86
  if (isa == Isa::Avx2 && t == DType::F16) {
    avx2_f16_to_f32(src, dst, n);
    return;
  }
#endif
  (void)isa;
  dequantize_row(t, src, dst, n);
}

void rows_f32(Isa isa, const float* w, int64_t nw, int64_t w_stride, const float* x, int64_t batch, int64_t n,
              float* out, int64_t out_stride) {
#if T2S_X86
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
