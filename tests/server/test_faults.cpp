// Faults injected into the runtime and the servers: an engine backend that throws, a KV pool too small for the
// calls, an instance slowed 5×, clients that leave mid-request. Each test checks the invariants end to end: every
// workflow ends exactly once (completed, or failed with an error naming the cause), the rest keep being served, and
// what the fault held (KV blocks, queue slots, batch slots) is released.
#include <catch2/catch.hpp>

#include <rapidjson/document.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <filesystem>
#include <condition_variable>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <stdexcept>
#include <thread>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agents/trace_workflow.hpp"
#include "engine/backend.hpp"
#include "engine/llama2c.hpp"
#include "runtime/runtime.hpp"
#include "server/engine_service.hpp"
#include "server/http_client.hpp"
#include "server/http_server.hpp"
#include "server/question_api.hpp"
#include "server/serve_app.hpp"
#include "tests/engine/tiny_model.hpp"
#include "tests/scheduler/audit_policy.hpp"
#include "tests/server/runtime_support.hpp"
#include "tests/support.hpp"

using namespace t2s;
using namespace t2s::server;
using t2s::server::test::make_policy;

namespace {

using SteadyClock = std::chrono::steady_clock;

// Forwards to the real backend; its forward passes numbered `fail_from` .. `fail_from + fail_count - 1` throw, as a
// device that faults (a lost GPU, an allocation failure) would.
class FaultyBackend final : public engine::Backend {
 public:
  FaultyBackend(std::unique_ptr<engine::Backend> inner, int fail_from, int fail_count)
      : inner_(std::move(inner)), fail_from_(fail_from), fail_count_(fail_count) {}
  void forward(const engine::ForwardBatch& batch, float* logits) override {
    maybe_fail();
    inner_->forward(batch, logits);
  }
  void forward_sample(const engine::ForwardBatch& batch, std::span<const engine::SampleRequest> requests, int vocab,
                      float* logits, int* tokens) override {
    maybe_fail();
    inner_->forward_sample(batch, requests, vocab, logits, tokens);
  }
  int num_kv_blocks() const override { return inner_->num_kv_blocks(); }
  int max_batch_tokens() const override { return inner_->max_batch_tokens(); }
  int max_context() const override { return inner_->max_context(); }
  std::string name() const override { return "faulty-" + inner_->name(); }
  //! Forward passes attempted and how many of them threw.
  std::atomic<int> passes{0}, thrown{0};

 private:
  void maybe_fail() {
    const int n = passes++;
    if (n >= fail_from_ && n - fail_from_ < fail_count_) {
      ++thrown;
      throw std::runtime_error("injected device fault in pass " + std::to_string(n));
    }
  }
  std::unique_ptr<engine::Backend> inner_;
  int fail_from_, fail_count_;
};

// Forwards to the real backend and paces it like a device of known speed: a pass over R rows takes at least
// scale × (base_s + R × row_s). `scale` 5 is an instance 5× slower than one at scale 1. Counts the rows it computed.
class PacedBackend final : public engine::Backend {
 public:
  PacedBackend(std::unique_ptr<engine::Backend> inner, double scale, double base_s, double row_s)
      : inner_(std::move(inner)), scale_(scale), base_s_(base_s), row_s_(row_s) {}
  void forward(const engine::ForwardBatch& batch, float* logits) override {
    auto until = due(batch);
    inner_->forward(batch, logits);
    std::this_thread::sleep_until(until);
  }
  void forward_sample(const engine::ForwardBatch& batch, std::span<const engine::SampleRequest> requests, int vocab,
                      float* logits, int* tokens) override {
    auto until = due(batch);
    inner_->forward_sample(batch, requests, vocab, logits, tokens);
    std::this_thread::sleep_until(until);
  }
  int num_kv_blocks() const override { return inner_->num_kv_blocks(); }
  int max_batch_tokens() const override { return inner_->max_batch_tokens(); }
  int max_context() const override { return inner_->max_context(); }
  std::string name() const override { return "paced-" + inner_->name(); }
  //! Rows computed so far (prefill, recompute and decode positions).
  std::atomic<int64_t> rows{0};

