// The cluster core under both drivers: the same policies, audited at every hook (tests/scheduler/audit_policy.hpp),
// run one scripted workload in the discrete-event simulator and for real in the runtime (simulated instances that
// answer at modelled speed on the wall clock). Under each driver the state a policy is shown is consistent at every
// hook, and the policy hears of every call, stage and workflow end exactly once.
#include <catch2/catch.hpp>

#include "runtime/runtime.hpp"
#include "scheduler/simulator.hpp"
#include "tests/scheduler/audit_policy.hpp"
#include "tests/scheduler/script_workflow.hpp"

using namespace t2s;
using t2s::test::Script;

namespace {

constexpr size_t kWorkflows = 24;

// Two instances of different speed; their small KV forces preemption in simulation.
scheduler::ClusterSpec two_instances() {
  scheduler::ClusterSpec c;
  c.name = "two";
  for (const auto& [name, gpu] : {std::pair{"a100", "A100-80G"}, std::pair{"l40s", "L40S"}}) {
    scheduler::InstanceSpec s;
    s.name = name;
    s.gpu = scheduler::gpu_profile(gpu);
    s.model = scheduler::model_profile("llama-3.1-8b");
    s.max_running = 6;
    c.instances.push_back(s);
  }
  c.instances[0].kv_blocks = 350;
  c.instances[1].kv_blocks = 300;
  return c;
}

// Keyword stage, two candidates sharing a prefix, a SQL stage, one revise.
std::vector<Script> scripts() {
  std::vector<Script> out;
  for (int k = 0; k < 3; ++k)
    out.push_back({{{{300, 12}}},
                   {{{1800 + 200 * k, 90, 77, 1500}, {1700, 70 + 10 * k, 77, 1500}}},
                   {{}},
                   {{{1200, 40 + 5 * k}}}});
  return out;
}

size_t calls_per_run() {
  size_t n = 0;
  auto s = scripts();
  for (size_t k = 0; k < kWorkflows; ++k)
    for (const auto& st : s[k % s.size()]) n += st.calls.size();
  return n;
}

std::vector<workloads::Arrival> arrivals(double gap_s, double budget_s) {
  std::vector<workloads::Arrival> a;
  for (size_t i = 0; i < kWorkflows; ++i)
    a.push_back({i + 1, i, gap_s * static_cast<double>(i), gap_s * static_cast<double>(i) + budget_s});
  return a;
}

scheduler::Policy audited_policy(const std::string& name, const scheduler::ClusterSpec& c,
                                 const std::shared_ptr<test::PolicyAudit>& audit) {
  scheduler::PolicyContext ctx;
  ctx.cluster = &c;
  return test::audited(scheduler::default_policy_registry().make(name, ctx), audit);
}

void check_audit(test::PolicyAudit& a, size_t stages_per_workflow) {
  for (const auto& p : a.problems) FAIL_CHECK(p);
  CHECK(a.dispatch_hooks > 0);
  CHECK(a.next_hooks > 0);
  CHECK(a.chunk_hooks > 0);
  CHECK(a.max_running_seen >= 2);
  CHECK(a.dispatched.size() == calls_per_run());
  CHECK(a.call_finished.size() == calls_per_run());
  for (const auto& [id, n] : a.call_finished) {
    INFO("call " << id);
    CHECK(n == 1);
    CHECK(a.dispatched.count(id) == 1);
  }
  CHECK(a.workflow_finished.size() == kWorkflows);
  for (const auto& [id, n] : a.workflow_finished) CHECK(n == 1);
  CHECK(a.events[scheduler::PolicyEvent::Kind::stage_finished] == kWorkflows * stages_per_workflow);
}

}  // namespace

TEST_CASE("cluster core: under the simulator and the runtime, every hook sees consistent state and every end is "
          "reported once", "[server][cluster-core]") {
  const auto cluster = two_instances();
  const auto w = test::numbered_questions(kWorkflows);
  for (const std::string name : {"t2s", "rr-fcfs", "hexgen"}) {
    INFO(name);
    {
      INFO("simulator");
      auto audit = std::make_shared<test::PolicyAudit>();
      auto policy = audited_policy(name, cluster, audit);
      test::ScriptResponder resp;
      scheduler::Simulator sim(cluster, policy, resp);
      test::ScriptFactory f(scripts());
      auto r = sim.run(w, arrivals(0.1, 60), f, nullptr);
      for (const auto& o : r.outcomes) CHECK(o.completed);
      check_audit(*audit, 4);
      CHECK(audit->events[scheduler::PolicyEvent::Kind::iteration] > 0);
      uint64_t preemptions = 0;
      for (const auto& is : r.instances) preemptions += is.preemptions;
      CHECK(preemptions > 0);
      // Each KV shortfall asks the local policy once and preempts the call it names.
      CHECK(audit->victim_hooks == preemptions);
      for (const auto& c : r.calls)
        if (c.preemptions > 0) CHECK(audit->first_victims.count(c.call_id) == 1);
    }
    {
      INFO("runtime");
      auto audit = std::make_shared<test::PolicyAudit>();
      server::RuntimeOptions ro;
      ro.responder_speed = 40;  // modelled seconds pass 40x faster on the wall clock
      server::Runtime rt(cluster, audited_policy(name, cluster, audit), ro,
                         std::make_shared<test::ScriptResponder>());
      test::ScriptFactory f(scripts());
      auto r = server::replay_realtime(rt, w, arrivals(0.1 / 40, 60), f, 60);
      rt.stop();
      for (const auto& o : r.outcomes) CHECK(o.completed);
      check_audit(*audit, 4);
    }
  }
}

TEST_CASE("cluster core: the simulator preempts the call the local policy names when KV runs out",
          "[scheduler][cluster-core]") {
  const auto cluster = two_instances();
  const auto w = test::numbered_questions(kWorkflows);
  std::map<bool, std::set<uint64_t>> preempted;  // by rule: the calls that gave way
  for (const bool second : {false, true}) {
    INFO((second ? "second newest" : "default (newest)"));
    auto audit = std::make_shared<test::PolicyAudit>();
    // The simulator recomputes a preempted call from its start, so a rule must spare the oldest to make progress.
    if (second)
      audit->victim_rule = [](const scheduler::InstanceState& s) {
        std::vector<int> order;
        for (int r = static_cast<int>(s.running.size()) - 1; r >= 0; --r) order.push_back(r);
        if (order.size() >= 3) std::swap(order[0], order[1]);
        return order;
      };
    auto policy = audited_policy("rr-fcfs", cluster, audit);
    test::ScriptResponder resp;
    scheduler::Simulator sim(cluster, policy, resp);
    test::ScriptFactory f(scripts());
    auto r = sim.run(w, arrivals(0.1, 60), f, nullptr);
    for (const auto& o : r.outcomes) {
      INFO("workflow " << o.workflow_id << ": " << o.error);
      CHECK(o.completed);
    }
    for (const auto& p : audit->problems) FAIL_CHECK(p);
    uint64_t n = 0;
    for (const auto& c : r.calls) {
      n += static_cast<uint64_t>(c.preemptions);
      if (c.preemptions > 0) {
        preempted[second].insert(c.call_id);
        CHECK(audit->first_victims.count(c.call_id) == 1);
      }
    }
    CHECK(n > 0);
    CHECK(audit->victim_hooks == n);
  }
  CHECK(preempted[false] != preempted[true]);  // the rule decides who gives way
}
