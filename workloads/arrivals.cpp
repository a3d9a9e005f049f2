#include "workloads/arrivals.hpp"

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include "common/json.hpp"
#include "common/rng.hpp"
#include "common/status.hpp"

namespace t2s::workloads {

namespace {

double parse_number(const std::string& s, const std::string& what) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    throw InputError(what + ": '" + s + "' is not a number");
  }
  while (used < s.size() && std::isspace(static_cast<unsigned char>(s[used]))) ++used;
  if (used != s.size()) throw InputError(what + ": '" + s + "' is not a number");
  return v;
}

std::string trim(std::string s) {
  size_t b = s.find_first_not_of(" \t\r\n"), e = s.find_last_not_of(" \t\r\n");
  return b == std::string::npos ? "" : s.substr(b, e - b + 1);
}

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::stringstream ss(s);
  std::string item;
  while (std::getline(ss, item, sep)) out.push_back(trim(item));
  return out;
}

}  // namespace

ArrivalSpec ArrivalSpec::parse(const std::string& text, double rate) {
  ArrivalSpec s;
  s.rate = rate;
  if (text == "poisson") {
    s.kind = Kind::poisson;
  } else if (text.rfind("gamma:", 0) == 0) {
    s.kind = Kind::gamma;
    s.cv = parse_number(text.substr(6), "arrival 'gamma:CV'");
    if (!(s.cv > 0) || !std::isfinite(s.cv)) throw InputError("arrival 'gamma:CV': CV must be positive, got " + text);
  } else if (text.rfind("trace:", 0) == 0) {
    s.kind = Kind::trace;
    s.trace_file = text.substr(6);
    if (s.trace_file.empty()) throw InputError("arrival 'trace:FILE': the file name is empty");
    return s;
  } else {
    throw InputError("unknown arrival process '" + text + "' (expected poisson, gamma:CV or trace:FILE)");
  }
  if (!(rate > 0) || !std::isfinite(rate)) throw InputError("arrival rate must be positive, got " + std::to_string(rate));
  return s;
}

std::string ArrivalSpec::to_string() const {
  switch (kind) {
    case Kind::poisson: return "poisson";
    case Kind::gamma: {
      std::ostringstream os;
      os << "gamma:" << cv;
      return os.str();
    }
    case Kind::trace: return "trace:" + trace_file;
  }
  return "poisson";
}

std::vector<double> read_arrival_timestamps(const std::string& path) {
  std::string text = json::read_file(path);
  std::vector<double> ts;
  std::istringstream in(text);
  std::string line;
  size_t lineno = 0;
  int column = 0;  // CSV column holding the time
  bool header_seen = false;
  static const char* keys[] = {"arrival_s", "timestamp", "time", "arrival"};
  while (std::getline(in, line)) {
    ++lineno;
    line = trim(line);
    if (line.empty() || line[0] == '#') continue;
    std::string where = path + " line " + std::to_string(lineno);
    if (line[0] == '{') {
      auto doc = json::parse(line, where);
      bool found = false;
      for (const char* k : keys) {
        auto it = doc.FindMember(k);
        if (it != doc.MemberEnd()) {
          if (!it->value.IsNumber()) throw InputError(where + ": field '" + k + "' must be a number");
          ts.push_back(it->value.GetDouble());
          found = true;
          break;
        }
      }
      if (!found) throw InputError(where + ": no 'arrival_s' (or 'timestamp'/'time') field");
      continue;
    }
    auto cells = split(line, ',');
    if (!header_seen && ts.empty()) {
      // A header line: find the time column by name.
      bool numeric = true;
      try {
        parse_number(cells[0], where);
      } catch (const InputError&) {
        numeric = false;
      }
      if (!numeric) {
        header_seen = true;
        column = -1;
        for (size_t c = 0; c < cells.size() && column < 0; ++c)
          for (const char* k : keys)
            if (cells[c] == k) column = static_cast<int>(c);
        if (column < 0) throw InputError(where + ": CSV header has no arrival_s/timestamp/time column");
        continue;
      }
    }
    if (static_cast<size_t>(column) >= cells.size()) throw InputError(where + ": missing time column");
    ts.push_back(parse_number(cells[static_cast<size_t>(column)], where));
  }
  if (ts.empty()) throw InputError(path + ": no arrival timestamps");
  for (double t : ts)
    if (!std::isfinite(t)) throw InputError(path + ": non-finite timestamp");
  std::sort(ts.begin(), ts.end());
  double t0 = ts.front();
  for (double& t : ts) t -= t0;
  return ts;
}

