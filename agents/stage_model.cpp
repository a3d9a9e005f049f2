#include "agents/stage_model.hpp"

#include <algorithm>
#include <cmath>

namespace t2s::agents {

namespace {

// Inverse of the standard normal CDF (Acklam's rational approximation, |error| < 1.2e-9).
double normal_quantile(double p) {
  static constexpr double a[] = {-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
                                 1.383577518672690e+02,  -3.066479806614716e+01, 2.506628277459239e+00};
  static constexpr double b[] = {-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
                                 6.680131188771972e+01,  -1.328068155288572e+01};
  static constexpr double c[] = {-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
                                 -2.549732539343734e+00, 4.374664141464968e+00,  2.938163982698783e+00};
  static constexpr double d[] = {7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
                                 3.754408661907416e+00};
  p = std::clamp(p, 1e-12, 1 - 1e-12);
  if (p < 0.02425) {
    double q = std::sqrt(-2 * std::log(p));
    return (((((c[0] * q + c[1]) * q + c[2]) * q + c[3]) * q + c[4]) * q + c[5]) /
           ((((d[0] * q + d[1]) * q + d[2]) * q + d[3]) * q + 1);
  }
  if (p > 1 - 0.02425) return -normal_quantile(1 - p);
  double q = p - 0.5, r = q * q;
  return (((((a[0] * r + a[1]) * r + a[2]) * r + a[3]) * r + a[4]) * r + a[5]) * q /
         (((((b[0] * r + b[1]) * r + b[2]) * r + b[3]) * r + b[4]) * r + 1);
}

// {prompt {mu, sigma, min, max}, output {mu, sigma, min, max}} per stage kind. Fitted with
// scripts in docs/agents.md ("Fitting the stage model") over trace1, trace2, financial and formula1 (309 queries).
// tool_picker pools the "Information Retriever" (1236 calls) and "unit_tester" (927 calls) steps.
// column_selection and selection do not occur in the agentic traces: their numbers are assumptions
// (CHESS-style JSON answers of ~100 tokens), marked as such in docs/agents.md.
const StageLengths kLengths[] = {
    {StageKind::tool_picker, {5.6777, 0.0550, 271, 312}, {1.6485, 0.4700, 4, 46}},
    {StageKind::keyword_extraction, {6.5164, 0.0379, 634, 750}, {3.8005, 0.4340, 12, 119}},
    {StageKind::column_selection, {7.6000, 0.3000, 800, 6000}, {4.6000, 0.4000, 20, 400}},
    {StageKind::candidate_generation, {9.2666, 0.2039, 7869, 14131}, {6.4484, 0.3121, 274, 1026}},
    {StageKind::revise, {8.8488, 0.1522, 5701, 8904}, {4.4403, 0.8081, 10, 1078}},
    {StageKind::unit_test_generation, {7.0133, 0.2087, 628, 3320}, {4.5131, 0.3956, 26, 245}},
    {StageKind::evaluation, {6.9209, 0.2703, 502, 3177}, {3.2211, 0.4588, 22, 357}},
    {StageKind::selection, {7.0000, 0.3000, 300, 4000}, {3.5000, 0.4000, 5, 200}},
    {StageKind::sql_execution, {0, 0, 0, 0}, {0, 0, 0, 0}},
    {StageKind::other, {6.0000, 0.5000, 50, 8000}, {3.5000, 0.6000, 1, 1000}},
};

}  // namespace

int LengthDistribution::draw(Rng& rng) const {
  double x = rng.lognormal(mu, sigma);
  return std::clamp(static_cast<int>(std::lround(x)), min, max);
}

double LengthDistribution::quantile(double q) const {
  return std::clamp(std::exp(mu + sigma * normal_quantile(q)), static_cast<double>(min), static_cast<double>(max));
}

double LengthDistribution::mean() const {
  // Midpoint rule over 200 quantiles: deterministic and accurate enough for cost estimates.
  double s = 0;
  for (int i = 0; i < 200; ++i) s += quantile((i + 0.5) / 200.0);
  return s / 200.0;
}

const StageLengths& trace_fitted_lengths(StageKind kind) {
  for (const auto& l : kLengths)
    if (l.kind == kind) return l;
  return kLengths[sizeof(kLengths) / sizeof(kLengths[0]) - 1];
}

const TraceShape& trace_fitted_shape() {
  // Histograms over the 309 queries (counts per number of calls), normalised below.
  static const TraceShape shape = [] {
    TraceShape s;
    const double revise[] = {109, 42, 17, 29, 24, 24, 15, 17, 8, 23, 1};
    const double evaluate[] = {11, 0, 1, 18, 87, 90, 88, 3, 4, 0, 0, 7};
    for (double v : revise) s.revise_rounds_pmf.push_back(v / 309.0);
    for (double v : evaluate) s.evaluation_calls_pmf.push_back(v / 309.0);
    s.keyword_extraction_prob = 254.0 / 309.0;
    s.unit_test_generation_prob = 298.0 / 309.0;
    s.tool_picker_calls = 7;
    return s;
  }();
  return shape;
}

uint64_t stable_hash(std::string_view text) {
  uint64_t h = 1469598103934665603ULL;
  for (unsigned char c : text) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

}  // namespace t2s::agents
