// Weight matrix → activation type (Q8_0 / Q4_0 / F32 in the GEMM path: dequantised into scratch, then cuBLAS).
#include "engine/cuda/common.cuh"

namespace t2s::engine::cuda {
namespace {

template <typename T>
__global__ void dequant_kernel(DType type, const uint8_t* w, int64_t rows, int64_t cols, T* out) {
  const int64_t i = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x;
  if (i >= rows * cols) return;
  out[i] = to_act<T>(weight_at(type, w, cols, i / cols, i % cols));
}

}  // namespace

void dequantize(const DevMatrix& w, void* out, Act act, cudaStream_t stream) {
  const int64_t n = w.rows * w.cols;
  if (n == 0) return;
  with_act(act, [&](auto t) {
    using T = decltype(t);
    dequant_kernel<T><<<blocks_for(n, 256), 256, 0, stream>>>(w.type, static_cast<const uint8_t*>(w.data), w.rows,
                                                             w.cols, static_cast<T*>(out));
  });
}

}  // namespace t2s::engine::cuda
