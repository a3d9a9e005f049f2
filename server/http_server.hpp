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

//! Limits and binding of a server.
struct ServerOptions {
  std::string address = "127.0.0.1";   //!< bind address (loopback by default)
  uint16_t port = 0;                    //!< 0 = any free port (see HttpServer::port())
  int threads = 2;                      //!< threads running the io_context
  size_t max_frame_bytes = 64 * 1024;   //!< WebSocket messages above this get `too_large` (connection stays)
  size_t max_body_bytes = 4 << 20;      //!< HTTP request bodies above this get 413
  size_t max_connections = 4096;        //!< connections above this are closed at accept
  double idle_timeout_s = 300;          //!< an HTTP connection idle this long is closed
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
  //! Binds and starts the io threads; throws InputError when the address cannot be bound.
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

//! Escapes `text` for inclusion in HTML.
std::string html_escape(const std::string& text);

}  // namespace t2s::server