 private:
  SteadyClock::time_point due(const engine::ForwardBatch& batch) {
    rows += static_cast<int64_t>(batch.tokens.size());
    const double s = scale_ * (base_s_ + row_s_ * static_cast<double>(batch.tokens.size()));
    return SteadyClock::now() + std::chrono::duration_cast<SteadyClock::duration>(std::chrono::duration<double>(s));
  }
  std::unique_ptr<engine::Backend> inner_;
  double scale_, base_s_, row_s_;
};

// Trace questions of four calls each (agent → two candidates → revise). Trace calls carry no prompt text, so an
// engine sees one token (BOS); their recorded prompt length says so too, or the cost models would plan for prompts
// that never come.
workloads::Workload trace_workload(int questions) {
  workloads::Workload w;
  w.name = "faults-trace";
  for (int k = 0; k < questions; ++k) {
    workloads::Question q;
    q.id = "f:" + std::to_string(k);
    q.trace_calls = {{"agent", 1, 10},
                     {"generate_candidate", 1, 20 + 5 * (k % 4)},
                     {"generate_candidate", 1, 30},
                     {"revise", 1, 20}};
    w.questions.push_back(q);
  }
  return w;
}

// What a run of workflows ended with: each workflow's last outcome and how many times it ended.
struct Ended {
  std::vector<agents::WorkflowOutcome> outcomes;
  std::vector<int> ends;
};

// Starts question k of `w` at start + k × gap_s (deadline budget_s later) and waits until every one has ended or
// limit_s passed, then a little longer, so that a second end of some workflow would be seen. Leftovers are
// cancelled; the handles are dropped on the loop.
Ended run_workflows(Runtime& rt, const workloads::Workload& w, agents::WorkflowFactory& factory, double gap_s,
                    double budget_s, double limit_s) {
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    Ended e;
    std::vector<std::unique_ptr<agents::Workflow>> handles;
  };
  const size_t n = w.questions.size();
  auto st = std::make_shared<State>();
  st->e.outcomes.resize(n);
  st->e.ends.assign(n, 0);
  st->handles.resize(n);
  const double start = rt.now() + 0.02;
  for (size_t k = 0; k < n; ++k) {
    const double at = start + gap_s * static_cast<double>(k);
    workloads::Arrival a{k + 1, k, at, at + budget_s};
    rt.post_at(at, [&rt, &w, &factory, st, a, k] {
      auto done = [st, k](const agents::WorkflowOutcome& o) {
        std::lock_guard lk(st->mu);
        st->e.outcomes[k] = o;
        st->e.ends[k]++;
        st->cv.notify_all();
      };
      st->handles[k] = factory.make(w.questions[k], a, rt, done, nullptr);
      st->handles[k]->start();
    });
  }
  {
    std::unique_lock lk(st->mu);
    st->cv.wait_for(lk, std::chrono::duration<double>(limit_s), [&] {
      return std::all_of(st->e.ends.begin(), st->e.ends.end(), [](int c) { return c > 0; });
    });
  }
  std::this_thread::sleep_for(std::chrono::milliseconds(150));
  std::promise<void> dropped;
  rt.post([st, &dropped] {
    for (auto& h : st->handles)
      if (h) h->cancel();
    st->handles.clear();
    dropped.set_value();
  });
  dropped.get_future().wait();
  std::lock_guard lk(st->mu);
  return st->e;
}

// Every call the runtime took ended exactly once, and no instance holds a queued or running call.
void check_released(Runtime& rt) {
  // A call's callback runs before its instance's state is republished in the same turn of the loop: wait for it.
  std::promise<void> turn;
  rt.post([&turn] { turn.set_value(); });
  turn.get_future().wait();
  auto st = rt.stats();
  CHECK(st.calls_ok + st.calls_failed + st.calls_cancelled == st.calls_submitted);
  auto calls = rt.calls();
  std::set<uint64_t> ids;
  for (const auto& c : calls) ids.insert(c.call_id);
  CHECK(ids.size() == calls.size());
  CHECK(calls.size() == st.calls_submitted);
  rapidjson::Document d;
  d.Parse(rt.status_json().c_str());
  REQUIRE_FALSE(d.HasParseError());
  for (const auto& i : d["instances"].GetArray()) {
    INFO("instance " << i["name"].GetString());
    CHECK(i["waiting"].GetUint64() == 0);
    CHECK(i["running"].GetUint64() == 0);
  }
}

scheduler::InstanceSpec engine_instance(const std::string& name, const std::string& model) {
  scheduler::InstanceSpec s;
  s.name = name;
  s.backend = scheduler::Backend::engine;
  s.model_file = model;
  s.device = "cpu";
  s.threads = 1;
  s.max_running = 8;
  return s;
}

// Submits `calls` at once and waits for all results (each callback must fire exactly once).
std::vector<agents::LlmResult> run_calls(Runtime& rt, std::vector<agents::LlmCall> calls, double limit_s = 20) {
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    std::vector<agents::LlmResult> results;
    std::vector<int> fired;
  };
  auto st = std::make_shared<State>();
  st->results.resize(calls.size());
  st->fired.assign(calls.size(), 0);
  std::vector<agents::LlmClient::Callback> cbs;
  for (size_t k = 0; k < calls.size(); ++k)
    cbs.push_back([st, k](const agents::LlmResult& r) {
      std::lock_guard lk(st->mu);
      st->results[k] = r;
      st->fired[k]++;
      st->cv.notify_all();
    });
  rt.llm().submit(std::move(calls), std::move(cbs));
  std::unique_lock lk(st->mu);
  st->cv.wait_for(lk, std::chrono::duration<double>(limit_s), [&] {
    return std::all_of(st->fired.begin(), st->fired.end(), [](int c) { return c > 0; });
  });
  lk.unlock();
  std::this_thread::sleep_for(std::chrono::milliseconds(50));
  lk.lock();
  for (size_t k = 0; k < st->fired.size(); ++k) {
    INFO("call " << k);
    CHECK(st->fired[k] == 1);
  }
  return st->results;
}

