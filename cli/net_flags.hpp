#pragma once
//! Flags of the network front end shared by `t2s serve` and `t2s engine-serve`: access control and connection limits.
#include <CLI/CLI.hpp>

#include <cstdlib>

#include "server/http_server.hpp"

namespace t2s::cli {

//! Adds --allow-origin, --token, --insecure-no-token, the timeouts and the connection caps that fill `so`.
inline void add_network_flags(CLI::App* cmd, server::ServerOptions& so) {
  cmd->add_option("--allow-origin", so.allowed_origins,
                  "browser Origin allowed to use the API besides the server's own, e.g. http://host:3000 (repeat; "
                  "'*' = any, which lets every web page the user opens drive the server)");
  cmd->add_option("--token", so.token,
                  "require 'Authorization: Bearer TOKEN' (or ?access_token=TOKEN, e.g. for the page) on every route "
                  "but /healthz (default: $T2S_TOKEN; needed to bind beyond loopback)");
  cmd->add_flag("--insecure-no-token", so.allow_open_bind, "allow binding beyond loopback without a token");
  cmd->add_option("--request-timeout", so.request_timeout_s,
                  "seconds a request (or WebSocket handshake) may take to arrive; slower ones are closed")
      ->check(CLI::Range(0.1, 3600.0))
      ->capture_default_str();
  cmd->add_option("--idle-timeout", so.idle_timeout_s,
                  "seconds a kept-alive HTTP connection may idle, or a WebSocket stay silent with pings unanswered")
      ->check(CLI::Range(0.1, 86400.0))
      ->capture_default_str();
  cmd->add_option("--max-connections", so.max_connections,
                  "open connections at most (then the longest-waiting idle one is closed, else the new one)")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--max-connections-per-peer", so.max_connections_per_peer, "open connections of one IP address")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--max-waiting-per-peer", so.max_waiting_per_peer,
                  "connections of one IP address waiting for a request; beyond, its longest-waiting one is closed")
      ->check(CLI::Range(1, 1000000))
      ->capture_default_str();
  cmd->add_option("--max-send-queue-bytes", so.max_send_queue_bytes,
                  "bytes queued to a client that does not read before it is dropped")
      ->check(CLI::Range(size_t{4096}, size_t{1} << 32))
      ->capture_default_str();
}

//! Fills the token from $T2S_TOKEN when --token was not given (keeps it out of `ps` listings).
inline void token_from_environment(server::ServerOptions& so) {
  if (so.token.empty())
    if (const char* t = std::getenv("T2S_TOKEN")) so.token = t;
}

}  // namespace t2s::cli
