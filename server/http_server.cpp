// The Beast HTTP/WebSocket server. Every connection runs on its own strand of one io_context; application code
// talks to it only through HttpReply / WsConnection, which post onto that strand, so they are safe from any thread.
#include "server/http_server.hpp"

#include <boost/asio/bind_executor.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <deque>
#include <map>
#include <mutex>
#include <optional>
#include <thread>

#include <sys/socket.h>

#include "common/status.hpp"

namespace t2s::server {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;

std::string html_escape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (char c : text) {
    switch (c) {
      case '&': out += "&amp;"; break;
      case '<': out += "&lt;"; break;
      case '>': out += "&gt;"; break;
      case '"': out += "&quot;"; break;
      case '\'': out += "&#39;"; break;
      default: out += c;
    }
  }
  return out;
}

namespace {

// Something the server can shut down at stop().
class Closable {
 public:
  virtual ~Closable() = default;
  virtual void shutdown() = 0;
};

std::string status_line(int status) {
  auto reason = http::obsolete_reason(http::int_to_status(static_cast<unsigned>(status)));
  return "HTTP/1.1 " + std::to_string(status) + " " + std::string(reason.data(), reason.size()) + "\r\n";
}

std::chrono::steady_clock::duration to_duration(double seconds) {
  return std::chrono::duration_cast<std::chrono::steady_clock::duration>(std::chrono::duration<double>(seconds));
}

// Compares without an early exit, so the time taken does not tell how much of a guess was right.
bool constant_time_equal(const std::string& a, const std::string& b) {
  unsigned char diff = a.size() == b.size() ? 0 : 1;
  for (size_t i = 0; i < b.size(); ++i) diff |= static_cast<unsigned char>(b[i] ^ (i < a.size() ? a[i] : 0));
  return diff == 0;
}

// The value of `name` in a query string ("" when absent; no percent-decoding: tokens are plain).
std::string query_param(const std::string& query, const std::string& name) {
  size_t pos = 0;
  while (pos <= query.size()) {
    auto amp = query.find('&', pos);
    std::string part = query.substr(pos, amp == std::string::npos ? std::string::npos : amp - pos);
    if (part.rfind(name + "=", 0) == 0) return part.substr(name.size() + 1);
    if (amp == std::string::npos) break;
    pos = amp + 1;
  }
  return "";
}

std::string hex(size_t n) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%zx", n);
  return buf;
}

}  // namespace

struct HttpServer::Impl {
  // Counters and tables first: they must outlive the io_context (destroyed first, it may destroy sessions).
  ServerOptions opt;
  Logger* log = nullptr;
  std::map<std::string, HttpHandler> routes;  // "METHOD path"
  std::map<std::string, std::shared_ptr<WsHandler>> ws_routes;
  std::atomic<uint64_t> next_id{1};
  std::atomic<uint64_t> connections_open{0}, connections_total{0}, connections_rejected{0}, http_requests{0},
      ws_open{0}, ws_in{0}, ws_out{0};
  std::atomic<uint64_t> evicted{0}, slow_dropped{0}, refused{0}, bad_requests{0};
  std::mutex live_mu;
  std::map<uint64_t, std::weak_ptr<Closable>> live;
  // Admission bookkeeping: every admitted connection, its peer and whether it waits for a request.
  struct ConnEntry {
    std::string peer;
    bool waiting = true, evicted = false;
    uint64_t since = 0;  // order in which it started waiting (the oldest waiting one is evicted first)
    std::weak_ptr<Closable> session;
    std::chrono::steady_clock::time_point waiting_at = std::chrono::steady_clock::now();
  };
  struct PeerCount {
    size_t open = 0, waiting = 0;
  };
  std::mutex conn_mu;
  std::map<uint64_t, ConnEntry> conns;
  std::map<std::string, PeerCount> peers;
  size_t counted = 0;  // admitted and not evicted
  uint64_t wait_seq = 0;
  bool started = false, stopped = false;
  std::mutex stop_mu;  // stop() may race with the destructor's stop()