std::vector<Arrival> make_arrivals(const ArrivalSpec& spec, size_t n_workflows, size_t n_questions, uint64_t seed) {
  if (n_questions == 0) throw InputError("make_arrivals: the workload has no questions");
  Rng rng(seed);
  Rng time_rng = rng.fork(1), pick_rng = rng.fork(2);
  std::vector<double> times;
  if (spec.kind == ArrivalSpec::Kind::trace) {
    times = read_arrival_timestamps(spec.trace_file);
    if (times.size() > n_workflows) times.resize(n_workflows);
  } else {
    if (!(spec.rate > 0)) throw InputError("arrival rate must be positive");
    double t = 0;
    // Gamma with shape k = 1/cv² and mean 1/rate has the requested coefficient of variation.
    double k = 1.0 / (spec.cv * spec.cv);
    for (size_t i = 0; i < n_workflows; ++i) {
      times.push_back(t);
      double gap = spec.kind == ArrivalSpec::Kind::poisson ? time_rng.exponential(spec.rate)
                                                           : time_rng.gamma(k, 1.0 / (spec.rate * k));
      t += gap;
    }
  }
  std::vector<size_t> order;
  std::vector<Arrival> out;
  out.reserve(times.size());
  for (size_t i = 0; i < times.size(); ++i) {
    if (order.empty()) {
      order.resize(n_questions);
      for (size_t q = 0; q < n_questions; ++q) order[q] = q;
      for (size_t q = n_questions; q > 1; --q)  // Fisher–Yates with our Rng
        std::swap(order[q - 1], order[static_cast<size_t>(pick_rng.uniform_int(0, static_cast<int64_t>(q) - 1))]);
      std::reverse(order.begin(), order.end());
    }
    Arrival a;
    a.workflow_id = i;
    a.question_index = order.back();
    order.pop_back();
    a.arrival_s = times[i];
    out.push_back(a);
  }
  return out;
}

SloSpec SloSpec::parse(const std::string& text) {
  SloSpec s;
  std::string t = trim(text);
  if (t.rfind("abs:", 0) == 0) {
    double b = parse_number(t.substr(4), "SLO 'abs:SECONDS'");
    if (!(b > 0) || !std::isfinite(b)) throw InputError("SLO 'abs:SECONDS': budget must be positive, got " + t);
    s.budget_s = b;
    return s;
  }
  if (t.find('=') == std::string::npos) {
    s.scale = parse_number(t, "SLO scale");
    if (!(s.scale > 0) || !std::isfinite(s.scale)) throw InputError("SLO scale must be positive, got " + t);
    return s;
  }
  for (const auto& part : split(t, ',')) {
    auto eq = part.find('=');
    if (eq == std::string::npos) throw InputError("SLO '" + text + "': expected NAME=SCALE, got '" + part + "'");
    std::string name = trim(part.substr(0, eq));
    double v = parse_number(trim(part.substr(eq + 1)), "SLO '" + text + "'");
    if (!(v > 0) || !std::isfinite(v)) throw InputError("SLO '" + text + "': scales must be positive");
    if (name == "default")
      s.scale = v;
    else
      s.difficulty_scale[parse_difficulty(name)] = v;
  }
  return s;
}

void assign_deadlines(std::vector<Arrival>& arrivals, const Workload& workload,
                      const std::function<double(const Question&)>& standalone_latency_s, const SloSpec& slo) {
  std::vector<double> budget(workload.questions.size(), -1.0);
  for (auto& a : arrivals) {
    if (a.question_index >= workload.questions.size())
      throw InputError("arrival " + std::to_string(a.workflow_id) + ": question index " +
                       std::to_string(a.question_index) + " out of range (" +
                       std::to_string(workload.questions.size()) + " questions)");
    double& b = budget[a.question_index];
    if (b < 0) {
      const Question& q = workload.questions[a.question_index];
      if (slo.budget_s) {
        b = *slo.budget_s;
      } else {
        double lat = standalone_latency_s(q);
        if (!(lat > 0) || !std::isfinite(lat))
          throw InputError("question " + q.id + ": standalone latency must be positive and finite, got " +
                           std::to_string(lat));
        auto it = slo.difficulty_scale.find(q.difficulty);
        b = (it != slo.difficulty_scale.end() ? it->second : slo.scale) * lat;
      }
    }
    a.deadline_s = a.arrival_s + b;
  }
}

}  // namespace t2s::workloads