agents::LlmCall make_call(Runtime& rt, const std::string& prompt, int max_tokens, int prompt_tokens_hint,
                          int expected_output) {
  agents::LlmCall c;
  c.id = rt.next_call_id();
  c.workflow_id = 1;
  c.prompt = prompt;
  c.prompt_tokens = prompt_tokens_hint;
  c.max_output_tokens = max_tokens;
  c.expected_output_tokens = expected_output;
  return c;
}

}  // namespace

TEST_CASE("faults: an engine backend that throws fails only its batch; the calls move to the healthy instance and "
          "every workflow completes once",
          "[server][faults][concurrent]") {
  t2s::test::TinyModel tiny;
  const std::string model = tiny.dir.file("m.bin");
  scheduler::ClusterSpec cluster{"two-engines", {engine_instance("faulty", model), engine_instance("healthy", model)}};
  RuntimeOptions o;
  o.engine_tokenizer = tiny.dir.file("t.bin");
  o.unhealthy_s = 30;
  FaultyBackend* faulty = nullptr;
  o.wrap_engine_backend = [&faulty](size_t i, std::unique_ptr<engine::Backend> b) -> std::unique_ptr<engine::Backend> {
    if (i != 0) return b;
    auto f = std::make_unique<FaultyBackend>(std::move(b), 3, INT_MAX);  // dead from its fourth pass on
    faulty = f.get();
    return f;
  };
  Runtime rt(cluster, make_policy("rr-fcfs", cluster), o, nullptr);
  REQUIRE(faulty != nullptr);
  auto w = trace_workload(6);
  auto factory = agents::make_trace_factory(w);
  auto e = run_workflows(rt, w, *factory, 0.01, 60, 20);
  for (size_t k = 0; k < e.ends.size(); ++k) {
    INFO("workflow " << k << ": " << e.outcomes[k].error);
    CHECK(e.ends[k] == 1);
    CHECK(e.outcomes[k].completed);
    CHECK_FALSE(e.outcomes[k].failed);
  }
  CHECK(faulty->thrown.load() >= 1);
  auto st = rt.stats();
  CHECK(st.redispatched >= 1);
  CHECK(st.calls_ok == 24);
  for (const auto& c : rt.calls()) {
    CHECK(c.ok);
    if (c.attempts >= 2) CHECK(c.instance == 1);
  }
  check_released(rt);
  rt.stop();
}

TEST_CASE("faults: an engine instance whose backend throws once recovers: its runner thread survives, the failed "
          "calls run again and later calls are served there",
          "[server][faults][concurrent]") {
  t2s::test::TinyModel tiny;
  scheduler::ClusterSpec cluster{"one-engine", {engine_instance("flaky", tiny.dir.file("m.bin"))}};
  RuntimeOptions o;
  o.engine_tokenizer = tiny.dir.file("t.bin");
  o.unhealthy_s = 0.1;  // the only instance: its calls wait this long, then go back to it
  FaultyBackend* flaky = nullptr;
  o.wrap_engine_backend = [&flaky](size_t, std::unique_ptr<engine::Backend> b) -> std::unique_ptr<engine::Backend> {
    auto f = std::make_unique<FaultyBackend>(std::move(b), 2, 1);  // its third pass throws, the rest run
    flaky = f.get();
    return f;
  };
  Runtime rt(cluster, make_policy("rr-fcfs", cluster), o, nullptr);
  auto w = trace_workload(3);
  auto factory = agents::make_trace_factory(w);
  auto e = run_workflows(rt, w, *factory, 0.0, 60, 20);
  for (size_t k = 0; k < e.ends.size(); ++k) {
    INFO("workflow " << k << ": " << e.outcomes[k].error);
    CHECK(e.ends[k] == 1);
    CHECK(e.outcomes[k].completed);
  }
  CHECK(flaky->thrown.load() == 1);
  CHECK(rt.stats().redispatched >= 1);
  CHECK(rt.stats().calls_ok == 12);
  int retried = 0;
  for (const auto& c : rt.calls()) retried += c.attempts >= 2;
  CHECK(retried >= 1);
  // The same runner serves a new call after the fault.
  auto r = server::test::run_call(rt, "hello", 8);
  CHECK(r.ok);
  check_released(rt);
  rt.stop();
}