  net::io_context ioc;
  // The acceptor's handlers and its close() run on one strand: with several io threads, stop()'s close raced with
  // an accept handler re-arming on another thread (ThreadSanitizer).
  net::strand<net::io_context::executor_type> accept_strand = net::make_strand(ioc);
  std::optional<tcp::acceptor> acceptor;
  std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
  std::vector<std::thread> threads;
  uint16_t bound_port = 0;

  void track(uint64_t id, const std::shared_ptr<Closable>& c) {
    std::lock_guard lk(live_mu);
    live[id] = c;
  }
  void untrack(uint64_t id) {
    std::lock_guard lk(live_mu);
    live.erase(id);
  }
  bool admit(uint64_t id, const std::string& peer, const std::shared_ptr<Closable>& session);
  void set_waiting(uint64_t id, bool waiting);
  void release(uint64_t id);
  void do_accept();
};

namespace {

using Impl = HttpServer::Impl;

// ---------------------------------------------------------------- WebSocket session
class WsSession final : public WsConnection, public Closable, public std::enable_shared_from_this<WsSession> {
 public:
  WsSession(Impl* impl, tcp::socket&& socket, std::shared_ptr<WsHandler> handler, uint64_t id)
      : impl_(impl), ws_(std::move(socket)), handler_(std::move(handler)), id_(id) {}
  ~WsSession() override { impl_->release(id_); }

  void run(http::request<http::string_body> req) {
    // A silent peer is pinged at half the idle timeout and dropped at the full one.
    websocket::stream_base::timeout t;
    t.handshake_timeout = to_duration(impl_->opt.request_timeout_s);
    t.idle_timeout = to_duration(impl_->opt.idle_timeout_s);
    t.keep_alive_pings = true;
    ws_.set_option(t);
    // Hard transport cap; the application limit (max_frame_bytes) is enforced while reading, below.
    ws_.read_message_max(std::max<size_t>(impl_->opt.max_frame_bytes * 64, 64u << 20));
    ws_.text(true);
    req_ = std::move(req);
    ws_.async_accept(req_, beast::bind_front_handler(&WsSession::on_accept, shared_from_this()));
  }

  void send(std::string text) override {
    net::post(ws_.get_executor(), [self = shared_from_this(), t = std::move(text)]() mutable {
      if (self->closed_) return;
      // A client that does not read is dropped rather than buffered without bound.
      if (!self->outq_.empty() && self->queued_ + t.size() > self->impl_->opt.max_send_queue_bytes)
        return self->drop_slow_reader();
      self->queued_ += t.size();
      self->outq_.push_back(std::move(t));
      if (!self->writing_) self->do_write();
    });
  }

  void close() override {
    net::post(ws_.get_executor(), [self = shared_from_this()] {
      if (self->closed_ || self->closing_) return;
      self->closing_ = true;
      if (!self->writing_) self->do_close();
    });
  }

  void shutdown() override {
    net::post(ws_.get_executor(), [self = shared_from_this()] {
      beast::error_code ec;
      beast::get_lowest_layer(self->ws_).socket().close(ec);
    });
  }

  uint64_t id() const override { return id_; }

 private:
  void on_accept(beast::error_code ec) {
    if (ec) return;
    opened_ = true;
    impl_->ws_open++;
    impl_->track(id_, shared_from_this());
    handler_->on_open(shared_from_this());
    do_read();
  }

  void do_read() {
    ws_.async_read_some(buf_, 64 * 1024, beast::bind_front_handler(&WsSession::on_read, shared_from_this()));
  }

