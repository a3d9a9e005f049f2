// `t2s serve`: the WebSocket/HTTP front end (live timeline page, /ws question API, /metrics, /trace.json).
#include <iostream>
#include <memory>
#include <string>

#include "cli/commands.hpp"
#include "cli/net_flags.hpp"
#include "cli/serve_flags.hpp"
#include "common/log.hpp"
#include "server/http_server.hpp"
#include "server/question_api.hpp"
#include "server/serve_app.hpp"
#include "server/signals.hpp"

namespace t2s::cli {

void add_serve_command(CLI::App& app) {
  struct Opts {
    server::ServeConfig config;
    server::QuestionApiOptions api;
    server::ServerOptions net;
    std::string host = "127.0.0.1", log_level = "info";
    int port = 8080, io_threads = 2;
    double max_seconds = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand("serve",
                                 "Serve agentic Text-to-SQL over WebSocket (ws://host:port/ws) with a live timeline page "
                                 "at http://host:port/, /metrics (Prometheus), /trace.json (Perfetto) and /healthz");
  add_serve_config_flags(cmd, o->config);
  cmd->add_option("--host", o->host, "bind address (default loopback only)")->capture_default_str();
  cmd->add_option("--port", o->port, "TCP port; 0 = any free port (printed on stdout)")
      ->check(CLI::Range(0, 65535))
      ->capture_default_str();
  cmd->add_option("--io-threads", o->io_threads, "network threads")->check(CLI::Range(1, 64))->capture_default_str();
  cmd->add_option("--max-frame-bytes", o->api.max_frame_bytes, "largest accepted WebSocket frame")
      ->check(CLI::Range(256, 16 << 20))
      ->capture_default_str();
  cmd->add_option("--max-in-flight-per-connection", o->api.max_in_flight_per_connection,
                  "questions one connection may have running (more get an 'overloaded' error)")
      ->check(CLI::Range(1, 100000))
      ->capture_default_str();
  cmd->add_option("--max-in-flight", o->api.max_in_flight_total, "questions running overall (admission control)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--max-seconds", o->max_seconds, "exit after this many seconds (0 = until SIGINT/SIGTERM)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--log-level", o->log_level, "debug|info|warn|error|off")->capture_default_str();
  add_network_flags(cmd, o->net);
  cmd->callback([o] {
    token_from_environment(o->net);
    Logger log(parse_log_level(o->log_level));
    server::ShutdownSignals signals;  // before any thread starts
    server::QuestionService service(o->config, &log);
    auto api = std::make_shared<server::QuestionApi>(service, o->api, &log);
    server::ServerOptions so = o->net;
    so.address = o->host;
    so.port = static_cast<uint16_t>(o->port);
    so.threads = o->io_threads;
    so.max_frame_bytes = o->api.max_frame_bytes;
    server::HttpServer http(so, &log);
    server::attach_serve_routes(http, service, api);
    http.start();
    std::cout << "t2s serve: http://" << o->host << ":" << http.port() << "/ (WebSocket at /ws)\n"
              << "answers: " << service.answer_mode() << std::endl;
    int sig = signals.wait(o->max_seconds);
    log.info("serve_stop", {{"signal", sig}});
    http.stop();
    api->cancel_all();
    service.stop();
  });
}

}  // namespace t2s::cli
