#include "server/question_api.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

namespace t2s::server {

struct QuestionApi::Conn {
  std::shared_ptr<WsConnection> ws;
  std::mutex mu;
  std::map<std::string, std::shared_ptr<Question>> by_id;  // questions in flight by client id
  bool closed = false;
};

struct QuestionApi::Question {
  std::weak_ptr<Conn> conn;
  std::string client_id;
  uint64_t workflow = 0;
  double accepted_at_s = 0;
  std::atomic<bool> done{false};
};

QuestionApi::QuestionApi(QuestionBackend& backend, QuestionApiOptions options, Logger* log)
    : backend_(backend), opt_(std::move(options)), log_(log) {}

QuestionApi::~QuestionApi() { cancel_all(); }

void QuestionApi::on_open(const std::shared_ptr<WsConnection>& ws) {
  auto c = std::make_shared<Conn>();
  c->ws = ws;
  std::lock_guard lk(mu_);
  conns_[ws->id()] = std::move(c);
}

void QuestionApi::on_close(const std::shared_ptr<WsConnection>& ws) {
  std::shared_ptr<Conn> c;
  {
    std::lock_guard lk(mu_);
    auto it = conns_.find(ws->id());
    if (it == conns_.end()) return;
    c = it->second;
    conns_.erase(it);
  }
  std::vector<uint64_t> to_cancel;
  {
    std::lock_guard lk(c->mu);
    c->closed = true;
    for (auto& [id, q] : c->by_id) to_cancel.push_back(q->workflow);
  }
  // A client that disconnects has its workflows cancelled; their completions are then dropped.
  for (auto wf : to_cancel) backend_.cancel(wf);
  if (log_ && !to_cancel.empty())
    log_->info("ws_disconnect_cancel", {{"connection", static_cast<unsigned long long>(ws->id())},
                                        {"workflows", static_cast<unsigned long long>(to_cancel.size())}});
}

void QuestionApi::on_message(const std::shared_ptr<WsConnection>& ws, std::string text, bool too_large) {
  std::shared_ptr<Conn> c;
  {
    std::lock_guard lk(mu_);
    auto it = conns_.find(ws->id());
    if (it == conns_.end()) return;
    c = it->second;
  }
  if (too_large) {
    protocol_errors_++;
    errors_++;
    ws->send(error_frame("", error_code::frame_too_large,
                         "frame larger than " + std::to_string(opt_.max_frame_bytes) + " bytes"));
    return;
  }
  auto frame = parse_client_frame(text, opt_.protocol);
  if (auto* err = std::get_if<ProtocolError>(&frame)) {
    protocol_errors_++;
    errors_++;
    ws->send(error_frame(err->id, err->code, err->message));
    return;
  }
  if (auto* ask = std::get_if<AskFrame>(&frame)) return handle_ask(c, *ask);
  if (auto* cancel = std::get_if<CancelFrame>(&frame)) {
    std::shared_ptr<Question> q;
    {
      std::lock_guard lk(c->mu);
      auto it = c->by_id.find(cancel->id);
      if (it != c->by_id.end()) q = it->second;
    }
    if (!q) {
      errors_++;
      ws->send(error_frame(cancel->id, error_code::unknown_id, "no question '" + cancel->id + "' in flight"));
      return;
    }
    backend_.cancel(q->workflow);
    return;
  }
  // status
  size_t mine = 0;
  {
    std::lock_guard lk(c->mu);
    mine = c->by_id.size();
  }
  std::string s = "{\"type\":\"status\",\"in_flight\":" + std::to_string(in_flight_.load()) +
                  ",\"connection_in_flight\":" + std::to_string(mine) +
                  ",\"max_in_flight_per_connection\":" + std::to_string(opt_.max_in_flight_per_connection) +
                  ",\"max_in_flight_total\":" + std::to_string(opt_.max_in_flight_total) + ",\"databases\":[";
  {
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    w.StartArray();
    for (const auto& d : backend_.databases()) w.String(d.data(), static_cast<rapidjson::SizeType>(d.size()));
    w.EndArray();
    std::string arr = sb.GetString();
    s += arr.substr(1, arr.size() - 2);
  }
  s += "],\"backend\":" + backend_.status_json() + "}";
  ws->send(std::move(s));
}

void QuestionApi::handle_ask(const std::shared_ptr<Conn>& c, const AskFrame& ask) {
  asked_++;
  auto& ws = c->ws;
  if (!backend_.has_database(ask.db)) {
    errors_++;
    ws->send(error_frame(ask.id, error_code::unknown_db, "unknown database '" + ask.db + "'"));
    return;
  }
  auto q = std::make_shared<Question>();
  q->conn = c;
  q->client_id = ask.id;
  {
    std::lock_guard lk(c->mu);
    if (c->closed) return;
    if (c->by_id.count(ask.id)) {
      errors_++;
      ws->send(error_frame(ask.id, error_code::duplicate_id, "question '" + ask.id + "' is already in flight"));
      return;
    }
    if (c->by_id.size() >= opt_.max_in_flight_per_connection) {
      errors_++;
      overloaded_++;
      ws->send(error_frame(ask.id, error_code::overloaded,
                           "this connection already has " + std::to_string(c->by_id.size()) +
                               " questions in flight (limit " + std::to_string(opt_.max_in_flight_per_connection) +
                               ")"));
      return;
    }
    if (in_flight_.fetch_add(1) >= opt_.max_in_flight_total) {
      in_flight_--;
      errors_++;
      overloaded_++;
      ws->send(error_frame(ask.id, error_code::overloaded,
                           "server at its limit of " + std::to_string(opt_.max_in_flight_total) +
                               " questions in flight"));
      return;
    }
    q->workflow = backend_.next_workflow_id();
    q->accepted_at_s = backend_.now();
    c->by_id[ask.id] = q;
    // Sent under the lock so that no stage frame of this question can overtake it.
    accepted_++;
    ws->send(accepted_frame(ask.id, q->workflow));
  }
  auto on_stage = [q](const agents::StageEvent& e) {
    auto conn = q->conn.lock();
    if (!conn || q->done.load()) return;
    std::lock_guard lk(conn->mu);
    if (!conn->closed) conn->ws->send(stage_frame(q->client_id, e, q->accepted_at_s));
  };
  auto on_done = [this, q](const agents::WorkflowOutcome& o) { finish(q, o); };
  try {
    backend_.start(q->workflow, ask, std::move(on_stage), std::move(on_done));
  } catch (const std::exception& e) {
    agents::WorkflowOutcome o;
    o.workflow_id = q->workflow;
    o.failed = true;
    o.error = std::string("could not start: ") + e.what();
    finish(q, o);
  }
}

void QuestionApi::finish(const std::shared_ptr<Question>& q, const agents::WorkflowOutcome& o) {
  if (q->done.exchange(true)) return;
  auto conn = q->conn.lock();
  if (o.cancelled)
    cancelled_++;
  else if (o.failed || !o.completed || !o.sql_executed)
    failed_++;
  else {
    results_++;
    if (o.finished_s <= o.deadline_s) deadline_met_++;
  }
  // After its outcome is counted: a reader that sees nothing in flight sees every outcome.
  in_flight_--;
  if (!conn) return;
  std::lock_guard lk(conn->mu);
  conn->by_id.erase(q->client_id);
  if (conn->closed) return;
  if (o.cancelled) {
    errors_++;
    conn->ws->send(error_frame(q->client_id, error_code::cancelled, "question cancelled"));
  } else if (o.failed || !o.completed) {
    errors_++;
    conn->ws->send(
        error_frame(q->client_id, error_code::failed, o.error.empty() ? "workflow failed" : redact_paths(o.error)));
  } else {
    conn->ws->send(result_frame(q->client_id, o));
  }
}

void QuestionApi::cancel_all() {
  std::vector<uint64_t> ids;
  {
    std::lock_guard lk(mu_);
    for (auto& [cid, c] : conns_) {
      std::lock_guard lk2(c->mu);
      for (auto& [id, q] : c->by_id) ids.push_back(q->workflow);
    }
  }
  for (auto id : ids) backend_.cancel(id);
}

QuestionApiStats QuestionApi::stats() const {
  QuestionApiStats s;
  s.asked = asked_;
  s.accepted = accepted_;
  s.results = results_;
  s.errors = errors_;
  s.cancelled = cancelled_;
  s.failed = failed_;
  s.rejected_overloaded = overloaded_;
  s.protocol_errors = protocol_errors_;
  s.deadline_met = deadline_met_;
  s.in_flight = in_flight_;
  std::lock_guard lk(mu_);
  s.connections = conns_.size();
  return s;
}

}  // namespace t2s::server
