#include "common/log.hpp"

#include <chrono>
#include <cstdio>
#include <iostream>

#include "common/status.hpp"

namespace t2s {

LogLevel parse_log_level(std::string_view name) {
  if (name == "debug") return LogLevel::debug;
  if (name == "info") return LogLevel::info;
  if (name == "warn") return LogLevel::warn;
  if (name == "error") return LogLevel::error;
  if (name == "off") return LogLevel::off;
  throw InputError("unknown log level '" + std::string(name) + "' (debug|info|warn|error|off)");
}

LogField::LogField(std::string_view k, double v) : key(k) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  value = buf;
}

Logger::Logger(LogLevel level, std::ostream* out) : level_(level), out_(out ? out : &std::cerr) {}

static void append_value(std::string& line, const std::string& v) {
  bool quote = v.empty() || v.find_first_of(" \t\"=\n") != std::string::npos;
  if (!quote) {
    line += v;
    return;
  }
  line += '"';
  for (char c : v) {
    if (c == '"' || c == '\\') line += '\\';
    if (c == '\n') {
      line += "\\n";
      continue;
    }
    line += c;
  }
  line += '"';
}

void Logger::log(LogLevel level, std::string_view event, std::initializer_list<LogField> fields) {
  if (!enabled(level)) return;
  static constexpr const char* names[] = {"debug", "info", "warn", "error", "off"};
  auto now = std::chrono::system_clock::now().time_since_epoch();
  double ts = std::chrono::duration<double>(now).count();
  char head[64];
  std::snprintf(head, sizeof head, "ts=%.3f level=%s event=", ts, names[static_cast<int>(level)]);
  std::string line = head;
  append_value(line, std::string(event));
  for (const auto& f : fields) {
    line += ' ';
    line += f.key;
    line += '=';
    append_value(line, f.value);
  }
  line += '\n';
  std::lock_guard<std::mutex> lock(mu_);
  *out_ << line << std::flush;
}

}  // namespace t2s
