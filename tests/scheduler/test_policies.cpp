// Unit checks of the hexgen, autellix-plas and t2s formulas on hand-built cluster states.
#include <catch2/catch.hpp>

#include <cmath>
#include <deque>

#include "scheduler/autellix.hpp"
#include "scheduler/hexgen.hpp"
#include "scheduler/policy.hpp"
#include "scheduler/t2s_policy.hpp"

using namespace t2s;
using namespace t2s::scheduler;

namespace {

agents::LlmCall make_call(uint64_t id, int prompt, int out, double deadline = 1e18) {
  agents::LlmCall c;
  c.id = id;
  c.workflow_id = id;
  c.prompt_tokens = prompt;
  c.expected_output_tokens = out;
  c.max_output_tokens = out;
  c.deadline_s = deadline;
  return c;
}

// hetero-paper: 0, 1 = A100×4; 2 = A6000×8; 3 = L40S×8 (all idle).
struct Cluster {
  ClusterSpec spec = cluster_preset("hetero-paper");
  std::vector<CostModel> costs;
  std::vector<InstanceState> insts;
  std::vector<HeldCall> held;
  std::deque<agents::LlmCall> owned;  // calls made by start_new (a deque keeps their addresses)
  Cluster() {
    for (auto& s : spec.instances) costs.emplace_back(s);
    insts.resize(spec.instances.size());
    for (size_t i = 0; i < insts.size(); ++i) {
      insts[i].index = i;
      insts[i].spec = &spec.instances[i];
      insts[i].cost = &costs[i];
      insts[i].kv_blocks_total = costs[i].kv_capacity_blocks();
    }
  }
  ClusterView view(double now = 0) const { return ClusterView{now, &insts, &held}; }
  // Queues `c` on instance i as the simulator does (keeping the O(1) load counters consistent).
  void enqueue(size_t i, const agents::LlmCall& c, double t = 0) {
    insts[i].waiting.push_back({&c, t, false});
    insts[i].waiting_prompt_tokens += c.prompt_tokens;
    insts[i].waiting_output_tokens += c.expected_output_tokens;
  }
  // Puts `c` in instance i's running batch with `prefilled` prompt and `decoded` output tokens done (counters too).
  void start(size_t i, const agents::LlmCall& c, int prefilled, int decoded) {
    insts[i].running.push_back({&c, 0, prefilled, decoded, 0, 0, 0});
    insts[i].running_context += prefilled + decoded;
    insts[i].running_prefill_left += c.prompt_tokens - prefilled;
    insts[i].running_decode_left += std::max(0, c.expected_output_tokens - decoded);
  }
  // Makes `n` calls (ids from `first_id`, `prompt` and `out` tokens) and starts each on instance i.
  void start_new(size_t i, int n, uint64_t first_id, int prompt, int out, int prefilled, int decoded) {
    for (int c = 0; c < n; ++c) {
      owned.push_back(make_call(first_id + static_cast<uint64_t>(c), prompt, out));
      start(i, owned.back(), prefilled, decoded);
    }
  }
};

int dispatch_one(GlobalDispatcher& d, const agents::LlmCall& c, const ClusterView& v) {
  const agents::LlmCall* calls[] = {&c};
  std::vector<DispatchDecision> out(1);
  d.dispatch(calls, v, out);
  return out[0].instance;
}

}  // namespace

TEST_CASE("registry has the hexgen family, autellix-plas and t2s", "[scheduler]") {
  auto reg = default_policy_registry();
  ClusterSpec c = cluster_preset("hetero-paper");
  PolicyContext ctx;
  ctx.cluster = &c;
  for (const char* name : {"hexgen", "rr-urgency", "balanced-fcfs", "autellix-plas", "t2s"}) {
    INFO(name);
    REQUIRE(reg.has(name));
    Policy p = reg.make(name, ctx);
    CHECK(p.local.size() == c.instances.size());
  }
}

