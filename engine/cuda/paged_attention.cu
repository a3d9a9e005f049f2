// Decode attention over the paged KV pool: one block per (row, head), four warps take every fourth position,
// each keeps an online softmax (running max, sum, weighted V), and the warps' partials are merged at the end.
#include <cmath>

#include "engine/cuda/common.cuh"

namespace t2s::engine::cuda {
namespace {

constexpr int kWarps = 4;
constexpr int kMaxHeadDim = 256;

template <typename T>
__global__ void __launch_bounds__(kWarps * 32)
    paged_attention_kernel(const float* q, const int* rows, const int* positions, const int* row_table,
                           const int* tables, const uint16_t* k_pool, const uint16_t* v_pool, int n_heads,
                           int n_kv_heads, int hd, float scale, T* out) {
  const int r = rows[blockIdx.x], h = blockIdx.y;
  const int kv_dim = n_kv_heads * hd, kv_off = (h / (n_heads / n_kv_heads)) * hd;
  const int ctx = positions[r] + 1;
  const int* table = tables + row_table[r];
  __shared__ float qs[kMaxHeadDim];
  __shared__ float wm[kWarps], wl[kWarps];
  __shared__ float wacc[kWarps][kMaxHeadDim];
  for (int d = threadIdx.x; d < hd; d += blockDim.x) qs[d] = q[(static_cast<int64_t>(r) * n_heads + h) * hd + d] * scale;
  __syncthreads();
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  float m = -INFINITY, l = 0.0f, acc[kMaxHeadDim / 32];
#pragma unroll
  for (int i = 0; i < kMaxHeadDim / 32; ++i) acc[i] = 0.0f;
  for (int t = warp; t < ctx; t += kWarps) {
    const int64_t slot = (static_cast<int64_t>(table[t / 16]) * 16 + t % 16) * kv_dim + kv_off;
    float s = 0.0f;
    for (int d = lane; d < hd; d += 32) s += qs[d] * half_bits_to_float(k_pool[slot + d]);
    s = warp_sum(s);
    const float mn = fmaxf(m, s);
    const float corr = expf(m - mn), p = expf(s - mn);  // m = -inf on the first position: corr = 0
    l = l * corr + p;
#pragma unroll
    for (int i = 0; i < kMaxHeadDim / 32; ++i) {
      const int d = lane + 32 * i;
      if (d < hd) acc[i] = acc[i] * corr + p * half_bits_to_float(v_pool[slot + d]);
    }
    m = mn;
  }
  if (lane == 0) {
    wm[warp] = m;
    wl[warp] = l;
  }
#pragma unroll
  for (int i = 0; i < kMaxHeadDim / 32; ++i) {
    const int d = lane + 32 * i;
    if (d < hd) wacc[warp][d] = acc[i];
  }
  __syncthreads();
  float M = wm[0];
  for (int w = 1; w < kWarps; ++w) M = fmaxf(M, wm[w]);
  float L = 0.0f;
  for (int w = 0; w < kWarps; ++w) L += wm[w] == -INFINITY ? 0.0f : wl[w] * expf(wm[w] - M);
  for (int d = threadIdx.x; d < hd; d += blockDim.x) {
    float o = 0.0f;
    for (int w = 0; w < kWarps; ++w)
      if (wm[w] != -INFINITY) o += wacc[w][d] * expf(wm[w] - M);
    out[(static_cast<int64_t>(r) * n_heads + h) * hd + d] = to_act<T>(o / L);
  }
}

}  // namespace

void paged_attention(const float* q, const int* rows, int n_rows, const int* positions, const int* row_table,
                     const int* tables, const uint16_t* k_pool, const uint16_t* v_pool, AttnShape s, void* out,
                     Act act, cudaStream_t stream) {
  if (n_rows == 0) return;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  with_act(act, [&](auto t) {
    using T = decltype(t);
    paged_attention_kernel<T><<<dim3(n_rows, s.n_heads), kWarps * 32, 0, stream>>>(
        q, rows, positions, row_table, tables, k_pool, v_pool, s.n_heads, s.n_kv_heads, s.head_dim, scale,
        static_cast<T*>(out));
  });
}

}  // namespace t2s::engine::cuda
