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
int sample_token(float* logits, int n, const SamplingParams& params, Rng& rng, std::vector<int>& scratch);

}  // namespace t2s::engine