TEST_CASE("call-time profile matches the cost model's standalone latency", "[scheduler]") {
  Cluster k;
  for (size_t i = 0; i < k.costs.size(); ++i) {
    const auto prof = profile_call_time(k.costs[i]);
    // Linear in lengths by construction; the cost model's own standalone estimate is the reference.
    for (auto [p, o] : {std::pair{11748, 678}, {5963, 79}, {300, 10}}) {
      const double ref = k.costs[i].standalone_s(p, o, 0, k.costs[i].default_chunk_tokens());
      INFO(k.spec.instances[i].name << " " << p << "/" << o << ": " << prof.seconds(p, o) << " vs " << ref);
      CHECK(std::abs(prof.seconds(p, o) / ref - 1) < 0.15);
    }
  }
}

TEST_CASE("hexgen: alpha = 1 picks the fastest GPU, alpha = 0 the shortest live queue", "[scheduler]") {
  Cluster k;
  // Both A100s carry a backlog; the A6000 and L40S are idle.
  std::vector<agents::LlmCall> backlog;
  for (int i = 0; i < 6; ++i) backlog.push_back(make_call(100 + i, 8000, 300));
  for (int i = 0; i < 6; ++i) k.enqueue(i % 2, backlog[i]);
  const auto c = make_call(1, 6000, 100);
  HexgenDispatcher fast(1.0), queue(0.0), mid(0.5);
  CHECK(dispatch_one(fast, c, k.view()) == 0);   // A100 regardless of its queue
  CHECK(dispatch_one(queue, c, k.view()) == 2);  // first idle instance
  // α = 0.5 minimises queue + compute, i.e. the earliest completion by the static profile.
  double best = 1e18;
  int expect = -1;
  for (size_t j = 0; j < k.insts.size(); ++j) {
    const double t = live_queue_s(k.insts[j], 0) + profile_call_time(k.costs[j]).seconds(6000, 100);
    if (t < best) best = t, expect = static_cast<int>(j);
  }
  CHECK(dispatch_one(mid, c, k.view()) == expect);
  // The live queue shrinks when work completes (unlike a cumulative counter): an emptied A100 wins again.
  for (auto& i : k.insts) i.waiting.clear(), i.waiting_prompt_tokens = i.waiting_output_tokens = 0;
  CHECK(dispatch_one(mid, c, k.view()) == 0);
  // The published reciprocal form agrees at the extremes.
  HexgenDispatcher fast_r(1.0, 1), queue_r(0.0, 1);
  CHECK(dispatch_one(fast_r, c, k.view()) == 0);
}

TEST_CASE("hexgen: urgency = exec time minus remaining slack of the call's budget share", "[scheduler]") {
  Cluster k;
  UrgencyLocal u;
  const auto prof = profile_call_time(k.costs[0]);
  auto a = make_call(1, 300, 10, 100.0);  // short call, all budget left, nothing after it
  auto b = make_call(2, 300, 10, 100.0);  // same call, but 60 s of the workflow remain after it
  b.remaining_mean_s = 60;
  auto c = make_call(3, 300, 10, 1e18);   // no deadline
  const double e = prof.seconds(300, 10);
  // Hand computation: share = budget·e/(e+R); urgency = e − (released + share − now).
  CHECK(u.urgency(k.insts[0], a, 5.0) == Approx(e - (100.0 - 5.0)));
  CHECK(u.urgency(k.insts[0], b, 5.0) == Approx(e - (100.0 * e / (e + 60.0) - 5.0)));
  k.enqueue(0, c, 0.0);
  k.enqueue(0, a, 1.0);
  k.enqueue(0, b, 2.0);
  CHECK(u.next(k.insts[0], 5.0) == 2);  // b: its share of the budget is nearly used up
  k.insts[0].waiting.erase(k.insts[0].waiting.begin() + 2);
  CHECK(u.next(k.insts[0], 5.0) == 1);  // then a; the deadline-free call last
  k.insts[0].waiting.erase(k.insts[0].waiting.begin() + 1);
  CHECK(u.next(k.insts[0], 5.0) == 0);
  k.insts[0].waiting.clear();
  CHECK(u.next(k.insts[0], 5.0) == -1);
}

