#include "server/protocol.hpp"

#include <rapidjson/document.h>
#include <rapidjson/error/en.h>

#include <string_view>

#include "common/json.hpp"
#include "common/json_writer.hpp"

namespace t2s::server {

namespace {

// Reads an optional string field; returns an error message when present with the wrong type.
std::optional<std::string> string_field(const rapidjson::Value& doc, const char* name, std::string& out,
                                        bool required) {
  auto it = doc.FindMember(name);
  if (it == doc.MemberEnd()) {
    if (required) return std::string("missing string field '") + name + "'";
    return std::nullopt;
  }
  if (!it->value.IsString()) return std::string("field '") + name + "' must be a string";
  out.assign(it->value.GetString(), it->value.GetStringLength());
  return std::nullopt;
}

}  // namespace

ClientFrame parse_client_frame(std::string_view text, const ProtocolLimits& limits) {
  rapidjson::Document doc;
  doc.Parse(text.data(), text.size());
  if (doc.HasParseError())
    return ProtocolError{"", error_code::bad_json,
                         "JSON parse error at offset " + std::to_string(doc.GetErrorOffset()) + ": " +
                             rapidjson::GetParseError_En(doc.GetParseError())};
  if (!doc.IsObject()) return ProtocolError{"", error_code::bad_request, "a frame must be a JSON object"};
  std::string id;
  if (auto err = string_field(doc, "id", id, false)) return ProtocolError{"", error_code::bad_request, *err};
  if (id.size() > limits.max_id_chars)
    return ProtocolError{"", error_code::bad_request,
                         "field 'id' longer than " + std::to_string(limits.max_id_chars) + " characters"};
  std::string type;
  if (auto err = string_field(doc, "type", type, true)) return ProtocolError{id, error_code::bad_request, *err};
  if (type == "status") return StatusFrame{};
  if (type == "cancel") {
    if (id.empty()) return ProtocolError{id, error_code::bad_request, "cancel needs a non-empty string 'id'"};
    return CancelFrame{id};
  }
  if (type != "ask")
    return ProtocolError{id, error_code::unknown_type, "unknown frame type '" + type + "' (ask|cancel|status)"};
  AskFrame ask;
  ask.id = id;
  if (id.empty()) return ProtocolError{id, error_code::bad_request, "ask needs a non-empty string 'id'"};
  if (auto err = string_field(doc, "db", ask.db, true)) return ProtocolError{id, error_code::bad_request, *err};
  if (auto err = string_field(doc, "question", ask.question, true))
    return ProtocolError{id, error_code::bad_request, *err};
  if (auto err = string_field(doc, "evidence", ask.evidence, false))
    return ProtocolError{id, error_code::bad_request, *err};
  if (ask.question.find_first_not_of(" \t\r\n\f\v") == std::string::npos)
    return ProtocolError{id, error_code::bad_request, "field 'question' is empty or only whitespace"};
  if (ask.question.size() + ask.evidence.size() > limits.max_question_chars)
    return ProtocolError{id, error_code::bad_request,
                         "question longer than " + std::to_string(limits.max_question_chars) + " characters"};
  if (auto it = doc.FindMember("deadline_ms"); it != doc.MemberEnd()) {
    if (!it->value.IsNumber()) return ProtocolError{id, error_code::bad_request, "field 'deadline_ms' must be a number"};
    ask.deadline_ms = it->value.GetDouble();
    if (!(ask.deadline_ms >= limits.min_deadline_ms) || ask.deadline_ms > limits.max_deadline_ms)
      return ProtocolError{id, error_code::bad_request,
                           "field 'deadline_ms' must be in [" + std::to_string(int64_t(limits.min_deadline_ms)) + ", " +
                               std::to_string(int64_t(limits.max_deadline_ms)) + "]"};
  }
  return ask;
}

std::string redact_paths(const std::string& message) {
  auto is_start = [&](size_t i) {
    return message[i] == '/' && (i == 0 || std::string_view(" '\"(=:`[").find(message[i - 1]) != std::string_view::npos);
  };
  auto is_end = [](char c) { return std::string_view(" \t\n'\"),`]").find(c) != std::string_view::npos; };
  std::string out;
  out.reserve(message.size());
  size_t i = 0;
  while (i < message.size()) {
    if (!is_start(i)) {
      out += message[i++];
      continue;
    }
    size_t j = i;
    while (j < message.size() && !is_end(message[j])) ++j;
    std::string_view path(message.data() + i, j - i);
    auto last = path.find_last_of('/');
    if (last == 0 || path.size() < 2)
      out += path;  // "/" or "/name": a division or a route, not a folder
    else
      out += ".../" + std::string(path.substr(last + 1));
    i = j;
  }
  return out;
}

std::string error_frame(const std::string& id, const std::string& code, const std::string& message) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("type");
  w.String("error");
  if (!id.empty()) {
    w.Key("id");
    write_json_text(w, id);
  }
  w.Key("code");
  write_json_text(w, code);
  w.Key("message");
  write_json_text(w, message);
  w.EndObject();
  return sb.GetString();
}

std::string accepted_frame(const std::string& id, uint64_t workflow) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("type");
  w.String("accepted");
  w.Key("id");
  write_json_text(w, id);
  w.Key("workflow");
  w.Uint64(workflow);
  w.EndObject();
  return sb.GetString();
}

std::string stage_frame(const std::string& id, const agents::StageEvent& e, double accepted_at_s) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("type");
  w.String("stage");
  w.Key("id");
  write_json_text(w, id);
  w.Key("stage");
  auto name = agents::stage_kind_name(e.kind);
  w.String(name.data(), static_cast<rapidjson::SizeType>(name.size()));
  w.Key("state");
  w.String(e.done ? "done" : "started");
  w.Key("ms");
  json::write_number(w, (e.done ? e.elapsed_s : e.t_s - accepted_at_s) * 1000.0);
  w.Key("index");
  w.Uint(e.stage_index);
  w.Key("calls");
  w.Int(e.calls);
  if (!e.detail.empty()) {
    w.Key("detail");
    write_json_text(w, e.detail);
  }
  w.EndObject();
  return sb.GetString();
}

std::string result_frame(const std::string& id, const agents::WorkflowOutcome& o) {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("type");
  w.String("result");
  w.Key("id");
  write_json_text(w, id);
  w.Key("workflow");
  w.Uint64(o.workflow_id);
  w.Key("sql");
  write_json_text(w, o.sql);
  // A query that did not run is not an answer: the frame says so, with SQLite's reason.
  w.Key("executed");
  w.Bool(o.sql_executed);
  if (!o.sql_executed) {
    w.Key("error");
    write_json_text(w, o.sql_error.empty() ? std::string("the query did not execute") : o.sql_error);
  }
  w.Key("columns");
  w.StartArray();
  for (const auto& c : o.columns) write_json_text(w, c);
  w.EndArray();
  w.Key("rows");
  w.StartArray();
  for (const auto& row : o.rows) {
    w.StartArray();
    for (const auto& v : row) write_json_text(w, v);
    w.EndArray();
  }
  w.EndArray();
  w.Key("deadline_met");
  w.Bool(o.finished_s <= o.deadline_s);
  w.Key("latency_ms");
  json::write_number(w, (o.finished_s - o.arrival_s) * 1000.0);
  w.Key("ended_early");
  w.Bool(o.ended_early);
  w.Key("llm_calls");
  w.Int(o.llm_calls);
  w.Key("sql_executions");
  w.Int(o.sql_executions);
  w.Key("stages");
  w.Int(o.stages);
  w.EndObject();
  return sb.GetString();
}

}  // namespace t2s::server
