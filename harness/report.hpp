#pragma once
//! The self-contained HTML report of `t2s demo`: plots drawn by the embedded Chart.js, data inlined, opens offline.
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "scheduler/metrics.hpp"

namespace t2s::scheduler {

//! What the report shows.
struct ReportData {
  std::string title = "t2s demo";
  std::string subtitle;                       //!< workload, cluster, seed, command line
  std::vector<RunMetrics> base;               //!< one run per policy at the base rate and SLO scale
  std::vector<RunMetrics> rate_sweep;         //!< policy × rate (attainment, throughput and goodput vs rate)
  std::vector<RunMetrics> scale_sweep;        //!< policy × SLO scale (attainment vs SLO scale)
  std::map<std::string, double> max_rate_at_slo;  //!< from the rate sweep (finite-run: all arrivals of one run)
  std::optional<SustainedCapacity> sustained;     //!< max sustained rate and min SLO scale per policy
  double slo_target = 0.95;
  double capacity_bound_wf_per_s = 0;         //!< the cluster's capacity the rates are fractions of (0 = unknown)
  std::vector<std::string> notes;             //!< lines shown under the title
  std::vector<RunMetrics> real;               //!< one wall-clock run per policy on embedded engine instances
  std::string real_note;                      //!< what the real runs were (model, cluster, rate, deadlines)
};

//! The report as one HTML document (Chart.js and the data inlined).
std::string render_report_html(const ReportData& data);

//! The embedded Chart.js 4 UMD bundle (third_party/chartjs, MIT).
std::string_view chartjs_source();

}  // namespace t2s::scheduler
