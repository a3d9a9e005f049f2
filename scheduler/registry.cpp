// The registry of every policy this build knows. Each module that adds policies declares a
// `void register_<x>_policies(PolicyRegistry&)` and adds one line here (keep the baselines first).
#include "scheduler/policy.hpp"
#include "scheduler/hexgen.hpp"
#include "scheduler/autellix.hpp"
#include "scheduler/t2s_policy.hpp"

namespace t2s::scheduler {

PolicyRegistry default_policy_registry() {
  PolicyRegistry r;
  register_baseline_policies(r);
  register_hexgen_policies(r);
  register_autellix_policies(r);
  register_t2s_policies(r);
  return r;
}

const std::vector<std::string>& policy_param_names() {
  // tests/scheduler checks this list against every param("...") and flag("...") in scheduler/*.cpp.
  static const std::vector<std::string> names = {
      "adapt", "adapt_weight", "admission", "affinity", "alpha", "batch_aware", "batch_knee", "beta", "chunk_floor",
      "chunk_rule", "chunk_wait", "externality", "free_slack", "hexgen_form", "home_prefill", "hopeless_frac",
      "inflation_weight", "locality_slack", "offload_home", "prefill_externality", "prefill_spread", "priority_wait",
      "remaining_q", "scan_limit", "slack", "stage", "step_stretch"};
  return names;
}

}  // namespace t2s::scheduler
