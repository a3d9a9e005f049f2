#pragma once
//! Small statistics helpers shared by metrics, benches and tests.
#include <algorithm>
#include <cmath>
#include <vector>

namespace t2s {

//! The q-quantile (0..1) of `values` by linear interpolation between order statistics; NaN when empty.
inline double quantile(std::vector<double> values, double q) {
  if (values.empty()) return std::nan("");
  std::sort(values.begin(), values.end());
  double pos = q * static_cast<double>(values.size() - 1);
  size_t lo = static_cast<size_t>(std::floor(pos));
  size_t hi = std::min(lo + 1, values.size() - 1);
  double frac = pos - static_cast<double>(lo);
  return values[lo] + (values[hi] - values[lo]) * frac;
}

//! Arithmetic mean; NaN when empty.
inline double mean(const std::vector<double>& values) {
  if (values.empty()) return std::nan("");
  double s = 0;
  for (double v : values) s += v;
  return s / static_cast<double>(values.size());
}

//! Sample standard deviation; 0 with fewer than two values.
inline double stddev(const std::vector<double>& values) {
  if (values.size() < 2) return 0.0;
  double m = mean(values), s = 0;
  for (double v : values) s += (v - m) * (v - m);
  return std::sqrt(s / static_cast<double>(values.size() - 1));
}

}  // namespace t2s
