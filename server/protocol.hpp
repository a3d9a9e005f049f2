#pragma once
//! The `t2s serve` WebSocket protocol (contracts.md): client frames parsed and validated, server frames written.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "agents/workflow.hpp"

namespace t2s::server {

//! Error codes of `error` frames.
namespace error_code {
inline constexpr const char* bad_json = "bad_json";            //!< the frame is not valid JSON
inline constexpr const char* bad_request = "bad_request";      //!< valid JSON, wrong shape (field missing/mistyped)
inline constexpr const char* unknown_type = "unknown_type";    //!< `type` is not ask/cancel/status
inline constexpr const char* frame_too_large = "frame_too_large";  //!< the frame exceeded the size limit
inline constexpr const char* unknown_db = "unknown_db";        //!< `db` names no served database
inline constexpr const char* overloaded = "overloaded";        //!< admission control: too many questions in flight
inline constexpr const char* duplicate_id = "duplicate_id";    //!< `id` already names a question in flight
inline constexpr const char* unknown_id = "unknown_id";        //!< cancel of an id not in flight
inline constexpr const char* cancelled = "cancelled";          //!< the question was cancelled
inline constexpr const char* failed = "failed";                //!< the workflow ended with an error
inline constexpr const char* internal = "internal";            //!< a server bug
}  // namespace error_code

//! `{"type":"ask",...}`.
struct AskFrame {
  std::string id;
  std::string db;
  std::string question;
  std::string evidence;      //!< optional BIRD-style hint
  double deadline_ms = 0;    //!< 0 = the server's default
};
//! `{"type":"cancel","id":...}`.
struct CancelFrame {
  std::string id;
};
//! `{"type":"status"}`.
struct StatusFrame {};
//! A frame that could not be accepted: answer with an error frame carrying `code`.
struct ProtocolError {
  std::string id;  //!< the frame's id when it had one
  std::string code;
  std::string message;
};

//! `message` with every absolute file path shortened to its last component (".../name"), so error text sent to
//! clients does not reveal the server's folders.
std::string redact_paths(const std::string& message);

//! One parsed client frame.
using ClientFrame = std::variant<AskFrame, CancelFrame, StatusFrame, ProtocolError>;

//! Limits on field sizes checked by parse_client_frame.
struct ProtocolLimits {
  size_t max_id_chars = 128;
  size_t max_question_chars = 8192;
  double max_deadline_ms = 600000;
  double min_deadline_ms = 1;                //!< shorter deadlines are refused (no question can be answered in less)
};

//! Parses and validates one text frame.
ClientFrame parse_client_frame(std::string_view text, const ProtocolLimits& limits = {});

//! `{"type":"error","id":…,"code":…,"message":…}` (id omitted when empty).
std::string error_frame(const std::string& id, const std::string& code, const std::string& message);
//! `{"type":"accepted","id":…,"workflow":N}`.
std::string accepted_frame(const std::string& id, uint64_t workflow);
//! `{"type":"stage","id":…,"stage":…,"state":"started"|"done","ms":…,"index":…,"calls":…,"detail":…}`; `ms` is
//! the stage duration when done, else the time since the question was accepted.
std::string stage_frame(const std::string& id, const agents::StageEvent& event, double accepted_at_s);
//! `{"type":"result","id":…,"sql":…,"executed":bool,["error":…,]"columns":[…],"rows":[[…]],"deadline_met":…,…}`;
//! `error` (SQLite's message) is present exactly when the selected query did not execute.
std::string result_frame(const std::string& id, const agents::WorkflowOutcome& outcome);

}  // namespace t2s::server
