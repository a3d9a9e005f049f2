#include "harness/capacity.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>

#include "common/status.hpp"

namespace t2s::scheduler {

size_t sustained_workflows(const ReplaySetup& setup, double rate, const std::string& slo, const SustainedOptions& opt) {
  if (!(opt.overload_margin > 0)) throw InputError("overload margin must be positive");
  const size_t base = setup.workflows ? setup.workflows : setup.workload.questions.size();
  double d_max = 0;
  for (const auto& a : make_run_arrivals(setup, rate, slo)) d_max = std::max(d_max, a.deadline_s - a.arrival_s);
  const double need = rate * d_max / ((1 - kTailArrivalFraction) * opt.overload_margin);
  if (!std::isfinite(need)) return opt.max_workflows;
  return std::clamp(static_cast<size_t>(std::ceil(need)), base, std::max(base, opt.max_workflows));
}

SustainedRate max_sustained_rate(const ReplaySetup& setup, const PolicyRegistry& registry, const std::string& policy,
                                 double lo, double hi, const std::string& slo, const SustainedOptions& opt) {
  if (!(lo > 0 && hi > lo)) throw InputError("sustained rate search: expected 0 < LO < HI");
  SustainedRate out;
  size_t last_n = 0;
  auto sustained = [&](double rate, double* throughput) {
    ReplaySetup s = setup;
    s.workflows = last_n = sustained_workflows(setup, rate, slo, opt);
    out.length_capped |= s.workflows >= opt.max_workflows;
    const auto m = run_policy(s, registry, policy, rate, slo).metrics;
    if (throughput) *throughput = m.throughput_wf_per_s;
    return m.slo_attainment_tail + 1e-12 >= opt.target;
  };
  // The top of the range first: what the policy delivers when offered more than it can serve.
  if (sustained(hi, &out.delivered_wf_per_s)) {
    out.rate = hi, out.workflows = last_n;
    return out;
  }
  if (!sustained(lo, nullptr)) {
    out.workflows = last_n;
    return out;
  }
  out.rate = lo, out.workflows = last_n;
  for (int i = 0; i < opt.steps; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (sustained(mid, nullptr)) {
      lo = mid;
      out.rate = mid, out.workflows = last_n;
    } else {
      hi = mid;
    }
  }
  return out;
}

std::optional<double> min_slo_scale(const ReplaySetup& setup, const PolicyRegistry& registry,
                                    const std::string& policy, double rate, double lo, double hi, double target,
                                    int steps) {
  if (!(lo > 0 && hi > lo)) throw InputError("SLO scale search: expected 0 < LO < HI");
  auto meets = [&](double scale) {
    char text[32];
    std::snprintf(text, sizeof text, "%.6g", scale);
    return run_policy(setup, registry, policy, rate, text).metrics.slo_attainment + 1e-12 >= target;
  };
  if (!meets(hi)) return std::nullopt;
  if (meets(lo)) return lo;
  for (int i = 0; i < steps; ++i) {
    const double mid = std::sqrt(lo * hi);
    if (meets(mid))
      hi = mid;
    else
      lo = mid;
  }
  return hi;
}

}  // namespace t2s::scheduler