namespace {

// Six greedy calls on the tiny model and a 10-block pool (160 positions) that cannot hold them at once (they need
// about twice that), with each call's text in a roomy pool as the reference.
struct TightPool {
  t2s::test::TinyModel tiny;
  std::string model = tiny.dir.file("m.bin"), tok = tiny.dir.file("t.bin");
  std::vector<std::string> prompts = {"the cat sat",  "a dog ran far",  "one two three",
                                      "hello there", "blue sky above", "quiet river"};
  int max_tokens = 48;
  int pool_blocks = 10;
  std::vector<std::string> reference = server::test::embedded_texts(model, tok, prompts, max_tokens);
  //! Runtime options for one engine instance with that pool.
  RuntimeOptions options() const {
    RuntimeOptions o;
    o.engine_tokenizer = tok;
    o.engine_kv_mb =
        static_cast<double>(engine::kv_block_bytes(tiny.lm.model->config) * pool_blocks) / (1024.0 * 1024.0);
    return o;
  }
};

}  // namespace

TEST_CASE("faults: KV exhausted: calls that do not fit the pool together are preempted and recomputed to the same "
          "text; a call bigger than the pool fails at once naming it",
          "[server][faults][concurrent]") {
  TightPool pool;
  const auto& tiny = pool.tiny;
  const auto &model = pool.model, &tok = pool.tok;
  const auto& prompts = pool.prompts;
  const auto& reference = pool.reference;
  const int max_tokens = pool.max_tokens, pool_blocks = pool.pool_blocks;
  scheduler::ClusterSpec cluster{"tight", {engine_instance("tight", model)}};
  RuntimeOptions o = pool.options();
  PacedBackend* counter = nullptr;  // scale 0: counts the rows computed, no pacing
  o.wrap_engine_backend = [&counter](size_t, std::unique_ptr<engine::Backend> b) -> std::unique_ptr<engine::Backend> {
    auto p = std::make_unique<PacedBackend>(std::move(b), 0.0, 0.0, 0.0);
    counter = p.get();
    return p;
  };
  Runtime rt(cluster, make_policy("rr-fcfs", cluster), o, nullptr);
  rapidjson::Document d;
  d.Parse(rt.status_json().c_str());
  REQUIRE(d["instances"][0]["kv_total"].GetInt() == pool_blocks);

  // The runtime's belief (8 prompt + 4 output tokens each) admits them all; the engine finds out it cannot hold them.
  std::vector<agents::LlmCall> calls;
  for (const auto& p : prompts) calls.push_back(make_call(rt, p, max_tokens, 8, 4));
  auto res = run_calls(rt, calls);
  int positions = 0;
  for (size_t k = 0; k < res.size(); ++k) {
    INFO("call " << k << ": " << res[k].error);
    REQUIRE(res[k].ok);
    CHECK(res[k].text == reference[k]);  // preemption and recompute change nothing greedy decoding picks
    positions += res[k].prompt_tokens + res[k].output_tokens;
  }
  REQUIRE(positions > 16 * pool_blocks);  // they really did not fit together
  CHECK(counter->rows.load() > positions - static_cast<int64_t>(prompts.size()));  // more than once through: recompute

  // Bigger than the whole pool: a prompt of more positions than it holds is refused at admission, and a call that
  // outgrows it while generating alone fails there; neither hangs, neither is tried elsewhere.
  std::string long_prompt;
  while (rt.llm().count_tokens(long_prompt) <= 16 * pool_blocks) long_prompt += "lorem ipsum ";
  REQUIRE(rt.llm().count_tokens(long_prompt) < tiny.lm.model->config.max_seq_len);
  // A prompt whose greedy continuation (in a roomy pool) runs past the tight pool before the end of text.
  std::string grows;
  {
    scheduler::ClusterSpec roomy_cluster{"roomy", {engine_instance("roomy", model)}};
    RuntimeOptions ro;
    ro.engine_tokenizer = tok;
    Runtime roomy(roomy_cluster, make_policy("rr-fcfs", roomy_cluster), ro, nullptr);
    for (const char* p : {"the cat sat", "a", "b c", "once upon", "x y z", "lorem", "q", "hello"}) {
      auto r = server::test::run_call(roomy, p, 200);
      if (r.ok && r.prompt_tokens + r.output_tokens > 16 * pool_blocks + 8) {
        grows = p;
        break;
      }
    }
  }
  REQUIRE_FALSE(grows.empty());
  auto t0 = SteadyClock::now();
  auto big = run_calls(rt, {make_call(rt, long_prompt, 8, 8, 4), make_call(rt, grows, 200, 8, 4)}, 10);
  CHECK(std::chrono::duration<double>(SteadyClock::now() - t0).count() < 3.0);
  CHECK_FALSE(big[0].ok);
  CHECK_FALSE(big[0].cancelled);
  CHECK(big[0].error.find("more KV blocks than the pool holds (10)") != std::string::npos);
  CHECK_FALSE(big[1].ok);
  CHECK_FALSE(big[1].cancelled);
  CHECK(big[1].error.find("KV cache exhausted") != std::string::npos);
  CHECK(big[1].error.find("pool's 10 blocks") != std::string::npos);
  for (const auto& c : rt.calls()) CHECK(c.attempts == 1);

  // What the failed calls held is free again: a call that needs almost the whole pool runs.
  auto last = run_calls(rt, {make_call(rt, prompts[0], max_tokens, 8, 4)});
  CHECK(last[0].ok);
  CHECK(last[0].text == reference[0]);
  d.Parse(rt.status_json().c_str());
  CHECK(d["instances"][0]["kv_used"].GetInt() == 0);
  check_released(rt);
  rt.stop();
}

