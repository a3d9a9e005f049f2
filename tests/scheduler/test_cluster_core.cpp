// The cluster core's bookkeeping: every queue and batch change keeps the load counters equal to their sums, held
// calls keep their first hold time, policy bugs are refused, and each observation reaches the parts it concerns.
#include <catch2/catch.hpp>
#include <optional>
#include <vector>

#include "scheduler/cluster_core.hpp"

using namespace t2s;
using namespace t2s::scheduler;

namespace {

ClusterSpec two_sim_instances() {
  ClusterSpec c;
  for (const char* name : {"a", "b"}) {
    InstanceSpec s;
    s.name = name;
    s.gpu = gpu_profile("A100-80G");
    s.model = model_profile("llama-3.1-8b");
    c.instances.push_back(s);
  }
  return c;
}

agents::LlmCall call(uint64_t id, int prompt, int output) {
  agents::LlmCall c;
  c.id = id;
  c.workflow_id = id;
  c.prompt_tokens = prompt;
  c.expected_output_tokens = output;
  return c;
}

// Sends every call to a fixed instance (or an out-of-range one, to test the refusal).
struct FixedDispatcher final : GlobalDispatcher {
  int target = 0;
  void dispatch(std::span<const agents::LlmCall* const> calls, const ClusterView&,
                std::span<DispatchDecision> out) override {
    for (size_t k = 0; k < calls.size(); ++k) out[k].instance = target;
  }
};

// Picks waiting[pick]; counts what it observes.
struct CountingLocal final : LocalQueuePolicy {
  int pick = 0;
  int seen = 0;
  std::optional<std::vector<int>> victims;  // unset: the interface's default
  int next(const InstanceState&, double) override { return pick; }
  void kv_victims(const InstanceState& inst, double now, std::vector<int>& order) override {
    if (victims)
      order = *victims;
    else
      LocalQueuePolicy::kv_victims(inst, now, order);
  }
  void observe(const PolicyEvent&) override { ++seen; }
};

// Two simulated instances under rr-fcfs with their cost models, reset to `kv` blocks each (not copyable: the policy
// and the core point into it).
struct RrCore {
  ClusterSpec cluster = two_sim_instances();
  Policy policy = default_policy_registry().make("rr-fcfs", PolicyContext{&cluster, {}, 0});
  CostModel ca{cluster.instances[0]}, cb{cluster.instances[1]};
  ClusterCore core{cluster, policy};
  explicit RrCore(const std::vector<int>& kv) {
    const std::vector<const CostModel*> costs = {&ca, &cb};
    core.reset(costs, kv);
  }
  RrCore(const RrCore&) = delete;
  RrCore& operator=(const RrCore&) = delete;
};

}  // namespace

