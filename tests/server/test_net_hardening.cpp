// The network front end under attack, on loopback and bounded: malformed and oversized requests are answered,
// half-sent requests time out and cannot lock new clients out, a WebSocket client that never reads is dropped once
// its send queue is full, and foreign browser Origins and requests without the bearer token are refused. Raw POSIX
// sockets play the attacker, so nothing in the client library softens what the server sees.
#include <catch2/catch.hpp>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "common/status.hpp"
#include "server/http_client.hpp"
#include "server/http_server.hpp"

using namespace t2s::server;

namespace {

// A blocking TCP socket to 127.0.0.1:port, closed on destruction.
class RawSocket {
 public:
  explicit RawSocket(uint16_t port, int rcvbuf = 0) {
    fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
    REQUIRE(fd_ >= 0);
    if (rcvbuf > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof rcvbuf);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_port = htons(port);
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  }
  ~RawSocket() {
    if (fd_ >= 0) ::close(fd_);
  }
  RawSocket(const RawSocket&) = delete;
  RawSocket& operator=(const RawSocket&) = delete;
  bool connected() const { return connected_; }
  // Sends all of `data`; false when the peer closed or reset the connection.
  bool send_all(const std::string& data) {
    size_t off = 0;
    while (off < data.size()) {
      auto n = ::send(fd_, data.data() + off, data.size() - off, MSG_NOSIGNAL);
      if (n <= 0) return false;
      off += static_cast<size_t>(n);
    }
    return true;
  }
  // Reads until the server closes or `timeout_s` passes (or `until` appears in what was read).
  std::string read_until_closed(double timeout_s, const std::string& until = "") {
    std::string out;
    auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    for (;;) {
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(end - std::chrono::steady_clock::now());
      if (left.count() <= 0) break;
      pollfd p{fd_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) break;
      char buf[4096];
      auto n = ::recv(fd_, buf, sizeof buf, 0);
      if (n <= 0) {
        closed_ = true;
        break;
      }
      out.append(buf, static_cast<size_t>(n));
      if (!until.empty() && out.find(until) != std::string::npos) break;
    }
    return out;
  }
  // True when the server has closed the connection (reads EOF or a reset within `timeout_s`).
  bool closed_by_peer(double timeout_s) {
    read_until_closed(timeout_s);
    return closed_;
  }

 private:
  int fd_ = -1;
  bool connected_ = false, closed_ = false;
};

std::string upgrade_request(uint16_t port, const std::string& path, const std::string& extra_headers = "") {
  return "GET " + path + " HTTP/1.1\r\nHost: 127.0.0.1:" + std::to_string(port) +
         "\r\nUpgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n"
         "Sec-WebSocket-Version: 13\r\n" +
         extra_headers + "\r\n";
}

// One masked client text frame (RFC 6455 §5.2).
std::string ws_text_frame(const std::string& text) {
  std::string f;
  f += static_cast<char>(0x81);
  const unsigned char mask[4] = {0x12, 0x34, 0x56, 0x78};
  if (text.size() < 126) {
    f += static_cast<char>(0x80 | text.size());
  } else {
    f += static_cast<char>(0x80 | 126);
    f += static_cast<char>((text.size() >> 8) & 0xff);
    f += static_cast<char>(text.size() & 0xff);
  }
  for (unsigned char m : mask) f += static_cast<char>(m);
  for (size_t i = 0; i < text.size(); ++i) f += static_cast<char>(text[i] ^ mask[i % 4]);
  return f;
}

std::string status_line(const std::string& response) { return response.substr(0, response.find("\r\n")); }

// Answers every text message with `reply_bytes` of text (a `status` answer, much larger than the question).
class EchoBig final : public WsHandler {
 public:
  explicit EchoBig(size_t reply_bytes) : reply_(reply_bytes, 'x') {}
  void on_open(const std::shared_ptr<WsConnection>&) override { opened++; }
  void on_message(const std::shared_ptr<WsConnection>& c, std::string, bool) override { c->send(reply_); }
  void on_close(const std::shared_ptr<WsConnection>&) override { closed++; }
  std::atomic<int> opened{0}, closed{0};

