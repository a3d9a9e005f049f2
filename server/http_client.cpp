// Blocking clients built as "synchronous over asynchronous": each object owns a private io_context and runs it on
// the calling thread until the one pending operation completes, so every operation gets a real timeout and can be
// cancelled from another thread by posting to that io_context.
#include "server/http_client.hpp"

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <atomic>
#include <chrono>
#include <deque>

#include "common/status.hpp"

namespace t2s::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

Url parse_url(const std::string& url) {
  const std::string scheme = "http://";
  if (url.rfind("https://", 0) == 0) throw InputError("URL '" + url + "': https is not supported (use http://)");
  if (url.rfind(scheme, 0) != 0) throw InputError("URL '" + url + "' must start with http://");
  std::string rest = url.substr(scheme.size());
  auto slash = rest.find('/');
  std::string hostport = rest.substr(0, slash);
  Url u;
  u.base_path = slash == std::string::npos ? "" : rest.substr(slash);
  while (!u.base_path.empty() && u.base_path.back() == '/') u.base_path.pop_back();
  auto colon = hostport.rfind(':');
  if (colon != std::string::npos) {
    u.host = hostport.substr(0, colon);
    std::string p = hostport.substr(colon + 1);
    char* end = nullptr;
    long v = std::strtol(p.c_str(), &end, 10);
    if (p.empty() || *end || v <= 0 || v > 65535) throw InputError("URL '" + url + "': bad port '" + p + "'");
    u.port = static_cast<uint16_t>(v);
  } else {
    u.host = hostport;
  }
  if (u.host.empty()) throw InputError("URL '" + url + "' has no host");
  return u;
}

namespace {
std::chrono::steady_clock::duration seconds(double s) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(s));
}
}  // namespace

// ------------------------------------------------------------------ HttpClient
struct HttpClient::Impl {
  std::string host;
  uint16_t port;
  HttpClientOptions opt;
  net::io_context ioc;
  beast::tcp_stream stream{ioc};
  beast::flat_buffer buf;
  bool connected = false;
  std::atomic<bool> cancel_flag{false};
  uint64_t reused = 0;

  // Runs the io_context until the pending operation completes.
  void run() {
    ioc.restart();
    ioc.run();
  }

  void close() {
    beast::error_code ec;
    stream.socket().shutdown(tcp::socket::shutdown_both, ec);
    stream.socket().close(ec);
    connected = false;
    buf.consume(buf.size());
  }

