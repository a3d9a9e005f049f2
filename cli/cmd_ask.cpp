// `t2s ask`: one question through the full workflow on the real-time runtime, printing stages as they run.
#include <future>
#include <iostream>
#include <memory>
#include <mutex>
#include <string>

#include "cli/commands.hpp"
#include "cli/serve_flags.hpp"
#include "common/log.hpp"
#include "common/status.hpp"
#include "server/serve_app.hpp"

namespace t2s::cli {

void add_ask_command(CLI::App& app) {
  struct Opts {
    server::ServeConfig config;
    std::string db, question, evidence, log_level = "warn";
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("ask", "Answer one question against one database through the full agent workflow, "
                                        "printing each stage as it runs, then the SQL and its rows");
  cmd->add_option("--db", o->db, "database id (e.g. a synthetic domain or a Spider db_id)")->required();
  cmd->add_option("--question", o->question, "the question")->required();
  cmd->add_option("--evidence", o->evidence, "BIRD-style hint");
  add_serve_config_flags(cmd, o->config);
  cmd->add_option("--log-level", o->log_level, "debug|info|warn|error|off")->capture_default_str();
  cmd->callback([o] {
    Logger log(parse_log_level(o->log_level));
    server::QuestionService service(o->config, &log);
    if (!service.has_database(o->db)) {
      std::string known;
      for (const auto& d : service.databases()) known += (known.empty() ? "" : ", ") + d;
      throw InputError("unknown database '" + o->db + "' (known: " + known + ")");
    }
    std::cout << "answers: " << service.answer_mode() << "\n";
    server::AskFrame ask;
    ask.id = "cli";
    ask.db = o->db;
    ask.question = o->question;
    ask.evidence = o->evidence;
    std::promise<agents::WorkflowOutcome> done;
    std::mutex out_mu;
    double t0 = service.now();
    service.start(
        service.next_workflow_id(), ask,
        [&](const agents::StageEvent& e) {
          std::lock_guard lk(out_mu);
          std::printf("%8.3f s  %-22s %-7s", e.t_s - t0, std::string(agents::stage_kind_name(e.kind)).c_str(),
                      e.done ? "done" : "started");
          if (e.done) std::printf(" %7.1f ms", e.elapsed_s * 1000);
          if (e.calls) std::printf("  %d call%s", e.calls, e.calls > 1 ? "s" : "");
          if (!e.detail.empty()) std::printf("  %s", e.detail.c_str());
          std::printf("\n");
          std::fflush(stdout);
        },
        [&](const agents::WorkflowOutcome& out) { done.set_value(out); });
    auto out = done.get_future().get();
    service.stop();
    if (out.failed || !out.completed) throw InputError("the question failed: " + out.error);
    std::cout << "SQL: " << out.sql << "\n";
    for (size_t i = 0; i < out.columns.size(); ++i) std::cout << (i ? " | " : "") << out.columns[i];
    std::cout << "\n";
    for (const auto& row : out.rows) {
      for (size_t i = 0; i < row.size(); ++i) std::cout << (i ? " | " : "") << row[i];
      std::cout << "\n";
    }
    std::printf("latency %.3f s (deadline %s), %d LLM calls, %d SQL executions\n", out.finished_s - out.arrival_s,
                out.finished_s <= out.deadline_s ? "met" : "missed", out.llm_calls, out.sql_executions);
    // An answer whose query did not run is a failure, whatever the deadline says.
    if (!out.sql_executed) throw InputError("the answer's SQL did not execute: " + out.sql_error);
  });
}

}  // namespace t2s::cli
