#pragma once
// A scripted workflow for simulator tests: fixed stages of LLM calls (or tool stages) run in sequence.
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "agents/responder.hpp"
#include "agents/workflow.hpp"
#include "workloads/workload.hpp"

namespace t2s::test {

struct ScriptCall {
  int prompt = 100, output = 10;
  uint64_t prefix_id = 0;
  int prefix_tokens = 0;
};
struct ScriptStage {
  std::vector<ScriptCall> calls;  // empty: a tool stage (sql_execution)
};
using Script = std::vector<ScriptStage>;

struct ScriptMeta final : agents::CallMeta {
  int output = 1;
};

// Answers with the scripted output length.
struct ScriptResponder final : agents::Responder {
  agents::Response respond(const agents::LlmCall& call) override {
    auto m = std::dynamic_pointer_cast<const ScriptMeta>(call.meta);
    return {"", m ? m->output : 1};
  }
  std::string name() const override { return "script"; }
};

class ScriptWorkflow final : public agents::Workflow {
 public:
  ScriptWorkflow(Script script, const workloads::Arrival& a, agents::AgentEnv& env, agents::WorkflowFactory::Done done,
                 agents::WorkflowObserver* obs)
      : script_(std::move(script)), arrival_(a), env_(env), done_(std::move(done)), obs_(obs) {}
  void start() override { next(); }
  void cancel() override {}

 private:
  void emit(bool done, double elapsed, int calls) {
    if (!obs_) return;
    agents::StageEvent e;
    e.workflow_id = arrival_.workflow_id;
    e.stage_index = stage_;
    e.kind = script_[stage_].calls.empty() ? agents::StageKind::sql_execution : agents::StageKind::candidate_generation;
    e.done = done;
    e.t_s = env_.now();
    e.elapsed_s = elapsed;
    e.calls = calls;
    obs_->on_stage(e);
  }
  void next() {
    if (stage_ >= script_.size()) {
      agents::WorkflowOutcome o;
      o.workflow_id = arrival_.workflow_id;
      o.completed = true;
      o.llm_calls = calls_;
      o.stages = static_cast<int>(stage_);
      o.arrival_s = arrival_.arrival_s;
      o.deadline_s = arrival_.deadline_s;
      o.finished_s = env_.now();
      done_(o);
      return;
    }
    const auto& st = script_[stage_];
    const double t0 = env_.now();
    emit(false, 0, static_cast<int>(st.calls.size()));
    if (st.calls.empty()) {
      env_.run_tool(arrival_.workflow_id, agents::StageKind::sql_execution, [] {}, [this, t0](double) {
        emit(true, env_.now() - t0, 0);
        ++stage_;
        next();
      });
      return;
    }
    std::vector<agents::LlmCall> calls;
    std::vector<agents::LlmClient::Callback> cbs;
    pending_ = st.calls.size();
    for (const auto& sc : st.calls) {
      agents::LlmCall c;
      c.id = env_.next_call_id();
      c.workflow_id = arrival_.workflow_id;
      c.stage_index = stage_;
      c.kind = agents::StageKind::candidate_generation;
      c.siblings = static_cast<uint32_t>(st.calls.size());
      c.prompt_tokens = sc.prompt;
      c.prefix_id = sc.prefix_id;
      c.prefix_tokens = sc.prefix_tokens;
      c.max_output_tokens = 100000;
      c.expected_output_tokens = sc.output;
      c.arrival_s = arrival_.arrival_s;
      c.deadline_s = arrival_.deadline_s;
      auto m = std::make_shared<ScriptMeta>();
      m->output = sc.output;
      c.meta = m;
      calls.push_back(c);
      cbs.push_back([this, t0, n = static_cast<int>(st.calls.size())](const agents::LlmResult& r) {
        ++calls_;
        ok_ = ok_ && r.ok;
        if (--pending_ > 0) return;
        emit(true, env_.now() - t0, n);
        ++stage_;
        next();
      });
    }
    env_.llm().submit(std::move(calls), std::move(cbs));
  }

  Script script_;
  workloads::Arrival arrival_;
  agents::AgentEnv& env_;
  agents::WorkflowFactory::Done done_;
  agents::WorkflowObserver* obs_;
  uint32_t stage_ = 0;
  size_t pending_ = 0;
  int calls_ = 0;
  bool ok_ = true;
};

// `n` questions with ids "0", "1", … and nothing else: the scripts decide what each does.
inline workloads::Workload numbered_questions(size_t n) {
  workloads::Workload w;
  w.questions.resize(n);
  for (size_t i = 0; i < n; ++i) w.questions[i].id = std::to_string(i);
  return w;
}

// Every question runs `scripts[question_index % scripts.size()]`.
class ScriptFactory final : public agents::WorkflowFactory {
 public:
  explicit ScriptFactory(std::vector<Script> scripts) : scripts_(std::move(scripts)) {}
  std::unique_ptr<agents::Workflow> make(const workloads::Question&, const workloads::Arrival& a,
                                         agents::AgentEnv& env, Done done, agents::WorkflowObserver* obs) override {
    return std::make_unique<ScriptWorkflow>(scripts_[a.question_index % scripts_.size()], a, env, std::move(done),
                                            obs);
  }

 private:
  std::vector<Script> scripts_;
};

}  // namespace t2s::test