  beast::error_code connect() {
    tcp::resolver resolver(ioc);
    beast::error_code ec;
    tcp::resolver::results_type results;
    resolver.async_resolve(host, std::to_string(port), [&](beast::error_code e, tcp::resolver::results_type r) {
      ec = e;
      results = std::move(r);
    });
    run();
    if (ec) return ec;
    stream.expires_after(seconds(opt.connect_timeout_s));
    stream.async_connect(results, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
    run();
    if (!ec) {
      connected = true;
      stream.socket().set_option(tcp::no_delay(true), ec);
      ec = {};
    }
    return ec;
  }

  void fail(HttpResult& r, const beast::error_code& ec, const std::string& what) {
    if (cancel_flag.load()) {
      r.cancelled = true;
      r.error = "cancelled";
    } else if (ec == beast::error::timeout) {
      r.timed_out = true;
      r.error = what + ": timed out";
    } else {
      r.error = what + ": " + ec.message();
    }
    close();
  }

  // One attempt over the current (or a new) connection; `stale` is set when a reused connection turned out dead
  // before any response byte, so the caller may retry on a fresh one.
  HttpResult attempt(http::verb verb, const std::string& target, const std::string& body, const std::string& ctype,
                     const std::function<bool(std::string_view)>& on_body, bool& stale) {
    HttpResult r;
    stale = false;
    bool was_connected = connected;
    auto deadline = std::chrono::steady_clock::now() + seconds(opt.request_timeout_s);
    auto expires = [&] {
      auto left = deadline - std::chrono::steady_clock::now();
      stream.expires_after(std::min(left, seconds(opt.idle_timeout_s)));
    };
    if (!connected) {
      if (auto ec = connect()) {
        fail(r, ec, "connect to " + host + ":" + std::to_string(port));
        return r;
      }
    } else {
      reused++;
    }
    http::request<http::string_body> req{verb, target, 11};
    req.set(http::field::host, host + ":" + std::to_string(port));
    req.set(http::field::user_agent, "t2s");
    if (!opt.bearer_token.empty()) req.set(http::field::authorization, "Bearer " + opt.bearer_token);
    req.keep_alive(true);
    if (!body.empty() || verb == http::verb::post) {
      req.set(http::field::content_type, ctype);
      req.body() = body;
    }
    req.prepare_payload();
    beast::error_code ec;
    expires();
    http::async_write(stream, req, [&](beast::error_code e, size_t) { ec = e; });
    run();
    if (ec) {
      stale = was_connected && !cancel_flag.load();
      fail(r, ec, "send");
      return r;
    }
    r.sent = true;
    http::response_parser<http::string_body> parser;
    parser.body_limit(256u << 20);
    expires();
    http::async_read_header(stream, buf, parser, [&](beast::error_code e, size_t) { ec = e; });
    run();
    if (ec) {
      stale = was_connected && !cancel_flag.load() &&
              (ec == http::error::end_of_stream || ec == net::error::connection_reset || ec == net::error::eof);
      fail(r, ec, "read response header");
      return r;
    }
    r.status = static_cast<int>(parser.get().result_int());
    if (auto ct = parser.get().find(http::field::content_type); ct != parser.get().end())
      r.content_type = std::string(ct->value());
    size_t seen = 0;
    while (!parser.is_done()) {
      expires();
      http::async_read_some(stream, buf, parser, [&](beast::error_code e, size_t) { ec = e; });
      run();
      const auto& b = parser.get().body();
      if (b.size() > seen) {
        r.body_started = true;
        if (on_body && !on_body(std::string_view(b).substr(seen))) {
          seen = b.size();
          r.body = b;
          r.error = "aborted by the reader";
          close();
          return r;
        }
        seen = b.size();
      }
      if (ec) {
        r.body = parser.get().body();
        fail(r, ec, "read response body");
        return r;
      }
    }
    r.body = std::move(parser.get().body());
    if (on_body && r.body.size() > seen) on_body(std::string_view(r.body).substr(seen));
    r.ok = true;
    if (!parser.keep_alive()) close();
    return r;
  }
};

HttpClient::HttpClient(std::string host, uint16_t port, HttpClientOptions options) : impl_(std::make_unique<Impl>()) {
  impl_->host = std::move(host);
  impl_->port = port;
  impl_->opt = options;
}

HttpClient::~HttpClient() = default;

HttpResult HttpClient::request(const std::string& method, const std::string& target, const std::string& body,
                               const std::string& content_type, const std::function<bool(std::string_view)>& on_body) {
  auto& m = *impl_;
  // Drop a cancel() aimed at an earlier request.
  m.ioc.restart();
  m.ioc.poll();
  m.cancel_flag = false;
  auto verb = http::string_to_verb(method);
  if (verb == http::verb::unknown) {
    HttpResult r;
    r.error = "unknown HTTP method '" + method + "'";
    return r;
  }
  bool stale = false;
  auto r = m.attempt(verb, target, body, content_type, on_body, stale);
  if (stale) r = m.attempt(verb, target, body, content_type, on_body, stale);
  return r;
}

void HttpClient::cancel() {
  impl_->cancel_flag = true;
  net::post(impl_->ioc, [m = impl_.get()] {
    if (m->cancel_flag.load()) m->stream.cancel();
  });
}

uint64_t HttpClient::reused_connections() const { return impl_->reused; }

// ------------------------------------------------------------------ WsClient
struct WsClient::Impl {
  net::io_context ioc;
  websocket::stream<beast::tcp_stream> ws{ioc};
  beast::flat_buffer buf;
  std::deque<std::string> inbox;
  bool reading = false, is_closed = false;