TEST_CASE("autellix-plas: least attained service of the program first, locality when it is cheap", "[scheduler]") {
  Cluster k;
  auto service = std::make_shared<AttainedService>();
  PlasDispatcher d(service, 0.2);
  PlasLocal local(service);
  auto a = make_call(1, 300, 10), b = make_call(2, 300, 10), c = make_call(3, 300, 10);
  c.arrival_s = -1;  // an older program
  auto finished = [&](const agents::LlmCall& call, double seconds, size_t inst) {
    agents::LlmResult r;
    r.started_s = 0;
    r.finished_s = seconds;
    PolicyEvent e;
    e.kind = PolicyEvent::Kind::call_finished;
    e.call = &call;
    e.result = &r;
    e.instance = inst;
    d.observe(e);
  };
  finished(a, 5.0, 3);
  finished(b, 2.0, 3);
  finished(c, 2.0, 3);
  k.enqueue(0, a);
  k.enqueue(0, b);
  k.enqueue(0, c);
  CHECK(local.next(k.insts[0], 0) == 2);  // b and c tie at 2 s; c's program arrived first
  PolicyEvent done;
  done.kind = PolicyEvent::Kind::workflow_finished;
  done.workflow_id = 1;
  d.observe(done);
  CHECK(service->get(1) == 0.0);
  CHECK(local.next(k.insts[0], 0) == 0);  // a's record is gone: 0 s attained
  // Locality: a short call of workflow 2 (last ran on the idle L40S) stays there, although an A100 is faster,
  // while the gap is within 20%; with the A100s far ahead on a long call it leaves.
  k.insts[0].waiting.clear();
  k.insts[0].waiting_prompt_tokens = k.insts[0].waiting_output_tokens = 0;
  for (int prompt : {200, 2000, 12000}) {
    auto call = make_call(4, prompt, 20);
    call.workflow_id = 2;
    const double best = k.costs[0].estimate_completion_s(call, k.insts[0], 0);
    const double home = k.costs[3].estimate_completion_s(call, k.insts[3], 0);
    INFO(prompt << ": A100 " << best << " s, L40S " << home << " s");
    CHECK(dispatch_one(d, call, k.view()) == (home <= 1.2 * best ? 3 : 0));
    if (prompt == 12000) CHECK(home > 1.2 * best);  // a long call leaves its home for the fast GPU
  }
}

TEST_CASE("t2s: siblings of a stage spread over the fast instances; ablation stacks them", "[scheduler]") {
  Cluster k;
  auto shared = std::make_shared<T2sShared>();
  T2sParams p;
  T2sDispatcher d(p, shared);
  auto a = make_call(1, 12000, 700), b = make_call(2, 12000, 700);
  const agents::LlmCall* calls[] = {&a, &b};
  std::vector<DispatchDecision> out(2);
  d.dispatch(calls, k.view(), out);
  CHECK(((out[0].instance == 0 && out[1].instance == 1) || (out[0].instance == 1 && out[1].instance == 0)));
  T2sParams solo = p;
  solo.stage = false;
  T2sDispatcher d2(solo, std::make_shared<T2sShared>());
  d2.dispatch(calls, k.view(), out);
  CHECK(out[0].instance == out[1].instance);  // placed independently, both see the same idle best instance
}

TEST_CASE("t2s: prefix affinity routes to where the prefix lives, when that wins", "[scheduler]") {
  Cluster k;
  auto c = make_call(1, 9000, 50);
  c.prefix_id = 77;
  c.prefix_tokens = 8000;
  k.insts[1].prefix_cache.insert(77, 8000, 500, 0.0);
  k.insts[1].prefix_cache.release(77);
  T2sParams p;
  T2sDispatcher with(p, std::make_shared<T2sShared>());
  CHECK(dispatch_one(with, c, k.view()) == 1);
  // The reference: the cached prefix saves 8000 tokens of prefill on instance 1.
  CHECK(with.estimate(c, k.insts[1], 0) < with.estimate(c, k.insts[0], 0));
  p.affinity = false;
  T2sDispatcher without(p, std::make_shared<T2sShared>());
  CHECK(dispatch_one(without, c, k.view()) == 0);
}

