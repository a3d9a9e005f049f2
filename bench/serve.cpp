// bench_serve: `t2s serve` under load on loopback. N concurrent WebSocket clients ask Q questions of the synthetic
// benchmark (oracle answers at modelled speed / --speed); reports questions/s, the front-end overhead per question
// (client-measured latency minus the time its stages spent in LLM calls and SQLite), and checks that every question
// got exactly one result or error. The peer, measured in the same run: the same questions started directly on the
// backend in-process (no WebSocket) at the same concurrency, so the ratio isolates the front end's cost. Bounded in
// count and time: --time-limit covers the whole run; questions still in flight then are cancelled (and must still
// get exactly one answer, the `cancelled` error).
#include <CLI/CLI.hpp>

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <functional>
#include <chrono>
#include <cstdio>
#include <future>
#include <map>
#include <mutex>
#include <thread>

#include "common/stats.hpp"
#include "server/http_client.hpp"
#include "server/http_server.hpp"
#include "server/serve_app.hpp"

using namespace t2s;
using namespace t2s::server;
using Clock = std::chrono::steady_clock;

namespace {

struct Sample {
  double latency_ms = 0, stage_ms = 0;  // stage_ms: client time covered by at least one stage (union)
  std::vector<std::pair<double, double>> stages;  // [start, end] of each stage on the client clock (ms)
  bool result = false, error = false;
  int answers = 0;  // frames of type result/error for this id
};

// A JSON string literal of `s` (questions may hold quotes).
std::string json_string(const std::string& s) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
  return sb.GetString();
}