  void on_read(beast::error_code ec, size_t) {
    if (ec) return finish();
    // Accumulate up to the limit; beyond it keep draining the message but drop its bytes.
    if (!too_large_) {
      if (message_.size() + buf_.size() > impl_->opt.max_frame_bytes) {
        too_large_ = true;
        message_.clear();
        message_.shrink_to_fit();
      } else {
        message_.append(beast::buffers_to_string(buf_.data()));
      }
    }
    buf_.consume(buf_.size());
    if (ws_.is_message_done()) {
      impl_->ws_in++;
      bool too_large = too_large_;
      std::string text = std::move(message_);
      message_.clear();
      too_large_ = false;
      handler_->on_message(shared_from_this(), std::move(text), too_large);
    }
    do_read();
  }

  void do_write() {
    if (outq_.empty()) {
      writing_ = false;
      if (closing_) do_close();
      return;
    }
    writing_ = true;
    ws_.async_write(net::buffer(outq_.front()), beast::bind_front_handler(&WsSession::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, size_t) {
    if (ec) {
      writing_ = false;
      outq_.clear();
      queued_ = 0;
      beast::error_code ignored;
      beast::get_lowest_layer(ws_).socket().close(ignored);
      return finish();
    }
    impl_->ws_out++;
    if (closed_) {
      writing_ = false;
      outq_.clear();
      queued_ = 0;
      return;
    }
    queued_ -= outq_.front().size();
    outq_.pop_front();
    do_write();
  }

  void drop_slow_reader() {
    impl_->slow_dropped++;
    if (impl_->log)
      impl_->log->warn("ws_slow_reader_dropped", {{"connection", static_cast<unsigned long long>(id_)},
                                                  {"queued_bytes", static_cast<unsigned long long>(queued_)}});
    beast::error_code ignored;
    beast::get_lowest_layer(ws_).socket().close(ignored);
    finish();
  }

  void do_close() {
    ws_.async_close(websocket::close_code::normal, [self = shared_from_this()](beast::error_code) {});
  }

  // Notifies the handler once; the read loop has ended.
  void finish() {
    if (closed_) return;
    closed_ = true;
    // A write in flight still reads outq_.front(): on_write clears the queue when it completes (with an error,
    // since the socket is closed or failing).
    if (!writing_) {
      outq_.clear();
      queued_ = 0;
    }
    if (opened_) {
      impl_->ws_open--;
      impl_->untrack(id_);
      handler_->on_close(shared_from_this());
    }
  }

  Impl* impl_;
  websocket::stream<beast::tcp_stream> ws_;
  std::shared_ptr<WsHandler> handler_;
  uint64_t id_;
  http::request<http::string_body> req_;
  beast::flat_buffer buf_;
  std::string message_;
  bool too_large_ = false;
  std::deque<std::string> outq_;
  size_t queued_ = 0;  // bytes in outq_
  bool writing_ = false, closing_ = false, closed_ = false, opened_ = false;
};

// ---------------------------------------------------------------- HTTP session
class HttpSession final : public Closable, public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(Impl* impl, tcp::socket&& socket, uint64_t id, std::string peer)
      : impl_(impl), stream_(std::move(socket)), id_(id), peer_(std::move(peer)),
        gone_(std::make_shared<std::atomic<bool>>(false)) {}
  ~HttpSession() override {
    if (!handed_off_) impl_->release(id_);
  }

  void start() {
    impl_->track(id_, shared_from_this());
    do_read();
  }

  void shutdown() override {
    net::post(stream_.get_executor(), [self = shared_from_this()] {
      self->close_socket();
    });
  }

  // Queues raw bytes of the current response; `last` marks its end. Runs on the strand.
  void enqueue(std::string data, bool last) {
    if (gone_->load()) return;
    if (!outq_.empty() && queued_ + data.size() > impl_->opt.max_send_queue_bytes) {
      // A streaming client that does not read: the producer sees client_gone(); the write in flight fails and
      // on_write clears the queue (clearing it here would free the bytes being written).
      impl_->slow_dropped++;
      return close_socket();
    }
    queued_ += data.size();
    outq_.push_back(std::move(data));
    if (last) response_done_ = true;
    if (!writing_) do_write();
  }

  const std::shared_ptr<std::atomic<bool>>& gone() const { return gone_; }
  bool keep_alive() const { return keep_alive_; }
  net::any_io_executor executor() { return stream_.get_executor(); }

 private:
  // The first request must arrive within the request timeout of the accept; a kept-alive connection may then wait
  // up to the idle timeout for the next request's first byte, which starts that request's timeout.
  void do_read() {
    impl_->set_waiting(id_, true);
    parser_.emplace();
    parser_->body_limit(impl_->opt.max_body_bytes);
    parser_->header_limit(static_cast<uint32_t>(impl_->opt.max_header_bytes));
    if (first_request_ || buf_.size() > 0) return read_request();
    stream_.expires_after(to_duration(impl_->opt.idle_timeout_s));
    stream_.async_read_some(buf_.prepare(4096), [self = shared_from_this()](beast::error_code ec, size_t n) {
      if (ec) return self->close_socket();
      self->buf_.commit(n);
      self->read_request();
    });
  }

  void read_request() {
    stream_.expires_after(to_duration(impl_->opt.request_timeout_s));
    http::async_read(stream_, buf_, *parser_, beast::bind_front_handler(&HttpSession::on_read, shared_from_this()));
  }

  // Malformed requests are answered (400, 413, 431) before the connection closes; a peer that left is not.
  void on_read(beast::error_code ec, size_t) {
    first_request_ = false;
    if (ec == http::error::body_limit) return reject(413, "request body too large\n");
    if (ec == http::error::header_limit) return reject(431, "request headers too large\n");
    if (ec && ec.category() == http::make_error_code(http::error::bad_target).category() &&
        ec != http::error::end_of_stream && ec != http::error::partial_message && ec != http::error::short_read)
      return reject(400, "malformed HTTP request: " + ec.message() + "\n");
    if (ec) return close_socket();
    stream_.expires_never();
    impl_->set_waiting(id_, false);
    auto req = parser_->release();
    impl_->http_requests++;
    std::string target(req.target());
    if (auto refusal = check_access(req)) {
      impl_->refused++;
      keep_alive_ = false;
      return enqueue(serialize(*refusal), true);
    }
    if (websocket::is_upgrade(req)) {
      auto path = target.substr(0, target.find('?'));
      auto it = impl_->ws_routes.find(path);
      if (it == impl_->ws_routes.end()) {
        keep_alive_ = false;
        return enqueue(serialize({404, "text/plain; charset=utf-8", "no WebSocket endpoint at " + path + "\n", {}}),
                       true);
      }
      handed_off_ = true;  // the WebSocket session now owns the connection count
      impl_->untrack(id_);
      auto ws = std::make_shared<WsSession>(impl_, stream_.release_socket(), it->second, id_);
      ws->run(std::move(req));
      return;
    }
    keep_alive_ = req.keep_alive();
    HttpRequest r;
    r.peer = peer_;
    r.method = std::string(req.method_string());
    r.target = target;
    auto q = target.find('?');
    r.path = target.substr(0, q);
    if (q != std::string::npos) r.query = target.substr(q + 1);
    if (auto ct = req.find(http::field::content_type); ct != req.end()) r.content_type = std::string(ct->value());
    r.body = std::move(req.body());
    dispatch(r);
    watch_client();
  }

  // While a handler works on a request nothing reads the socket, so a client that leaves would go unnoticed until
  // the answer is written: wait for the socket to turn readable and peek. End of stream or an error means the
  // client is gone (client_gone(), so long work for it can stop; a client that only half-closes its side is taken
  // as gone too); bytes mean a next request, left for the reader.
  void watch_client() {
    if (watching_) return;
    watching_ = true;
    stream_.socket().async_wait(tcp::socket::wait_read, [self = shared_from_this()](beast::error_code ec) {
      self->watching_ = false;
      if (ec) return;
      char byte;
      // MSG_DONTWAIT: the reader may have taken the bytes that woke this wait; never block the strand for more.
      ssize_t n = ::recv(self->stream_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)) self->close_socket();
    });
  }

