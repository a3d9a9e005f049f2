#pragma once
//! Structured, quiet-by-default logging: one `event key=value ...` line per record, passed explicitly.
#include <initializer_list>
#include <iosfwd>
#include <mutex>
#include <string>
#include <string_view>

namespace t2s {

//! Severity of a log record.
enum class LogLevel { debug = 0, info = 1, warn = 2, error = 3, off = 4 };

//! Parses "debug|info|warn|error|off"; throws InputError otherwise.
LogLevel parse_log_level(std::string_view name);

//! One key=value field of a record.
struct LogField {
  std::string_view key;
  std::string value;
  LogField(std::string_view k, std::string_view v) : key(k), value(v) {}
  LogField(std::string_view k, const char* v) : key(k), value(v) {}
  LogField(std::string_view k, const std::string& v) : key(k), value(v) {}
  LogField(std::string_view k, double v);
  LogField(std::string_view k, long long v) : key(k), value(std::to_string(v)) {}
  LogField(std::string_view k, int v) : key(k), value(std::to_string(v)) {}
  LogField(std::string_view k, unsigned long v) : key(k), value(std::to_string(v)) {}
  LogField(std::string_view k, unsigned long long v) : key(k), value(std::to_string(v)) {}
  LogField(std::string_view k, bool v) : key(k), value(v ? "true" : "false") {}
};

//! A thread-safe logger writing logfmt lines to a stream (stderr by default). Not global: owners pass it on.
class Logger {
 public:
  //! Logs at `level` and above to `out` (nullptr = std::cerr).
  explicit Logger(LogLevel level = LogLevel::warn, std::ostream* out = nullptr);
  //! True when records at `level` would be written.
  bool enabled(LogLevel level) const { return level >= level_; }
  //! Writes one record.
  void log(LogLevel level, std::string_view event, std::initializer_list<LogField> fields = {});
  void debug(std::string_view e, std::initializer_list<LogField> f = {}) { log(LogLevel::debug, e, f); }
  void info(std::string_view e, std::initializer_list<LogField> f = {}) { log(LogLevel::info, e, f); }
  void warn(std::string_view e, std::initializer_list<LogField> f = {}) { log(LogLevel::warn, e, f); }
  void error(std::string_view e, std::initializer_list<LogField> f = {}) { log(LogLevel::error, e, f); }
  //! The threshold.
  LogLevel level() const { return level_; }

 private:
  LogLevel level_;
  std::ostream* out_;
  std::mutex mu_;
};

}  // namespace t2s
