#include "scheduler/metrics.hpp"

#include <rapidjson/prettywriter.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>

#include "common/json.hpp"
#include "common/stats.hpp"

namespace t2s::scheduler {

RunMetrics compute_metrics(const SimResult& r, const RunInfo& info) {
  RunMetrics m;
  m.policy = info.policy;
  m.rate = info.rate;
  m.workload = info.workload;
  m.cluster = info.cluster;
  m.responder = info.responder;
  m.slo_scale = info.slo_scale;
  m.seed = info.seed;
  m.workflows = r.outcomes.size();
  double first = std::numeric_limits<double>::infinity(), last = 0;
  size_t met = 0, gold = 0, correct = 0, first_correct = 0, correct_met = 0, tail_met = 0;
  // Outcomes are in arrival order: the tail is the last kTailArrivalFraction of them.
  const size_t tail_n = static_cast<size_t>(std::ceil(kTailArrivalFraction * static_cast<double>(r.outcomes.size())));
  const size_t tail_from = r.outcomes.size() - tail_n;
  for (const auto& o : r.outcomes) {
    first = std::min(first, o.arrival_s);
    last = std::max(last, o.finished_s);
    if (o.completed) {
      ++m.completed;
      m.latencies_s.push_back(o.finished_s - o.arrival_s);
      m.answers_not_executed += !o.sql.empty() && !o.sql_executed;
    } else {
      ++m.failed;
    }
    // Met: its work completed by the deadline. One cut at its deadline (ended early with its best candidate) did
    // not, though it answered then: the simulator ends it exactly at the deadline, the runtime a timer tick later.
    const bool in_time = o.completed && !o.ended_early && o.finished_s <= o.deadline_s + 1e-9;
    met += in_time;
    m.ended_early += o.ended_early;
    if (static_cast<size_t>(&o - r.outcomes.data()) >= tail_from) tail_met += in_time;
    if (o.has_gold) {
      ++gold;
      correct += o.completed && o.correct;
      first_correct += o.completed && o.first_candidate_correct;
      correct_met += in_time && o.correct;
    }
  }
  if (m.workflows == 0) first = 0;
  m.makespan_s = std::max(0.0, last - first);
  const double span = m.makespan_s > 0 ? m.makespan_s : std::nan("");
  m.slo_attainment = m.workflows ? static_cast<double>(met) / static_cast<double>(m.workflows) : 0.0;
  m.slo_attainment_tail = tail_n ? static_cast<double>(tail_met) / static_cast<double>(tail_n) : 0.0;
  m.latency_p50_s = quantile(m.latencies_s, 0.50);
  m.latency_p95_s = quantile(m.latencies_s, 0.95);
  m.latency_p99_s = quantile(m.latencies_s, 0.99);
  m.throughput_wf_per_s = static_cast<double>(m.completed) / span;
  m.goodput_wf_per_s = static_cast<double>(met) / span;
  if (gold > 0) {
    m.ex_accuracy = static_cast<double>(correct) / static_cast<double>(gold);
    m.ex_first_candidate = static_cast<double>(first_correct) / static_cast<double>(gold);
    m.correct_within_deadline = static_cast<double>(correct_met) / static_cast<double>(gold);
    m.correct_goodput_wf_per_s = static_cast<double>(correct_met) / span;
  }
  m.llm_calls = r.calls.size();
  std::map<std::pair<uint64_t, uint32_t>, bool> stage_all_cancelled;  // (workflow, stage) → every call cancelled
  for (const auto& c : r.calls) {
    m.revise_calls += c.kind == agents::StageKind::revise;
    m.calls_cancelled += c.cancelled;
    auto [it, fresh] = stage_all_cancelled.try_emplace({c.workflow_id, c.stage_index}, c.cancelled);
    if (!fresh) it->second = it->second && c.cancelled;
  }
  for (const auto& [stage, cancelled] : stage_all_cancelled) m.stages_cancelled += cancelled;
  m.sql_executions = r.sql_executions;
  m.sched_decision_us_p50 = quantile(r.decision_us, 0.50);
  m.sched_decision_us_p99 = quantile(r.decision_us, 0.99);
  m.wall_s = r.wall_s;
  m.sim_iterations = r.iterations;
  m.sim_end_s = r.end_s;
  for (const auto& is : r.instances) {
    InstanceMetrics im;
    im.name = is.name;
    im.utilization = m.makespan_s > 0 ? is.busy_s / m.makespan_s : 0.0;
    im.iterations = is.iterations;
    im.calls = is.calls;
    im.prefill_tokens = is.prefill_tokens;
    im.cached_tokens = is.cached_tokens;
    im.decode_tokens = is.decode_tokens;
    im.preemptions = is.preemptions;
    im.peak_kv_fraction = is.kv_blocks_total ? static_cast<double>(is.peak_kv_blocks) / is.kv_blocks_total : 0.0;
    m.instances.push_back(im);
  }
  return m;
}

namespace {

template <typename W>
void opt(W& w, const std::optional<double>& v) {
  if (v)
    json::write_number(w, *v);
  else
    w.Null();
}

template <typename W>
void write_metrics(W& w, const RunMetrics& m) {
  w.StartObject();
  w.Key("policy"), w.String(m.policy);
  w.Key("rate"), json::write_number(w, m.rate);
  w.Key("workflows"), w.Uint64(m.workflows);
  w.Key("completed"), w.Uint64(m.completed);
  w.Key("failed"), w.Uint64(m.failed);
  w.Key("slo_attainment"), json::write_number(w, m.slo_attainment);
  w.Key("latency_p50_s"), json::write_number(w, m.latency_p50_s);
  w.Key("latency_p95_s"), json::write_number(w, m.latency_p95_s);
  w.Key("latency_p99_s"), json::write_number(w, m.latency_p99_s);
  w.Key("throughput_wf_per_s"), json::write_number(w, m.throughput_wf_per_s);
  w.Key("goodput_wf_per_s"), json::write_number(w, m.goodput_wf_per_s);
  w.Key("makespan_s"), json::write_number(w, m.makespan_s);
  w.Key("ex_accuracy"), opt(w, m.ex_accuracy);
  w.Key("ex_first_candidate"), opt(w, m.ex_first_candidate);
  w.Key("correct_within_deadline"), opt(w, m.correct_within_deadline);
  w.Key("correct_goodput_wf_per_s"), opt(w, m.correct_goodput_wf_per_s);
  w.Key("llm_calls"), w.Uint64(m.llm_calls);
  w.Key("sql_executions"), w.Uint64(m.sql_executions);
  w.Key("sched_decision_us_p50"), json::write_number(w, m.sched_decision_us_p50);
  w.Key("sched_decision_us_p99"), json::write_number(w, m.sched_decision_us_p99);
  w.Key("wall_s"), json::write_number(w, m.wall_s);
  w.Key("workload"), w.String(m.workload);
  w.Key("cluster"), w.String(m.cluster);
  w.Key("responder"), w.String(m.responder);
  w.Key("slo_scale"), json::write_number(w, m.slo_scale);
  w.Key("seed"), w.Uint64(m.seed);
  w.Key("sim_iterations"), w.Uint64(m.sim_iterations);
  w.Key("sim_end_s"), json::write_number(w, m.sim_end_s);
  w.Key("slo_attainment_tail"), json::write_number(w, m.slo_attainment_tail);
  w.Key("revise_calls"), w.Uint64(m.revise_calls);
  w.Key("answers_not_executed"), w.Uint64(m.answers_not_executed);
  w.Key("ended_early"), w.Uint64(m.ended_early);
  w.Key("calls_cancelled"), w.Uint64(m.calls_cancelled);
  w.Key("stages_cancelled"), w.Uint64(m.stages_cancelled);
  w.Key("instances");
  w.StartArray();
  for (const auto& i : m.instances) {
    w.StartObject();
    w.Key("name"), w.String(i.name);
    w.Key("utilization"), json::write_number(w, i.utilization);
    w.Key("iterations"), w.Uint64(i.iterations);
    w.Key("calls"), w.Uint64(i.calls);
    w.Key("prefill_tokens"), w.Uint64(i.prefill_tokens);
    w.Key("cached_tokens"), w.Uint64(i.cached_tokens);
    w.Key("decode_tokens"), w.Uint64(i.decode_tokens);
    w.Key("preemptions"), w.Uint64(i.preemptions);
    w.Key("peak_kv_fraction"), json::write_number(w, i.peak_kv_fraction);
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
}

}  // namespace

std::string metrics_json(const RunMetrics& m, bool pretty) {
  rapidjson::StringBuffer sb;
  if (pretty) {
    rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
    w.SetIndent(' ', 2);
    write_metrics(w, m);
  } else {
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    write_metrics(w, m);
  }
  return std::string(sb.GetString(), sb.GetSize()) + "\n";
}

std::string compare_json(const std::vector<RunMetrics>& runs, const std::map<std::string, double>& max_rate_at_slo,
                         std::optional<double> slo_target, const std::optional<KeepUpRate>& keepup,
                         const std::optional<SustainedCapacity>& sustained) {
  rapidjson::StringBuffer sb;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
  w.SetIndent(' ', 2);
  w.StartObject();
  w.Key("runs");
  w.StartArray();
  for (const auto& m : runs) write_metrics(w, m);
  w.EndArray();
  if (slo_target) {
    w.Key("max_rate_at_slo");
    w.StartObject();
    for (const auto& [p, r] : max_rate_at_slo) {
      w.String(p);  // as a key
      json::write_number(w, r);
    }
    w.EndObject();
    w.Key("max_rate_at_slo_kind"), w.String("finite-run");
    w.Key("slo_target"), json::write_number(w, *slo_target);
  }
  if (sustained) {
    auto per_policy = [&w](const char* key, const auto& map, auto write) {
      w.Key(key);
      w.StartObject();
      for (const auto& [p, v] : map) {
        w.String(p);  // as a key
        write(v);
      }
      w.EndObject();
    };
    auto num = [&w](double v) { json::write_number(w, v); };
    if (!sustained->max_sustained_rate.empty()) {
      per_policy("max_sustained_rate", sustained->max_sustained_rate, num);
      w.Key("sustained");
      w.StartObject();
      w.Key("tail_fraction"), json::write_number(w, kTailArrivalFraction);
      w.Key("overload_margin"), json::write_number(w, sustained->overload_margin);
      per_policy("delivered_wf_per_s", sustained->delivered_wf_per_s, num);
      per_policy("workflows", sustained->workflows, [&w](size_t v) { w.Uint64(v); });
      per_policy("length_capped", sustained->length_capped, [&w](bool v) { w.Bool(v); });
      w.EndObject();
    }
    if (!sustained->min_slo_scale.empty()) {
      per_policy("min_slo_scale", sustained->min_slo_scale, [&w](const std::optional<double>& v) { opt(w, v); });
      w.Key("min_slo_scale_rate"), json::write_number(w, sustained->min_slo_scale_rate);
    }
  }
  if (keepup) {
    w.Key("keepup");
    w.StartObject();
    w.Key("policy"), w.String(keepup->policy);
    w.Key("fraction"), json::write_number(w, keepup->fraction);
    w.Key("rate"), json::write_number(w, keepup->rate);
    w.EndObject();
  }
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize()) + "\n";
}

double max_rate_from_points(const std::vector<std::pair<double, double>>& points, double target) {
  auto sorted = points;
  std::sort(sorted.begin(), sorted.end());
  double best = 0;
  for (const auto& [rate, att] : sorted) {
    if (att + 1e-12 < target) break;
    best = rate;
  }
  return best;
}

double max_rate_by_bisection(const std::function<double(double)>& attainment, double lo, double hi, double target,
                             int steps) {
  if (attainment(lo) + 1e-12 < target) return 0.0;
  if (attainment(hi) + 1e-12 >= target) return hi;
  for (int i = 0; i < steps; ++i) {
    const double mid = 0.5 * (lo + hi);
    if (attainment(mid) + 1e-12 >= target)
      lo = mid;
    else
      hi = mid;
  }
  return lo;
}

double keepup_rate_by_bisection(const std::function<double(double)>& throughput, double lo, double hi,
                                double fraction, int steps) {
  const double r = max_rate_by_bisection([&](double rate) { return throughput(rate) / rate; }, lo, hi, fraction, steps);
  if (r <= 0) return 0.0;
  const double unit = std::pow(10.0, std::floor(std::log10(r)) - 2);  // 3 significant digits
  return std::max(lo, std::floor(r / unit + 1e-9) * unit);
}

double capacity_bound_wf_per_s(const ClusterSpec& cluster, const std::vector<CallRecord>& calls, size_t workflows) {
  if (workflows == 0 || calls.empty()) return 0.0;
  double total = 0;
  for (const auto& spec : cluster.instances) {
    if (spec.backend != Backend::sim) continue;
    CostModel m(spec);
    double seconds = 0;
    for (const auto& c : calls) seconds += m.prefill_s(c.prompt_tokens, 0, m.default_chunk_tokens());
    if (seconds > 0) total += static_cast<double>(workflows) / seconds;
  }
  return total;
}

std::string format_answer_summary(const RunMetrics& m) {
  std::string out;
  char line[320];
  const double n = static_cast<double>(std::max<size_t>(1, m.workflows));
  if (m.ex_accuracy) {
    std::snprintf(line, sizeof line, "execution accuracy %.3f (greedy first candidate %.3f; revise + selection add %+.3f)\n",
                  *m.ex_accuracy, m.ex_first_candidate.value_or(0), *m.ex_accuracy - m.ex_first_candidate.value_or(0));
    out += line;
  }
  std::snprintf(line, sizeof line,
                "per question: %.1f LLM calls, %.1f SQLite executions; %llu of %zu completed answers did not execute\n",
                static_cast<double>(m.llm_calls) / n, static_cast<double>(m.sql_executions) / n,
                static_cast<unsigned long long>(m.answers_not_executed), m.completed);
  out += line;
  for (const auto& i : m.instances) {
    const double busy = i.utilization * m.makespan_s;
    if (!(busy > 0)) continue;
    std::snprintf(line, sizeof line, "instance %s: %llu calls, busy %.1f s, %.0f prefill + %.0f decode tokens/s while busy\n",
                  i.name.c_str(), static_cast<unsigned long long>(i.calls), busy,
                  static_cast<double>(i.prefill_tokens) / busy, static_cast<double>(i.decode_tokens) / busy);
    out += line;
  }
  return out;
}

std::string format_table(const std::vector<RunMetrics>& runs, const std::string& baseline) {
  std::string out;
  char line[512];
  std::snprintf(line, sizeof line, "%-14s %6s %7s %8s %8s %8s %8s %8s %7s %9s %9s\n", "policy", "rate", "SLO%",
                "p50 s", "p95 s", "p99 s", "thr/s", "good/s", "acc%", "p95 vs", "good vs");
  out += line;
  for (const auto& m : runs) {
    const RunMetrics* base = nullptr;
    for (const auto& b : runs)
      if (b.policy == baseline && b.rate == m.rate) base = &b;
    char acc[16] = "-";
    if (m.ex_accuracy) std::snprintf(acc, sizeof acc, "%.1f", 100 * *m.ex_accuracy);
    char r95[16] = "-", rgood[16] = "-";
    if (base && m.latency_p95_s > 0) std::snprintf(r95, sizeof r95, "%.2fx", base->latency_p95_s / m.latency_p95_s);
    if (base && base->goodput_wf_per_s > 0)
      std::snprintf(rgood, sizeof rgood, "%.2fx", m.goodput_wf_per_s / base->goodput_wf_per_s);
    std::snprintf(line, sizeof line, "%-14s %6.3g %7.1f %8.2f %8.2f %8.2f %8.3f %8.3f %7s %9s %9s\n",
                  m.policy.c_str(), m.rate, 100 * m.slo_attainment, m.latency_p50_s, m.latency_p95_s,
                  m.latency_p99_s, m.throughput_wf_per_s, m.goodput_wf_per_s, acc, r95, rgood);
    out += line;
  }
  out += "(p95 vs / good vs: " + baseline + "'s p95 latency ÷ this one's, this goodput ÷ " + baseline +
         "'s; > 1 is better)\n";
  return out;
}

}  // namespace t2s::scheduler
