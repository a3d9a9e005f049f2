#include "runtime/metrics.hpp"

#include <cmath>
#include <cstdio>

namespace t2s::server {

namespace {
std::string number(double v) {
  if (std::isnan(v)) return "NaN";
  if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.10g", v);
  return buf;
}
std::string escape_label(const std::string& v) {
  std::string o;
  for (char c : v) {
    if (c == '\\' || c == '"') o += '\\';
    if (c == '\n') {
      o += "\\n";
      continue;
    }
    o += c;
  }
  return o;
}
}  // namespace

std::string MetricsRegistry::render_labels(const Labels& labels) {
  std::string s;
  for (const auto& [k, v] : labels) {
    if (!s.empty()) s += ',';
    s += k + "=\"" + escape_label(v) + "\"";
  }
  return s;
}

MetricsRegistry::Family& MetricsRegistry::family(const std::string& name, const char* type) {
  auto& f = families_[name];
  if (f.type.empty()) f.type = type;
  return f;
}

void MetricsRegistry::counter(const std::string& name, const std::string& help) {
  std::lock_guard lk(mu_);
  auto& f = families_[name];
  f.type = "counter";
  f.help = help;
}

void MetricsRegistry::gauge(const std::string& name, const std::string& help) {
  std::lock_guard lk(mu_);
  auto& f = families_[name];
  f.type = "gauge";
  f.help = help;
}

void MetricsRegistry::histogram(const std::string& name, const std::string& help, std::vector<double> bounds) {
  std::lock_guard lk(mu_);
  auto& f = families_[name];
  f.type = "histogram";
  f.help = help;
  f.bounds = std::move(bounds);
}

void MetricsRegistry::add(const std::string& name, const Labels& labels, double v) {
  std::lock_guard lk(mu_);
  family(name, "counter").series[render_labels(labels)].value += v;
}

void MetricsRegistry::set_counter(const std::string& name, const Labels& labels, double v) {
  std::lock_guard lk(mu_);
  family(name, "counter").series[render_labels(labels)].value = v;
}

void MetricsRegistry::set(const std::string& name, const Labels& labels, double v) {
  std::lock_guard lk(mu_);
  family(name, "gauge").series[render_labels(labels)].value = v;
}

void MetricsRegistry::observe(const std::string& name, const Labels& labels, double v) {
  std::lock_guard lk(mu_);
  auto& f = family(name, "histogram");
  auto& s = f.series[render_labels(labels)];
  if (s.buckets.size() != f.bounds.size()) s.buckets.assign(f.bounds.size(), 0);
  for (size_t i = 0; i < f.bounds.size(); ++i)
    if (v <= f.bounds[i]) {
      s.buckets[i]++;
      break;
    }
  s.count++;
  s.sum += v;
}

double MetricsRegistry::value(const std::string& name, const Labels& labels) const {
  std::lock_guard lk(mu_);
  auto it = families_.find(name);
  if (it == families_.end()) return 0;
  auto s = it->second.series.find(render_labels(labels));
  return s == it->second.series.end() ? 0 : s->second.value;
}

std::string MetricsRegistry::render() const {
  std::lock_guard lk(mu_);
  std::string out;
  for (const auto& [name, f] : families_) {
    if (!f.help.empty()) out += "# HELP " + name + " " + f.help + "\n";
    out += "# TYPE " + name + " " + f.type + "\n";
    for (const auto& [labels, s] : f.series) {
      if (f.type != "histogram") {
        out += name + (labels.empty() ? "" : "{" + labels + "}") + " " + number(s.value) + "\n";
        continue;
      }
      uint64_t cum = 0;
      std::string sep = labels.empty() ? "" : ",";
      for (size_t i = 0; i < f.bounds.size(); ++i) {
        cum += i < s.buckets.size() ? s.buckets[i] : 0;
        out += name + "_bucket{" + labels + sep + "le=\"" + number(f.bounds[i]) + "\"} " + std::to_string(cum) + "\n";
      }
      out += name + "_bucket{" + labels + sep + "le=\"+Inf\"} " + std::to_string(s.count) + "\n";
      out += name + "_sum" + (labels.empty() ? "" : "{" + labels + "}") + " " + number(s.sum) + "\n";
      out += name + "_count" + (labels.empty() ? "" : "{" + labels + "}") + " " + std::to_string(s.count) + "\n";
    }
  }
  return out;
}

}  // namespace t2s::server
