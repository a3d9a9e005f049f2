#include "harness/report.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cmath>

#include "common/json.hpp"

namespace t2s::scheduler {
namespace {

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

// One run: its metrics.json object (flattened for the page script) and, for base runs, its sorted latencies.
void write_run(Writer& w, const RunMetrics& m, bool with_latencies) {
  auto text = metrics_json(m, false);
  while (!text.empty() && text.back() == '\n') text.pop_back();
  if (!with_latencies) {
    w.RawValue(text.c_str(), text.size(), rapidjson::kObjectType);
    return;
  }
  auto lat = m.latencies_s;
  std::sort(lat.begin(), lat.end());
  rapidjson::StringBuffer sb;
  Writer lw(sb);
  lw.StartArray();
  for (double v : lat) json::write_number(lw, v);
  lw.EndArray();
  text.pop_back();  // the closing brace: append the latencies as one more member
  text += ",\"latencies\":" + std::string(sb.GetString(), sb.GetSize()) + "}";
  w.RawValue(text.c_str(), text.size(), rapidjson::kObjectType);
}

std::string data_json(const ReportData& d) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  w.Key("base");
  w.StartArray();
  for (const auto& m : d.base) write_run(w, m, true);
  w.EndArray();
  w.Key("rate_sweep");
  w.StartArray();
  for (const auto& m : d.rate_sweep) write_run(w, m, false);
  w.EndArray();
  w.Key("scale_sweep");
  w.StartArray();
  for (const auto& m : d.scale_sweep) write_run(w, m, false);
  w.EndArray();
  w.Key("max_rate_at_slo");
  w.StartObject();
  for (const auto& [p, r] : d.max_rate_at_slo) {
    w.Key(p.c_str(), static_cast<rapidjson::SizeType>(p.size()));
    json::write_number(w, r);
  }
  w.EndObject();
  w.Key("max_sustained_rate");
  w.StartObject();
  if (d.sustained)
    for (const auto& [p, r] : d.sustained->max_sustained_rate) {
      w.Key(p.c_str(), static_cast<rapidjson::SizeType>(p.size()));
      json::write_number(w, r);
    }
  w.EndObject();
  w.Key("slo_target"), json::write_number(w, d.slo_target);
  w.Key("capacity"), json::write_number(w, d.capacity_bound_wf_per_s);
  w.EndObject();
  std::string s(sb.GetString(), sb.GetSize());
  // Inside <script>, "</" could end the element early.
  for (size_t p = s.find("</"); p != std::string::npos; p = s.find("</", p + 3)) s.replace(p, 2, "<\\/");
  return s;
}

std::string escape_html(const std::string& s) {
  std::string o;
  for (char c : s) {
    switch (c) {
      case '<': o += "&lt;"; break;
      case '>': o += "&gt;"; break;
      case '&': o += "&amp;"; break;
      case '"': o += "&quot;"; break;
      default: o += c;
    }
  }
  return o;
}

// The page script: builds every chart from DATA with Chart.js.
constexpr std::string_view kPageScript = R"JS(
const palette = ['#4e79a7','#f28e2b','#e15759','#76b7b2','#59a14f','#edc948','#b07aa1','#ff9da7','#9c755f','#bab0ac'];
const policies = DATA.base.map(r => r.policy);
const color = p => palette[policies.indexOf(p) % palette.length];
function series(runs, x, y) {
  return policies.map(p => ({label: p, borderColor: color(p), backgroundColor: color(p), fill: false, tension: 0.15,
    data: runs.filter(r => r.policy === p).sort((a, b) => a[x] - b[x]).map(r => ({x: r[x], y: y(r)}))}));
}
function lineChart(id, datasets, xTitle, yTitle, yMax) {
  new Chart(document.getElementById(id), {type: 'line', data: {datasets},
    options: {animation: false, parsing: true, scales: {
      x: {type: 'linear', title: {display: true, text: xTitle}},
      y: {beginAtZero: true, max: yMax, title: {display: true, text: yTitle}}},
      plugins: {legend: {position: 'bottom'}}}});
}
lineChart('slo', series(DATA.scale_sweep, 'slo_scale', r => 100 * r.slo_attainment), 'SLO scale (deadline / standalone latency)', 'SLO attainment (%)', 100);
lineChart('cdf', DATA.base.map(r => ({label: r.policy, borderColor: color(r.policy), backgroundColor: color(r.policy),
  pointRadius: 0, fill: false, stepped: true,
  data: r.latencies.map((v, i) => ({x: v, y: 100 * (i + 1) / r.workflows}))})), 'end-to-end latency (s)', 'workflows finished (%)', 100);
lineChart('thr', series(DATA.rate_sweep, 'rate', r => r.goodput_wf_per_s), 'offered rate (workflows/s)', 'goodput: in-deadline workflows/s');
lineChart('att', series(DATA.rate_sweep, 'rate', r => 100 * r.slo_attainment), 'offered rate (workflows/s)', 'SLO attainment (%)', 100);
const inst = DATA.base.length ? DATA.base[0].instances.map(i => i.name) : [];
new Chart(document.getElementById('util'), {type: 'bar', data: {labels: inst,
  datasets: DATA.base.map(r => ({label: r.policy, backgroundColor: color(r.policy),
    data: r.instances.map(i => 100 * i.utilization)}))},
  options: {animation: false, scales: {y: {beginAtZero: true, max: 100, title: {display: true, text: 'busy time (%)'}}},
    plugins: {legend: {position: 'bottom'}}}});
)JS";

}  // namespace

