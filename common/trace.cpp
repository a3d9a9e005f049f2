#include "common/trace.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include "common/json.hpp"

namespace t2s {

void TraceWriter::process_name(int pid, const std::string& name) { process_names_[pid] = name; }
void TraceWriter::thread_name(int pid, int tid, const std::string& name) { thread_names_[{pid, tid}] = name; }

void TraceWriter::complete(int pid, int tid, const std::string& name, const std::string& category, double start_s,
                           double dur_s, std::vector<TraceArg> args) {
  events_.push_back({'X', pid, tid, name, category, start_s, dur_s, std::move(args)});
}

void TraceWriter::instant(int pid, int tid, const std::string& name, const std::string& category, double t_s,
                          std::vector<TraceArg> args) {
  events_.push_back({'i', pid, tid, name, category, t_s, 0, std::move(args)});
}

void TraceWriter::counter(int pid, const std::string& name, double t_s, const std::string& series, double value) {
  events_.push_back({'C', pid, 0, name, "counter", t_s, 0, {TraceArg(series, value)}});
}

std::string TraceWriter::to_json() const {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("displayTimeUnit");
  w.String("ms");
  w.Key("traceEvents");
  w.StartArray();
  for (const auto& [pid, name] : process_names_) {
    w.StartObject();
    w.Key("ph"); w.String("M");
    w.Key("name"); w.String("process_name");
    w.Key("pid"); w.Int(pid);
    w.Key("tid"); w.Int(0);
    w.Key("args"); w.StartObject(); w.Key("name"); w.String(name); w.EndObject();
    w.EndObject();
  }
  for (const auto& [key, name] : thread_names_) {
    w.StartObject();
    w.Key("ph"); w.String("M");
    w.Key("name"); w.String("thread_name");
    w.Key("pid"); w.Int(key.first);
    w.Key("tid"); w.Int(key.second);
    w.Key("args"); w.StartObject(); w.Key("name"); w.String(name); w.EndObject();
    w.EndObject();
  }
  for (const auto& e : events_) {
    w.StartObject();
    const char ph[2] = {e.ph, 0};
    w.Key("ph"); w.String(ph);
    w.Key("name"); w.String(e.name);
    w.Key("cat"); w.String(e.cat);
    w.Key("pid"); w.Int(e.pid);
    w.Key("tid"); w.Int(e.tid);
    w.Key("ts"); json::write_number(w, e.ts_s * 1e6);
    if (e.ph == 'X') { w.Key("dur"); json::write_number(w, e.dur_s * 1e6); }
    if (e.ph == 'i') { w.Key("s"); w.String("t"); }
    if (!e.args.empty()) {
      w.Key("args");
      w.StartObject();
      for (const auto& a : e.args) {
        w.Key(a.key.c_str(), static_cast<rapidjson::SizeType>(a.key.size()));
        if (a.is_number) json::write_number(w, a.number); else w.String(a.text);
      }
      w.EndObject();
    }
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return {sb.GetString(), sb.GetSize()};
}

void TraceWriter::write(const std::string& path) const { json::write_file(path, to_json()); }

}  // namespace t2s
