// K/V of this batch's rows into their pages (fp16), V bias folded in. Runs before either attention kernel.
#include "engine/cuda/common.cuh"

namespace t2s::engine::cuda {
namespace {

__global__ void kv_write_kernel(const float* k, const float* v, const float* bv, const int* positions,
                                const int* row_table, const int* tables, int kv_dim, uint16_t* k_pool,
                                uint16_t* v_pool) {
  const int r = blockIdx.x;
  const int pos = positions[r];
  const int64_t block = tables[row_table[r] + pos / 16];
  const int64_t slot = (block * 16 + pos % 16) * kv_dim;
  for (int c = threadIdx.x; c < kv_dim; c += blockDim.x) {
    const int64_t src = static_cast<int64_t>(r) * kv_dim + c;
    k_pool[slot + c] = float_to_half_bits(k[src]);
    v_pool[slot + c] = float_to_half_bits(v[src] + (bv ? bv[c] : 0.0f));
  }
}

}  // namespace

void kv_write(const float* k, const float* v, const float* bv, const int* positions, const int* row_table,
              const int* tables, int rows, int kv_dim, uint16_t* k_pool, uint16_t* v_pool, cudaStream_t stream) {
  if (rows == 0) return;
  kv_write_kernel<<<rows, 128, 0, stream>>>(k, v, bv, positions, row_table, tables, kv_dim, k_pool, v_pool);
}

}  // namespace t2s::engine::cuda
