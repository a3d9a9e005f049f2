#pragma once
//! An HTTP/1.1 + WebSocket server on one io_context (Boost.Beast behind a pimpl, so this header stays light).
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "common/log.hpp"

namespace t2s::server {

//! One parsed HTTP request.
struct HttpRequest {
  std::string method;        //!< "GET", "POST", …
  std::string target;        //!< path with query string
  std::string path;          //!< path only
  std::string query;         //!< text after '?', "" when none
  std::string content_type;  //!< request Content-Type ("" when absent)
  std::string body;          //!< request body
  std::string peer;          //!< the client's IP address
};

//! A complete HTTP response.
struct HttpResponse {
  int status = 200;                                           //!< status code
  std::string content_type = "text/plain; charset=utf-8";    //!< Content-Type
  std::string body;                                           //!< body
  std::vector<std::pair<std::string, std::string>> headers;  //!< extra headers
};

//! The reply channel of one request; usable later and from any thread, but not after the server is destroyed. Either send() once, or
//! begin_stream(), write()…, end() (chunked transfer encoding, e.g. for server-sent events).
class HttpReply {
 public:
  virtual ~HttpReply() = default;
  //! Sends a complete response.
  virtual void send(HttpResponse response) = 0;
  //! Starts a chunked response with `status` and `content_type`.
  virtual void begin_stream(int status, std::string content_type) = 0;
  //! Queues one chunk; false once the client has gone (the producer should stop).
  virtual bool write(std::string chunk) = 0;
  //! Ends the chunked response.
  virtual void end() = 0;
  //! True once the connection has failed or closed.
  virtual bool client_gone() const = 0;
};

//! Serves one HTTP route; may reply asynchronously through `reply`.
using HttpHandler = std::function<void(const HttpRequest& request, std::shared_ptr<HttpReply> reply)>;

//! One open WebSocket connection as the application sees it.
class WsConnection {
 public:
  virtual ~WsConnection() = default;
  //! Queues a text frame (thread-safe; frames go out in order).
  virtual void send(std::string text) = 0;
  //! Starts a clean close.
  virtual void close() = 0;
  //! Unique id of this connection within the server.
  virtual uint64_t id() const = 0;
};

//! Receives the events of every WebSocket connection on one path; called on the connection's strand.
class WsHandler {
 public:
  virtual ~WsHandler() = default;
  //! A connection completed its handshake.
  virtual void on_open(const std::shared_ptr<WsConnection>& conn) { (void)conn; }
  //! A text or binary message arrived; `too_large` is true (and `text` empty) when it exceeded the frame limit.
  virtual void on_message(const std::shared_ptr<WsConnection>& conn, std::string text, bool too_large) = 0;
  //! The connection ended (either side, or an error); called exactly once per opened connection.
  virtual void on_close(const std::shared_ptr<WsConnection>& conn) { (void)conn; }
};

//! Limits, binding and access control of a server.
struct ServerOptions {
  std::string address = "127.0.0.1";   //!< bind address (loopback by default)
  uint16_t port = 0;                    //!< 0 = any free port (see HttpServer::port())
  int threads = 2;                      //!< threads running the io_context
  size_t max_frame_bytes = 64 * 1024;   //!< WebSocket messages above this get `too_large` (connection stays)
  size_t max_body_bytes = 4 << 20;      //!< HTTP request bodies above this get 413
  size_t max_header_bytes = 16 * 1024;  //!< HTTP request headers above this get 431
  size_t max_connections = 4096;        //!< open connections at most (beyond: the oldest waiting one is closed, else the new one)
  size_t max_connections_per_peer = 1024;  //!< open connections of one IP address at most (same rule)
  size_t max_waiting_per_peer = 64;     //!< connections of one IP waiting for a request; beyond, its oldest waiting one is closed
  size_t max_send_queue_bytes = 8 << 20;  //!< bytes queued to one client that does not read; beyond, it is dropped
  double request_timeout_s = 10;        //!< a request (headers and body) or WebSocket handshake must arrive within this
  double idle_timeout_s = 60;           //!< a keep-alive HTTP connection idle, or a WebSocket silent (pings unanswered), this long is closed
  std::vector<std::string> allowed_origins;  //!< browser Origins allowed besides the server's own ("*": any)
  std::string token;                    //!< when set, requests need `Authorization: Bearer TOKEN` or `?access_token=TOKEN`
  std::vector<std::string> public_paths = {"/healthz"};  //!< paths served without the token
  bool allow_open_bind = false;         //!< allow binding beyond loopback without a token
};

//! Live counters of the server (for /metrics).
struct ServerStats {
  uint64_t connections_open = 0;
  uint64_t connections_total = 0;
  uint64_t connections_rejected = 0;
  uint64_t http_requests = 0;
  uint64_t ws_open = 0;
  uint64_t ws_messages_in = 0;
  uint64_t ws_messages_out = 0;
  uint64_t connections_evicted = 0;   //!< waiting connections closed to make room (per-peer or global cap)
  uint64_t slow_readers_dropped = 0;  //!< connections dropped because their send queue was full
  uint64_t requests_refused = 0;      //!< 401 (token) and 403 (Origin) answers
  uint64_t bad_requests = 0;          //!< malformed requests answered 400/431
};

//! The server: routes are registered before start(); handlers run on the io threads.
class HttpServer {
 public:
  explicit HttpServer(ServerOptions options, Logger* log = nullptr);
  ~HttpServer();
  HttpServer(const HttpServer&) = delete;
  HttpServer& operator=(const HttpServer&) = delete;

  //! Serves `method` `path` (exact match on the path, query ignored) with `handler`.
  void route(std::string method, std::string path, HttpHandler handler);
  //! Upgrades requests for `path` to WebSocket connections handled by `handler`.
  void websocket(std::string path, std::shared_ptr<WsHandler> handler);
  //! Binds and starts the io threads; throws InputError when the address cannot be bound, or is not loopback and
  //! there is no token (unless allow_open_bind).
  void start();
  //! The bound port (after start()).
  uint16_t port() const;
  //! Stops accepting, closes connections and joins the io threads (idempotent).
  void stop();
  //! A snapshot of the counters.
  ServerStats stats() const;

  //! The Beast implementation (opaque outside http_server.cpp).
  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

//! True when `address` is a loopback address (127.0.0.0/8, ::1) or "localhost".
bool is_loopback_address(const std::string& address);

//! Escapes `text` for inclusion in HTML.
std::string html_escape(const std::string& text);

}  // namespace t2s::server