  void start_read() {
    if (reading || is_closed) return;
    reading = true;
    ws.async_read(buf, [this](beast::error_code ec, size_t) {
      reading = false;
      if (ec) {
        is_closed = true;
        return;
      }
      inbox.push_back(beast::buffers_to_string(buf.data()));
      buf.consume(buf.size());
      start_read();
    });
  }
};

WsClient::WsClient(const std::string& host, uint16_t port, const std::string& path, double timeout_s,
                   const std::string& token)
    : impl_(std::make_unique<Impl>()) {
  auto& m = *impl_;
  tcp::resolver resolver(m.ioc);
  beast::error_code ec;
  auto results = resolver.resolve(host, std::to_string(port), ec);
  if (ec) throw std::runtime_error("resolve " + host + ": " + ec.message());
  auto& lower = beast::get_lowest_layer(m.ws);
  lower.expires_after(seconds(timeout_s));
  lower.async_connect(results, [&](beast::error_code e, const tcp::endpoint&) { ec = e; });
  m.ioc.run();
  if (ec) throw std::runtime_error("connect " + host + ":" + std::to_string(port) + ": " + ec.message());
  if (!token.empty())
    m.ws.set_option(websocket::stream_base::decorator([token](websocket::request_type& req) {
      req.set(http::field::authorization, "Bearer " + token);
    }));
  m.ws.async_handshake(host + ":" + std::to_string(port), path, [&](beast::error_code e) { ec = e; });
  m.ioc.restart();
  m.ioc.run();
  if (ec) throw std::runtime_error("WebSocket handshake " + path + ": " + ec.message());
  lower.expires_never();
  m.ws.text(true);
  m.start_read();
}

WsClient::~WsClient() {
  auto& m = *impl_;
  if (!m.is_closed) {
    beast::error_code ec;
    beast::get_lowest_layer(m.ws).socket().close(ec);
  }
}

bool WsClient::send(const std::string& text) {
  auto& m = *impl_;
  if (m.is_closed) return false;
  bool done = false;
  beast::error_code ec;
  m.ws.async_write(net::buffer(text), [&](beast::error_code e, size_t) {
    ec = e;
    done = true;
  });
  if (m.ioc.stopped()) m.ioc.restart();
  while (!done && m.ioc.run_one() > 0) {
  }
  return done && !ec;
}

std::optional<std::string> WsClient::receive(double timeout_s) {
  auto& m = *impl_;
  auto until = std::chrono::steady_clock::now() + seconds(timeout_s);
  while (m.inbox.empty() && !m.is_closed) {
    auto now = std::chrono::steady_clock::now();
    if (now >= until) break;
    if (m.ioc.stopped()) m.ioc.restart();
    m.ioc.run_one_for(until - now);
  }
  if (m.inbox.empty()) return std::nullopt;
  auto s = std::move(m.inbox.front());
  m.inbox.pop_front();
  return s;
}

bool WsClient::closed() const { return impl_->is_closed; }

void WsClient::close() {
  auto& m = *impl_;
  if (m.is_closed) return;
  beast::get_lowest_layer(m.ws).expires_after(std::chrono::seconds(2));
  m.ws.async_close(websocket::close_code::normal, [](beast::error_code) {});
  if (m.ioc.stopped()) m.ioc.restart();
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  while (!m.is_closed && std::chrono::steady_clock::now() < until) {
    if (m.ioc.stopped()) m.ioc.restart();
    if (m.ioc.run_one_for(std::chrono::milliseconds(100)) == 0 && m.ioc.stopped()) break;
  }
  m.is_closed = true;
}

}  // namespace t2s::server
