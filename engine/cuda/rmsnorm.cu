// RMSNorm: one block per row; float sum of squares, the result written in the GEMM's activation type.
#include "engine/cuda/common.cuh"

namespace t2s::engine::cuda {
namespace {

template <typename T>
__global__ void rmsnorm_kernel(const float* x, const int* row_index, const float* w, int dim, float eps, T* out) {
  const int r = blockIdx.x;
  const float* xr = x + static_cast<int64_t>(row_index ? row_index[r] : r) * dim;
  float ss = 0;
  for (int c = threadIdx.x; c < dim; c += blockDim.x) ss += xr[c] * xr[c];
  __shared__ float part[32];
  ss = warp_sum(ss);
  if ((threadIdx.x & 31) == 0) part[threadIdx.x >> 5] = ss;
  __syncthreads();
  if (threadIdx.x < 32) {
    float v = threadIdx.x < (blockDim.x >> 5) ? part[threadIdx.x] : 0.0f;
    v = warp_sum(v);
    if (threadIdx.x == 0) part[0] = v;
  }
  __syncthreads();
  const float scale = rsqrtf(part[0] / static_cast<float>(dim) + eps);
  for (int c = threadIdx.x; c < dim; c += blockDim.x) out[static_cast<int64_t>(r) * dim + c] = to_act<T>(w[c] * (scale * xr[c]));
}

}  // namespace

void rmsnorm(const float* x, const int* row_index, int rows, const float* w, int dim, float eps, void* out, Act act,
             cudaStream_t stream) {
  if (rows == 0) return;
  with_act(act, [&](auto t) {
    using T = decltype(t);
    rmsnorm_kernel<T><<<rows, 256, 0, stream>>>(x, row_index, w, dim, eps, static_cast<T*>(out));
  });
}

}  // namespace t2s::engine::cuda
