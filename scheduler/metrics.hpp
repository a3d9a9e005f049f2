#pragma once
//! Run metrics (`metrics.json`), comparisons (`compare.json`) and the max-rate-at-SLO search.
#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "scheduler/simulator.hpp"

namespace t2s::scheduler {

//! The tail of a run whose attainment judges a sustained rate: this last share of its arrivals (arrival order).
inline constexpr double kTailArrivalFraction = 0.2;

//! Per-instance figures reported next to the run metrics.
struct InstanceMetrics {
  std::string name;
  double utilization = 0;      //!< busy time / makespan
  uint64_t iterations = 0;
  uint64_t calls = 0;
  uint64_t prefill_tokens = 0, cached_tokens = 0, decode_tokens = 0, preemptions = 0;
  double peak_kv_fraction = 0; //!< peak KV blocks / capacity
};

//! The metrics of one run (one policy at one rate), as written to `metrics.json` (contracts.md).
struct RunMetrics {
  std::string policy;
  double rate = 0;                     //!< workflows/s offered
  size_t workflows = 0, completed = 0, failed = 0;
  double slo_attainment = 0;           //!< completed within deadline (not cut there: ended_early) / workflows
  double latency_p50_s = 0, latency_p95_s = 0, latency_p99_s = 0;  //!< over completed workflows
  double throughput_wf_per_s = 0;      //!< completed / makespan
  double goodput_wf_per_s = 0;         //!< completed within deadline / makespan
  double makespan_s = 0;               //!< first arrival → last end
  std::optional<double> ex_accuracy;   //!< correct / workflows with gold (absent without gold)
  std::optional<double> ex_first_candidate;  //!< greedy first candidate correct / workflows with gold
  std::optional<double> correct_within_deadline;   //!< correct and in time / workflows with gold
  std::optional<double> correct_goodput_wf_per_s;  //!< correct and in time / makespan
  uint64_t llm_calls = 0, sql_executions = 0;
  double sched_decision_us_p50 = 0, sched_decision_us_p99 = 0;  //!< wall-clock (excluded from determinism)
  double wall_s = 0;                                            //!< wall-clock (excluded from determinism)
  // Extras (after the contract's fields).
  std::string workload, cluster, responder;
  double slo_scale = 0;
  uint64_t seed = 0;
  uint64_t sim_iterations = 0;
  double sim_end_s = 0;
  double slo_attainment_tail = 0;      //!< attainment among the last kTailArrivalFraction of arrivals
  uint64_t revise_calls = 0;           //!< LLM calls of revise stages (one per candidate and round)
  uint64_t answers_not_executed = 0;   //!< completed workflows whose selected query did not run (on SQLite, or by the
                                       //!< oracle's label when simulated): scored wrong, answered with an error
  uint64_t ended_early = 0;            //!< workflows that ended at their deadline with their best candidate
  uint64_t calls_cancelled = 0;        //!< LLM calls cancelled while queued or running (early ends, failures)
  uint64_t stages_cancelled = 0;       //!< LLM stages skipped midway: every call of the stage was cancelled
  std::vector<InstanceMetrics> instances;
  std::vector<double> latencies_s;     //!< completed workflows' latencies (not written to JSON; for plots)
};

//! What a run was, for the metrics.
struct RunInfo {
  std::string policy, workload, cluster, responder;
  double rate = 0, slo_scale = 0;
  uint64_t seed = 0;
};

//! Computes the metrics of a simulated run.
RunMetrics compute_metrics(const SimResult& result, const RunInfo& info);
//! `metrics.json` text (pretty when `pretty`).
std::string metrics_json(const RunMetrics& m, bool pretty = true);
//! The highest rate at which one policy still keeps up with its arrivals (completed workflows per second ≥
//! `fraction` × the offered rate): the rate the P95 comparisons against that policy are taken at.
struct KeepUpRate {
  std::string policy;     //!< whose limit it is (e.g. rr-fcfs)
  double fraction = 0.9;  //!< throughput ÷ offered rate that still counts as keeping up
  double rate = 0;        //!< the rate found (0 when the policy falls behind even at the lowest rate tried)
};

//! Capacity figures that a finite run cannot inflate (harness/capacity.hpp), per policy.
struct SustainedCapacity {
  std::map<std::string, double> max_sustained_rate;  //!< highest rate whose tail attainment meets the target
  std::map<std::string, double> delivered_wf_per_s;  //!< throughput delivered when offered the search's top rate
  std::map<std::string, size_t> workflows;           //!< arrivals per run at the max sustained rate
  std::map<std::string, bool> length_capped;         //!< some run of the search hit its length cap
  double overload_margin = 0;                        //!< a rate this much above the delivered throughput must fail
  std::map<std::string, std::optional<double>> min_slo_scale;  //!< smallest SLO scale meeting the target (HexAGenT)
  double min_slo_scale_rate = 0;                     //!< the rate min_slo_scale is measured at
};

//! `compare.json` text: {"runs": [...], "max_rate_at_slo": {...}, "slo_target": t, "keepup": {...}, and the
//! sustained figures} (all but runs when given). max_rate_at_slo is the finite-run figure (attainment over every
//! arrival of a run); "max_rate_at_slo_kind" says so.
std::string compare_json(const std::vector<RunMetrics>& runs, const std::map<std::string, double>& max_rate_at_slo,
                         std::optional<double> slo_target, const std::optional<KeepUpRate>& keepup = std::nullopt,
                         const std::optional<SustainedCapacity>& sustained = std::nullopt);

//! The largest rate whose attainment reaches `target`: over an ascending list of measured (rate, attainment)
//! points, the highest rate before the first miss (0 when the lowest misses).
double max_rate_from_points(const std::vector<std::pair<double, double>>& points, double target);
//! Bisection over rates in [lo, hi] for the largest rate with attainment(rate) ≥ target, `steps` evaluations;
//! 0 when even `lo` misses, `hi` when `hi` meets.
double max_rate_by_bisection(const std::function<double(double)>& attainment, double lo, double hi, double target,
                             int steps = 8);
//! The highest rate in [lo, hi] at which `throughput(rate)` ≥ fraction × rate, by the same bisection, rounded down
//! to 3 significant digits so the runs at it print as a plain number.
double keepup_rate_by_bisection(const std::function<double(double)>& throughput, double lo, double hi,
                                double fraction, int steps = 8);

//! Prefill-bound capacity of a cluster for a call mix (design/scheduling.md): Σ over instances of the workflows
//! per second it could serve if it did nothing but prefill those calls' prompts (no prefix reuse), by its cost model.
double capacity_bound_wf_per_s(const ClusterSpec& cluster, const std::vector<CallRecord>& calls, size_t workflows);

//! A side-by-side table of runs with ratios against `baseline` (same rate), for the terminal.
std::string format_table(const std::vector<RunMetrics>& runs, const std::string& baseline = "rr-fcfs");
//! What a run's answers were worth, as lines of text: final vs greedy-first-candidate accuracy (when scored), LLM calls
//! and SQLite executions per question, completed answers whose query did not execute, and each busy instance's
//! prefill and decode tokens per busy second.
std::string format_answer_summary(const RunMetrics& m);

}  // namespace t2s::scheduler
