#pragma once
//! Forward and backward of each decoder op on row-major float rows. Backward functions ADD into weight gradients
//! (dw) and, where named `dx_acc`, into the input gradient; plain `dx` outputs are overwritten. Every op gives the
//! same bits for any thread count (rows or heads are split statically, each element has one fixed reduction order).
#include <cstdint>
#include <vector>

#include "engine/cpu/thread_pool.hpp"

namespace t2s::engine::train::ops {

//! y[r] = w ⊙ x[r] · rstd[r] with rstd[r] = 1/sqrt(mean(x[r]²) + eps) (the engine's float formula); saves rstd.
void rmsnorm_forward(cpu::ThreadPool& pool, float* y, float* rstd, const float* x, const float* w, int64_t rows,
                     int64_t n, float eps);
//! dx_acc[r] += rstd·(dy⊙w) − rstd³/n · x · Σ(dy⊙w⊙x); dw += Σ_r dy⊙x·rstd.
void rmsnorm_backward(cpu::ThreadPool& pool, float* dx_acc, float* dw, const float* dy, const float* x,
                      const float* w, const float* rstd, int64_t rows, int64_t n);

//! y[rows][out] = x[rows][in] · wᵀ with w [out][in] (no bias). `scratch` receives wᵀ.
void linear_forward(cpu::ThreadPool& pool, float* y, const float* x, const float* w, int64_t rows, int64_t in,
                    int64_t out, std::vector<float>& scratch);
//! dx (= or += when accumulate_dx) dy · w; dw += dyᵀ · x. dx may be null (not needed).
void linear_backward(cpu::ThreadPool& pool, float* dx, bool accumulate_dx, float* dw, const float* dy, const float* x,
                     const float* w, int64_t rows, int64_t in, int64_t out);

//! Cos/sin table [positions][head_dim/2] for the engine's RoPE: freq_j = theta^(−2j/head_dim) in double, cast to float.
void rope_table(int positions, int head_dim, float theta, std::vector<float>& cos, std::vector<float>& sin);
//! Rotates adjacent pairs (2j, 2j+1) of each head of each row in place by angle pos[r]·freq_j (GGUF "llama").
void rope_forward(cpu::ThreadPool& pool, float* x, int64_t rows, int heads, int head_dim, const int* pos,
                  const float* cos, const float* sin);
//! The transpose of rope_forward (rotation by −angle), in place on the gradient.
void rope_backward(cpu::ThreadPool& pool, float* dx, int64_t rows, int heads, int head_dim, const int* pos,
                   const float* cos, const float* sin);

//! Shape of a packed attention call: `batch` rows of `seq` tokens; token t of a row attends to
//! [seg_start[t], t] of that row (its own sequence, causal). seg_start is [batch][seq], non-decreasing per row.
struct AttentionShape {
  int batch = 0, seq = 0, heads = 0, kv_heads = 0, head_dim = 0;  //!< sizes (kv_heads divides heads)
  const int* seg_start = nullptr;                                 //!< [batch][seq]
};
//! out[b,t,h] = Σ_s softmax_s(q·k/√hd) v over the allowed s; q [b][t][heads·hd], k/v [b][t][kv_heads·hd]; saves the
//! per-(b,h,t) log-sum-exp `lse` [batch][heads][seq] for the backward pass (which recomputes the probabilities).
//! `scratch` is resized to the per-thread working memory and reused across calls.
void attention_forward(cpu::ThreadPool& pool, const AttentionShape& s, float* out, float* lse, const float* q,
                       const float* k, const float* v, std::vector<float>& scratch);
//! dq, dk, dv (all overwritten): gradients of attention_forward given dout, its inputs, out and lse.
void attention_backward(cpu::ThreadPool& pool, const AttentionShape& s, float* dq, float* dk, float* dv,
                        const float* dout, const float* q, const float* k, const float* v, const float* out,
                        const float* lse, std::vector<float>& scratch);

//! out = silu(g) ⊙ u with silu(g) = g / (1 + e^(−g)).
void swiglu_forward(cpu::ThreadPool& pool, float* out, const float* g, const float* u, int64_t n);
//! dg = dout ⊙ u ⊙ silu'(g), du = dout ⊙ silu(g) (overwritten).
void swiglu_backward(cpu::ThreadPool& pool, float* dg, float* du, const float* dout, const float* g, const float* u,
                     int64_t n);

//! For each row r: loss_r = logsumexp(logits[r]) − logits[r][label[r]]; logits are overwritten by
//! scale·(softmax − onehot). Returns Σ_r loss_r in double.
double cross_entropy(cpu::ThreadPool& pool, float* logits, const int* labels, int64_t rows, int64_t vocab, float scale);

//! y[r] = table[tokens[r]].
void embedding_forward(float* y, const float* table, const int* tokens, int64_t rows, int64_t dim);
//! dtable[tokens[r]] += dy[r], rows in order.
void embedding_backward(float* dtable, const float* dy, const int* tokens, int64_t rows, int64_t dim);

}  // namespace t2s::engine::train::ops