TEST_CASE("t2s: least laxity first, hopeless calls demoted (admission control)", "[scheduler]") {
  Cluster k;
  T2sParams p;
  auto shared = std::make_shared<T2sShared>();
  T2sLocal local(p, shared, 0);
  const auto prof = profile_call_time(k.costs[0]);
  const double e = prof.seconds(300, 10);
  auto hopeless = make_call(1, 300, 10, 10.0);  // deadline at 10 s, 30 s of work remain after it
  hopeless.remaining_mean_s = hopeless.remaining_p90_s = 30;
  auto tight = make_call(2, 300, 10, 40.0);     // 20 s left after it: laxity 40 − e − 20 − now
  tight.remaining_mean_s = tight.remaining_p90_s = 20;
  auto loose = make_call(3, 300, 10, 100.0);
  k.enqueue(0, loose, 0);
  k.enqueue(0, tight, 0);
  k.enqueue(0, hopeless, 0);
  const double now = 1.0;
  CHECK(laxity_key(hopeless, e, now, p).hopeless);
  CHECK_FALSE(laxity_key(tight, e, now, p).hopeless);
  CHECK(laxity_key(tight, e, now, p).latest_start == Approx(40.0 - e - 20.0));
  CHECK(local.next(k.insts[0], now) == 1);  // tight first; the hopeless one (least laxity of all) waits
  T2sParams no_ac = p;
  no_ac.admission = false;
  T2sLocal lax(no_ac, shared, 0);
  CHECK(lax.next(k.insts[0], now) == 2);   // plain least laxity serves the hopeless call first
  // Remaining work is distribution-aware: q blends toward the p90.
  auto spread = make_call(4, 300, 10, 100.0);
  spread.remaining_mean_s = 10;
  spread.remaining_p90_s = 30;
  T2sParams q1 = p;
  q1.remaining_q = 1.0;
  CHECK(laxity_key(spread, e, 0, p).latest_start == Approx(100.0 - e - 20.0));
  CHECK(laxity_key(spread, e, 0, q1).latest_start == Approx(100.0 - e - 30.0));
}

TEST_CASE("t2s: online speed factors move placement away from a slowed instance", "[scheduler]") {
  Cluster k;
  PolicyContext ctx;
  ctx.cluster = &k.spec;
  Policy pol = default_policy_registry().make("t2s", ctx);
  auto c = make_call(1, 6000, 100);
  CHECK(dispatch_one(*pol.dispatcher, c, k.view()) == 0);
  // Instance 0 and 1 run 3× slower than their model says.
  for (size_t i : {0, 1}) {
    pol.local[i]->next(k.insts[i], 0);  // binds the local policy to its cost model (empty queue)
    IterationShape s{2048, 2048.0 * 1024, 0, 0};
    PolicyEvent e;
    e.kind = PolicyEvent::Kind::iteration;
    e.instance = i;
    e.shape = &s;
    e.iteration_s = 3.0 * k.costs[i].iteration_s(s);
    for (int n = 0; n < 300; ++n) pol.local[i]->observe(e);
  }
  const int moved = dispatch_one(*pol.dispatcher, c, k.view());
  CHECK((moved == 2 || moved == 3));
  pol.reset();
  CHECK(dispatch_one(*pol.dispatcher, c, k.view()) == 0);
}

TEST_CASE("t2s: prefill under a chunk cap is stretched by the decode steps it interleaves with", "[scheduler]") {
  Cluster k;
  auto decoding = make_call(9, 500, 400);
  k.insts[0].running.push_back({&decoding, 0, 500, 10, 0, 0, 0});
  k.insts[0].running_context = 510;
  auto ahead = make_call(2, 3000, 20, 5.0);  // more urgent: admitted before the probe
  k.enqueue(0, ahead, 0);
  auto probe = make_call(1, 2000, 20, 1e6);
  T2sParams p;
  T2sDispatcher with(p, std::make_shared<T2sShared>());
  p.chunk_wait = false;
  T2sDispatcher without(p, std::make_shared<T2sShared>());
  // Reference, independent of the dispatcher: chunk = (step_stretch − 1)·step/ppt, so each chunk of prefill
  // carries one decode step of the running call and the prefill time doubles; the decode part is unchanged.
  const auto prof = profile_call_time(k.costs[0]);
  const double step = k.costs[0].decode_step_s(1, 510);
  const double chunk = std::max(static_cast<double>(T2sParams{}.chunk_floor),
                                (T2sParams{}.step_stretch - 1.0) * step / prof.prefill_per_token_s);
  const double stretch = 1.0 + step / (chunk * prof.prefill_per_token_s);
  REQUIRE(stretch == Approx(2.0));
  const double extra = (stretch - 1.0) * (3000 + 2000) * prof.prefill_per_token_s;
  CHECK(with.estimate(probe, k.insts[0], 0) - without.estimate(probe, k.insts[0], 0) == Approx(extra).epsilon(1e-9));
  // No running decode: nothing to interleave with, the two estimates agree.
  k.insts[1].waiting = k.insts[0].waiting;
  k.insts[1].waiting_prompt_tokens = k.insts[0].waiting_prompt_tokens;
  CHECK(with.estimate(probe, k.insts[1], 0) == Approx(without.estimate(probe, k.insts[1], 0)));
}

