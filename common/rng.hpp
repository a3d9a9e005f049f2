#pragma once
//! A seeded, platform-independent random generator (xoshiro256**) with its own distributions,
//! so the same seed gives byte-identical workloads on every machine and standard library.
#include <cmath>
#include <cstdint>
#include <vector>

namespace t2s {

//! Deterministic PRNG; copyable, no global state.
class Rng {
 public:
  //! Seeds the four state words from `seed` via splitmix64.
  explicit Rng(uint64_t seed = 0x5eedULL) {
    uint64_t x = seed;
    for (auto& s : s_) {
      x += 0x9e3779b97f4a7c15ULL;
      uint64_t z = x;
      z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
      z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
      s = z ^ (z >> 31);
    }
  }
  //! A new generator whose stream is independent of this one (for per-entity streams).
  Rng fork(uint64_t salt) { return Rng(next_u64() ^ (salt * 0xd1342543de82ef95ULL)); }
  //! 64 uniform bits.
  uint64_t next_u64() {
    const uint64_t result = rotl(s_[1] * 5, 7) * 9;
    const uint64_t t = s_[1] << 17;
    s_[2] ^= s_[0];
    s_[3] ^= s_[1];
    s_[1] ^= s_[2];
    s_[0] ^= s_[3];
    s_[2] ^= t;
    s_[3] = rotl(s_[3], 45);
    return result;
  }
  //! Uniform in [0, 1).
  double uniform() { return static_cast<double>(next_u64() >> 11) * 0x1.0p-53; }
  //! Uniform in [lo, hi).
  double uniform(double lo, double hi) { return lo + (hi - lo) * uniform(); }
  //! Uniform integer in [lo, hi] (inclusive).
  int64_t uniform_int(int64_t lo, int64_t hi) {
    uint64_t span = static_cast<uint64_t>(hi - lo) + 1;
    return lo + static_cast<int64_t>(span == 0 ? next_u64() : next_u64() % span);
  }
  //! True with probability p.
  bool bernoulli(double p) { return uniform() < p; }
  //! Standard normal (Box-Muller, no cached pair to keep the state simple).
  double normal(double mean = 0.0, double stddev = 1.0) {
    double u1 = uniform();
    if (u1 < 1e-300) u1 = 1e-300;
    double u2 = uniform();
    return mean + stddev * std::sqrt(-2.0 * std::log(u1)) * std::cos(6.283185307179586 * u2);
  }
  //! Log-normal with the given log-space parameters.
  double lognormal(double mu, double sigma) { return std::exp(normal(mu, sigma)); }
  //! Exponential with rate `lambda`.
  double exponential(double lambda) {
    double u = uniform();
    return -std::log1p(-u) / lambda;
  }
  //! Gamma(shape k, scale theta) by Marsaglia–Tsang.
  double gamma(double k, double theta) {
    if (k < 1.0) {
      double u = uniform();
      if (u < 1e-300) u = 1e-300;
      return gamma(k + 1.0, theta) * std::pow(u, 1.0 / k);
    }
    const double d = k - 1.0 / 3.0, c = 1.0 / std::sqrt(9.0 * d);
    for (;;) {
      double x = normal(), v = 1.0 + c * x;
      if (v <= 0) continue;
      v = v * v * v;
      double u = uniform();
      if (u < 1.0 - 0.0331 * x * x * x * x) return d * v * theta;
      if (std::log(u) < 0.5 * x * x + d * (1.0 - v + std::log(v))) return d * v * theta;
    }
  }
  //! Zipf-like index in [0, n) with exponent s (small n; linear scan of the CDF).
  size_t zipf(size_t n, double s) {
    double norm = 0;
    for (size_t i = 1; i <= n; ++i) norm += 1.0 / std::pow(static_cast<double>(i), s);
    double u = uniform() * norm, acc = 0;
    for (size_t i = 1; i <= n; ++i) {
      acc += 1.0 / std::pow(static_cast<double>(i), s);
      if (u < acc) return i - 1;
    }
    return n - 1;
  }
  //! Index drawn with probability proportional to `weights`.
  size_t weighted(const std::vector<double>& weights) {
    double total = 0;
    for (double w : weights) total += w;
    double u = uniform() * total, acc = 0;
    for (size_t i = 0; i < weights.size(); ++i) {
      acc += weights[i];
      if (u < acc) return i;
    }
    return weights.empty() ? 0 : weights.size() - 1;
  }
  //! Picks one element uniformly.
  template <typename T>
  const T& pick(const std::vector<T>& v) {
    return v[static_cast<size_t>(uniform_int(0, static_cast<int64_t>(v.size()) - 1))];
  }

 private:
  static uint64_t rotl(uint64_t x, int k) { return (x << k) | (x >> (64 - k)); }
  uint64_t s_[4];
};

}  // namespace t2s
