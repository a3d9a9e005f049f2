#pragma once
//! Next-token selection from logits: greedy, or temperature with top-k / top-p, from a seeded generator.
#include <cstdint>
#include <vector>

#include "common/rng.hpp"

namespace t2s::engine {

//! How to pick the next token.
struct SamplingParams {
  float temperature = 0.0f;  //!< 0 = greedy (argmax, first index on ties)
  int top_k = 0;             //!< keep the k most likely (0 = all)
  float top_p = 1.0f;        //!< keep the smallest set whose probability reaches p (1 = all)
};

//! Picks a token from `logits[n]` (modified in place); `scratch` holds n (index) entries and is reused.
//! Draws one uniform from `rng` when temperature > 0, none when greedy.
int sample_token(float* logits, int n, const SamplingParams& params, Rng& rng, std::vector<int>& scratch);
//! The same selection with the uniform draw `u` in [0, 1) given (ignored when greedy): the reference for device
//! sampling. Candidates are ordered by probability, ties by index; top-k, then the smallest prefix reaching top-p.
int sample_token_with(float* logits, int n, const SamplingParams& params, double u, std::vector<int>& scratch);

}  // namespace t2s::engine
