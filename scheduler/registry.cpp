// The registry of every policy this build knows. Each module that adds policies declares a
// `void register_<x>_policies(PolicyRegistry&)` and adds one line here (keep the baselines first).
#include "scheduler/policy.hpp"

namespace t2s::scheduler {

PolicyRegistry default_policy_registry() {
  PolicyRegistry r;
  register_baseline_policies(r);
  return r;
}

}  // namespace t2s::scheduler
