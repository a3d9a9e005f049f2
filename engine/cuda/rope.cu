// RoPE with optional Q/K bias (Qwen2) folded in: one thread per rotated pair, tables precomputed on the host
// exactly as the CPU backend computes them.
#include "engine/cuda/common.cuh"

namespace t2s::engine::cuda {
namespace {

__global__ void rope_kernel(float* q, float* k, const float* bq, const float* bk, const int* positions, int rows,
                            int n_heads, int n_kv_heads, int hd, const float* cos_t, const float* sin_t, bool neox) {
  const int half = hd / 2;
  const int pairs = (n_heads + n_kv_heads) * half;
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= static_cast<int64_t>(rows) * pairs) return;
  const int r = static_cast<int>(i / pairs), p = static_cast<int>(i % pairs);
  int h = p / half;
  const int j = p % half;
  float* v;
  const float* b;
  if (h < n_heads) {
    v = q + (static_cast<int64_t>(r) * n_heads + h) * hd;
    b = bq ? bq + h * hd : nullptr;
  } else {
    h -= n_heads;
    v = k + (static_cast<int64_t>(r) * n_kv_heads + h) * hd;
    b = bk ? bk + h * hd : nullptr;
  }
  const int a = neox ? j : 2 * j, c = neox ? j + half : 2 * j + 1;
  float x0 = v[a], x1 = v[c];
  if (b) {
    x0 += b[a];
    x1 += b[c];
  }
  const int64_t t = static_cast<int64_t>(positions[r]) * half + j;
  const float cs = cos_t[t], sn = sin_t[t];
  v[a] = x0 * cs - x1 * sn;
  v[c] = x0 * sn + x1 * cs;
}

}  // namespace

void rope(float* q, float* k, const float* bq, const float* bk, const int* positions, int rows, int n_heads,
          int n_kv_heads, int head_dim, const float* cos_table, const float* sin_table, bool neox, cudaStream_t stream) {
  const int64_t n = static_cast<int64_t>(rows) * (n_heads + n_kv_heads) * (head_dim / 2);
  if (n == 0) return;
  rope_kernel<<<blocks_for(n, 256), 256, 0, stream>>>(q, k, bq, bk, positions, rows, n_heads, n_kv_heads, head_dim,
                                                      cos_table, sin_table, neox);
}

}  // namespace t2s::engine::cuda
