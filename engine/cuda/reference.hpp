#pragma once
//! CPU oracles of the CUDA kernels (engine/cuda/*.cu), one per kernel, with the same arguments on host memory.
//! Compiled in every build (no CUDA needed), so the unit tests exercise them and the [gpu] tests compare against them.
#include <cstdint>
#include <vector>

#include "engine/cuda/act.hpp"
#include "engine/model.hpp"
#include "engine/sampler.hpp"
#include "engine/tensor.hpp"

namespace t2s::engine::cuda {

//! `v` rounded to `act` and back (what storing a GEMM input in that type does).
float round_to_act(float v, Act act);
//! `v` rounded to fp16 and back (what the KV pool stores).
float round_to_half(float v);

//! RoPE tables [max_ctx][head_dim/2] exactly as the backends use them (llama2.c's float expression when
//! config.llama2c_rope, else double precision with Llama-3 frequency divisors when given).
void rope_tables(const ModelConfig& config, const std::vector<float>& freq_factors, int max_ctx,
                 std::vector<float>& cos_table, std::vector<float>& sin_table);

//! x[r] = table row tokens[r] as float.
void ref_embedding(const TensorView& table, const int* tokens, int rows, float* x);
//! out[r] = round(w ⊙ x[src] / rms(x[src])), src = row_index ? row_index[r] : r.
void ref_rmsnorm(const float* x, const int* row_index, int rows, const float* w, int dim, float eps, float* out,
                 Act act);
//! Bias then rotation of q [rows][n_heads*hd] and k [rows][n_kv_heads*hd] in place (neox: pairs (j, j+hd/2)).
void ref_rope(float* q, float* k, const float* bq, const float* bk, const int* positions, int rows, int n_heads,
              int n_kv_heads, int head_dim, const float* cos_table, const float* sin_table, bool neox);
//! out[i] = round(silu(gate[i]) * up[i]).
void ref_swiglu(const float* gate, const float* up, int64_t n, float* out, Act act);
//! Stores k and v + bv, rounded to fp16 (as float), at (tables[row_table[r] + pos/16], pos%16) of [blocks][16][kv_dim].
void ref_kv_write(const float* k, const float* v, const float* bv, const int* positions, const int* row_table,
                  const int* tables, int rows, int kv_dim, float* k_pool, float* v_pool);
//! Attention of one row over positions 0..pos of its paged K/V (float pools holding fp16 values): out [n_heads*hd],
//! rounded to `act`. Both the decode and the prefill kernel are checked against this.
void ref_attention_row(const float* q, int pos, const int* table, const float* k_pool, const float* v_pool,
                       int n_heads, int n_kv_heads, int head_dim, float* out, Act act);
//! Weight matrix → floats rounded to `act` [rows][cols].
void ref_dequantize(const TensorView& w, float* out, Act act);
//! The token sample.cu picks for one row: sample_token_with on a copy of the logits.
int ref_sample(const float* logits, int vocab, const SamplingParams& params, double uniform);

}  // namespace t2s::engine::cuda
