#pragma once
//! Blocking HTTP/1.1 and WebSocket clients with timeouts (Boost.Beast behind a pimpl). Each object owns one
//! connection that it reuses across requests; one thread uses an object at a time, cancel() may come from any thread.
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace t2s::server {

//! An `http://host:port/base` URL split into parts.
struct Url {
  std::string host;
  uint16_t port = 80;
  std::string base_path;  //!< without a trailing '/', "" for the root
};

//! Parses `http://host[:port][/path]`; throws InputError naming the URL otherwise (https is not supported).
Url parse_url(const std::string& url);

//! Timeouts of an HttpClient.
struct HttpClientOptions {
  double connect_timeout_s = 3;     //!< TCP connect
  double request_timeout_s = 600;   //!< whole request, headers to last byte
  double idle_timeout_s = 60;       //!< longest silence while reading (e.g. between streamed tokens)
  std::string bearer_token;         //!< sent as `Authorization: Bearer …` when not empty
};

//! Outcome of one request.
struct HttpResult {
  bool ok = false;            //!< a complete response was received (any status)
  bool cancelled = false;     //!< ended by cancel()
  bool timed_out = false;     //!< ended by a timeout
  bool sent = false;          //!< the request reached the server (so a retry may repeat work)
  bool body_started = false;  //!< some body bytes arrived
  std::string error;          //!< why it failed
  int status = 0;             //!< HTTP status
  std::string content_type;   //!< response Content-Type
  std::string body;           //!< full body (also when streamed)
};

//! A keep-alive HTTP client for one server.
class HttpClient {
 public:
  HttpClient(std::string host, uint16_t port, HttpClientOptions options = {});
  ~HttpClient();
  HttpClient(const HttpClient&) = delete;
  HttpClient& operator=(const HttpClient&) = delete;
  //! Sends one request; `on_body` (optional) sees each new piece of the body as it arrives and may return false to
  //! abort. A stale kept-alive connection is replaced transparently once.
  HttpResult request(const std::string& method, const std::string& target, const std::string& body = "",
                     const std::string& content_type = "application/json",
                     const std::function<bool(std::string_view)>& on_body = {});
  //! Aborts the request in progress (thread-safe); a request started later is not affected.
  void cancel();
  //! Requests sent over a reused connection (for tests of connection reuse).
  uint64_t reused_connections() const;

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

//! A blocking WebSocket client (tests and the serve bench).
class WsClient {
 public:
  //! Connects to ws://host:port/path (with `Authorization: Bearer token` when given); throws std::runtime_error
  //! when it cannot.
  WsClient(const std::string& host, uint16_t port, const std::string& path, double timeout_s = 5,
           const std::string& token = "");
  ~WsClient();
  WsClient(const WsClient&) = delete;
  WsClient& operator=(const WsClient&) = delete;
  //! Sends one text frame; false when the connection failed.
  bool send(const std::string& text);
  //! The next text frame, or nullopt on timeout or when the connection closed.
  std::optional<std::string> receive(double timeout_s);
  //! True after the server closed the connection or an error.
  bool closed() const;
  //! Closes cleanly.
  void close();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace t2s::server