TEST_CASE("cluster core: queue and batch changes keep every counter equal to its sum", "[scheduler][cluster-core]") {
  RrCore f({100, 50});
  auto& core = f.core;
  auto ok = [&] {
    for (const auto& s : core.instances()) {
      INFO(instance_state_problem(s));
      CHECK(instance_state_problem(s).empty());
    }
  };
  auto c1 = call(1, 300, 20), c2 = call(2, 120, 5), c3 = call(3, 50, 0);
  core.enqueue(0, &c1, 0.1);
  core.enqueue(0, &c2, 0.2);
  core.enqueue(0, &c3, 0.3);
  CHECK(core.instances()[0].waiting_prompt_tokens == 470);
  CHECK(core.instances()[0].waiting_output_tokens == 25);
  ok();
  const QueuedCall q = core.take_waiting(0, 1);
  CHECK(q.call == &c2);
  CHECK(q.enqueued_s == 0.2);
  RunningCall r;
  r.call = &c2;
  r.cached_tokens = r.prefilled = 32;
  r.kv_blocks = 3;
  core.start_running(0, r);
  CHECK(core.instances()[0].running_prefill_left == 88);
  CHECK(core.instances()[0].running_decode_left == 5);
  CHECK(core.instances()[0].running_context == 32);
  CHECK(core.instances()[0].kv_blocks_used == 3);
  ok();
  core.set_progress(0, 0, 120, 1);  // the prompt done, the first token sampled
  core.set_running_blocks(0, 0, 8);
  CHECK(core.instances()[0].running_prefill_left == 0);
  CHECK(core.instances()[0].running_decode_left == 4);
  CHECK(core.instances()[0].running_context == 121);
  CHECK(core.instances()[0].kv_blocks_used == 8);
  core.set_progress(0, 0, 120, 9);  // decoded past the expectation: nothing left, never negative
  CHECK(core.instances()[0].running_decode_left == 0);
  ok();
  // Preemption: back to the front of the queue with its first enqueue time; its blocks are freed.
  const RunningCall back = core.take_running(0, 0);
  core.requeue_front(0, back.call, back.enqueued_s);
  CHECK(core.instances()[0].waiting.front().call == &c2);
  CHECK(core.instances()[0].waiting.front().preempted);
  CHECK(core.instances()[0].kv_blocks_used == 0);
  CHECK(core.instances()[0].running_context == 0);
  ok();
  CHECK(core.remove_waiting(0, &c3));
  CHECK_FALSE(core.remove_waiting(0, &c3));
  CHECK(core.waiting_position(0, &c1) == 1);
  const QueuedCall taken = core.take_waiting(0, 1);
  CHECK(taken.call == &c1);
  CHECK(core.waiting_position(0, &c1) == -1);
  ok();
  // The check itself finds a broken counter.
  core.driver_state(0).running_context += 1;
  CHECK_FALSE(instance_state_problem(core.instances()[0]).empty());
}

TEST_CASE("cluster core: the prefix cache changes through the core and KV use follows it", "[scheduler][cluster-core]") {
  RrCore f({100, 50});
  auto& core = f.core;
  const auto& s = core.instances()[0];
  core.cache_prefix(0, 7, 32, 2, 0.0);  // pinned once for the caller
  CHECK(s.kv_blocks_used == 2);
  CHECK(s.prefix_cache.hit_tokens(7, 100) == 32);
  core.cache_prefix(0, 7, 64, 4, 1.0);  // grows: only the 2 new blocks count, pinned twice now
  CHECK(s.kv_blocks_used == 4);
  CHECK(s.prefix_cache.hit_tokens(7, 100) == 64);
  CHECK(core.evict_prefixes(0, 10) == 0);  // pinned: nothing to evict
  core.unpin_prefix(0, 7);
  core.pin_prefix(0, 7, 2.0);
  core.unpin_prefix(0, 7);
  CHECK(core.evict_prefixes(0, 10) == 0);  // still pinned once
  core.unpin_prefix(0, 7);
  CHECK(core.evict_prefixes(0, 1) == 4);   // the whole entry goes
  CHECK(s.kv_blocks_used == 0);
  CHECK(s.prefix_cache.hit_tokens(7, 100) == 0);
  CHECK(instance_state_problem(s).empty());
}