  void dispatch(const HttpRequest& r);

  void reject(int status, std::string body) {
    impl_->bad_requests++;
    keep_alive_ = false;
    stream_.expires_after(to_duration(impl_->opt.request_timeout_s));  // the answer, too, must leave in time
    enqueue(serialize({status, "text/plain; charset=utf-8", std::move(body), {}}), true);
  }

  // The Origin allow-list (browsers send Origin; the server's own origin is always allowed) and the bearer token.
  std::optional<HttpResponse> check_access(const http::request<http::string_body>& req) const {
    const auto& o = impl_->opt;
    if (auto it = req.find(http::field::origin); it != req.end()) {
      std::string origin(it->value());
      std::string own = "http://" + std::string(req[http::field::host]);
      bool allowed = origin == own;
      for (const auto& a : o.allowed_origins) allowed = allowed || a == "*" || a == origin;
      if (!allowed)
        return HttpResponse{403, "text/plain; charset=utf-8",
                            "Origin '" + origin + "' is not allowed (allowed: the server's own origin and --allow-origin)\n",
                            {}};
    }
    if (o.token.empty()) return std::nullopt;
    std::string target(req.target());
    auto q = target.find('?');
    std::string path = target.substr(0, q);
    for (const auto& p : o.public_paths)
      if (p == path) return std::nullopt;
    std::string presented;
    if (auto it = req.find(http::field::authorization); it != req.end()) {
      std::string_view v(it->value().data(), it->value().size());
      if (v.substr(0, 7) == "Bearer ") presented = std::string(v.substr(7));
    }
    if (presented.empty() && q != std::string::npos) presented = query_param(target.substr(q + 1), "access_token");
    if (constant_time_equal(presented, o.token)) return std::nullopt;
    return HttpResponse{401, "text/plain; charset=utf-8",
                        "missing or wrong token (send 'Authorization: Bearer TOKEN' or ?access_token=TOKEN)\n",
                        {{"WWW-Authenticate", "Bearer"}}};
  }

