#pragma once
//! A small thread-safe metrics registry that renders the Prometheus text exposition format (for /metrics).
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

namespace t2s::server {

//! Label pairs of one series, e.g. {{"instance","cpu0"},{"stage","revise"}}.
using Labels = std::vector<std::pair<std::string, std::string>>;

//! Counters, gauges and histograms by name and labels.
class MetricsRegistry {
 public:
  //! Declares a counter (monotonic) with its help text.
  void counter(const std::string& name, const std::string& help);
  //! Declares a gauge.
  void gauge(const std::string& name, const std::string& help);
  //! Declares a histogram with upper bucket bounds (ascending; +Inf is implicit).
  void histogram(const std::string& name, const std::string& help, std::vector<double> bounds);
  //! Adds `v` to a counter series (declared or not: undeclared names are declared as untyped counters).
  void add(const std::string& name, const Labels& labels, double v = 1);
  //! Sets a counter series to a total counted elsewhere (monotonic; typed `counter`, unlike set()).
  void set_counter(const std::string& name, const Labels& labels, double v);
  //! Sets a gauge series.
  void set(const std::string& name, const Labels& labels, double v);
  //! Records one observation in a histogram series.
  void observe(const std::string& name, const Labels& labels, double v);
  //! The value of a counter or gauge series (0 when absent).
  double value(const std::string& name, const Labels& labels) const;
  //! The whole registry in Prometheus text format.
  std::string render() const;

 private:
  struct Series {
    double value = 0;
    std::vector<uint64_t> buckets;  // histogram: per-bound counts (non-cumulative)
    uint64_t count = 0;
    double sum = 0;
  };
  struct Family {
    std::string type, help;
    std::vector<double> bounds;
    std::map<std::string, Series> series;  // by rendered label set
  };
  Family& family(const std::string& name, const char* type);
  static std::string render_labels(const Labels& labels);
  mutable std::mutex mu_;
  std::map<std::string, Family> families_;
};

}  // namespace t2s::server
