// Embedding gather: one block per row, the table row decoded to float.
#include "engine/cuda/common.cuh"

namespace t2s::engine::cuda {
namespace {

__global__ void embedding_kernel(DType type, const uint8_t* table, int64_t dim, const int* tokens, float* x) {
  const int r = blockIdx.x;
  const int64_t tok = tokens[r];
  for (int64_t c = threadIdx.x; c < dim; c += blockDim.x) x[r * dim + c] = weight_at(type, table, dim, tok, c);
}

}  // namespace

void embedding(const DevMatrix& table, const int* tokens, int rows, float* x, cudaStream_t stream) {
  if (rows == 0) return;
  embedding_kernel<<<rows, 256, 0, stream>>>(table.type, static_cast<const uint8_t*>(table.data), table.cols, tokens, x);
}

}  // namespace t2s::engine::cuda