TEST_CASE("t2s offload_home: a workflow moves to a slower instance only when that beats the stretched fast path",
          "[scheduler]") {
  Cluster k;
  // The A100s carry a backlog; the A6000 and L40S have nothing waiting.
  std::vector<agents::LlmCall> backlog;
  backlog.reserve(8);
  for (uint64_t i = 0; i < 8; ++i) backlog.push_back(make_call(100 + i, 8000, 50, 1e6));
  for (size_t i = 0; i < backlog.size(); ++i) k.enqueue(i % 2, backlog[i], 0);
  T2sParams p;
  p.offload_home = true;
  auto shared = std::make_shared<T2sShared>();
  T2sDispatcher d(p, shared);
  auto first = make_call(4, 300, 30, 1000.0);
  first.remaining_mean_s = first.remaining_p90_s = 40;  // reference (fastest-instance) seconds after it
  auto later = make_call(5, 300, 30, 1000.0);
  later.workflow_id = 4;
  later.stage_index = 2;
  // Reference: home on j when done_j + slowness_j × R <= done_best + inflation × R (delays from now), where
  // slowness_j is the largest of the call's, a decode token's and a prefill token's standalone ratio to the fastest
  // instance.
  const auto fast = profile_call_time(k.costs[0]);
  auto slowness = [&](size_t j) {
    const auto prof = profile_call_time(k.costs[j]);
    return std::max({prof.seconds(300, 30) / fast.seconds(300, 30), prof.decode_per_token_s / fast.decode_per_token_s,
                     prof.prefill_per_token_s / fast.prefill_per_token_s});
  };
  T2sDispatcher plain(T2sParams{}, std::make_shared<T2sShared>());
  const int best = dispatch_one(plain, first, k.view());
  const double fast_delay = plain.estimate(first, k.insts[static_cast<size_t>(best)], 0);
  const double a6000_home = plain.estimate(first, k.insts[2], 0) + slowness(2) * 40;
  // With no stretch observed (an idle cluster's inflation of 1) the fast path wins: nothing moves.
  REQUIRE(a6000_home > fast_delay + 1.0 * 40);
  CHECK(dispatch_one(d, first, k.view()) == best);
  // Under load the fast path stretches: at an inflation where the A6000 ends the workflow first, it is homed there.
  shared->inflation = (a6000_home - fast_delay) / 40 + 0.1;
  CHECK(dispatch_one(d, first, k.view()) == 2);
  CHECK(dispatch_one(d, later, k.view()) == 2);  // a later stage follows its workflow home
  PolicyEvent fin;
  fin.kind = PolicyEvent::Kind::workflow_finished;
  fin.workflow_id = 4;
  d.observe(fin);
  CHECK(dispatch_one(d, later, k.view()) == best);  // the home is forgotten with the workflow
  // A home with something waiting is not taken (its queue must stay short).
  auto queued = make_call(200, 100, 10, 1e6);
  k.enqueue(2, queued, 0);
  auto other = make_call(6, 300, 30, 1000.0);
  other.remaining_mean_s = other.remaining_p90_s = 40;
  CHECK(dispatch_one(d, other, k.view()) != 2);
}