  void do_write() {
    if (outq_.empty()) {
      writing_ = false;
      if (response_done_) {
        response_done_ = false;
        if (keep_alive_ && !gone_->load())
          do_read();
        else
          close_socket(true);
      }
      return;
    }
    writing_ = true;
    // A client that stops reading a response is closed after the idle timeout (its queue is bounded as well).
    stream_.expires_after(to_duration(impl_->opt.idle_timeout_s));
    net::async_write(stream_, net::buffer(outq_.front()),
                     beast::bind_front_handler(&HttpSession::on_write, shared_from_this()));
  }

  void on_write(beast::error_code ec, size_t) {
    stream_.expires_never();
    if (ec) {
      writing_ = false;
      outq_.clear();
      queued_ = 0;
      return close_socket();
    }
    queued_ -= outq_.front().size();
    outq_.pop_front();
    do_write();
  }

  void close_socket(bool graceful = false) {
    gone_->store(true);
    beast::error_code ec;
    if (graceful) stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    stream_.socket().close(ec);
    impl_->untrack(id_);
  }

 public:
  std::string serialize(const HttpResponse& r) const {
    std::string s = status_line(r.status);
    s += "Content-Type: " + r.content_type + "\r\n";
    s += "Content-Length: " + std::to_string(r.body.size()) + "\r\n";
    if (!keep_alive_) s += "Connection: close\r\n";
    for (const auto& [k, v] : r.headers) s += k + ": " + v + "\r\n";
    s += "\r\n";
    s += r.body;
    return s;
  }