TEST_CASE("faults: KV exhausted: the engine takes KV back from the call the local policy names (the newest by "
          "default, the longest admitted when the policy says so); every call ends with its reference text",
          "[server][faults][concurrent][cluster-core]") {
  TightPool pool;
  for (const bool oldest : {false, true}) {
    INFO((oldest ? "policy names the longest admitted" : "default victim"));
    scheduler::ClusterSpec cluster{"tight", {engine_instance("tight", pool.model)}};
    RuntimeOptions o = pool.options();
    auto audit = std::make_shared<t2s::test::PolicyAudit>();
    if (oldest)
      audit->victim_rule = [](const scheduler::InstanceState& s) {
        std::vector<int> order;
        for (int r = 0; r < static_cast<int>(s.running.size()); ++r) order.push_back(r);
        return order;
      };
    Runtime rt(cluster, t2s::test::audited(make_policy("rr-fcfs", cluster), audit), o, nullptr);
    std::vector<agents::LlmCall> calls;
    for (const auto& p : pool.prompts) calls.push_back(make_call(rt, p, pool.max_tokens, 8, 4));
    auto res = run_calls(rt, calls);
    for (size_t k = 0; k < res.size(); ++k) {
      INFO("call " << k << ": " << res[k].error);
      REQUIRE(res[k].ok);
      CHECK(res[k].text == pool.reference[k]);
    }
    int total = 0;
    for (const auto& c : rt.calls()) total += c.preemptions;
    CHECK(total > 0);
    const auto st = rt.stats();
    CHECK(st.kv_preemptions == static_cast<uint64_t>(total));
    CHECK(st.kv_preemptions_unnamed == 0);  // each time, the first running call of the policy's order
    for (const auto& p : audit->problems) FAIL_CHECK(p);
    check_released(rt);
    rt.stop();
  }
}

TEST_CASE("faults: an engine instance slowed 5x ends with a clearly smaller share of the calls than when it is not "
          "slowed; every workflow completes once",
          "[server][faults][concurrent]") {
  t2s::test::TinyModel tiny;
  const std::string model = tiny.dir.file("m.bin");
  auto share_of_first = [&](double slow) {
    scheduler::ClusterSpec cluster{"two-engines", {engine_instance("a", model), engine_instance("b", model)}};
    RuntimeOptions o;
    o.engine_tokenizer = tiny.dir.file("t.bin");
    o.refit_every = 8;
    o.wrap_engine_backend = [slow](size_t i, std::unique_ptr<engine::Backend> b) -> std::unique_ptr<engine::Backend> {
      return std::make_unique<PacedBackend>(std::move(b), i == 0 ? slow : 1.0, 0.002, 0.00002);
    };
    Runtime rt(cluster, make_policy("t2s", cluster), o, nullptr);
    auto w = trace_workload(16);
    auto factory = agents::make_trace_factory(w);
    auto e = run_workflows(rt, w, *factory, 0.03, 60, 20);
    for (size_t k = 0; k < e.ends.size(); ++k) {
      INFO("slow " << slow << " workflow " << k << ": " << e.outcomes[k].error);
      CHECK(e.ends[k] == 1);
      CHECK(e.outcomes[k].completed);
      CHECK_FALSE(e.outcomes[k].failed);
    }
    auto calls = rt.calls();
    CHECK(calls.size() == 64);
    double on_first = 0;
    for (const auto& c : calls) on_first += c.instance == 0;
    check_released(rt);
    rt.stop();
    return on_first / static_cast<double>(std::max<size_t>(1, calls.size()));
  };
  const double even = share_of_first(1.0);
  const double slowed = share_of_first(5.0);
  INFO("share of instance a: " << even << " at equal speed, " << slowed << " when 5x slower");
  // At equal speed the policy packs calls onto either instance (a gets 0.5–1.0 of them); 5× slower, a gets a few of
  // the first calls, before its measured iterations raise its estimates (measured here: 0.06–0.08).
  CHECK(even > 0.3);
  CHECK(slowed < 0.25);
  CHECK(slowed < 0.6 * even);
}