TEST_CASE("t2s chunk_rule=1: the prefill chunk minimises the total delay, checked by brute force", "[scheduler]") {
  Cluster k;
  // Decoders with various tokens left, two prompts being prefilled and one waiting.
  std::vector<agents::LlmCall> calls;
  calls.reserve(16);
  const int left[] = {3, 5, 40, 200, 700, 12, 90};
  for (int i = 0; i < 7; ++i) calls.push_back(make_call(10 + i, 500, left[i] + 20));
  for (int i = 0; i < 7; ++i) k.insts[0].running.push_back({&calls[static_cast<size_t>(i)], 0, 500, 20, 0, 0, 0});
  calls.push_back(make_call(30, 9000, 50));
  calls.push_back(make_call(31, 1500, 50));
  k.insts[0].running.push_back({&calls[7], 0, 1000, 0, 0, 0, 0});  // 8000 tokens left to prefill
  k.insts[0].running.push_back({&calls[8], 0, 0, 0, 0, 0, 0});     // 1500 left
  calls.push_back(make_call(32, 300, 50));
  k.enqueue(0, calls[9], 0);
  k.insts[0].running_context = 7 * 520 + 1000;
  T2sParams p;
  p.chunk_rule = 1;
  p.chunk_floor = 16;
  T2sLocal local(p, std::make_shared<T2sShared>(), 0);
  local.next(k.insts[0], 0);  // binds the profile
  const auto prof = profile_call_time(k.costs[0]);
  const double step = k.costs[0].decode_step_s(9, k.insts[0].running_context);
  // Brute force over the same candidates: J(c) = ppt·Σ_f Σ_i min(P_f, k_i·c) + step·Σ_f ceil(P_f / c).
  const std::vector<int64_t> prompts = {8000, 1500, 300};
  auto J = [&](int64_t c) {
    double j = 0;
    for (int64_t P : prompts) {
      for (int ki : left) j += prof.prefill_per_token_s * static_cast<double>(std::min<int64_t>(P, ki * c));
      j += step * static_cast<double>((P + c - 1) / c);
    }
    return j;
  };
  int64_t best = 16;
  for (int64_t c = 16;; c *= 2) {
    const int64_t cap = std::min<int64_t>(c, 8000);
    if (J(cap) < J(best)) best = cap;
    if (cap >= 8000) break;
  }
  CHECK(local.prefill_chunk_tokens(k.insts[0]) == best);
  // The step_stretch rule gives a different cap here, so the check can tell the rules apart.
  T2sLocal stretch(T2sParams{}, std::make_shared<T2sShared>(), 0);
  stretch.next(k.insts[0], 0);
  CHECK(stretch.prefill_chunk_tokens(k.insts[0]) != best);
  // The dispatcher's chunk_wait estimate models the chunk the local queue chose, not the step_stretch rule's.
  auto shared = std::make_shared<T2sShared>();
  T2sDispatcher before(p, shared);
  const auto probe = make_call(40, 2000, 20);
  const double assumed = before.estimate(probe, k.insts[0], 0);
  T2sLocal chooser(p, shared, 0);
  chooser.next(k.insts[0], 0);
  REQUIRE(chooser.prefill_chunk_tokens(k.insts[0]) == best);
  REQUIRE(shared->chunk.size() == 1);
  CHECK(shared->chunk[0] == best);
  auto given = std::make_shared<T2sShared>();
  given->chunk = {static_cast<int>(best)};  // the same chunk, published directly
  T2sDispatcher reference(p, given);
  const double modelled = before.estimate(probe, k.insts[0], 0);
  CHECK(modelled != Approx(assumed));
  CHECK(modelled == Approx(reference.estimate(probe, k.insts[0], 0)));
}

