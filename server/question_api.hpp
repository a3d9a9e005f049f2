#pragma once
//! The WebSocket question API: frames in, workflows started/cancelled on a backend, stage/result/error frames out,
//! with per-connection and global in-flight limits (admission control) and cancel-on-disconnect.
#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agents/workflow.hpp"
#include "server/http_server.hpp"
#include "server/protocol.hpp"

namespace t2s::server {

//! What the API runs questions on (the real-time runtime, or a test backend).
class QuestionBackend {
 public:
  using StageFn = std::function<void(const agents::StageEvent&)>;
  using DoneFn = std::function<void(const agents::WorkflowOutcome&)>;
  virtual ~QuestionBackend() = default;
  //! True when `db` is a served database.
  virtual bool has_database(const std::string& db) const = 0;
  //! Served database ids.
  virtual std::vector<std::string> databases() const = 0;
  //! A fresh workflow id (reserved before start() so the `accepted` frame precedes every stage frame).
  virtual uint64_t next_workflow_id() = 0;
  //! Starts workflow `id` for `ask`; `on_stage` and then `on_done` (exactly once) fire on any thread.
  virtual void start(uint64_t id, const AskFrame& ask, StageFn on_stage, DoneFn on_done) = 0;
  //! Cancels a running workflow (its on_done then fires with cancelled=true); ignored when already done.
  virtual void cancel(uint64_t id) = 0;
  //! Clock time in seconds (the clock of StageEvent/WorkflowOutcome times).
  virtual double now() const = 0;
  //! A JSON object describing the backend (instances, queues) for `status` frames.
  virtual std::string status_json() const = 0;
};

//! Limits of the API.
struct QuestionApiOptions {
  size_t max_in_flight_per_connection = 16;  //!< asks beyond this on one connection get `overloaded`
  size_t max_in_flight_total = 256;          //!< asks beyond this overall get `overloaded`
  size_t max_frame_bytes = 64 * 1024;        //!< reported in the frame_too_large message
  ProtocolLimits protocol;                   //!< field limits
};

//! Counters of the API (for /metrics and the bench).
struct QuestionApiStats {
  uint64_t asked = 0, accepted = 0, results = 0, errors = 0, cancelled = 0, failed = 0, rejected_overloaded = 0,
           protocol_errors = 0, deadline_met = 0, in_flight = 0, connections = 0;
};

//! The WsHandler behind `ws://…/ws`.
class QuestionApi : public WsHandler {
 public:
  QuestionApi(QuestionBackend& backend, QuestionApiOptions options, Logger* log = nullptr);
  ~QuestionApi() override;
  void on_open(const std::shared_ptr<WsConnection>& conn) override;
  void on_message(const std::shared_ptr<WsConnection>& conn, std::string text, bool too_large) override;
  void on_close(const std::shared_ptr<WsConnection>& conn) override;
  //! A snapshot of the counters.
  QuestionApiStats stats() const;
  //! Cancels every question in flight (server shutdown).
  void cancel_all();

 private:
  struct Conn;
  struct Question;
  void handle_ask(const std::shared_ptr<Conn>& conn, const AskFrame& ask);
  void finish(const std::shared_ptr<Question>& q, const agents::WorkflowOutcome& outcome);

  QuestionBackend& backend_;
  QuestionApiOptions opt_;
  Logger* log_;
  mutable std::mutex mu_;
  std::map<uint64_t, std::shared_ptr<Conn>> conns_;
  std::atomic<uint64_t> in_flight_{0};
  std::atomic<uint64_t> asked_{0}, accepted_{0}, results_{0}, errors_{0}, cancelled_{0}, failed_{0},
      overloaded_{0}, protocol_errors_{0}, deadline_met_{0};
};

}  // namespace t2s::server
