#include "harness/tune.hpp"

#include <cmath>
#include <cstdlib>

#include "common/status.hpp"

namespace t2s::scheduler {

bool TuneScore::better_than(const TuneScore& o) const {
  // Attainment (counted up to the SLO target) first; within half a point, the lower tail latency (a run that meets
  // its target can still be improved on latency).
  const double a = ranked_attainment(), b = o.ranked_attainment();
  if (std::abs(a - b) > 0.005) return a > b;
  return latency_p95_s < o.latency_p95_s;
}

std::vector<TuneAxis> default_tune_axes(const std::string& policy) {
  if (policy == "hexgen" || policy == "balanced-fcfs")
    return {{"alpha", {0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0}}};
  if (policy == "t2s")
    return {{"step_stretch", {1.5, 2.0, 3.0}},
            {"prefill_spread", {0, 16}},
            {"prefill_externality", {0, 2}},
            {"externality", {0, 2}},
            {"chunk_floor", {16, 64, 128}},
            {"chunk_rule", {0, 1}},
            {"offload_home", {0, 1}},
            {"remaining_q", {0.0, 0.5, 1.0}},
            {"hopeless_frac", {0.25, 0.5, 1.0}}};
  throw InputError("tune: policy '" + policy + "' has no default knobs to tune (give --grid PARAM=V1,V2,…)");
}

TuneAxis parse_tune_axis(const std::string& text) {
  const auto eq = text.find('=');
  if (eq == std::string::npos || eq == 0 || eq + 1 >= text.size())
    throw InputError("--grid '" + text + "': expected PARAM=V1,V2,…");
  TuneAxis axis;
  axis.param = text.substr(0, eq);
  size_t pos = eq + 1;
  while (pos <= text.size()) {
    const auto comma = text.find(',', pos);
    const std::string item = text.substr(pos, comma == std::string::npos ? std::string::npos : comma - pos);
    char* end = nullptr;
    const double v = std::strtod(item.c_str(), &end);
    if (item.empty() || end != item.c_str() + item.size() || !std::isfinite(v))
      throw InputError("--grid '" + text + "': '" + item + "' is not a number");
    axis.values.push_back(v);
    if (comma == std::string::npos) break;
    pos = comma + 1;
  }
  return axis;
}

TuneScore score_window(const ReplaySetup& setup, const std::vector<workloads::Arrival>& arrivals,
                       const PolicyRegistry& registry, const std::string& policy,
                       const std::map<std::string, double>& params) {
  PolicyContext ctx;
  ctx.cluster = &setup.cluster;
  ctx.params = setup.params;
  for (const auto& [k, v] : params) ctx.params[k] = v;
  ctx.seed = setup.seed;
  Policy p = registry.make(policy, ctx);
  AgentKit kit = make_agent_kit(setup);
  SimOptions opt = setup.sim;
  opt.seed = setup.seed;
  opt.trace = nullptr;
  Simulator sim(setup.cluster, p, *kit.responder, opt);
  const SimResult r = sim.run(setup.workload, arrivals, *kit.factory);
  RunInfo info;
  info.policy = policy;
  const RunMetrics m = compute_metrics(r, info);
  // Unfinished workflows count as misses; a run that completes nothing gets an infinite tail.
  return TuneScore{m.slo_attainment, m.completed > 0 ? m.latency_p95_s : INFINITY};
}

namespace {

// Coordinate search over the axes, scoring a candidate with `score`.
template <typename Score>
TuneResult coordinate_search(const TuneSpec& spec, Score&& score) {
  const auto axes = spec.axes.empty() ? default_tune_axes(spec.policy) : spec.axes;
  TuneResult out;
  out.best = spec.fixed;
  bool have = false;
  for (int pass = 0; pass < std::max(1, spec.passes); ++pass)
    for (const auto& axis : axes) {
      auto current = out.best;
      for (double v : axis.values) {
        auto params = current;
        params[axis.param] = v;
        // A candidate identical to one already scored (the incumbent, on later axes) is not re-run.
        const TuneTrial* seen = nullptr;
        for (const auto& t : out.trials)
          if (t.params == params) seen = &t;
        const TuneScore s = seen ? seen->score : score(params);
        if (!seen) out.trials.push_back({params, s});
        if (!have || s.better_than(out.best_score)) {
          out.best = params;
          out.best_score = s;
          have = true;
        }
      }
    }
  return out;
}

}  // namespace

TuneResult tune_on_window(const ReplaySetup& setup, const std::vector<workloads::Arrival>& arrivals,
                          const PolicyRegistry& registry, const TuneSpec& spec) {
  if (arrivals.empty()) throw InputError("tune: the window has no arrivals");
  return coordinate_search(spec, [&](const std::map<std::string, double>& params) {
    TuneScore s = score_window(setup, arrivals, registry, spec.policy, params);
    s.counted_attainment = std::min(s.slo_attainment, spec.slo_target);
    return s;
  });
}

TuneResult tune_at_rates(const ReplaySetup& setup, const std::vector<double>& rates, const PolicyRegistry& registry,
                         const TuneSpec& spec) {
  if (rates.empty()) throw InputError("tune: no rates given");
  std::vector<std::vector<workloads::Arrival>> windows;
  for (double r : rates) windows.push_back(make_run_arrivals(setup, r, setup.slo));
  return coordinate_search(spec, [&](const std::map<std::string, double>& params) {
    TuneScore mean;
    mean.counted_attainment = 0;
    for (const auto& w : windows) {
      const TuneScore s = score_window(setup, w, registry, spec.policy, params);
      mean.slo_attainment += s.slo_attainment / static_cast<double>(windows.size());
      mean.counted_attainment += std::min(s.slo_attainment, spec.slo_target) / static_cast<double>(windows.size());
      mean.latency_p95_s += s.latency_p95_s / static_cast<double>(windows.size());
    }
    return mean;
  });
}

}  // namespace t2s::scheduler
