#include "engine/sampler.hpp"

#include <algorithm>
#include <cmath>

namespace t2s::engine {

int sample_token(float* logits, int n, const SamplingParams& p, Rng& rng, std::vector<int>& scratch) {
  double u = p.temperature > 0.0f ? rng.uniform() : 0.0;
  return sample_token_with(logits, n, p, u, scratch);
}

int sample_token_with(float* logits, int n, const SamplingParams& p, double u, std::vector<int>& scratch) {
  int best = 0;
  for (int i = 1; i < n; ++i)
    if (logits[i] > logits[best]) best = i;
  if (p.temperature <= 0.0f) return best;
  // Softmax at temperature T (max-subtracted).
  float mx = logits[best], sum = 0;
  for (int i = 0; i < n; ++i) {
    logits[i] = std::exp((logits[i] - mx) / p.temperature);
    sum += logits[i];
  }
  for (int i = 0; i < n; ++i) logits[i] /= sum;
  int k = (p.top_k > 0 && p.top_k < n) ? p.top_k : n;
  if (k == n && p.top_p >= 1.0f) {
    double r = u, c = 0;
    for (int i = 0; i < n; ++i) {
      c += logits[i];
      if (r < c) return i;
    }
    return n - 1;
  }
  // Keep candidates sorted by probability (ties by index, so the order is deterministic).
  scratch.resize(static_cast<size_t>(n));
  for (int i = 0; i < n; ++i) scratch[static_cast<size_t>(i)] = i;
  auto by_prob = [&](int a, int b) { return logits[a] > logits[b] || (logits[a] == logits[b] && a < b); };
  std::partial_sort(scratch.begin(), scratch.begin() + k, scratch.end(), by_prob);
  double mass = 0;
  int keep = 0;
  for (; keep < k; ++keep) {
    mass += logits[scratch[static_cast<size_t>(keep)]];
    if (mass >= p.top_p) {
      ++keep;
      break;
    }
  }
  keep = std::max(1, std::min(keep, k));
  double total = 0;
  for (int i = 0; i < keep; ++i) total += logits[scratch[static_cast<size_t>(i)]];
  double r = u * total, c = 0;
  for (int i = 0; i < keep; ++i) {
    c += logits[scratch[static_cast<size_t>(i)]];
    if (r < c) return scratch[static_cast<size_t>(i)];
  }
  return scratch[static_cast<size_t>(keep - 1)];
}

}  // namespace t2s::engine