 private:
  std::string reply_;
};

struct Server {
  std::shared_ptr<EchoBig> ws = std::make_shared<EchoBig>(1000);
  std::unique_ptr<HttpServer> http;
  explicit Server(ServerOptions so) {
    http = std::make_unique<HttpServer>(std::move(so));
    http->route("GET", "/healthz", [](const HttpRequest&, std::shared_ptr<HttpReply> r) {
      r->send({200, "text/plain", "ok\n", {}});
    });
    http->route("GET", "/info", [](const HttpRequest& q, std::shared_ptr<HttpReply> r) {
      r->send({200, "text/plain", "peer " + q.peer + "\n", {}});
    });
    http->websocket("/ws", ws);
    http->start();
  }
  uint16_t port() const { return http->port(); }
};

template <typename F>
bool eventually(F f, double timeout_s = 5) {
  auto end = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
  while (std::chrono::steady_clock::now() < end) {
    if (f()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  return f();
}

}  // namespace

TEST_CASE("http: a malformed request is answered 400 and oversized headers 431, then the connection closes",
          "[server][net]") {
  Server s({});
  {
    RawSocket c(s.port());
    REQUIRE(c.send_all("GARBAGE GARBAGE\r\n\r\n"));
    auto r = c.read_until_closed(5);
    CHECK(status_line(r) == "HTTP/1.1 400 Bad Request");
  }
  {
    RawSocket c(s.port());
    REQUIRE(c.send_all("GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n"));
    auto r = c.read_until_closed(5);
    CHECK(status_line(r) == "HTTP/1.1 431 Request Header Fields Too Large");
  }
  CHECK(s.http->stats().bad_requests == 2);
  HttpClient ok("127.0.0.1", s.port());
  auto r = ok.request("GET", "/info");
  CHECK(r.status == 200);
  CHECK(r.body == "peer 127.0.0.1\n");
}

TEST_CASE("http: half-sent requests time out; a peer's oldest waiting connections make room, so new clients get in",
          "[server][net][concurrent]") {
  ServerOptions so;
  so.request_timeout_s = 1;
  so.max_waiting_per_peer = 8;
  so.max_connections = 32;
  Server s(so);
  // 100 half-sent upgrade requests from this process (before: each lived 300 s and 4,100 locked everyone out).
  // The first 20 are left to age past the eviction grace: the per-peer waiting cap (8) then evicts them.
  std::vector<std::unique_ptr<RawSocket>> attackers;
  auto attack = [&](int n) {
    for (int i = 0; i < n; ++i) {
      attackers.push_back(std::make_unique<RawSocket>(s.port()));
      REQUIRE(attackers.back()->send_all(upgrade_request(s.port(), "/ws").substr(0, 60)));
    }
  };
  attack(20);
  std::this_thread::sleep_for(std::chrono::milliseconds(600));
  attack(80);
  // The aged ones are evicted by the waiting cap as the next ones arrive; beyond the global cap (32) the oldest
  // waiting connection is evicted whatever its age.
  REQUIRE(eventually([&] { return s.http->stats().connections_evicted >= 68; }));
  CHECK(eventually([&] { return s.http->stats().connections_open <= 32; }));
  HttpClient c("127.0.0.1", s.port());
  auto r = c.request("GET", "/healthz");
  CHECK(r.status == 200);
  WsClient w("127.0.0.1", s.port(), "/ws");
  CHECK(w.send("hi"));
  CHECK(w.receive(5).has_value());
  // The survivors are closed by the request timeout.
  auto t0 = std::chrono::steady_clock::now();
  CHECK(attackers.back()->closed_by_peer(5));
  CHECK(std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count() < 2.5);
  // The evicted ones were closed at once.
  CHECK(attackers.front()->closed_by_peer(0.5));
}

TEST_CASE("http: a kept-alive connection idle past the idle timeout is closed; a silent new one past the request "
          "timeout",
          "[server][net]") {
  ServerOptions so;
  so.request_timeout_s = 0.5;
  so.idle_timeout_s = 1;
  Server s(so);
  RawSocket silent(s.port());
  RawSocket idle(s.port());
  REQUIRE(idle.send_all("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"));
  CHECK(status_line(idle.read_until_closed(2, "ok\n")) == "HTTP/1.1 200 OK");
  auto t0 = std::chrono::steady_clock::now();
  CHECK(silent.closed_by_peer(3));
  double silent_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(silent_s < 0.9);
  CHECK(idle.closed_by_peer(3));
  double idle_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  CHECK(idle_s > 0.7);
  CHECK(idle_s < 2.0);
}

TEST_CASE("http: connections beyond the per-peer cap are refused when none of the peer's waits", "[server][net]") {
  ServerOptions so;
  so.max_connections_per_peer = 4;
  Server s(so);
  std::vector<std::unique_ptr<WsClient>> open;
  for (int i = 0; i < 4; ++i) open.push_back(std::make_unique<WsClient>("127.0.0.1", s.port(), "/ws"));
  REQUIRE(eventually([&] { return s.ws->opened.load() == 4; }));
  // Established WebSockets are never evicted: a fifth connection of the same peer is refused.
  RawSocket fifth(s.port());
  CHECK(fifth.closed_by_peer(2));
  CHECK(s.http->stats().connections_rejected == 1);
  open.pop_back();
  REQUIRE(eventually([&] { return s.http->stats().connections_open == 3; }));
  HttpClient c("127.0.0.1", s.port());
  CHECK(c.request("GET", "/healthz").status == 200);
}

TEST_CASE("ws: a client that never reads is dropped once its send queue is full", "[server][net][concurrent]") {
  ServerOptions so;
  so.max_send_queue_bytes = 256 * 1024;
  Server s(so);
  RawSocket c(s.port(), 4096);
  REQUIRE(c.send_all(upgrade_request(s.port(), "/ws")));
  REQUIRE(status_line(c.read_until_closed(2, "\r\n\r\n")) == "HTTP/1.1 101 Switching Protocols");
  // Each 17-byte frame asks for a 1,000-byte answer; 20,000 frames ask for 20 MB that this client never reads.
  std::string batch;
  for (int i = 0; i < 1000; ++i) batch += ws_text_frame(R"({"type":"status"})");
  int batches = 0;
  while (batches < 20 && c.send_all(batch)) batches++;
  REQUIRE(eventually([&] { return s.http->stats().slow_readers_dropped == 1; }));
  CHECK(eventually([&] { return s.ws->closed.load() == 1; }));  // the application saw the connection end
  CHECK(c.closed_by_peer(2));
  CHECK(s.http->stats().ws_open == 0);
  // Others are served.
  WsClient w("127.0.0.1", s.port(), "/ws");
  CHECK(w.send("hi"));
  CHECK(w.receive(5).has_value());
}

TEST_CASE("ws: a foreign browser Origin is refused; the server's own and --allow-origin ones are accepted",
          "[server][net]") {
  ServerOptions so;
  so.allowed_origins = {"http://ok.example"};
  Server s(so);
  auto handshake = [&](const std::string& origin) {
    RawSocket c(s.port());
    REQUIRE(c.send_all(upgrade_request(s.port(), "/ws", origin.empty() ? "" : "Origin: " + origin + "\r\n")));
    return status_line(c.read_until_closed(2, "\r\n\r\n"));
  };
  CHECK(handshake("http://evil.example") == "HTTP/1.1 403 Forbidden");
  CHECK(handshake("http://127.0.0.1:" + std::to_string(s.port())) == "HTTP/1.1 101 Switching Protocols");
  CHECK(handshake("http://ok.example") == "HTTP/1.1 101 Switching Protocols");
  CHECK(handshake("") == "HTTP/1.1 101 Switching Protocols");  // not a browser: no Origin
  CHECK(s.http->stats().requests_refused == 1);
  CHECK(eventually([&] { return s.ws->opened.load() == 3; }));
}

TEST_CASE("http: with a token every route but /healthz needs it, as a Bearer header or ?access_token=",
          "[server][net]") {
  ServerOptions so;
  so.token = "s3cret-token";
  Server s(so);
  auto get = [&](const std::string& target, const std::string& headers) {
    RawSocket c(s.port());
    REQUIRE(c.send_all("GET " + target + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n" + headers + "\r\n"));
    return status_line(c.read_until_closed(2));
  };
  CHECK(get("/info", "") == "HTTP/1.1 401 Unauthorized");
  CHECK(get("/info", "Authorization: Bearer wrong\r\n") == "HTTP/1.1 401 Unauthorized");
  CHECK(get("/info", "Authorization: Bearer s3cret-tokenX\r\n") == "HTTP/1.1 401 Unauthorized");
  CHECK(get("/info", "Authorization: Bearer s3cret-token\r\n") == "HTTP/1.1 200 OK");
  CHECK(get("/info?access_token=s3cret-token", "") == "HTTP/1.1 200 OK");
  CHECK(get("/healthz", "") == "HTTP/1.1 200 OK");
  {
    RawSocket c(s.port());
    REQUIRE(c.send_all(upgrade_request(s.port(), "/ws")));
    CHECK(status_line(c.read_until_closed(2, "\r\n\r\n")) == "HTTP/1.1 401 Unauthorized");
  }
  {
    RawSocket c(s.port());
    REQUIRE(c.send_all(upgrade_request(s.port(), "/ws?access_token=s3cret-token")));
    CHECK(status_line(c.read_until_closed(2, "\r\n\r\n")) == "HTTP/1.1 101 Switching Protocols");
  }
  HttpClientOptions ho;
  ho.bearer_token = "s3cret-token";
  HttpClient client("127.0.0.1", s.port(), ho);
  CHECK(client.request("GET", "/info").status == 200);
  WsClient w("127.0.0.1", s.port(), "/ws", 5, "s3cret-token");
  CHECK(w.send("hi"));
  CHECK(w.receive(5).has_value());
  CHECK(s.http->stats().requests_refused == 4);
}

TEST_CASE("http: binding beyond loopback needs a token", "[server][net]") {
  CHECK(is_loopback_address("127.0.0.1"));
  CHECK(is_loopback_address("127.1.2.3"));
  CHECK(is_loopback_address("::1"));
  CHECK(is_loopback_address("localhost"));
  CHECK_FALSE(is_loopback_address("0.0.0.0"));
  CHECK_FALSE(is_loopback_address("192.168.1.4"));
  ServerOptions so;
  so.address = "0.0.0.0";
  HttpServer open(so);
  CHECK_THROWS_AS(open.start(), t2s::InputError);
  so.token = "t";
  HttpServer guarded(so);
  CHECK_NOTHROW(guarded.start());
  guarded.stop();
}
