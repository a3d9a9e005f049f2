// `t2s demo`: the synthetic benchmark replayed under every registered policy on the demo cluster, with a table,
// metrics, Perfetto traces and an offline HTML report in out/demo/; then a short real part: a few dozen of its
// questions answered by t2s's own model on two embedded CPU engine instances under three policies, on the wall clock.
#include <atomic>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <mutex>
#include <optional>
#include <thread>

#include "cli/commands.hpp"
#include "cli/sim_flags.hpp"
#include "common/json.hpp"
#include "common/progress.hpp"
#include "common/trace.hpp"
#include "harness/capacity.hpp"
#include "harness/real_demo.hpp"
#include "harness/report.hpp"
#include "runtime/engine_models.hpp"
#include "scheduler/metrics.hpp"

namespace t2s::cli {

namespace {

struct DemoOpts {
  SimFlags sim;
  std::string out = "out/demo", policies, scales = "1.5,2,3,5", rate_fractions = "0.5,0.75,1,1.25,1.5,1.75,2";
  double base_fraction = 0.8, slo_target = 0.95, overload_margin = 0.05;
  int search_steps = 5;
  size_t real_questions = 24;                 // the wall-clock part (0: skip it)
  std::string real_policies = "t2s,hexgen,rr-fcfs", model;
};

// The real part: t2s's own model on two embedded CPU engine instances, same arrivals for each policy. Returns the
// note that says why it did not run when it did not.
std::string run_real_part(const DemoOpts& o, const scheduler::ReplaySetup& setup,
                          scheduler::PolicyRegistry& registry, scheduler::ReportData& report) {
  if (o.real_questions == 0) return "real part skipped (--real-questions 0)";
  const std::string model =
      o.model.empty() ? (std::filesystem::path(server::models_dir()) / server::kBundledModelFile).string() : o.model;
  if (!std::filesystem::is_regular_file(model))
    return "real part skipped: no Text-to-SQL model at " + model + " (regenerate it with models/README.md's recipe, "
           "or pass --model FILE)";
  server::RealDemoOptions ro;
  ro.model_file = model;
  ro.questions = o.real_questions;
  ro.policies = split_list(o.real_policies);
  for (const auto& p : ro.policies)
    if (!registry.has(p)) registry.make(p, {});  // throws the InputError listing the names
  auto r = server::run_real_demo(setup, registry, ro, &std::cerr);
  char note[768];
  std::snprintf(note, sizeof note,
                "%zu questions of the same workload answered by %s on two embedded CPU engine instances (2 threads "
                "and 1 thread), SQL executed on SQLite; calibration: a question alone takes %.2f s and %.2f s of LLM "
                "service; offered %.3f workflows/s (%.0f%% of 2 instances / that work), deadline %.2f s after arrival "
                "(%.0f x the standalone latency); every policy sees the same arrivals, with the cost models of %zu "
                "instance(s) fitted on the calibration's iterations from the start.",
                ro.questions, std::filesystem::path(model).filename().string().c_str(), r.standalone_latency_s,
                r.work_per_question_s, r.rate, 100 * ro.load, r.deadline_s, ro.slo_scale, r.warm_instances);
  report.real_note = note;
  json::write_file(o.out + "/real/cluster.json", r.cluster_json + "\n");  // `t2s replay --cluster` reruns on it
  for (size_t i = 0; i < r.runs.size(); ++i) {
    const auto& run = r.runs[i];
    json::write_file(o.out + "/real/metrics/" + ro.policies[i] + ".json",
                     server::realtime_metrics_json(run, "engine", ro.time_limit_s));
    json::write_file(o.out + "/real/traces/" + ro.policies[i] + ".json", run.trace_json);
    report.real.push_back(run.metrics);
  }
  return "";
}

std::vector<double> parse_numbers(const std::string& flag, const std::string& text) {
  std::vector<double> v;
  for (const auto& s : split_list(text)) {
    char* end = nullptr;
    const double x = std::strtod(s.c_str(), &end);
    if (*end != '\0' || !(x > 0)) throw InputError(flag + ": '" + s + "' is not a positive number");
    v.push_back(x);
  }
  if (v.empty()) throw InputError(flag + ": empty list");
  return v;
}

void run_demo(const DemoOpts& o) {
  const auto wall0 = std::chrono::steady_clock::now();
  std::cerr << "t2s demo: loading workload '" << o.sim.workload << "' and cluster '" << o.sim.cluster << "'\n";
  auto setup = setup_from_flags(o.sim);
  auto registry = scheduler::default_policy_registry();
  auto policies = o.policies.empty() ? registry.names() : split_list(o.policies);
  for (const auto& p : policies)
    if (!registry.has(p)) registry.make(p, {});  // throws the InputError listing the names
  const auto scales = parse_numbers("--scales", o.scales);
  const auto fractions = parse_numbers("--rate-fractions", o.rate_fractions);
  const std::string base_slo = o.sim.slo;

  // Capacity, measured: the saturation throughput of a cost-aware baseline (least-loaded) offered twice the
  // cluster's prefill-bound capacity (an upper bound from a light probe's call mix). Rates are fractions of it, so
  // the sweep straddles the point where deadlines start to slip instead of sitting far below or above it.
  const auto& standalone = scheduler::standalone_latencies(setup);
  double mean_standalone = 0;
  for (double s : standalone) mean_standalone += s / static_cast<double>(standalone.size());
  const double probe_rate = 0.05 * static_cast<double>(setup.cluster.instances.size()) / mean_standalone;
  auto probe = scheduler::run_policy(setup, registry, policies.front(), probe_rate);
  const double bound =
      scheduler::capacity_bound_wf_per_s(setup.cluster, probe.result.calls, probe.result.outcomes.size());
  if (!(bound > 0)) throw std::runtime_error("demo: could not estimate the cluster's capacity");
  const std::string saturator = registry.has("least-loaded") ? "least-loaded" : policies.front();
  const double capacity = scheduler::run_policy(setup, registry, saturator, 2.0 * bound).metrics.throughput_wf_per_s;
  if (!(capacity > 0)) throw std::runtime_error("demo: the saturation run completed nothing");
  const double base_rate = o.base_fraction * capacity;

  scheduler::ReportData report;
  report.slo_target = o.slo_target;
  report.capacity_bound_wf_per_s = capacity;
  report.title = "t2s demo: " + setup.workload.name + " on " + setup.cluster.name;
  char sub[512];
  std::snprintf(sub, sizeof sub,
                "%zu questions, %zu workflows per run, seed %llu, arrivals %s, SLO scale %s (deadline = arrival + "
                "scale x standalone latency on %s); capacity %.3f workflows/s (saturation throughput of %s; "
                "prefill bound %.3f); base rate %.3f/s",
                setup.workload.questions.size(),
                setup.workflows ? setup.workflows : setup.workload.questions.size(),
                static_cast<unsigned long long>(setup.seed), setup.arrival.c_str(), base_slo.c_str(),
                setup.cluster.instances[0].name.c_str(), capacity, saturator.c_str(), bound, base_rate);
  report.subtitle = sub;
  report.notes.push_back("Every policy sees the same arrivals and answers (same seed). Traces: traces/<policy>.json "
                         "(open in ui.perfetto.dev). Metrics: metrics/<policy>.json, compare.json.");

  scheduler::SustainedOptions sustained_opt;
  sustained_opt.target = o.slo_target;
  sustained_opt.overload_margin = o.overload_margin;
  sustained_opt.steps = o.search_steps;
  scheduler::SustainedCapacity sustained;
  sustained.overload_margin = o.overload_margin;
  sustained.min_slo_scale_rate = base_rate;
  const double sustained_lo = 0.25 * capacity, sustained_hi = 2.0 * capacity;
  const double scale_lo = 1.0, scale_hi = 16.0;
  ProgressBar bar("demo", policies.size() * (1 + fractions.size() + scales.size() + 1));
  std::mutex bar_mu;
  auto advance = [&] {
    std::lock_guard lk(bar_mu);
    bar.advance();
  };
  // Each policy's runs are independent and deterministic (same setup, own policy state and agent kit), so policies
  // run on worker threads; results are gathered per policy and merged in policy order, so the output is the same
  // whatever the thread count.
  struct PolicyRuns {
    scheduler::RunMetrics base;
    std::vector<scheduler::RunMetrics> rate_runs, scale_runs;
    double finite_max = 0;
    scheduler::SustainedRate sustained;
    std::optional<double> min_scale;
  };
  std::vector<PolicyRuns> results(policies.size());
  auto run_one = [&](size_t k) {
    const std::string& p = policies[k];
    PolicyRuns& r = results[k];
    TraceWriter trace;
    auto base = scheduler::run_policy(setup, registry, p, base_rate, base_slo, &trace);
    trace.write(o.out + "/traces/" + p + ".json");
    json::write_file(o.out + "/metrics/" + p + ".json", scheduler::metrics_json(base.metrics));
    r.base = base.metrics;
    advance();
    std::vector<std::pair<double, double>> points;
    for (double f : fractions) {
      auto run = scheduler::run_policy(setup, registry, p, f * capacity, base_slo);
      points.emplace_back(run.metrics.rate, run.metrics.slo_attainment);
      r.rate_runs.push_back(std::move(run.metrics));
      advance();
    }
    r.finite_max = scheduler::max_rate_from_points(points, o.slo_target);
    for (double sc : scales) {
      char text[32];
      std::snprintf(text, sizeof text, "%g", sc);
      r.scale_runs.push_back(scheduler::run_policy(setup, registry, p, base_rate, text).metrics);
      advance();
    }
    // Honest capacity: long runs judged on their last arrivals, and the tightest SLO met at the base rate.
    r.sustained = scheduler::max_sustained_rate(setup, registry, p, sustained_lo, sustained_hi, base_slo, sustained_opt);
    r.min_scale =
        scheduler::min_slo_scale(setup, registry, p, base_rate, scale_lo, scale_hi, o.slo_target, o.search_steps);
    advance();
  };
  const size_t workers = std::max<size_t>(1, std::min<size_t>(policies.size(), std::thread::hardware_concurrency()));
  std::atomic<size_t> next{0};
  std::exception_ptr failure;
  std::mutex failure_mu;
  std::vector<std::thread> pool;
  for (size_t w = 0; w < workers; ++w)
    pool.emplace_back([&] {
      for (size_t k; (k = next.fetch_add(1)) < policies.size();) {
        try {
          run_one(k);
        } catch (...) {
          std::lock_guard lk(failure_mu);
          if (!failure) failure = std::current_exception();
          next = policies.size();  // stop handing out work
        }
      }
    });
  for (auto& t : pool) t.join();
  if (failure) std::rethrow_exception(failure);
  std::vector<scheduler::RunMetrics> all;
  for (size_t k = 0; k < policies.size(); ++k) {
    const std::string& p = policies[k];
    auto& r = results[k];
    report.base.push_back(r.base);
    all.push_back(r.base);
    for (auto& m : r.rate_runs) report.rate_sweep.push_back(m), all.push_back(std::move(m));
    report.max_rate_at_slo[p] = r.finite_max;
    for (auto& m : r.scale_runs) report.scale_sweep.push_back(m), all.push_back(std::move(m));
    sustained.max_sustained_rate[p] = r.sustained.rate;
    sustained.delivered_wf_per_s[p] = r.sustained.delivered_wf_per_s;
    sustained.workflows[p] = r.sustained.workflows;
    sustained.length_capped[p] = r.sustained.length_capped;
    sustained.min_slo_scale[p] = r.min_scale;
  }
  report.sustained = sustained;
  bar.finish();
  const std::string real_skipped = run_real_part(o, setup, registry, report);
  for (auto& m : all) m.latencies_s.clear();
  json::write_file(o.out + "/compare.json", scheduler::compare_json(all, report.max_rate_at_slo, o.slo_target,
                                                                             std::nullopt, sustained));
  json::write_file(o.out + "/report.html", scheduler::render_report_html(report));

  std::cout << report.title << "\n" << report.subtitle << "\n\n";
  std::cout << scheduler::format_table(report.base, "rr-fcfs");
  std::printf("\ncapacity at %.0f%% SLO attainment (workflows/s; %% of capacity %.3f):\n", 100 * o.slo_target,
              capacity);
  std::printf("  %-14s %10s %6s %10s %10s %6s %14s\n", "policy", "sustained", "%cap", "delivered", "finite-run",
              "%cap", "min SLO scale");
  for (const auto& p : policies) {
    const double r = sustained.max_sustained_rate[p], f = report.max_rate_at_slo[p];
    char scale[32] = "none";
    if (const auto& sc = sustained.min_slo_scale[p]) std::snprintf(scale, sizeof scale, "%.2f", *sc);
    std::printf("  %-14s %10.3f %5.0f%% %10.3f %10.3f %5.0f%% %14s\n", p.c_str(), r, 100 * r / capacity,
                sustained.delivered_wf_per_s[p], f, 100 * f / capacity, scale);
  }
  std::printf("(sustained: the highest rate whose last %.0f%% of arrivals meet the target, on runs long enough that a "
              "rate %.0f%% above the delivered throughput must fail; delivered: throughput offered %.3f/s; "
              "finite-run: the old figure, attainment over all %zu arrivals of one run; min SLO scale: the tightest "
              "deadline scale met at the base rate %.3f/s)\n",
              100 * scheduler::kTailArrivalFraction, 100 * o.overload_margin, sustained_hi,
              setup.workflows ? setup.workflows : setup.workload.questions.size(), base_rate);
  if (!report.real.empty()) {
    std::cout << "\nreal part (wall clock): " << report.real_note << "\n";
    std::cout << scheduler::format_table(report.real, "rr-fcfs");
    for (const auto& m : report.real) std::cout << m.policy << ":\n" << scheduler::format_answer_summary(m);
  } else {
    std::cout << "\n" << real_skipped << "\n";
  }
  const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - wall0).count();
  std::cout << "\nwrote " << o.out << "/report.html, compare.json, metrics/, traces/ in " << std::round(wall * 10) / 10
            << " s\n";
}

}  // namespace