 private:
  Impl* impl_;
  beast::tcp_stream stream_;
  uint64_t id_;
  std::string peer_;
  beast::flat_buffer buf_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::deque<std::string> outq_;
  size_t queued_ = 0;  // bytes in outq_
  bool writing_ = false, response_done_ = false, keep_alive_ = true, handed_off_ = false, first_request_ = true,
       watching_ = false;
  std::shared_ptr<std::atomic<bool>> gone_;
};

class HttpReplyImpl final : public HttpReply {
 public:
  explicit HttpReplyImpl(std::shared_ptr<HttpSession> s) : session_(std::move(s)), gone_(session_->gone()) {}
  ~HttpReplyImpl() override {
    // A handler that dropped its reply without answering would hang the client: answer for it.
    if (state_.load() == 0) send({500, "text/plain; charset=utf-8", "handler did not reply\n", {}});
    else if (state_.load() == 1) end();
  }

  void send(HttpResponse response) override {
    int expected = 0;
    if (!state_.compare_exchange_strong(expected, 2)) return;
    post([response = std::move(response)](HttpSession& s) { s.enqueue(s.serialize(response), true); });
  }

  void begin_stream(int status, std::string content_type) override {
    int expected = 0;
    if (!state_.compare_exchange_strong(expected, 1)) return;
    post([status, ct = std::move(content_type)](HttpSession& s) {
      std::string h = status_line(status);
      h += "Content-Type: " + ct + "\r\nCache-Control: no-cache\r\nTransfer-Encoding: chunked\r\n";
      if (!s.keep_alive()) h += "Connection: close\r\n";
      h += "\r\n";
      s.enqueue(std::move(h), false);
    });
  }

  bool write(std::string chunk) override {
    if (gone_->load() || state_.load() != 1) return false;
    if (chunk.empty()) return true;  // an empty chunk would end the body
    std::string framed = hex(chunk.size()) + "\r\n" + chunk + "\r\n";
    post([f = std::move(framed)](HttpSession& s) mutable { s.enqueue(std::move(f), false); });
    return true;
  }

  void end() override {
    int expected = 1;
    if (!state_.compare_exchange_strong(expected, 2)) return;
    post([](HttpSession& s) { s.enqueue("0\r\n\r\n", true); });
  }

  bool client_gone() const override { return gone_->load(); }

 private:
  template <typename F>
  void post(F f) {
    auto s = session_;
    net::post(s->executor(), [s, f = std::move(f)]() mutable { f(*s); });
  }
  std::shared_ptr<HttpSession> session_;
  std::shared_ptr<std::atomic<bool>> gone_;
  std::atomic<int> state_{0};  // 0 fresh, 1 streaming, 2 done
};

void HttpSession::dispatch(const HttpRequest& r) {
  auto reply = std::make_shared<HttpReplyImpl>(shared_from_this());
  auto it = impl_->routes.find(r.method + " " + r.path);
  if (it == impl_->routes.end()) {
    bool other_method = false;
    for (const auto& [key, h] : impl_->routes)
      if (key.substr(key.find(' ') + 1) == r.path) other_method = true;
    if (other_method)
      reply->send({405, "text/plain; charset=utf-8", "method " + r.method + " not allowed on " + r.path + "\n", {}});
    else
      reply->send({404, "text/plain; charset=utf-8", "not found: " + r.path + "\n", {}});
    return;
  }
  try {
    it->second(r, reply);
  } catch (const std::exception& e) {
    if (impl_->log) impl_->log->warn("http_handler_error", {{"path", r.path}, {"error", e.what()}});
    reply->send({500, "text/plain; charset=utf-8", std::string("internal error: ") + e.what() + "\n", {}});
  }
}

}  // namespace

