// Next-token selection on the device, one block per logit row, with the host sampler's semantics
// (sample_token_with): greedy = first maximum; otherwise a softmax at temperature T, then either the inverse CDF
// in index order, or candidates taken in (probability desc, index asc) order up to top-k and until the mass reaches
// top-p, and the draw scaled by the kept mass. Candidate selection costs one block reduction per kept token.
#include <cfloat>
#include <climits>

#include "engine/cuda/common.cuh"

namespace t2s::engine::cuda {
namespace {

constexpr int kThreads = 1024;

struct Cand {
  float p;
  int i;
};

__device__ __forceinline__ bool better(Cand a, Cand b) { return a.p > b.p || (a.p == b.p && a.i < b.i); }

// Block-wide best candidate (every thread gets the result).
__device__ Cand block_best(Cand c, Cand* shared) {
  for (int o = 16; o > 0; o >>= 1) {
    Cand other{__shfl_xor_sync(0xffffffffu, c.p, o), __shfl_xor_sync(0xffffffffu, c.i, o)};
    if (better(other, c)) c = other;
  }
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();
  if (lane == 0) shared[warp] = c;
  __syncthreads();
  if (warp == 0) {
    c = lane < static_cast<int>(blockDim.x >> 5) ? shared[lane] : Cand{-FLT_MAX, INT_MAX};
    for (int o = 16; o > 0; o >>= 1) {
      Cand other{__shfl_xor_sync(0xffffffffu, c.p, o), __shfl_xor_sync(0xffffffffu, c.i, o)};
      if (better(other, c)) c = other;
    }
    if (lane == 0) shared[0] = c;
  }
  __syncthreads();
  return shared[0];
}

__device__ float block_sum(float v, float* shared) {
  v = warp_sum(v);
  const int warp = threadIdx.x >> 5, lane = threadIdx.x & 31;
  __syncthreads();
  if (lane == 0) shared[warp] = v;
  __syncthreads();
  if (warp == 0) {
    v = lane < static_cast<int>(blockDim.x >> 5) ? shared[lane] : 0.0f;
    v = warp_sum(v);
    if (lane == 0) shared[0] = v;
  }
  __syncthreads();
  return shared[0];
}

__global__ void __launch_bounds__(kThreads)
    sample_kernel(const float* logits, int vocab, const DevSampleRow* params, float* probs_all, int* order_all,
                  int* tokens) {
  __shared__ Cand cand[32];
  __shared__ float fsum[32];
  __shared__ double prefix[kThreads];
  __shared__ int found;
  const int r = blockIdx.x, tid = threadIdx.x;
  const float* lg = logits + static_cast<int64_t>(r) * vocab;
  const DevSampleRow p = params[r];
  Cand best{-FLT_MAX, INT_MAX};
  for (int i = tid; i < vocab; i += blockDim.x)
    if (better(Cand{lg[i], i}, best)) best = Cand{lg[i], i};
  best = block_best(best, cand);
  if (p.temperature <= 0.0f) {
    if (tid == 0) tokens[r] = best.i;
    return;
  }
  float* probs = probs_all + static_cast<int64_t>(r) * vocab;
  float local = 0.0f;
  for (int i = tid; i < vocab; i += blockDim.x) {
    probs[i] = expf((lg[i] - best.p) / p.temperature);
    local += probs[i];
  }
  const float sum = block_sum(local, fsum);
  for (int i = tid; i < vocab; i += blockDim.x) probs[i] /= sum;
  __syncthreads();
  const int k = (p.top_k > 0 && p.top_k < vocab) ? p.top_k : vocab;
  if (k == vocab && p.top_p >= 1.0f) {
    // Inverse CDF in index order: contiguous chunks, an exclusive scan of their masses, then a walk of the chunk
    // that crosses the draw.
    const int chunk = (vocab + kThreads - 1) / kThreads;
    const int lo = min(vocab, tid * chunk), hi = min(vocab, lo + chunk);
    double mass = 0;
    for (int i = lo; i < hi; ++i) mass += probs[i];
    prefix[tid] = mass;
    if (tid == 0) found = vocab - 1;
    __syncthreads();
    if (tid == 0)
      for (int t = 1; t < kThreads; ++t) prefix[t] += prefix[t - 1];
    __syncthreads();
    double c = tid == 0 ? 0.0 : prefix[tid - 1];
    if (lo < hi && p.uniform < prefix[tid] && (tid == 0 || p.uniform >= prefix[tid - 1]))
      for (int i = lo; i < hi; ++i) {
        c += probs[i];
        if (p.uniform < c) {
          found = i;
          break;
        }
      }
    __syncthreads();
    if (tid == 0) tokens[r] = found;
    return;
  }
  int* order = order_all + static_cast<int64_t>(r) * vocab;
  Cand prev{FLT_MAX, -1};
  double mass = 0;
  int keep = 0;
  while (keep < k) {
    Cand c{-FLT_MAX, INT_MAX};
    for (int i = tid; i < vocab; i += blockDim.x) {
      const Cand x{probs[i], i};
      if (better(prev, x) && better(x, c)) c = x;
    }
    c = block_best(c, cand);
    if (tid == 0) order[keep] = c.i;
    prev = c;
    mass += c.p;
    ++keep;
    if (mass >= p.top_p) break;
  }
  if (tid == 0) {
    double total = 0;
    for (int i = 0; i < keep; ++i) total += probs[order[i]];
    const double target = p.uniform * total;
    double c = 0;
    int token = order[keep - 1];
    for (int i = 0; i < keep; ++i) {
      c += probs[order[i]];
      if (target < c) {
        token = order[i];
        break;
      }
    }
    tokens[r] = token;
  }
}

}  // namespace

void sample(const float* logits, int rows, int vocab, const DevSampleRow* params, float* probs, int* order, int* tokens,
            cudaStream_t stream) {
  if (rows == 0) return;
  sample_kernel<<<rows, kThreads, 0, stream>>>(logits, vocab, params, probs, order, tokens);
}

}  // namespace t2s::engine::cuda
