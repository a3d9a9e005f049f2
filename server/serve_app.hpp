#pragma once
//! `t2s serve` and `t2s ask`: the Text-to-SQL agent on the real-time runtime over a workload's databases, exposed as
//! a QuestionBackend, plus the HTTP routes of the front end (/, /timeline.json, /trace.json, /metrics, /healthz).
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agents/workflow.hpp"
#include "common/log.hpp"
#include "runtime/metrics.hpp"
#include "runtime/runtime.hpp"
#include "server/question_api.hpp"
#include "workloads/workload.hpp"

namespace t2s::server {

//! What `t2s serve` / `t2s ask` run.
struct ServeConfig {
  std::string workload = "synthetic";       //!< synthetic | spider | bird
  std::string data_dir;                      //!< spider/bird dataset folder
  std::string db_dir;                        //!< a folder of SQLite files to serve read-only ("" = the workload's own)
  std::string cache_dir = "out/synthetic";   //!< synthetic: t2s's own folder where the benchmark is generated
  std::string responder = "auto";           //!< auto | model | oracle: who answers when `cluster` is empty
  std::string cluster;                       //!< preset or cluster file ("" = chosen by `responder`)
  std::string model;                         //!< `local` cluster: its model file ("" = the shared stories260K)
  std::string policy;                        //!< "" = the best registered ("t2s" when present, else least-loaded)
  double deadline_ms = 20000;                //!< default deadline of a question
  double oracle_error_scale = 1.0;           //!< oracle mistakes (0 = never errs)
  uint64_t seed = 1;                         //!< agent and oracle seed
  RuntimeOptions runtime;                    //!< runtime knobs
};

//! The cluster `t2s serve`/`ask` run when none is given: `model` → `local` (the bundled model, else --model or the
//! shared stories260K), `oracle` → `hetero-small` (simulated instances answered by the oracle), `auto` → `local`
//! when t2s's bundled model exists in `models_dir`, else `hetero-small`. Throws InputError for another responder.
std::string default_serve_cluster(const std::string& responder, const std::string& models_dir);

//! The agent on the runtime: answers asks on the workload's databases.
class QuestionService final : public QuestionBackend {
 public:
  //! Loads the workload and cluster, builds the runtime; throws InputError on bad configuration.
  QuestionService(ServeConfig config, Logger* log = nullptr);
  ~QuestionService() override;
  bool has_database(const std::string& db) const override;
  std::vector<std::string> databases() const override;
  uint64_t next_workflow_id() override;
  void start(uint64_t id, const AskFrame& ask, StageFn on_stage, DoneFn on_done) override;
  void cancel(uint64_t id) override;
  double now() const override;
  std::string status_json() const override;

  //! The runtime (timeline, trace, metrics).
  Runtime& runtime();
  //! Who answers the LLM calls, in words (the page and logs show it).
  const std::string& answer_mode() const;
  //! Up to `n` benchmark questions of each database (the page's examples).
  std::map<std::string, std::vector<std::string>> examples(size_t n) const;
  //! Latency/SLO metrics of finished questions.
  MetricsRegistry& metrics();
  //! Cancels every running workflow and stops the runtime.
  void stop();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

//! Registers `/`, `/timeline.json`, `/trace.json`, `/metrics`, `/healthz`, `/api/info` and the WebSocket `/ws` on
//! `server` (before it starts).
void attach_serve_routes(HttpServer& server, QuestionService& service, std::shared_ptr<QuestionApi> api);

//! The timeline page (self-contained HTML).
const std::string& timeline_page_html();

}  // namespace t2s::server