void HttpServer::Impl::do_accept() {
  acceptor->async_accept(net::make_strand(ioc), [this](beast::error_code ec, tcp::socket socket) {
    if (ec) {
      if (ec == net::error::operation_aborted || !acceptor->is_open()) return;
      if (log) log->warn("accept_error", {{"error", ec.message()}});
      return do_accept();
    }
    beast::error_code pec;
    auto remote = socket.remote_endpoint(pec);
    if (pec) return do_accept();  // the peer already left
    connections_total++;
    uint64_t id = next_id++;
    auto session = std::make_shared<HttpSession>(this, std::move(socket), id, remote.address().to_string());
    if (admit(id, remote.address().to_string(), session))
      session->start();
    else
      connections_rejected++;  // the session (and its socket) goes away here
    do_accept();
  });
}

bool HttpServer::Impl::admit(uint64_t id, const std::string& peer, const std::shared_ptr<Closable>& session) {
  std::vector<std::shared_ptr<Closable>> victims;  // closed after the lock is released
  bool ok = true;
  {
    std::lock_guard lk(conn_mu);
    auto& pc = peers[peer];
    // Closes the connection that has waited longest for a request (of `of` when given); false when none waits.
    // `min_wait`: only connections that have waited at least this long (so a burst of honest connects, whose
    // requests are on their way, is not thinned by the soft per-peer waiting cap).
    auto evict_oldest = [&](const std::string* of, std::chrono::steady_clock::duration min_wait) {
      auto now = std::chrono::steady_clock::now();
      ConnEntry* best = nullptr;
      for (auto& [cid, e] : conns)
        if (e.waiting && !e.evicted && (!of || e.peer == *of) && (!best || e.since < best->since)) best = &e;
      if (!best || now - best->waiting_at < min_wait) return false;
      best->evicted = true;
      best->waiting = false;
      auto& bc = peers[best->peer];
      bc.open--;
      bc.waiting--;
      counted--;
      evicted++;
      if (auto c = best->session.lock()) victims.push_back(std::move(c));
      return true;
    };
    constexpr auto grace = std::chrono::milliseconds(500);
    if (pc.waiting >= opt.max_waiting_per_peer) evict_oldest(&peer, grace);
    if (pc.open >= opt.max_connections_per_peer)
      ok = evict_oldest(&peer, {});
    else if (counted >= opt.max_connections)
      ok = evict_oldest(nullptr, {});
    if (ok) {
      conns[id] = ConnEntry{peer, true, false, ++wait_seq, session};
      pc.open++;
      pc.waiting++;
      counted++;
      connections_open++;
    } else if (pc.open == 0) {
      peers.erase(peer);
    }
  }
  for (auto& v : victims) v->shutdown();
  if (log && !victims.empty())
    log->debug("connections_evicted", {{"count", static_cast<unsigned long long>(victims.size())}, {"peer", peer}});
  return ok;
}

void HttpServer::Impl::set_waiting(uint64_t id, bool waiting) {
  std::lock_guard lk(conn_mu);
  auto it = conns.find(id);
  if (it == conns.end() || it->second.evicted || it->second.waiting == waiting) return;
  it->second.waiting = waiting;
  if (waiting) {
    it->second.since = ++wait_seq;
    it->second.waiting_at = std::chrono::steady_clock::now();
  }
  auto& pc = peers[it->second.peer];
  if (waiting)
    pc.waiting++;
  else
    pc.waiting--;
}

void HttpServer::Impl::release(uint64_t id) {
  std::lock_guard lk(conn_mu);
  auto it = conns.find(id);
  if (it == conns.end()) return;
  connections_open--;
  auto pit = peers.find(it->second.peer);
  if (!it->second.evicted && pit != peers.end()) {
    pit->second.open--;
    if (it->second.waiting) pit->second.waiting--;
    counted--;
  }
  if (pit != peers.end() && pit->second.open == 0) peers.erase(pit);
  conns.erase(it);
}

bool is_loopback_address(const std::string& address) {
  if (address == "localhost") return true;
  beast::error_code ec;
  auto a = net::ip::make_address(address, ec);
  return !ec && a.is_loopback();
}

HttpServer::HttpServer(ServerOptions options, Logger* log) : impl_(std::make_shared<Impl>()) {
  impl_->opt = std::move(options);
  impl_->log = log;
}

