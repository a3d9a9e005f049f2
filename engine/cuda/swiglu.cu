// SwiGLU: silu(gate) * up, elementwise, written in the activation type of the down projection.
#include "engine/cuda/common.cuh"

namespace t2s::engine::cuda {
namespace {

template <typename T>
__global__ void swiglu_kernel(const float* gate, const float* up, int64_t n, T* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= n) return;
  const float g = gate[i];
  out[i] = to_act<T>(g * (1.0f / (1.0f + expf(-g))) * up[i]);
}

}  // namespace

void swiglu(const float* gate, const float* up, int64_t n, void* out, Act act, cudaStream_t stream) {
  if (n == 0) return;
  with_act(act, [&](auto t) {
    using T = decltype(t);
    swiglu_kernel<T><<<blocks_for(n, 256), 256, 0, stream>>>(gate, up, n, static_cast<T*>(out));
  });
}

}  // namespace t2s::engine::cuda