void add_demo_command(CLI::App& app) {
  auto o = std::make_shared<DemoOpts>();
  o->sim.cluster = "hetero-small";
  o->sim.workflows = 1000;  // long enough for a steady state: 240 arrivals were one burst every policy absorbed
  auto* cmd = app.add_subcommand(
      "demo", "Generate the synthetic benchmark, replay it under every registered policy on the demo cluster, print "
              "a side-by-side table and write out/demo/ (metrics, Perfetto traces, an offline HTML report); 1000 workflows "
              "per run unless --workflows says otherwise; rates are fractions of the capacity it measures first");
  add_sim_flags(cmd, o->sim);
  cmd->add_option("--out", o->out, "output folder")->capture_default_str();
  cmd->add_option("--policies", o->policies, "comma-separated policies (default: every registered policy)");
  cmd->add_option("--scales", o->scales, "SLO scales of the attainment-vs-scale sweep")->capture_default_str();
  cmd->add_option("--rate-fractions", o->rate_fractions, "rates of the rate sweep, as fractions of capacity")
      ->capture_default_str();
  cmd->add_option("--base-fraction", o->base_fraction, "base rate as a fraction of the measured capacity")
      ->capture_default_str();
  cmd->add_option("--slo-target", o->slo_target, "attainment target for the max rate")->capture_default_str();
  cmd->add_option("--overload-margin", o->overload_margin,
                  "sustained-rate runs are long enough that a rate this fraction above the delivered throughput fails")
      ->capture_default_str();
  cmd->add_option("--search-steps", o->search_steps, "bisection runs of the sustained-rate and SLO-scale searches")
      ->capture_default_str()
      ->check(CLI::Range(1, 20));
  cmd->add_option("--real-questions", o->real_questions,
                  "questions of the wall-clock part on two embedded CPU engine instances (0: skip it)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000));
  cmd->add_option("--real-policies", o->real_policies, "policies of the wall-clock part")->capture_default_str();
  cmd->add_option("--model", o->model, "model of the wall-clock part (default: t2s's bundled models/t2s-sql.gguf)");
  cmd->callback([o] { run_demo(*o); });
}

}  // namespace t2s::cli