TEST_CASE("t2s prefill_spread: short prompts get chunks of their mean ÷ spread, long ones the step_stretch cap",
          "[scheduler]") {
  Cluster k;
  k.start_new(0, 4, 10, 200, 400, 200, 30);
  // Waiting prompts of 100, 200 and 300 tokens: mean 200.
  std::vector<agents::LlmCall> calls;
  calls.reserve(4);
  for (int i = 0; i < 3; ++i) calls.push_back(make_call(20 + i, 100 * (i + 1), 50));
  for (int i = 0; i < 3; ++i) k.enqueue(0, calls[static_cast<size_t>(i)], 0);
  T2sParams off;
  T2sLocal stretch(off, std::make_shared<T2sShared>(), 0);
  stretch.next(k.insts[0], 0);
  const int cap = stretch.prefill_chunk_tokens(k.insts[0]);
  REQUIRE(cap > 40);  // the step_stretch cap is well above what the spread asks for here
  T2sParams on;
  on.prefill_spread = 10;
  on.free_slack = 0;  // the spread alone first
  T2sLocal spread(on, std::make_shared<T2sShared>(), 0);
  spread.next(k.insts[0], 0);
  CHECK(spread.prefill_chunk_tokens(k.insts[0]) == 20);  // ceil(200 / 10)
  CHECK(spread_chunk_tokens(on, k.insts[0], cap) == 20);
  on.prefill_spread = 100;
  CHECK(spread_chunk_tokens(on, k.insts[0], cap) == 8);  // never below 8 tokens
  // free_slack: the 3 prompts share at least the tokens that lengthen the decode step by ≤ 10% on this A100.
  const int free = free_prefill_tokens(k.costs[0], 4, k.insts[0].running_context, 0.1, 1024);
  const double plain = k.costs[0].decode_step_s(4, k.insts[0].running_context);
  IterationShape with_free;
  with_free.decode_seqs = 4;
  with_free.decode_context = k.insts[0].running_context;
  with_free.prefill_tokens = free;
  with_free.prefill_attn = free * (1024.0 + free / 2.0);
  CHECK(k.costs[0].iteration_s(with_free) <= 1.1 * plain);
  with_free.prefill_tokens = free + 1;
  with_free.prefill_attn = (free + 1) * (1024.0 + (free + 1) / 2.0);
  CHECK(k.costs[0].iteration_s(with_free) > 1.1 * plain);
  REQUIRE(free > 3 * 8);  // a roofline A100 step hides far more than three 8-token chunks
  on.free_slack = 0.1;
  CHECK(spread_chunk_tokens(on, k.insts[0], cap) == std::min<double>(cap, std::ceil(free / 3.0)));
  on.free_slack = 0;
  // One long prompt in prefill raises the mean above the cap: the step_stretch cap holds.
  calls.push_back(make_call(30, 40000, 50));
  k.insts[0].running.push_back({&calls[3], 0, 0, 0, 0, 0, 0});
  on.prefill_spread = 10;
  CHECK(spread_chunk_tokens(on, k.insts[0], cap) == cap);
  CHECK(spread_chunk_tokens(off, k.insts[0], cap) == cap);  // knob off
  // The dispatcher models the smaller chunk: a new call's prefill is stretched over more decode steps.
  k.insts[0].running.pop_back();
  T2sDispatcher d_off(off, std::make_shared<T2sShared>());
  T2sDispatcher d_on(on, std::make_shared<T2sShared>());
  const auto probe = make_call(40, 1500, 20);
  CHECK(d_on.estimate(probe, k.insts[0], 0) > d_off.estimate(probe, k.insts[0], 0));
}

TEST_CASE("t2s externality: the delay a call adds to the running batch, from the cost model, enters the estimate",
          "[scheduler]") {
  Cluster k;
  // a100-0 (index 0) runs 96 decoding calls: one more sequence and any prompt lengthen the step of all 96. The
  // A6000 (index 2) runs 2.
  k.start_new(0, 96, 100, 600, 400, 600, 100);
  k.start_new(2, 2, 196, 600, 400, 600, 100);
  const auto c = make_call(1, 2000, 200);
  // Hand computation with the same cost model.
  const auto& a100 = k.costs[0];
  const double step = a100.decode_step_s(96, 96 * 700);
  const double longer = a100.decode_step_s(97, 96 * 700 + 2000) - step;
  REQUIRE(longer > 0);
  CHECK(added_decode_delay_s(c, k.insts[0]) == Approx(96 * longer * std::min(199.0, 300.0)));
  IterationShape with_prompt;
  with_prompt.decode_seqs = 96;
  with_prompt.decode_context = 96 * 700;
  with_prompt.prefill_tokens = 2000;
  with_prompt.prefill_attn = 2000 * 1000.0;
  CHECK(added_prefill_delay_s(c, k.insts[0], 0) == Approx(96 * (a100.iteration_s(with_prompt) - step)));
  CHECK(added_prefill_delay_s(c, k.insts[0], 1500) < added_prefill_delay_s(c, k.insts[0], 0));  // cached prefix
  CHECK(added_decode_delay_s(c, k.insts[1]) == 0.0);  // nothing running there
  // The A6000 runs 2 calls: whatever one more sequence costs a step there (its KV reads and PCIe all-reduces), it
  // delays 2 calls, not 96.
  CHECK(added_decode_delay_s(c, k.insts[2]) > 0);
  CHECK(added_decode_delay_s(c, k.insts[2]) < 0.2 * added_decode_delay_s(c, k.insts[0]));
  // The estimate grows by exactly the weighted delays; a weight of 0 leaves it alone.
  T2sParams off;
  T2sParams on;
  on.externality = 2;
  on.prefill_externality = 2;
  T2sDispatcher d_off(off, std::make_shared<T2sShared>());
  T2sDispatcher d_on(on, std::make_shared<T2sShared>());
  const double extra = d_on.estimate(c, k.insts[0], 0) - d_off.estimate(c, k.insts[0], 0);
  CHECK(extra == Approx(2 * added_decode_delay_s(c, k.insts[0]) + 2 * added_prefill_delay_s(c, k.insts[0], 0)));
}

