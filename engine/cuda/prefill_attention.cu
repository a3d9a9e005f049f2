// Causal prefill attention, flash-style: one block per (tile of ≤ 16 consecutive rows of one sequence, head).
// K/V pages (16 positions) are staged in shared memory; each half-warp owns one query row at a time, lane j scores
// position j of the page, and an online softmax folds the page into the row's running output. No score matrix.
#include <cmath>

#include "engine/cuda/common.cuh"

namespace t2s::engine::cuda {
namespace {

constexpr int kTile = 16;       // query rows per tile (= positions per page)
constexpr int kMaxHeadDim = 256;
constexpr int kSlices = kMaxHeadDim / 16;  // output dims per lane

template <typename T>
__global__ void __launch_bounds__(128)
    prefill_attention_kernel(const float* q, const int2* tiles, const int* positions, const int* row_table,
                             const int* tables, const uint16_t* k_pool, const uint16_t* v_pool, int n_heads,
                             int n_kv_heads, int hd, float scale, T* out) {
  extern __shared__ float smem[];
  const int ld = hd + 1;  // padded rows: lanes reading the same column of different rows hit different banks
  float* qs = smem;
  float* ks = qs + kTile * ld;
  float* vs = ks + kTile * ld;
  const int2 tile = tiles[blockIdx.x];
  const int r0 = tile.x, nr = tile.y, h = blockIdx.y;
  const int kv_dim = n_kv_heads * hd, kv_off = (h / (n_heads / n_kv_heads)) * hd;
  const int* table = tables + row_table[r0];
  const int last = positions[r0 + nr - 1];
  for (int idx = threadIdx.x; idx < kTile * hd; idx += blockDim.x) {
    const int i = idx / hd, d = idx % hd;
    qs[i * ld + d] = i < nr ? q[(static_cast<int64_t>(r0 + i) * n_heads + h) * hd + d] * scale : 0.0f;
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31, j = lane & 15, half_base = lane & 16;
  int row[2], pos[2];
  float m[2], l[2], acc[2][kSlices];
#pragma unroll
  for (int p = 0; p < 2; ++p) {
    row[p] = warp * 4 + p * 2 + (lane >> 4);
    pos[p] = row[p] < nr ? positions[r0 + row[p]] : -1;
    m[p] = -INFINITY;
    l[p] = 0.0f;
#pragma unroll
    for (int k = 0; k < kSlices; ++k) acc[p][k] = 0.0f;
  }
  for (int page = 0; page <= last / kTile; ++page) {
    __syncthreads();
    const int64_t base = static_cast<int64_t>(table[page]) * kTile;
    for (int idx = threadIdx.x; idx < kTile * hd; idx += blockDim.x) {
      const int t = idx / hd, d = idx % hd;
      const bool live = page * kTile + t <= last;
      const int64_t src = (base + t) * kv_dim + kv_off + d;
      ks[t * ld + d] = live ? half_bits_to_float(k_pool[src]) : 0.0f;
      vs[t * ld + d] = live ? half_bits_to_float(v_pool[src]) : 0.0f;
    }
    __syncthreads();
#pragma unroll
    for (int p = 0; p < 2; ++p) {
      float s = -INFINITY;
      if (pos[p] >= 0 && page * kTile + j <= pos[p]) {
        s = 0.0f;
        for (int d = 0; d < hd; ++d) s += qs[row[p] * ld + d] * ks[j * ld + d];
      }
      float mx = s;
      for (int o = 8; o > 0; o >>= 1) mx = fmaxf(mx, __shfl_xor_sync(0xffffffffu, mx, o));
      const float mn = fmaxf(m[p], mx);
      const float e = s == -INFINITY ? 0.0f : expf(s - mn);
      const float corr = m[p] == -INFINITY ? 0.0f : expf(m[p] - mn);
      float sum = e;
      for (int o = 8; o > 0; o >>= 1) sum += __shfl_xor_sync(0xffffffffu, sum, o);
      l[p] = l[p] * corr + sum;
#pragma unroll
      for (int k = 0; k < kSlices; ++k) acc[p][k] *= corr;
      for (int t = 0; t < kTile; ++t) {
        const float pt = __shfl_sync(0xffffffffu, e, half_base | t);
#pragma unroll
        for (int k = 0; k < kSlices; ++k) {
          const int d = j + 16 * k;
          if (d < hd) acc[p][k] += pt * vs[t * ld + d];
        }
      }
      if (mn != -INFINITY) m[p] = mn;
    }
  }
#pragma unroll
  for (int p = 0; p < 2; ++p) {
    if (pos[p] < 0) continue;
    T* o = out + (static_cast<int64_t>(r0 + row[p]) * n_heads + h) * hd;
#pragma unroll
    for (int k = 0; k < kSlices; ++k) {
      const int d = j + 16 * k;
      if (d < hd) o[d] = to_act<T>(acc[p][k] / l[p]);
    }
  }
}

}  // namespace

void prefill_attention(const float* q, const int2* tiles, int n_tiles, const int* positions, const int* row_table,
                       const int* tables, const uint16_t* k_pool, const uint16_t* v_pool, AttnShape s, void* out,
                       Act act, cudaStream_t stream) {
  if (n_tiles == 0) return;
  const float scale = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  const size_t smem = sizeof(float) * 3 * kTile * static_cast<size_t>(s.head_dim + 1);
  with_act(act, [&](auto t) {
    using T = decltype(t);
    auto* kernel = &prefill_attention_kernel<T>;
    if (smem > 48 * 1024) cudaFuncSetAttribute(kernel, cudaFuncAttributeMaxDynamicSharedMemorySize, static_cast<int>(smem));
    kernel<<<dim3(n_tiles, s.n_heads), 128, smem, stream>>>(q, tiles, positions, row_table, tables, k_pool, v_pool,
                                                            s.n_heads, s.n_kv_heads, s.head_dim, scale,
                                                            static_cast<T*>(out));
  });
}

}  // namespace t2s::engine::cuda