double secs(Clock::time_point a, Clock::time_point b) { return std::chrono::duration<double>(b - a).count(); }

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"bench_serve: t2s serve under concurrent WebSocket load (loopback only)"};
  int clients = 200, questions = 2000;
  double speed = 200, time_limit = 240, peer_seconds = 30;
  std::string cache_dir = "out/synthetic";
  app.add_option("--clients", clients, "concurrent WebSocket clients")->check(CLI::Range(1, 1000));
  app.add_option("--questions", questions, "questions in all")->check(CLI::Range(1, 100000));
  app.add_option("--speed", speed, "simulated instances run modelled time / speed")->check(CLI::PositiveNumber);
  app.add_option("--time-limit", time_limit,
                 "the whole run stops asking after this many seconds (questions in flight are then cancelled)")
      ->check(CLI::PositiveNumber);
  app.add_option("--peer-seconds", peer_seconds,
                 "the peer (questions started directly on the backend) runs this long at the same concurrency (at most "
                 "a fifth of --time-limit)")
      ->check(CLI::PositiveNumber);
  app.add_option("--cache-dir", cache_dir, "where the synthetic benchmark is generated and reused");
  CLI11_PARSE(app, argc, argv);

  ServeConfig cfg;
  cfg.cache_dir = cache_dir;
  cfg.responder = "oracle";  // front-end overhead is measured with the oracle at modelled speed
  cfg.runtime.responder_speed = speed;
  cfg.deadline_ms = 60000;
  const int sql_threads = cfg.runtime.sql_threads;
  QuestionService svc(cfg);
  std::vector<std::pair<std::string, std::string>> pool;
  for (const auto& [db, qs] : svc.examples(1000))
    for (const auto& q : qs) pool.emplace_back(db, q);
  std::printf("bench_serve: %d clients, %d questions over %zu distinct ones, speed %.0f, answers: %s\n", clients,
              questions, pool.size(), speed, svc.answer_mode().substr(0, 40).c_str());

  // --time-limit bounds the whole run: the peer gets at most a fifth of it, the WebSocket phase the rest.
  const auto bench_t0 = Clock::now();
  const double peer_s = std::min(peer_seconds, time_limit / 5);
  // Peer: the same questions started directly on the backend, same concurrency (no network, no JSON), for at most
  // --peer-seconds: its rate is what the backend sustains. At the cut the questions still running are cancelled
  // and drained before anything they reference goes away.
  double direct_qps = 0;
  int direct_done = 0;
  {
    struct Peer {
      std::mutex mu;
      std::condition_variable cv;
      int next = 0, done = 0, in_flight = 0;
      bool stop = false;
      std::map<int, uint64_t> running;  // question index → workflow id
    };
    auto peer = std::make_shared<Peer>();
    const int peer_questions = questions;
    std::function<void()> launch;
    launch = [&svc, &pool, peer, peer_questions, &launch] {
      int k;
      uint64_t wf = svc.next_workflow_id();
      {
        std::lock_guard lk(peer->mu);
        if (peer->stop || peer->next >= peer_questions) return;
        k = peer->next++;
        peer->in_flight++;
        peer->running[k] = wf;
      }
      AskFrame a;
      a.id = "d" + std::to_string(k);
      a.db = pool[static_cast<size_t>(k) % pool.size()].first;
      a.question = pool[static_cast<size_t>(k) % pool.size()].second;
      svc.start(wf, a, {}, [peer, k, &launch](const agents::WorkflowOutcome& o) {
        {
          std::lock_guard lk(peer->mu);
          peer->in_flight--;
          peer->running.erase(k);
          if (!o.cancelled) peer->done++;
          peer->cv.notify_all();
        }
        launch();  // keep `clients` questions in flight, like the WebSocket clients (start() only posts)
      });
    };
    auto t0 = Clock::now();
    for (int i = 0; i < clients; ++i) launch();
    std::unique_lock lk(peer->mu);
    peer->cv.wait_for(lk, std::chrono::duration<double>(peer_s),
                      [&] { return peer->done >= peer_questions; });
    double direct_s = secs(t0, Clock::now());
    direct_done = peer->done;
    direct_qps = direct_done / direct_s;
    peer->stop = true;
    for (const auto& [k, wf] : peer->running) svc.cancel(wf);
    if (!peer->cv.wait_for(lk, std::chrono::seconds(60), [&] { return peer->in_flight == 0; })) {
      std::printf("peer: %d questions did not end within 60 s of being cancelled\n", peer->in_flight);
      std::_Exit(1);  // their callbacks reference this frame: leaving it would be a use after scope
    }
  }
  auto sql_after_peer = svc.runtime().stats();

  QuestionApiOptions ao;
  ao.max_in_flight_total = static_cast<size_t>(clients) * 2;
  auto api = std::make_shared<QuestionApi>(svc, ao);
  HttpServer http(ServerOptions{});
  attach_serve_routes(http, svc, api);
  http.start();
  std::vector<std::vector<Sample>> per_client(static_cast<size_t>(clients));
  std::atomic<int> next{0};
  std::atomic<int> unexpected{0};
  auto t0 = Clock::now();
  auto deadline = bench_t0 + std::chrono::duration<double>(time_limit);
  std::vector<std::thread> threads;
  for (int ci = 0; ci < clients; ++ci) {
    threads.emplace_back([&, ci] {
      WsClient c("127.0.0.1", http.port(), "/ws", 10);
      auto& mine = per_client[static_cast<size_t>(ci)];
      for (;;) {
        int k = next++;
        if (k >= questions || Clock::now() > deadline) return;
        const auto& [db, q] = pool[static_cast<size_t>(k) % pool.size()];
        std::string id = "c" + std::to_string(k);
        Sample s;
        auto ts = Clock::now();
        if (!c.send(R"({"type":"ask","id":")" + id + R"(","db":)" + json_string(db) + R"(,"question":)" +
                    json_string(q) + "}"))
          return;
        // At the time limit the question in flight is cancelled: its answer is then a `cancelled` error frame
        // (or the result that crossed the cancel), so it still gets exactly one answer.
        bool cancel_sent = false;
        for (;;) {
          if (!cancel_sent && Clock::now() > deadline) {
            cancel_sent = c.send(R"({"type":"cancel","id":")" + id + "\"}");
            if (!cancel_sent) return;
          }
          if (cancel_sent && Clock::now() > deadline + std::chrono::seconds(20)) break;  // no answer: counted bad
          auto f = c.receive(1.0);
          if (!f) {
            if (c.closed()) return;
            continue;
          }
          rapidjson::Document d;
          d.Parse(f->c_str());
          std::string type = d["type"].GetString();
          if (!d.HasMember("id") || id != d["id"].GetString()) {
            unexpected++;
            continue;
          }
          if (type == "stage" && std::string(d["state"].GetString()) == "done") {
            double end = secs(ts, Clock::now()) * 1000;
            s.stages.emplace_back(end - d["ms"].GetDouble(), end);
          }
          if (type == "result" || type == "error") {
            s.answers++;
            s.result = type == "result";
            s.error = type == "error";
            s.latency_ms = secs(ts, Clock::now()) * 1000;
            break;
          }
        }
        // Time inside stages (LLM calls and SQLite, possibly in parallel): the union of their intervals.
        std::sort(s.stages.begin(), s.stages.end());
        double covered = 0, cur_s = -1, cur_e = -1;
        for (const auto& [a, b] : s.stages) {
          if (a > cur_e) {
            covered += cur_e - cur_s;
            cur_s = a;
            cur_e = b;
          } else {
            cur_e = std::max(cur_e, b);
          }
        }
        covered += cur_e - cur_s;
        s.stage_ms = covered;
        // Anything else for this id would arrive now: a duplicate answer.
        while (auto extra = c.receive(0.0)) {
          rapidjson::Document d;
          d.Parse(extra->c_str());
          std::string type = d["type"].GetString();
          if (type == "result" || type == "error") s.answers++;
        }
        mine.push_back(s);
      }
    });
  }
  for (auto& t : threads) t.join();
  double ws_s = secs(t0, Clock::now());
  auto sql_end = svc.runtime().stats();
  http.stop();
  api->cancel_all();
  svc.stop();

  std::vector<double> overhead, latency;
  int results = 0, errors = 0, bad = 0, asked = 0;
  for (const auto& v : per_client)
    for (const auto& s : v) {
      ++asked;
      if (s.answers != 1) ++bad;
      results += s.result;
      errors += s.error;
      if (!s.result) continue;
      latency.push_back(s.latency_ms);
      overhead.push_back(std::max(0.0, s.latency_ms - s.stage_ms));
    }
  double qps = results / ws_s;
  std::printf("websocket: %d results in %.2f s = %.1f questions/s; direct backend (peer): %.1f questions/s "
              "(%d questions in %.0f s); ratio %.2f\n",
              results, ws_s, qps, direct_qps, direct_done, peer_s, qps / direct_qps);
  // Where the backend's time goes: SQLite runs on the pool (the bottleneck at this load).
  auto tool_runs = sql_end.tool_runs - sql_after_peer.tool_runs;
  double tool_s = sql_end.tool_busy_s - sql_after_peer.tool_busy_s;
  std::printf("sqlite (websocket phase): %llu runs, %.1f ms each on average, %.1f s busy over %d pool threads\n",
              static_cast<unsigned long long>(tool_runs), tool_runs ? 1000 * tool_s / static_cast<double>(tool_runs) : 0.0,
              tool_s, sql_threads);

  std::printf("latency p50 %.1f ms p99 %.1f ms; front-end overhead (latency - time in LLM calls and SQLite stages) "
              "p50 %.2f ms p99 %.2f ms\n",
              quantile(latency, 0.5), quantile(latency, 0.99), quantile(overhead, 0.5), quantile(overhead, 0.99));
  // Questions still in flight at the time limit were cancelled, so they end with an error frame: every question
  // asked must have exactly one answer either way.
  const bool ok = bad == 0 && unexpected.load() == 0;
  std::printf("answers: %d of %d questions asked%s: %d results, %d errors, %d without exactly one answer, %d stray "
              "frames: %s\n",
              asked, questions, asked < questions ? " before the time limit" : "", results, errors, bad,
              unexpected.load(), ok ? "OK" : "FAILED");
  return ok ? 0 : 1;
}