HttpServer::~HttpServer() { stop(); }

void HttpServer::route(std::string method, std::string path, HttpHandler handler) {
  if (impl_->started) throw std::logic_error("HttpServer::route after start");
  impl_->routes[method + " " + path] = std::move(handler);
}

void HttpServer::websocket(std::string path, std::shared_ptr<WsHandler> handler) {
  if (impl_->started) throw std::logic_error("HttpServer::websocket after start");
  impl_->ws_routes[std::move(path)] = std::move(handler);
}

void HttpServer::start() {
  auto& m = *impl_;
  if (m.started) return;
  beast::error_code ec;
  auto addr = net::ip::make_address(m.opt.address, ec);
  if (ec) throw InputError("cannot parse bind address '" + m.opt.address + "': " + ec.message());
  if (!addr.is_loopback() && m.opt.token.empty() && !m.opt.allow_open_bind)
    throw InputError("binding to " + m.opt.address +
                     " (beyond loopback) needs a token (--token or T2S_TOKEN), or --insecure-no-token");
  tcp::endpoint ep(addr, m.opt.port);
  m.acceptor.emplace(m.accept_strand);
  m.acceptor->open(ep.protocol(), ec);
  if (!ec) m.acceptor->set_option(net::socket_base::reuse_address(true), ec);
  if (!ec) m.acceptor->bind(ep, ec);
  if (!ec) m.acceptor->listen(net::socket_base::max_listen_connections, ec);
  if (ec)
    throw InputError("cannot listen on " + m.opt.address + ":" + std::to_string(m.opt.port) + ": " + ec.message());
  m.bound_port = m.acceptor->local_endpoint().port();
  m.started = true;
  m.work.emplace(m.ioc.get_executor());
  m.do_accept();
  int n = std::max(1, m.opt.threads);
  for (int i = 0; i < n; ++i) m.threads.emplace_back([&m] { m.ioc.run(); });
  if (m.log) m.log->info("server_listening", {{"address", m.opt.address}, {"port", static_cast<int>(m.bound_port)}});
}

uint16_t HttpServer::port() const { return impl_->bound_port; }

void HttpServer::stop() {
  auto& m = *impl_;
  std::lock_guard stop_lock(m.stop_mu);
  if (!m.started || m.stopped) return;
  m.stopped = true;
  net::post(m.accept_strand, [&m] {
    beast::error_code ec;
    m.acceptor->close(ec);
  });
  std::vector<std::shared_ptr<Closable>> open;
  {
    std::lock_guard lk(m.live_mu);
    for (auto& [id, w] : m.live)
      if (auto c = w.lock()) open.push_back(c);
  }
  for (auto& c : open) c->shutdown();
  open.clear();
  m.work.reset();
  // Give sessions a moment to close their sockets (WebSocket handlers then cancel their work), then stop.
  auto until = std::chrono::steady_clock::now() + std::chrono::seconds(2);
  auto live = [&m] {
    std::lock_guard lk(m.live_mu);
    return m.live.size();
  };
  while (live() > 0 && std::chrono::steady_clock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  m.ioc.stop();
  for (auto& t : m.threads) t.join();
  m.threads.clear();
}

ServerStats HttpServer::stats() const {
  const auto& m = *impl_;
  ServerStats s;
  s.connections_open = m.connections_open.load();
  s.connections_total = m.connections_total.load();
  s.connections_rejected = m.connections_rejected.load();
  s.http_requests = m.http_requests.load();
  s.ws_open = m.ws_open.load();
  s.ws_messages_in = m.ws_in.load();
  s.ws_messages_out = m.ws_out.load();
  s.connections_evicted = m.evicted.load();
  s.slow_readers_dropped = m.slow_dropped.load();
  s.requests_refused = m.refused.load();
  s.bad_requests = m.bad_requests.load();
  return s;
}

}  // namespace t2s::server
