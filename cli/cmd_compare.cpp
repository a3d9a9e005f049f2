// `t2s compare`: the same workload, arrivals and seed under several policies (and rates); writes compare.json.
#include <algorithm>
#include <iostream>

#include "cli/commands.hpp"
#include "cli/sim_flags.hpp"
#include "common/json.hpp"
#include "common/progress.hpp"
#include "scheduler/metrics.hpp"

namespace t2s::cli {

void add_compare_command(CLI::App& app) {
  struct Opts {
    SimFlags sim;
    std::string policies, rates, bisect, keepup, out = "out/compare";
    double slo_target = 0.95, keepup_fraction = 0.9;
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
                  "(--bisect-steps runs each)");
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
    if (!o->bisect.empty()) {
      for (const auto& p : policies)
        max_rate[p] = scheduler::max_rate_by_bisection(
            [&](double r) { return scheduler::run_policy(setup, registry, p, r).metrics.slo_attainment; }, lo, hi,
            o->slo_target, o->bisect_steps);
    }
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
                                             keepup));
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
      std::cout << "max rate at " << 100 * o->slo_target << "% SLO attainment:";
      for (const auto& [p, r] : max_rate) std::cout << "  " << p << " " << r;
      std::cout << "\n";
    }
    std::cout << "wrote " << o->out << "/compare.json\n";
  });
}

}  // namespace t2s::cli