TEST_CASE("cluster core: held calls, refused decisions and where observations go", "[scheduler][cluster-core]") {
  const auto cluster = two_sim_instances();
  Policy p;
  p.name = "fixed";
  auto disp = std::make_unique<FixedDispatcher>();
  auto* d = disp.get();
  p.dispatcher = std::move(disp);
  std::vector<CountingLocal*> locals;
  for (int i = 0; i < 2; ++i) {
    auto l = std::make_unique<CountingLocal>();
    locals.push_back(l.get());
    p.local.push_back(std::move(l));
  }
  ClusterCore core(cluster, p);
  CostModel ca(cluster.instances[0]), cb(cluster.instances[1]);
  const std::vector<const CostModel*> costs = {&ca, &cb};
  const std::vector<int> kv = {100, 100};
  core.reset(costs, kv);

  auto c1 = call(1, 100, 10), c2 = call(2, 100, 10);
  const std::vector<const agents::LlmCall*> group = {&c1, &c2};
  std::vector<DispatchDecision> out(2);
  d->target = 1;
  core.dispatch(group, 0.0, out);
  CHECK(out[0].instance == 1);
  d->target = 2;  // no such instance
  CHECK_THROWS_WITH(core.dispatch(group, 0.0, out), Catch::Contains("policy 'fixed' chose instance 2 of 2"));

  core.hold(&c1, 1.0);
  core.hold(&c2, 2.0);
  CHECK(core.drop_held(2));
  CHECK_FALSE(core.drop_held(2));
  const auto held = core.take_held();
  REQUIRE(held.size() == 1);
  CHECK(held[0].held_since_s == 1.0);
  CHECK(core.held().empty());
  core.hold(&c1, 3.0, held);  // offered again and held again: still held since 1.0
  core.hold(&c2, 3.0, held);  // not among them: held since now
  REQUIRE(core.held().size() == 2);
  CHECK(core.held()[0].held_since_s == 1.0);
  CHECK(core.held()[1].held_since_s == 3.0);
  core.take_held();

  core.enqueue(1, &c1, 0.0);
  locals[1]->pick = 0;
  CHECK(core.next(1, 0.0) == 0);
  locals[1]->pick = 3;
  CHECK_THROWS_WITH(core.next(1, 0.0), Catch::Contains("picked waiting[3] of 1"));
  locals[1]->pick = -1;
  CHECK(core.next(1, 0.0) == -1);
  CHECK(core.kv_victims(1, 0.0).empty());  // nothing runs: no victim
  for (const auto* c : {&c1, &c2}) {
    RunningCall rc;
    rc.call = c;
    core.start_running(1, rc);
  }
  CHECK(core.kv_victims(1, 0.0) == std::vector<int>{1, 0});  // the default: the newest call gives way first
  locals[1]->victims = std::vector<int>{0, 1};
  CHECK(core.kv_victims(1, 0.0) == std::vector<int>{0, 1});
  for (const auto& bad : {std::vector<int>{0}, std::vector<int>{0, 0}, std::vector<int>{0, 2}, std::vector<int>{-1, 0},
                          std::vector<int>{0, 1, 1}}) {
    locals[1]->victims = bad;
    CHECK_THROWS_WITH(core.kv_victims(1, 0.0), Catch::Contains("not each of the 2 running calls once"));
  }
  core.take_running(1, 1);
  core.take_running(1, 0);

  agents::LlmResult res;
  res.ok = true;
  core.call_finished(1, c1, res, 1.0);
  CHECK(locals[1]->seen == 1);
  CHECK(locals[0]->seen == 0);
  core.call_finished(-1, c2, res, 1.0);  // ended while held: the dispatcher only
  CHECK(locals[0]->seen + locals[1]->seen == 1);
  core.iteration(0, IterationShape{}, 0.01, 1.0);
  CHECK(locals[0]->seen == 1);
}

TEST_CASE("cluster core: instance_state_problem names the first broken invariant", "[scheduler][cluster-core]") {
  InstanceState s;
  auto c = call(1, 100, 10);
  s.waiting.push_back(QueuedCall{&c, 0, false});
  CHECK(instance_state_problem(s) == "waiting_prompt_tokens is 0, its sum 100");
  s.waiting_prompt_tokens = 100;
  s.waiting_output_tokens = 10;
  CHECK(instance_state_problem(s).empty());
  RunningCall r;
  r.call = &c;
  r.prefilled = 100;
  s.running.push_back(r);
  CHECK(instance_state_problem(s) == "call 1 is both waiting and running");
  s.waiting.clear();
  s.waiting_prompt_tokens = s.waiting_output_tokens = 0;
  s.running[0].prefilled = 101;
  CHECK(instance_state_problem(s).find("has progress 101/100") != std::string::npos);
  s.running[0].prefilled = 100;
  s.running_decode_left = 10;
  s.running_context = 100;
  s.running[0].kv_blocks = 7;
  CHECK(instance_state_problem(s) == "kv_blocks_used is 0, its sum 7");
  s.kv_blocks_used = 7;
  CHECK(instance_state_problem(s).empty());
}
