// `t2s compare`: the same workload, arrivals and seed under several policies (and rates); writes compare.json.
#include <algorithm>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/sim_flags.hpp"
#include "common/json.hpp"
#include "common/progress.hpp"
#include "harness/capacity.hpp"
#include "scheduler/metrics.hpp"

namespace t2s::cli {

void add_compare_command(CLI::App& app) {
  struct Opts {
    SimFlags sim;
    std::string policies, rates, bisect, keepup, scale_range, out = "out/compare";
    double slo_target = 0.95, keepup_fraction = 0.9, overload_margin = 0.05;
    int bisect_steps = 8;
  };
  auto o = std::make_shared<Opts>();
  auto registry_names = scheduler::default_policy_registry().names();
  std::string known;
  for (const auto& n : registry_names) known += (known.empty() ? "" : ", ") + n;
  auto* cmd = app.add_subcommand("compare", "Run several policies (and rates) on the same arrivals; writes "
                                            "<out>/compare.json and prints a side-by-side table");
  add_sim_flags(cmd, o->sim);
  cmd->add_option("--policies", o->policies, "comma-separated policies (default: all: " + known + ")");
  cmd->add_option("--rates", o->rates, "comma-separated rates (workflows/s); default: --rate");
  cmd->add_option("--slo-target", o->slo_target, "attainment target for max_rate_at_slo")->capture_default_str();
  cmd->add_option("--bisect", o->bisect,
                  "LO,HI: find each policy's max rate at the SLO target by bisection in [LO, HI] "
                  "(--bisect-steps runs each): the finite-run max_rate_at_slo and max_sustained_rate");
  cmd->add_option("--overload-margin", o->overload_margin,
                  "with --bisect, max_sustained_rate runs are long enough that a rate this fraction above the "
                  "delivered throughput fails")
      ->capture_default_str();
  cmd->add_option("--min-slo-scale", o->scale_range,
                  "LO,HI: each policy's smallest SLO scale in [LO, HI] meeting --slo-target at --rate (bisection)");
  cmd->add_option("--bisect-steps", o->bisect_steps, "runs per bisection (each halves the interval)")
      ->capture_default_str()
      ->check(CLI::Range(1, 30));
  cmd->add_option("--keepup", o->keepup,
                  "POLICY: find the highest rate where POLICY keeps up (throughput >= --keepup-fraction x offered) by "
                  "bisection in the --bisect range, run every policy there and print their P95 ratios at that rate");
  cmd->add_option("--keepup-fraction", o->keepup_fraction, "throughput / offered rate that counts as keeping up")
      ->capture_default_str();
  cmd->add_option("--out", o->out, "output folder")->capture_default_str();
  cmd->callback([o] {
    auto setup = setup_from_flags(o->sim);
    auto registry = scheduler::default_policy_registry();
    auto policies = o->policies.empty() ? registry.names() : split_list(o->policies);
    for (const auto& p : policies)
      if (!registry.has(p)) registry.make(p, {});  // throws the InputError listing the names
    std::vector<double> rates;
    for (const auto& r : split_list(o->rates)) {
      char* end = nullptr;
      const double v = std::strtod(r.c_str(), &end);
      if (*end != '\0' || !(v > 0)) throw InputError("--rates: '" + r + "' is not a positive number");
      rates.push_back(v);
    }
    if (rates.empty()) rates.push_back(o->sim.rate);
    double lo = 0, hi = 0;  // the --bisect range
    if (!o->bisect.empty()) {
      auto lh = split_list(o->bisect);
      if (lh.size() != 2) throw InputError("--bisect: expected LO,HI");
      lo = std::stod(lh[0]), hi = std::stod(lh[1]);
      if (!(lo > 0 && hi > lo)) throw InputError("--bisect: expected 0 < LO < HI");
    }
    if (!o->keepup.empty()) {
      if (o->bisect.empty()) throw InputError("--keepup needs --bisect LO,HI (the range searched)");
      if (!registry.has(o->keepup)) registry.make(o->keepup, {});  // throws the InputError listing the names
      if (!(o->keepup_fraction > 0 && o->keepup_fraction <= 1))
        throw InputError("--keepup-fraction: expected a number in (0, 1]");
    }
    std::vector<scheduler::RunMetrics> runs;
    std::map<std::string, double> max_rate;
    ProgressBar bar("compare", policies.size() * rates.size());
    for (const auto& p : policies) {
      std::vector<std::pair<double, double>> points;
      for (double r : rates) {
        auto run = scheduler::run_policy(setup, registry, p, r);
        points.emplace_back(r, run.metrics.slo_attainment);
        runs.push_back(std::move(run.metrics));
        bar.advance();
      }
      if (rates.size() > 1) max_rate[p] = scheduler::max_rate_from_points(points, o->slo_target);
    }
    bar.finish();
    double scale_lo = 0, scale_hi = 0;
    if (!o->scale_range.empty()) {
      auto lh = split_list(o->scale_range);
      if (lh.size() != 2) throw InputError("--min-slo-scale: expected LO,HI");
      scale_lo = std::stod(lh[0]), scale_hi = std::stod(lh[1]);
      if (!(scale_lo > 0 && scale_hi > scale_lo)) throw InputError("--min-slo-scale: expected 0 < LO < HI");
    }
    std::optional<scheduler::SustainedCapacity> sustained;
    if (!o->bisect.empty() || !o->scale_range.empty()) {
      sustained.emplace();
      sustained->overload_margin = o->overload_margin;
      sustained->min_slo_scale_rate = o->sim.rate;
    }
    if (!o->bisect.empty()) {
      scheduler::SustainedOptions sopt;
      sopt.target = o->slo_target;
      sopt.overload_margin = o->overload_margin;
      sopt.steps = o->bisect_steps;
      for (const auto& p : policies) {
        max_rate[p] = scheduler::max_rate_by_bisection(
            [&](double r) { return scheduler::run_policy(setup, registry, p, r).metrics.slo_attainment; }, lo, hi,
            o->slo_target, o->bisect_steps);
        const auto s = scheduler::max_sustained_rate(setup, registry, p, lo, hi, "", sopt);
        sustained->max_sustained_rate[p] = s.rate;
        sustained->delivered_wf_per_s[p] = s.delivered_wf_per_s;
        sustained->workflows[p] = s.workflows;
        sustained->length_capped[p] = s.length_capped;
      }
    }
    if (!o->scale_range.empty())
      for (const auto& p : policies)
        sustained->min_slo_scale[p] = scheduler::min_slo_scale(setup, registry, p, o->sim.rate, scale_lo, scale_hi,
                                                               o->slo_target, o->bisect_steps);
    std::optional<scheduler::KeepUpRate> keepup;
    std::vector<scheduler::RunMetrics> at_keepup;
    if (!o->keepup.empty()) {
      keepup = scheduler::KeepUpRate{o->keepup, o->keepup_fraction, 0.0};
      keepup->rate = scheduler::keepup_rate_by_bisection(
          [&](double r) { return scheduler::run_policy(setup, registry, o->keepup, r).metrics.throughput_wf_per_s; },
          lo, hi, o->keepup_fraction, o->bisect_steps);
      if (keepup->rate > 0) {
        for (const auto& p : policies)
          at_keepup.push_back(scheduler::run_policy(setup, registry, p, keepup->rate).metrics);
        // The runs at the keep-up rate join the sweep unless it already holds that rate.
        if (std::find(rates.begin(), rates.end(), keepup->rate) == rates.end())
          runs.insert(runs.end(), at_keepup.begin(), at_keepup.end());
      }
    }
    const bool with_max = rates.size() > 1 || !o->bisect.empty();
    json::write_file(o->out + "/compare.json",
                     scheduler::compare_json(runs, max_rate, with_max ? std::optional(o->slo_target) : std::nullopt,
                                             keepup, sustained));
    std::cout << scheduler::format_table(runs, "rr-fcfs");
    if (keepup) {
      if (keepup->rate <= 0) {
        std::cout << keepup->policy << " falls behind even at the lowest rate of --bisect\n";
      } else {
        std::cout << keepup->policy << " keeps up (throughput >= " << keepup->fraction << " x offered) up to "
                  << keepup->rate << " workflows/s; P95 there:";
        for (const auto& m : at_keepup) std::cout << "  " << m.policy << " " << m.latency_p95_s << " s";
        std::cout << "\n";
      }
    }
    if (with_max) {
      std::cout << "max rate at " << 100 * o->slo_target << "% SLO attainment (finite-run):";
      for (const auto& [p, r] : max_rate) std::cout << "  " << p << " " << r;
      std::cout << "\n";
    }
    if (sustained && !sustained->max_sustained_rate.empty()) {
      std::cout << "max sustained rate (last " << 100 * scheduler::kTailArrivalFraction << "% of arrivals meet "
                << 100 * o->slo_target << "%; delivered at " << hi << "/s):";
      for (const auto& [p, r] : sustained->max_sustained_rate)
        std::cout << "  " << p << " " << r << " (" << sustained->delivered_wf_per_s[p] << ")";
      std::cout << "\n";
    }
    if (sustained && !sustained->min_slo_scale.empty()) {
      std::cout << "min SLO scale at " << o->sim.rate << "/s:";
      for (const auto& [p, s] : sustained->min_slo_scale)
        std::cout << "  " << p << " " << (s ? std::to_string(*s) : std::string("none"));
      std::cout << "\n";
    }
    std::cout << "wrote " << o->out << "/compare.json\n";
  });
}

}  // namespace t2s::cli
