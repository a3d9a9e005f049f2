#include "workloads/recorded.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <set>
#include <stdexcept>

#include "common/json.hpp"
#include "common/status.hpp"

namespace t2s::workloads {
namespace {

constexpr const char* kFormat = "t2s-recorded-run";
constexpr int kVersion = 1;
// Deadlines at or beyond this are "none" (written as null).
constexpr double kNoDeadline = 1e17;

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

void key_string(Writer& w, const char* key, const std::string& v) {
  w.Key(key);
  w.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
}

// Prefix ids are 64-bit hashes: written as hex strings, which every JSON reader keeps exact.
std::string hex_id(uint64_t id) {
  char buf[24];
  std::snprintf(buf, sizeof buf, "%016" PRIx64, id);
  return buf;
}

uint64_t parse_hex_id(const std::string& s, const std::string& where) {
  if (s.empty() || s.size() > 16 || s.find_first_not_of("0123456789abcdefABCDEF") != std::string::npos)
    throw InputError(where + ": field 'prefix_id' must be a hex string of 1-16 digits, got '" + s + "'");
  return std::stoull(s, nullptr, 16);
}

void write_call(Writer& w, const RecordedCall& c) {
  w.StartObject();
  w.Key("prompt_tokens"), w.Int(c.prompt_tokens);
  w.Key("output_tokens"), w.Int(c.output_tokens);
  w.Key("max_output_tokens"), w.Int(c.max_output_tokens);
  w.Key("expected_output_tokens"), w.Int(c.expected_output_tokens);
  if (c.prefix_id != 0) {
    key_string(w, "prefix_id", hex_id(c.prefix_id));
    w.Key("prefix_tokens"), w.Int(c.prefix_tokens);
  }
  w.Key("cached_tokens"), w.Int(c.cached_tokens);
  key_string(w, "instance", c.instance);
  w.Key("service_s"), json::write_number(w, c.service_s);
  w.Key("ok"), w.Bool(c.ok);
  w.EndObject();
}

void write_stage(Writer& w, size_t index, const RecordedStage& s) {
  w.StartObject();
  w.Key("index"), w.Uint64(index);
  key_string(w, "kind", s.kind);
  w.Key("tool"), w.Bool(s.tool);
  w.Key("parents"), w.StartArray();
  for (auto p : s.parents) w.Uint(p);
  w.EndArray();
  w.Key("start_s"), json::write_number(w, s.start_s);
  w.Key("duration_s"), json::write_number(w, s.duration_s);
  w.Key("done"), w.Bool(s.done);
  w.Key("calls"), w.StartArray();
  for (const auto& c : s.calls) write_call(w, c);
  w.EndArray();
  w.EndObject();
}

int get_tokens(const rapidjson::Value& v, const char* key, const std::string& where) {
  const auto n = json::get_int(v, key, where);
  if (n < 0 || n > (1 << 24)) throw InputError(where + ": field '" + key + "' must be in [0, 16777216]");
  return static_cast<int>(n);
}

double get_seconds(const rapidjson::Value& v, const char* key, const std::string& where) {
  const double s = json::get_double(v, key, where);
  if (!std::isfinite(s) || s < 0) throw InputError(where + ": field '" + key + "' must be a finite number >= 0");
  return s;
}

RecordedCall parse_call(const rapidjson::Value& v, const std::string& where) {
  if (!v.IsObject()) throw InputError(where + ": expected a JSON object");
  json::check_fields(v, {"prompt_tokens", "output_tokens", "max_output_tokens", "expected_output_tokens", "prefix_id",
                         "prefix_tokens", "cached_tokens", "instance", "service_s", "ok"},
                     where);
  RecordedCall c;
  c.prompt_tokens = get_tokens(v, "prompt_tokens", where);
  if (c.prompt_tokens < 1) throw InputError(where + ": field 'prompt_tokens' must be >= 1");
  c.output_tokens = get_tokens(v, "output_tokens", where);
  c.max_output_tokens = get_tokens(v, "max_output_tokens", where);
  c.expected_output_tokens = get_tokens(v, "expected_output_tokens", where);
  if (v.HasMember("prefix_id")) {
    c.prefix_id = parse_hex_id(json::get_string(v, "prefix_id", where), where);
    c.prefix_tokens = get_tokens(v, "prefix_tokens", where);
    if (c.prefix_tokens > c.prompt_tokens)
      throw InputError(where + ": field 'prefix_tokens' exceeds 'prompt_tokens'");
  } else if (v.HasMember("prefix_tokens")) {
    throw InputError(where + ": field 'prefix_tokens' without 'prefix_id'");
  }
  c.cached_tokens = get_tokens(v, "cached_tokens", where);
  c.instance = json::get_string(v, "instance", where);
  c.service_s = get_seconds(v, "service_s", where);
  c.ok = json::opt_bool_strict(v, "ok", false, where);
  return c;
}

RecordedStage parse_stage(const rapidjson::Value& v, size_t index, const std::string& where) {
  if (!v.IsObject()) throw InputError(where + ": expected a JSON object");
  json::check_fields(v, {"index", "kind", "tool", "parents", "start_s", "duration_s", "done", "calls"}, where);
  if (json::get_int(v, "index", where) != static_cast<int64_t>(index))
    throw InputError(where + ": field 'index' must be " + std::to_string(index) + " (stages in release order)");
  RecordedStage s;
  s.kind = json::get_string(v, "kind", where);
  if (s.kind.empty()) throw InputError(where + ": field 'kind' is empty");
  s.tool = json::opt_bool_strict(v, "tool", false, where);
  const auto& parents = json::get_array(v, "parents", where);
  for (rapidjson::SizeType k = 0; k < parents.Size(); ++k) {
    if (!parents[k].IsUint() || parents[k].GetUint() >= index)
      throw InputError(where + ": parents[" + std::to_string(k) + "] must be the index of an earlier stage (< " +
                       std::to_string(index) + ")");
    s.parents.push_back(parents[k].GetUint());
  }
  s.start_s = get_seconds(v, "start_s", where);
  s.duration_s = get_seconds(v, "duration_s", where);
  s.done = json::opt_bool_strict(v, "done", true, where);
  const auto& calls = json::get_array(v, "calls", where);
  for (rapidjson::SizeType k = 0; k < calls.Size(); ++k)
    s.calls.push_back(parse_call(calls[k], where + ".calls[" + std::to_string(k) + "]"));
  if (s.tool && !s.calls.empty()) throw InputError(where + ": a tool stage has no LLM calls");
  return s;
}

RecordedInstance parse_instance(const rapidjson::Value& v, const std::string& where) {
  if (!v.IsObject()) throw InputError(where + ": expected a JSON object");
  json::check_fields(v, {"name", "kind", "capacity", "kv_blocks", "block_tokens", "max_batch_tokens"}, where);
  RecordedInstance r;
  r.name = json::get_string(v, "name", where);
  if (r.name.empty()) throw InputError(where + ": field 'name' is empty");
  r.kind = json::get_string(v, "kind", where);
  r.capacity = static_cast<int>(json::opt_int_in(v, "capacity", 0, 0, 1 << 16, where));
  r.kv_blocks = static_cast<int>(json::opt_int_in(v, "kv_blocks", 0, 0, 1 << 30, where));
  r.block_tokens = static_cast<int>(json::opt_int_in(v, "block_tokens", 16, 1, 1 << 16, where));
  r.max_batch_tokens = static_cast<int>(json::opt_int_in(v, "max_batch_tokens", 0, 0, 1 << 20, where));
  return r;
}

}  // namespace

std::string format_recorded_run(const Workload& workload) {
  if (workload.recorded_arrivals.size() != workload.questions.size())
    throw std::logic_error("format_recorded_run: one arrival per recorded question expected");
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  key_string(w, "format", kFormat);
  w.Key("version"), w.Int(kVersion);
  key_string(w, "source", workload.recorded_source);
  w.Key("instances"), w.StartArray();
  for (const auto& i : workload.recorded_instances) {
    w.StartObject();
    key_string(w, "name", i.name);
    key_string(w, "kind", i.kind);
    w.Key("capacity"), w.Int(i.capacity);
    w.Key("kv_blocks"), w.Int(i.kv_blocks);
    w.Key("block_tokens"), w.Int(i.block_tokens);
    w.Key("max_batch_tokens"), w.Int(i.max_batch_tokens);
    w.EndObject();
  }
  w.EndArray();
  w.Key("workflows"), w.StartArray();
  for (size_t k = 0; k < workload.questions.size(); ++k) {
    const auto& q = workload.questions[k];
    const auto& a = workload.recorded_arrivals[k];
    if (!q.recorded) throw std::logic_error("format_recorded_run: question " + q.id + " has no recorded DAG");
    const auto& r = *q.recorded;
    w.StartObject();
    w.Key("workflow_id"), w.Uint64(a.workflow_id);
    key_string(w, "question_id", r.question_id);
    w.Key("arrival_s"), json::write_number(w, a.arrival_s);
    w.Key("deadline_s");
    if (a.deadline_s >= kNoDeadline)
      w.Null();
    else
      json::write_number(w, a.deadline_s);
    key_string(w, "outcome", r.outcome);
    if (!r.error.empty()) key_string(w, "error", r.error);
    if (!r.sql.empty()) key_string(w, "sql", r.sql);
    w.Key("latency_s"), json::write_number(w, r.latency_s);
    w.Key("sql_executed"), w.Bool(r.sql_executed);
    w.Key("has_gold"), w.Bool(r.has_gold);
    w.Key("correct"), w.Bool(r.correct);
    w.Key("stages"), w.StartArray();
    for (size_t s = 0; s < r.stages.size(); ++s) write_stage(w, s, r.stages[s]);
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize()) + "\n";
}

Workload parse_recorded_run(const std::string& text, const std::string& where) {
  auto doc = json::parse(text, where);
  if (!doc.IsObject()) throw InputError(where + ": expected a JSON object");
  json::check_fields(doc, {"format", "version", "source", "instances", "workflows"}, where);
  if (json::get_string(doc, "format", where) != kFormat)
    throw InputError(where + ": field 'format' must be \"" + std::string(kFormat) + "\" (a `t2s replay --out` file)");
  if (json::get_int(doc, "version", where) != kVersion)
    throw InputError(where + ": field 'version' must be " + std::to_string(kVersion));
  Workload w;
  w.name = "recorded";
  w.execution_available = false;
  w.execution_note = "a recorded run replays its measured SQL times; it executes no SQL";
  w.recorded_source = json::opt_string(doc, "source", "");
  const auto& inst = json::get_array(doc, "instances", where);
  std::set<std::string> names;
  for (rapidjson::SizeType i = 0; i < inst.Size(); ++i) {
    const std::string at = where + ": instances[" + std::to_string(i) + "]";
    auto r = parse_instance(inst[i], at);
    if (!names.insert(r.name).second) throw InputError(at + ": duplicate instance name '" + r.name + "'");
    w.recorded_instances.push_back(std::move(r));
  }
  const auto& wfs = json::get_array(doc, "workflows", where);
  std::set<uint64_t> ids;
  for (rapidjson::SizeType k = 0; k < wfs.Size(); ++k) {
    const std::string at = where + ": workflows[" + std::to_string(k) + "]";
    const auto& v = wfs[k];
    if (!v.IsObject()) throw InputError(at + ": expected a JSON object");
    json::check_fields(v, {"workflow_id", "question_id", "arrival_s", "deadline_s", "outcome", "error", "sql", "latency_s",
                           "sql_executed", "has_gold", "correct", "stages"},
                       at);
    Arrival a;
    const auto id = json::get_int(v, "workflow_id", at);
    if (id < 0) throw InputError(at + ": field 'workflow_id' must be >= 0");
    a.workflow_id = static_cast<uint64_t>(id);
    if (!ids.insert(a.workflow_id).second) throw InputError(at + ": duplicate workflow_id " + std::to_string(id));
    a.question_index = k;
    a.arrival_s = get_seconds(v, "arrival_s", at);
    if (!v.HasMember("deadline_s")) throw InputError(at + ": missing number field 'deadline_s' (null = none)");
    if (!v["deadline_s"].IsNull()) {
      a.deadline_s = get_seconds(v, "deadline_s", at);
      if (a.deadline_s < a.arrival_s) throw InputError(at + ": field 'deadline_s' is before 'arrival_s'");
    }
    auto r = std::make_shared<RecordedWorkflow>();
    r->question_id = json::get_string(v, "question_id", at);
    r->outcome = json::get_string(v, "outcome", at);
    if (r->outcome != "completed" && r->outcome != "ended_early" && r->outcome != "failed" &&
        r->outcome != "cancelled")
      throw InputError(at + ": field 'outcome' must be completed, ended_early, failed or cancelled (got '" +
                       r->outcome + "')");
    r->error = json::opt_string(v, "error", "");
    r->sql = json::opt_string(v, "sql", "");
    r->latency_s = get_seconds(v, "latency_s", at);
    r->sql_executed = json::opt_bool_strict(v, "sql_executed", false, at);
    r->has_gold = json::opt_bool_strict(v, "has_gold", false, at);
    r->correct = json::opt_bool_strict(v, "correct", false, at);
    const auto& stages = json::get_array(v, "stages", at);
    for (rapidjson::SizeType s = 0; s < stages.Size(); ++s)
      r->stages.push_back(parse_stage(stages[s], s, at + ".stages[" + std::to_string(s) + "]"));
    if (r->stages.empty() && r->outcome == "completed") throw InputError(at + ": a completed workflow has no stages");
    Question q;
    q.id = "recorded:" + std::to_string(a.workflow_id);
    q.question = r->question_id;
    q.recorded = std::move(r);
    w.questions.push_back(std::move(q));
    w.recorded_arrivals.push_back(a);
  }
  if (w.questions.empty()) throw InputError(where + ": field 'workflows' is empty");
  return w;
}

Workload load_recorded_run(const std::string& path) { return parse_recorded_run(json::read_file(path), path); }

}  // namespace t2s::workloads