TEST_CASE("t2s batch_knee: the batch stops at the throughput knee, checked by a scan; calls beyond it wait",
          "[scheduler]") {
  Cluster k;
  // The knee against a plain scan over every batch size, on a fast and a slow instance, short and long contexts.
  for (size_t i : {size_t{0}, size_t{2}})
    for (double ctx : {300.0, 1000.0, 8000.0})
      for (double loss : {0.02, 0.05, 0.2}) {
        const auto& cost = k.costs[i];
        auto rate = [&](int b) { return b / cost.decode_step_s(b, static_cast<int64_t>(b * ctx)); };
        int scan = 256;
        for (int b = 1; b <= 256; ++b)
          if (rate(b) >= (1 - loss) * rate(256)) {
            scan = b;
            break;
          }
        CHECK(throughput_knee_batch(cost, 256, ctx, loss) == scan);
      }
  // Closed form: with a step time independent of the batch, throughput grows linearly and the knee is the
  // smallest b ≥ 0.95 × 256 = 243.2.
  CostModel flat = k.costs[0];
  LinearIterationModel constant;
  constant.c0 = 0.02;
  flat.set_fitted(constant);
  CHECK(throughput_knee_batch(flat, 256, 1000, 0.05) == 244);
  // On an A100 with ~1k-token contexts the knee sits well inside max_running: doubling past it buys little.
  const int knee = throughput_knee_batch(k.costs[0], 256, 700, 0.05);
  REQUIRE(knee > 16);
  REQUIRE(knee < 256);
  k.start_new(0, knee - 1, 100, 600, 400, 600, 100);
  const auto waiting = make_call(1, 300, 50);
  k.enqueue(0, waiting, 0);
  T2sParams on;
  T2sParams off;
  off.batch_knee = 0;
  T2sLocal cap(on, std::make_shared<T2sShared>(), 0);
  T2sLocal uncapped(off, std::make_shared<T2sShared>(), 0);
  CHECK(cap.next(k.insts[0], 0) == 0);  // one slot left below the knee
  k.start_new(0, 1, 100 + static_cast<uint64_t>(knee) - 1, 600, 400, 600, 100);
  CHECK(cap.next(k.insts[0], 0) == -1);  // at the knee: the waiting call stays queued
  CHECK(uncapped.next(k.insts[0], 0) == 0);
  // The dispatcher sees the wait for a slot (one running call finishing: their mean time left ÷ their count) and
  // a decode step at the knee's batch, not one beyond it. Hand computation with the same cost model.
  k.insts[0].waiting.clear();
  k.insts[0].waiting_prompt_tokens = k.insts[0].waiting_output_tokens = 0;
  const auto probe = make_call(2, 500, 40);
  T2sDispatcher d_on(on, std::make_shared<T2sShared>());
  T2sDispatcher d_off(off, std::make_shared<T2sShared>());
  const auto& a100 = k.costs[0];
  const double runs = knee;
  const double slot = (static_cast<double>(k.insts[0].running_decode_left) / runs) *
                      a100.decode_step_s(knee, k.insts[0].running_context) / runs;
  const double ctx = static_cast<double>(k.insts[0].running_context) / runs;
  const double at_knee = a100.decode_step_s(knee, static_cast<int64_t>(knee * ctx));
  const double beyond = a100.decode_step_s(knee + 1, static_cast<int64_t>((knee + 1) * ctx));
  CHECK(d_on.estimate(probe, k.insts[0], 0) - d_off.estimate(probe, k.insts[0], 0) ==
        Approx(slot + 39 * (at_knee - beyond)).epsilon(1e-9));
  CHECK(slot > 0);
}