std::string render_report_html(const ReportData& d) {
  std::string h;
  h.reserve(chartjs_source().size() + 64 * 1024);
  h += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>" + escape_html(d.title) +
       "</title>\n<style>body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px;color:#222}"
       "table{border-collapse:collapse;font-size:14px}td,th{border:1px solid #ccc;padding:4px 8px;text-align:right}"
       "th{background:#f4f4f4}td:first-child{text-align:left}.grid{display:grid;grid-template-columns:1fr 1fr;"
       "gap:24px}.card{border:1px solid #ddd;border-radius:6px;padding:12px}h2{font-size:18px}"
       ".note{color:#555;font-size:14px}</style>\n<script>";
  h += chartjs_source();
  h += "</script>\n</head><body>\n<h1>" + escape_html(d.title) + "</h1>\n<p class=\"note\">" + escape_html(d.subtitle) +
       "</p>\n";
  for (const auto& n : d.notes) h += "<p class=\"note\">" + escape_html(n) + "</p>\n";
  h += "<h2>Policies at the base rate</h2>\n<table><tr><th>policy</th><th>rate/s</th><th>SLO attainment</th>"
       "<th>P50 s</th><th>P95 s</th><th>P99 s</th><th>throughput/s</th><th>goodput/s</th><th>EX accuracy</th>"
       "<th>max sustained rate at " +
       std::to_string(static_cast<int>(100 * d.slo_target + 0.5)) + "%</th>";
  if (d.capacity_bound_wf_per_s > 0) h += "<th>of capacity</th>";
  h += "<th>delivered/s</th><th>min SLO scale</th><th>finite-run max rate</th>";
  if (d.capacity_bound_wf_per_s > 0) h += "<th>of capacity</th>";
  h += "</tr>\n";
  char buf[256];
  for (const auto& m : d.base) {
    h += "<tr><td>" + escape_html(m.policy) + "</td>";
    std::snprintf(buf, sizeof buf, "<td>%.3g</td><td>%.1f%%</td><td>%.2f</td><td>%.2f</td><td>%.2f</td><td>%.3f</td>"
                                   "<td>%.3f</td>",
                  m.rate, 100 * m.slo_attainment, m.latency_p50_s, m.latency_p95_s, m.latency_p99_s,
                  m.throughput_wf_per_s, m.goodput_wf_per_s);
    h += buf;
    if (m.ex_accuracy) {
      std::snprintf(buf, sizeof buf, "<td>%.1f%%</td>", 100 * *m.ex_accuracy);
      h += buf;
    } else {
      h += "<td>-</td>";
    }
    // A rate and its share of capacity, or dashes.
    auto rate_cells = [&](const std::map<std::string, double>* rates) {
      auto it = rates ? rates->find(m.policy) : std::map<std::string, double>::const_iterator{};
      if (!rates || it == rates->end()) {
        h += d.capacity_bound_wf_per_s > 0 ? "<td>-</td><td>-</td>" : "<td>-</td>";
        return;
      }
      std::snprintf(buf, sizeof buf, "<td>%.3g</td>", it->second);
      h += buf;
      if (d.capacity_bound_wf_per_s > 0) {
        std::snprintf(buf, sizeof buf, "<td>%.0f%%</td>", 100 * it->second / d.capacity_bound_wf_per_s);
        h += buf;
      }
    };
    rate_cells(d.sustained ? &d.sustained->max_sustained_rate : nullptr);
    auto delivered = d.sustained ? d.sustained->delivered_wf_per_s.find(m.policy)
                                 : std::map<std::string, double>::const_iterator{};
    if (d.sustained && delivered != d.sustained->delivered_wf_per_s.end())
      std::snprintf(buf, sizeof buf, "<td>%.3g</td>", delivered->second);
    else
      std::snprintf(buf, sizeof buf, "<td>-</td>");
    h += buf;
    if (!d.sustained) {
      h += "<td>-</td>";
    } else if (auto sc = d.sustained->min_slo_scale.find(m.policy);
               sc != d.sustained->min_slo_scale.end() && sc->second) {
      std::snprintf(buf, sizeof buf, "<td>%.2f</td>", *sc->second);
      h += buf;
    } else {
      h += "<td>none</td>";  // not met even at the top of the searched scales
    }
    rate_cells(&d.max_rate_at_slo);
    h += "</tr>\n";
  }
  h += "</table>\n";
  if (!d.real.empty()) {
    // The wall-clock part: real model, real SQLite, same arrivals and deadlines for every policy.
    h += "<h2>Real runs on the wall clock</h2>\n<p class=\"note\">" + escape_html(d.real_note) +
         "</p>\n<table><tr><th>policy</th><th>rate/s</th><th>SLO attainment</th><th>P50 s</th><th>P95 s</th>"
         "<th>throughput/s</th><th>EX accuracy</th><th>first-candidate EX</th><th>LLM calls/question</th>"
         "<th>answers not executed</th></tr>\n";
    for (const auto& m : d.real) {
      std::snprintf(buf, sizeof buf,
                    "<td>%.3g</td><td>%.1f%%</td><td>%.2f</td><td>%.2f</td><td>%.3f</td><td>%s</td><td>%s</td>"
                    "<td>%.1f</td><td>%llu</td>",
                    m.rate, 100 * m.slo_attainment, m.latency_p50_s, m.latency_p95_s, m.throughput_wf_per_s,
                    m.ex_accuracy ? (std::to_string(static_cast<int>(std::lround(100 * *m.ex_accuracy))) + "%").c_str()
                                  : "-",
                    m.ex_first_candidate
                        ? (std::to_string(static_cast<int>(std::lround(100 * *m.ex_first_candidate))) + "%").c_str()
                        : "-",
                    static_cast<double>(m.llm_calls) / static_cast<double>(std::max<size_t>(1, m.workflows)),
                    static_cast<unsigned long long>(m.answers_not_executed));
      h += "<tr><td>" + escape_html(m.policy) + "</td>" + buf + "</tr>\n";
    }
    h += "</table>\n";
  }
  h += "<div class=\"grid\">\n"
       "<div class=\"card\"><h2>SLO attainment vs SLO scale</h2><canvas id=\"slo\"></canvas></div>\n"
       "<div class=\"card\"><h2>Latency CDF (base rate)</h2><canvas id=\"cdf\"></canvas></div>\n"
       "<div class=\"card\"><h2>Goodput vs offered rate</h2><canvas id=\"thr\"></canvas></div>\n"
       "<div class=\"card\"><h2>SLO attainment vs offered rate</h2><canvas id=\"att\"></canvas></div>\n"
       "<div class=\"card\"><h2>Per-instance utilisation (base rate)</h2><canvas id=\"util\"></canvas></div>\n"
       "</div>\n<script>\nconst DATA = ";
  h += data_json(d);
  h += ";\n";
  h += kPageScript;
  h += "</script>\n</body></html>\n";
  return h;
}

}  // namespace t2s::scheduler
