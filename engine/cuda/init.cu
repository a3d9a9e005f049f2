// Random weights made on the device (benchmarks): a counter-based hash of (seed, index) → uniform [lo, hi).
#include "engine/cuda/common.cuh"

namespace t2s::engine::cuda {
namespace {

__device__ __forceinline__ float hash_uniform(uint64_t seed, uint64_t i) {
  uint64_t z = seed + (i + 1) * 0x9e3779b97f4a7c15ULL;  // splitmix64
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  z ^= z >> 31;
  return static_cast<float>(z >> 40) * (1.0f / 16777216.0f);
}

__global__ void fill_kernel(void* out, DType type, int64_t n, uint64_t seed, float lo, float hi) {
  for (int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const float v = lo + (hi - lo) * hash_uniform(seed, static_cast<uint64_t>(i));
    if (type == DType::F32) static_cast<float*>(out)[i] = v;
    else if (type == DType::BF16) static_cast<__nv_bfloat16*>(out)[i] = __float2bfloat16_rn(v);
    else static_cast<__half*>(out)[i] = __float2half_rn(v);
  }
}

}  // namespace

void fill_uniform(void* out, DType type, int64_t n, uint64_t seed, float lo, float hi, cudaStream_t stream) {
  if (n == 0) return;
  fill_kernel<<<4096, 256, 0, stream>>>(out, type, n, seed, lo, hi);
}

}  // namespace t2s::engine::cuda
