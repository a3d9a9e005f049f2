// `t2s engine-serve`: the embedded engine behind an OpenAI-compatible endpoint (a remote instance for another t2s).
#include <iostream>
#include <string>

#include "cli/commands.hpp"
#include "cli/net_flags.hpp"
#include "common/log.hpp"
#include "common/status.hpp"
#include "server/engine_service.hpp"
#include "server/http_server.hpp"
#include "server/signals.hpp"

namespace t2s::cli {

void add_engine_serve_command(CLI::App& app) {
  struct Opts {
    server::EngineServiceOptions engine;
    server::ServerOptions net;
    std::string host = "127.0.0.1", log_level = "info";
    int port = 8001, io_threads = 2;
    double max_seconds = 0;
  };
  auto o = std::make_shared<Opts>();
  auto* cmd = app.add_subcommand(
      "engine-serve",
      "Serve the embedded engine behind OpenAI-compatible /v1/completions and /v1/chat/completions (SSE streaming, "
      "usage counts, continuous batching across requests)");
  cmd->add_option("--model", o->engine.model_file, "Model file: llama2.c checkpoint (.bin) or GGUF")->required();
  cmd->add_option("--tokenizer", o->engine.tokenizer_file,
                  "llama2.c tokenizer file (default: tokenizer.bin beside a .bin model; GGUF carries its own)");
  cmd->add_option("--model-name", o->engine.model_name, "Model name reported in responses (default: file stem)");
  cmd->add_option("--host", o->host, "Bind address (default 127.0.0.1: loopback only)");
  cmd->add_option("--port", o->port, "TCP port; 0 = any free port (printed on stdout)")->check(CLI::Range(0, 65535));
  cmd->add_option("--threads", o->engine.threads, "CPU threads of the engine")->check(CLI::Range(1, 256));
  cmd->add_option("--io-threads", o->io_threads, "HTTP I/O threads")->check(CLI::Range(1, 64));
  cmd->add_option("--kv-mb", o->engine.kv_mb, "KV-cache pool in MiB")->check(CLI::PositiveNumber);
  cmd->add_option("--max-batch-tokens", o->engine.max_batch_tokens, "Token budget of one batch iteration")
      ->check(CLI::Range(16, 65536));
  cmd->add_option("--max-sequences", o->engine.max_sequences, "Requests batched at once (more wait in order)")
      ->check(CLI::Range(1, 1024));
  cmd->add_option("--default-max-tokens", o->engine.default_max_tokens, "max_tokens when a request gives none")
      ->check(CLI::PositiveNumber);
  cmd->add_option("--max-prompt-bytes", o->engine.max_prompt_bytes,
                  "Longest prompt in bytes (chat: all messages); longer ones get 413 before tokenizing")
      ->check(CLI::Range(size_t(1), size_t(64) << 20))
      ->capture_default_str();
  cmd->add_option("--max-seconds", o->max_seconds, "Exit after this many seconds (0 = run until SIGINT/SIGTERM)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--log-level", o->log_level, "debug|info|warn|error|off");
  add_network_flags(cmd, o->net);
  cmd->callback([o] {
    token_from_environment(o->net);
    Logger log(parse_log_level(o->log_level));
    server::ShutdownSignals signals;  // before any thread starts, so they all leave SIGINT/SIGTERM to us
    server::EngineService service(o->engine, &log);
    server::ServerOptions so = o->net;
    so.address = o->host;
    so.port = static_cast<uint16_t>(o->port);
    so.threads = o->io_threads;
    server::HttpServer http(so, &log);
    service.attach(http);
    http.start();
    std::cout << "t2s engine-serve: model " << service.model_name() << " at http://" << o->host << ":" << http.port()
              << "/v1" << std::endl;
    int sig = signals.wait(o->max_seconds);
    log.info("engine_serve_stop", {{"signal", sig}});
    service.stop();
    http.stop();
  });
}

}  // namespace t2s::cli
