#pragma once
// A one-stage workflow for in-stage deadline tests: one long LLM call; at the deadline it ends at once with
// "its best candidate" (ended_early) when `end_early`, else it waits for the call.
#include <memory>

#include "agents/staged_workflow.hpp"
#include "tests/scheduler/script_workflow.hpp"

namespace t2s::test {

class DeadlineWorkflow final : public agents::StagedWorkflow {
 public:
  DeadlineWorkflow(const workloads::Question& q, const workloads::Arrival& a, agents::AgentEnv& env,
                   agents::WorkflowFactory::Done done, int prompt, int output, bool end_early)
      : StagedWorkflow(q, a, env, std::move(done), nullptr), prompt_(prompt), output_(output), end_early_(end_early) {}

 protected:
  void begin() override {
    agents::LlmCall c;
    c.prompt_tokens = prompt_;
    c.max_output_tokens = output_;
    c.expected_output_tokens = output_;
    auto meta = std::make_shared<ScriptMeta>();
    meta->output = output_;
    c.meta = meta;
    release_llm_stage(agents::StageKind::candidate_generation, {c}, {}, [this](std::vector<agents::LlmResult> r) {
      agents::WorkflowOutcome o;
      o.completed = !r.empty() && r[0].ok;
      finish(std::move(o));
    });
  }
  agents::RemainingWork remaining_after(agents::StageKind, uint32_t) const override { return {}; }
  bool on_deadline_passed() override {
    if (!end_early_) return false;
    agents::WorkflowOutcome o;
    o.completed = true;
    o.ended_early = true;
    finish(std::move(o));
    return true;
  }

 private:
  int prompt_, output_;
  bool end_early_;
};

struct DeadlineFactory final : agents::WorkflowFactory {
  int prompt = 1000, output = 1000;
  bool end_early = true;
  std::unique_ptr<agents::Workflow> make(const workloads::Question& q, const workloads::Arrival& a,
                                         agents::AgentEnv& env, Done done, agents::WorkflowObserver*) override {
    return agents::make_workflow_handle(
        std::make_shared<DeadlineWorkflow>(q, a, env, std::move(done), prompt, output, end_early));
  }
};

}  // namespace t2s::test
