#pragma once
//! Launchers of the CUDA backend's kernels (one kernel per .cu file), callable from host C++. Every launcher is
//! asynchronous on `stream`; pointers are device pointers. engine/cuda/reference.hpp holds the CPU oracle of each.
#include <cstdint>

#include <cuda_runtime_api.h>

#include "engine/cuda/act.hpp"
#include "engine/tensor.hpp"

namespace t2s::engine::cuda {

//! A weight matrix on the device: [rows][cols] row-major in `type` (F16, BF16, Q8_0 or Q4_0 blocks as in GGUF).
struct DevMatrix {
  DType type = DType::F16;   //!< element type
  const void* data = nullptr;  //!< device bytes
  int64_t rows = 0;          //!< output features
  int64_t cols = 0;          //!< input features
};

//! Sampling request of one row as the sampling kernel reads it.
struct DevSampleRow {
  float temperature = 0;  //!< 0 = greedy
  int top_k = 0;          //!< 0 = all
  float top_p = 1;        //!< 1 = all
  int pad = 0;            //!< keeps `uniform` 8-byte aligned
  double uniform = 0;     //!< the caller's draw in [0, 1)
};

//! x[r][:] = float(table row tokens[r]) for r < rows (embedding.cu).
void embedding(const DevMatrix& table, const int* tokens, int rows, float* x, cudaStream_t stream);
//! out[r] = w ⊙ x[src] / rms(x[src]) in `act`, src = row_index ? row_index[r] : r (rmsnorm.cu).
void rmsnorm(const float* x, const int* row_index, int rows, const float* w, int dim, float eps, void* out, Act act,
             cudaStream_t stream);
//! Adds the optional biases, then rotates q [rows][n_heads*hd] and k [rows][n_kv_heads*hd] in place at each row's
//! position with the cos/sin tables [max_ctx][hd/2]; neox pairs (j, j+hd/2), else (2j, 2j+1) (rope.cu).
void rope(float* q, float* k, const float* bq, const float* bk, const int* positions, int rows, int n_heads,
          int n_kv_heads, int head_dim, const float* cos_table, const float* sin_table, bool neox, cudaStream_t stream);
//! out[i] = silu(gate[i]) * up[i] in `act`, for rows*hidden elements (swiglu.cu).
void swiglu(const float* gate, const float* up, int64_t n, void* out, Act act, cudaStream_t stream);
//! Stores row r's k and v (+ bv when given) as fp16 at (tables[row_table[r] + pos/16], pos%16) of one layer's
//! pools [blocks][16][kv_dim] (kv_write.cu).
void kv_write(const float* k, const float* v, const float* bv, const int* positions, const int* row_table,
              const int* tables, int rows, int kv_dim, uint16_t* k_pool, uint16_t* v_pool, cudaStream_t stream);
//! Shape of attention for the two attention kernels.
struct AttnShape {
  int n_heads = 0, n_kv_heads = 0, head_dim = 0;  //!< GQA shape; head_dim ≤ 256 and a multiple of 16
};
//! Decode attention over the paged pool: for each listed row, every head attends to positions 0..pos of its
//! sequence; out[row] in `act` [rows][n_heads*hd] (paged_attention.cu).
void paged_attention(const float* q, const int* rows, int n_rows, const int* positions, const int* row_table,
                     const int* tables, const uint16_t* k_pool, const uint16_t* v_pool, AttnShape shape, void* out,
                     Act act, cudaStream_t stream);
//! Causal prefill attention, flash-style: each tile (first row, row count ≤ 16) holds consecutive positions of one
//! sequence; K/V pages are streamed through shared memory with an online softmax, no score matrix (prefill_attention.cu).
void prefill_attention(const float* q, const int2* tiles, int n_tiles, const int* positions, const int* row_table,
                       const int* tables, const uint16_t* k_pool, const uint16_t* v_pool, AttnShape shape, void* out,
                       Act act, cudaStream_t stream);
//! Converts a weight matrix (any DevMatrix type) to `act` [rows][cols] (dequant.cu).
void dequantize(const DevMatrix& w, void* out, Act act, cudaStream_t stream);
//! One token per row of logits [rows][vocab] into tokens; `probs` [rows][vocab] floats and `order` [rows][vocab]
//! ints are scratch (sample.cu).
void sample(const float* logits, int rows, int vocab, const DevSampleRow* params, float* probs, int* order,
            int* tokens, cudaStream_t stream);
//! Fills n elements of `out` (type F16, BF16 or F32) with uniform values in [lo, hi) from a hash of (seed, index):
//! weights made on the device for benchmarks (init.cu).
void fill_uniform(void* out, DType type, int64_t n, uint64_t seed, float lo, float hi, cudaStream_t stream);

}  // namespace t2s::engine::cuda