namespace {

// The value of the Prometheus sample `series` (name and labels exactly as rendered) on `/metrics`; -1 when absent.
double metric_value(uint16_t port, const std::string& series) {
  HttpClient h("127.0.0.1", port);
  auto r = h.request("GET", "/metrics");
  size_t at = 0;
  while ((at = r.body.find(series + " ", at)) != std::string::npos) {
    if (at == 0 || r.body[at - 1] == '\n') return std::stod(r.body.substr(at + series.size() + 1));
    at += series.size();
  }
  return -1;
}

// Opens a TCP connection to 127.0.0.1:port and sends `bytes`; returns the socket.
int send_raw(uint16_t port, const std::string& bytes) {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  REQUIRE(fd >= 0);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  REQUIRE(::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
  REQUIRE(::send(fd, bytes.data(), bytes.size(), MSG_NOSIGNAL) == static_cast<ssize_t>(bytes.size()));
  return fd;
}

}  // namespace

TEST_CASE("faults: engine-serve stops generating for a non-streamed request whose client disconnected; its one "
          "batch slot serves the next request",
          "[server][faults][concurrent]") {
  t2s::test::TempDir dir("t2s-faults-es");
  // A random model with a long context, big enough that 2,000 tokens take seconds. Its classifier is its embedding
  // table (shared): zeroing the rows of BOS (1) and EOS (2), which follow the 28-byte header, gives them logit 0
  // below the largest of the random others, so greedy generation never stops early.
  const int dim = 192;
  engine::write_random_llama2c_checkpoint(dir.file("m.bin"), {dim, 512, 4, 6, 2, 300, 2048, true}, 11, 0.3f);
  {
    std::fstream f(dir.file("m.bin"), std::ios::in | std::ios::out | std::ios::binary);
    const std::vector<float> zeros(2 * dim, 0.0f);
    f.seekp(28 + 1 * dim * static_cast<std::streamoff>(sizeof(float)));
    f.write(reinterpret_cast<const char*>(zeros.data()), static_cast<std::streamsize>(zeros.size() * sizeof(float)));
    REQUIRE(f.good());
  }
  engine::write_synthetic_llama2c_vocab(dir.file("t.bin"), 300);
  EngineServiceOptions eo;
  eo.model_file = dir.file("m.bin");
  eo.tokenizer_file = dir.file("t.bin");
  eo.max_sequences = 1;  // the next request can only run once the abandoned one has left its slot
  EngineService svc(eo);
  HttpServer http(ServerOptions{});
  svc.attach(http);
  http.start();
  const uint16_t port = http.port();
  const int max_tokens = 2000;
  const std::string body = R"({"prompt":"the cat sat","max_tokens":)" + std::to_string(max_tokens) + "}";
  int fd = send_raw(port, "POST /v1/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                          "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body);
  // Let it generate a while, then leave without reading anything.
  auto until = SteadyClock::now() + std::chrono::seconds(5);
  while (metric_value(port, "t2s_engine_iteration_tokens_total") < 50 && SteadyClock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  REQUIRE(metric_value(port, "t2s_engine_iteration_tokens_total") >= 50);
  ::close(fd);
  until = SteadyClock::now() + std::chrono::seconds(3);
  while (metric_value(port, R"(t2s_engine_requests_total{outcome="cancelled"})") < 1 && SteadyClock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(metric_value(port, R"(t2s_engine_requests_total{outcome="cancelled"})") == 1);
  const double tokens = metric_value(port, "t2s_engine_iteration_tokens_total");
  CHECK(tokens < max_tokens / 2);  // stopped well before max_tokens
  std::this_thread::sleep_for(std::chrono::milliseconds(200));
  CHECK(metric_value(port, "t2s_engine_iteration_tokens_total") == tokens);  // and stays stopped
  // The slot is free: a new request is answered at once.
  HttpClient h("127.0.0.1", port);
  auto t0 = SteadyClock::now();
  auto r = h.request("POST", "/v1/completions", R"({"prompt":"hello","max_tokens":4})");
  CHECK(r.status == 200);
  CHECK(std::chrono::duration<double>(SteadyClock::now() - t0).count() < 2.0);
  CHECK(metric_value(port, R"(t2s_engine_requests_total{outcome="ok"})") == 1);
  CHECK(metric_value(port, "t2s_engine_open_requests") == 0);
  http.stop();
  svc.stop();
}

namespace {

// A small shop database with enough rows to span many pages.
void build_shop(const std::string& path) {
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open(path.c_str(), &db) == SQLITE_OK);
  REQUIRE(sqlite3_exec(db, "CREATE TABLE orders(id INTEGER PRIMARY KEY, amount REAL, note TEXT); "
                           "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 300) "
                           "INSERT INTO orders(amount, note) SELECT x * 1.5, printf('%100d', x) FROM c;",
                       nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(db);
}

// The tiny random model as `t2s serve --cluster local --model FILE` takes it (tokenizer beside it).
std::string write_serve_model(const t2s::test::TempDir& dir) {
  std::filesystem::create_directories(dir.path() / "model");
  std::string model = dir.file("model/m.bin");
  engine::write_random_llama2c_checkpoint(model, {48, 96, 2, 6, 2, 300, 256, false}, 3, 0.3f);
  engine::write_synthetic_llama2c_vocab(dir.file("model/tok512.bin"), 300);
  return model;
}

// Workflows started on a QuestionService, with how many times each ended.
struct Asked {
  std::mutex mu;
  std::condition_variable cv;
  std::map<std::string, agents::WorkflowOutcome> outcome;
  std::map<std::string, int> ends;

  void ask(QuestionService& svc, const std::string& db, const std::string& question) {
    AskFrame a;
    a.id = db;
    a.db = db;
    a.question = question;
    {
      std::lock_guard lk(mu);
      ends[db] = 0;
    }
    svc.start(svc.next_workflow_id(), a, nullptr, [this, db](const agents::WorkflowOutcome& o) {
      std::lock_guard lk(mu);
      outcome[db] = o;
      ends[db]++;
      cv.notify_all();
    });
  }
  // Waits until every asked workflow ended (then a little longer, to see a second end).
  void wait(double limit_s) {
    {
      std::unique_lock lk(mu);
      cv.wait_for(lk, std::chrono::duration<double>(limit_s), [&] {
        return std::all_of(ends.begin(), ends.end(), [](const auto& e) { return e.second > 0; });
      });
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(150));
  }
};

}  // namespace

TEST_CASE("faults: serve --db-dir with a truncated, a deleted and a locked database: each question ends once, the "
          "broken ones failing with the file's problem; the rest are served; nothing is written to the folder",
          "[server][faults][concurrent]") {
  namespace fs = std::filesystem;
  t2s::test::TempDir dir("t2s-faults-db");
  fs::create_directories(dir.path() / "dbs");
  const auto db = [&](const std::string& name) { return dir.file("dbs/" + name + ".sqlite"); };
  build_shop(db("shop"));
  std::string bytes;
  {
    std::ifstream in(db("shop"), std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  REQUIRE(bytes.size() > 8 * 4096);
  std::ofstream(db("cut"), std::ios::binary) << bytes.substr(0, bytes.size() / 2);  // a copy that stopped half way
  fs::copy_file(db("shop"), db("gone"));
  fs::copy_file(db("shop"), db("locked"));
  std::ofstream(db("junk"), std::ios::binary) << std::string(8192, '\x5a');  // not SQLite at all: not served
  const std::string model = write_serve_model(dir);
  auto before = t2s::test::folder_state(dir.path() / "dbs");

  ServeConfig cfg;
  cfg.db_dir = dir.file("dbs");
  cfg.cache_dir = dir.file("cache");
  cfg.cluster = "local";
  cfg.model = model;
  cfg.deadline_ms = 1500;
  QuestionService svc(cfg);
  CHECK(svc.databases() == std::vector<std::string>{"cut", "gone", "locked", "shop"});
  fs::remove(db("gone"));  // deleted while the server runs
  before.erase(db("gone"));
  sqlite3* writer = nullptr;  // another process's write transaction, holding the file's exclusive lock
  REQUIRE(sqlite3_open(db("locked").c_str(), &writer) == SQLITE_OK);
  REQUIRE(sqlite3_exec(writer, "BEGIN EXCLUSIVE; INSERT INTO orders(amount) VALUES (1e9);", nullptr, nullptr,
                       nullptr) == SQLITE_OK);

  Asked asked;
  for (const char* name : {"cut", "gone", "locked", "shop"}) asked.ask(svc, name, "What is the total amount of orders?");
  asked.wait(20);
  for (const char* name : {"cut", "gone", "locked", "shop"}) {
    const auto& o = asked.outcome[name];
    INFO(name << ": error '" << o.error << "', sql_error '" << o.sql_error << "'");
    CHECK(asked.ends[name] == 1);
    const std::string why = o.error + " " + o.sql_error;
    if (std::string(name) == "cut" || std::string(name) == "gone") {
      CHECK(o.failed);
      CHECK(o.llm_calls == 0);  // refused before any model call
      CHECK(why.find(name) != std::string::npos);  // the error names the file
      CHECK(why.find(std::string(name) == "cut" ? "malformed" : "does not exist") != std::string::npos);
    } else {
      CHECK(o.llm_calls > 0);  // served: the schema was read and the model asked
      for (const char* db_problem : {"malformed", "locked", "busy", "does not exist", "cannot open"})
        CHECK(why.find(db_problem) == std::string::npos);
    }
  }
  REQUIRE(sqlite3_exec(writer, "ROLLBACK", nullptr, nullptr, nullptr) == SQLITE_OK);
  sqlite3_close(writer);
  // The service goes on: a later question on a good database is served.
  Asked again;
  again.ask(svc, "shop", "How many orders are there?");
  again.wait(20);
  CHECK(again.ends["shop"] == 1);
  CHECK(again.outcome["shop"].llm_calls > 0);
  check_released(svc.runtime());
  svc.stop();
  CHECK(t2s::test::folder_state(dir.path() / "dbs") == before);
}

TEST_CASE("faults: serve: a WebSocket client gone mid-workflow has its workflow and calls cancelled; another client "
          "is served meanwhile; metrics count it",
          "[server][faults][concurrent]") {
  namespace fs = std::filesystem;
  t2s::test::TempDir dir("t2s-faults-ws");
  fs::create_directories(dir.path() / "dbs");
  build_shop(dir.file("dbs/shop.sqlite"));
  ServeConfig cfg;
  cfg.db_dir = dir.file("dbs");
  cfg.cache_dir = dir.file("cache");
  cfg.cluster = "local";
  cfg.model = write_serve_model(dir);
  cfg.deadline_ms = 1500;
  // A slower engine (2 ms per iteration, a call ~0.15 s), so that a workflow is still running when its client leaves.
  // (The agent goes on past its deadline until it has an executed candidate or has used its revise rounds, so the
  // other client's workflow takes all its ~15 calls with this model, whose SQL never runs.)
  cfg.runtime.wrap_engine_backend = [](size_t, std::unique_ptr<engine::Backend> b) -> std::unique_ptr<engine::Backend> {
    return std::make_unique<PacedBackend>(std::move(b), 1.0, 0.002, 0.0);
  };
  QuestionService svc(cfg);
  auto api = std::make_shared<QuestionApi>(svc, QuestionApiOptions{});
  HttpServer http(ServerOptions{});
  attach_serve_routes(http, svc, api);
  http.start();
  auto frame_type = [](const std::string& f) {
    rapidjson::Document d;
    d.Parse(f.c_str());
    return d.HasParseError() || !d.HasMember("type") ? std::string() : std::string(d["type"].GetString());
  };
  uint64_t leaver_workflow = 0;  // from its "accepted" frame
  {
    WsClient leaver("127.0.0.1", http.port(), "/ws");
    REQUIRE(leaver.send(R"({"type":"ask","id":"a","db":"shop","question":"What is the total amount?",)"
                        R"("deadline_ms":20000})"));
    bool started = false;  // its first stage began: calls are queued or running
    auto until = SteadyClock::now() + std::chrono::seconds(5);
    while (!started && SteadyClock::now() < until)
      if (auto f = leaver.receive(0.2)) {
        started = frame_type(*f) == "stage";
        rapidjson::Document d;
        d.Parse(f->c_str());
        if (!d.HasParseError() && d.HasMember("workflow") && d["workflow"].IsUint64())
          leaver_workflow = d["workflow"].GetUint64();
      }
    REQUIRE(started);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
  }  // gone, mid-workflow
  const double gone_at = svc.now();
  REQUIRE(leaver_workflow != 0);
  WsClient stayer("127.0.0.1", http.port(), "/ws");
  REQUIRE(stayer.send(R"({"type":"ask","id":"b","db":"shop","question":"How many orders are there?"})"));
  int terminal = 0;
  auto until = SteadyClock::now() + std::chrono::seconds(8);
  while (SteadyClock::now() < until && terminal == 0)
    if (auto f = stayer.receive(0.2); f && (frame_type(*f) == "result" || frame_type(*f) == "error")) ++terminal;
  CHECK(terminal == 1);
  CHECK_FALSE(stayer.closed());  // its frames were well-formed UTF-8, whatever bytes the model wrote
  for (int i = 0; i < 3; ++i)  // and nothing more for it
    if (auto f = stayer.receive(0.1); f && (frame_type(*f) == "result" || frame_type(*f) == "error")) ++terminal;
  CHECK(terminal == 1);
  until = SteadyClock::now() + std::chrono::seconds(3);
  while (api->stats().cancelled < 1 && SteadyClock::now() < until)
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  CHECK(api->stats().cancelled == 1);
  // Its calls were stopped, not run to the end: none of them released after the server saw it leave (0.5 s to
  // notice, on a loaded machine). Whether one was caught queued or running (calls_cancelled) depends on timing: the
  // cancel may land between two stages, when nothing of it is in flight.
  size_t released_after = 0;
  for (const auto& c : svc.runtime().calls())
    if (c.workflow_id == leaver_workflow && c.released_s > gone_at + 0.5) ++released_after;
  CHECK(released_after == 0);
  CHECK(metric_value(http.port(), R"(t2s_questions_total{outcome="cancelled"})") == 1);
  HttpClient h("127.0.0.1", http.port());
  CHECK(h.request("GET", "/healthz").body == "ok\n");
  check_released(svc.runtime());
  stayer.close();
  http.stop();
  api->cancel_all();
  svc.stop();
}
