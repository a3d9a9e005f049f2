#pragma once
//! Chrome trace-event JSON writer (the format Perfetto and chrome://tracing open).
#include <cstdint>
#include <map>
#include <string>
#include <utility>
#include <vector>

namespace t2s {

//! One argument value of a trace event (number or string).
struct TraceArg {
  std::string key;
  bool is_number = true;
  double number = 0;
  std::string text;
  TraceArg(std::string k, double v) : key(std::move(k)), number(v) {}
  TraceArg(std::string k, int64_t v) : key(std::move(k)), number(static_cast<double>(v)) {}
  TraceArg(std::string k, int v) : key(std::move(k)), number(v) {}
  TraceArg(std::string k, std::string v) : key(std::move(k)), is_number(false), text(std::move(v)) {}
  TraceArg(std::string k, const char* v) : key(std::move(k)), is_number(false), text(v) {}
};

//! Collects events in memory and writes them as `{"traceEvents": [...]}`. Times are seconds; written as µs.
class TraceWriter {
 public:
  //! Names a process (a lane group: an instance, "sqlite", "workflows").
  void process_name(int pid, const std::string& name);
  //! Names a thread track inside a process (a batch slot, a queue).
  void thread_name(int pid, int tid, const std::string& name);
  //! A complete event (`ph: "X"`) from `start_s` lasting `dur_s`.
  void complete(int pid, int tid, const std::string& name, const std::string& category, double start_s,
                double dur_s, std::vector<TraceArg> args = {});
  //! An instant event (`ph: "i"`), e.g. a deadline marker.
  void instant(int pid, int tid, const std::string& name, const std::string& category, double t_s,
               std::vector<TraceArg> args = {});
  //! A counter sample (`ph: "C"`), e.g. queue depth.
  void counter(int pid, const std::string& name, double t_s, const std::string& series, double value);
  //! Number of events recorded.
  size_t size() const { return events_.size(); }
  //! The whole trace as JSON text.
  std::string to_json() const;
  //! Writes the trace to `path`.
  void write(const std::string& path) const;

 private:
  struct Event {
    char ph;
    int pid, tid;
    std::string name, cat;
    double ts_s, dur_s;
    std::vector<TraceArg> args;
  };
  std::vector<Event> events_;
  std::map<int, std::string> process_names_;
  std::map<std::pair<int, int>, std::string> thread_names_;
};

}  // namespace t2s
