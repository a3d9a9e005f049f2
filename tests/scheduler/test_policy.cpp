#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <set>

#include "common/status.hpp"
#include "scheduler/baselines.hpp"
#include "scheduler/policy.hpp"

using namespace t2s;
using namespace t2s::scheduler;

TEST_CASE("registry lists the baselines and rejects unknown names", "[scheduler]") {
  auto reg = default_policy_registry();
  REQUIRE(reg.names().size() >= 3);
  CHECK(reg.names()[0] == "rr-fcfs");
  CHECK(reg.has("least-loaded"));
  CHECK(reg.has("edf"));
  ClusterSpec c = cluster_preset("hetero-paper");
  PolicyContext ctx;
  ctx.cluster = &c;
  Policy p = reg.make("edf", ctx);
  CHECK(p.local.size() == 4);
  CHECK_THROWS_AS(reg.make("nope", ctx), InputError);
}

TEST_CASE("round robin cycles and resets; EDF picks the earliest deadline", "[scheduler]") {
  ClusterSpec c = cluster_preset("hetero-paper");
  std::vector<InstanceState> insts(c.instances.size());
  std::vector<CostModel> costs;
  for (auto& s : c.instances) costs.emplace_back(s);
  for (size_t i = 0; i < insts.size(); ++i) {
    insts[i].index = i;
    insts[i].spec = &c.instances[i];
    insts[i].cost = &costs[i];
  }
  std::vector<HeldCall> held;
  ClusterView view{0.0, &insts, &held};
  agents::LlmCall a, b, d;
  a.id = 1, b.id = 2, d.id = 3;
  a.deadline_s = 30, b.deadline_s = 10, d.deadline_s = 20;
  const agents::LlmCall* calls[] = {&a, &b, &d};
  std::vector<DispatchDecision> out(3);
  RoundRobinDispatcher rr;
  rr.dispatch(calls, view, out);
  CHECK(out[0].instance == 0);
  CHECK(out[1].instance == 1);
  CHECK(out[2].instance == 2);
  rr.dispatch(calls, view, out);
  CHECK(out[0].instance == 3);
  rr.reset();
  rr.dispatch(calls, view, out);
  CHECK(out[0].instance == 0);

  // Least-loaded prefers the fast idle A100s and spreads siblings over them.
  a.prompt_tokens = b.prompt_tokens = d.prompt_tokens = 10000;
  LeastLoadedDispatcher ll;
  ll.dispatch(calls, view, out);
  CHECK(out[0].instance == 0);
  CHECK(out[1].instance == 1);

  InstanceState q;
  q.waiting = {{&a, 0.0, false}, {&b, 1.0, false}, {&d, 0.5, false}};
  EdfLocal edf;
  CHECK(edf.next(q, 2.0) == 1);
  FcfsLocal fcfs;
  CHECK(fcfs.next(q, 2.0) == 0);
  q.waiting.clear();
  CHECK(edf.next(q, 2.0) == -1);
}

TEST_CASE("policy_param_names lists exactly the knobs the policies read", "[scheduler]") {
  // Every param("x", ...) and flag("x", ...) in scheduler/*.cpp: `--param` refuses names outside the list.
  std::set<std::string> read;
  for (const auto& entry : std::filesystem::directory_iterator(std::string(T2S_SOURCE_DIR) + "/scheduler")) {
    if (entry.path().extension() != ".cpp") continue;
    std::ifstream in(entry.path());
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (std::string call : {"param(\"", "flag(\""})
      for (size_t at = text.find(call); at != std::string::npos; at = text.find(call, at + 1)) {
        size_t b = at + call.size(), e = text.find('"', b);
        std::string name = text.substr(b, e - b);
        // Only knob names (comments mention param("...")).
        if (!name.empty() && name.find_first_not_of("abcdefghijklmnopqrstuvwxyz0123456789_") == std::string::npos)
          read.insert(name);
      }
  }
  const auto& names = t2s::scheduler::policy_param_names();
  CHECK(std::set<std::string>(names.begin(), names.end()) == read);
}
