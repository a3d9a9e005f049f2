#include "agents/trace_workflow.hpp"

#include <algorithm>
#include <map>
#include <mutex>

#include "agents/staged_workflow.hpp"
#include "agents/stage_model.hpp"
#include "common/stats.hpp"

namespace t2s::agents {

std::vector<TraceStage> group_trace_stages(const std::vector<workloads::TraceCall>& calls, bool tool_picker) {
  std::vector<TraceStage> stages;
  for (const auto& c : calls) {
    StageKind kind = parse_stage_kind(c.step);
    if (!tool_picker && kind == StageKind::tool_picker) continue;
    const bool parallel = kind == StageKind::candidate_generation || kind == StageKind::evaluation;
    if (parallel && !stages.empty() && stages.back().kind == kind) {
      stages.back().calls.push_back(c);
      continue;
    }
    stages.push_back(TraceStage{kind, {c}});
  }
  return stages;
}

namespace {

// Critical-path seconds of stages [from, end) on the reference instance.
double critical_path_s(const std::vector<TraceStage>& stages, size_t from, const AgentEnv& env) {
  double total = 0;
  for (size_t s = from; s < stages.size(); ++s) {
    double longest = 0;
    for (const auto& c : stages[s].calls)
      longest = std::max(longest, env.reference_seconds(c.input_tokens, c.output_tokens));
    total += longest;
  }
  return total;
}

// Population estimate of remaining work after k completed stages, shared by the workflows of one factory.
struct RemainingTable {
  std::vector<RemainingWork> after;  // index k: after stage k
};

class TraceWorkflow final : public StagedWorkflow {
 public:
  TraceWorkflow(const workloads::Question& q, const workloads::Arrival& a, AgentEnv& env, WorkflowFactory::Done done,
                WorkflowObserver* obs, const TraceFactoryOptions& opt, std::shared_ptr<const RemainingTable> table)
      : StagedWorkflow(q, a, env, std::move(done), obs), opt_(opt), table_(std::move(table)) {
    stages_ = group_trace_stages(q.trace_calls, opt.tool_picker);
  }

 protected:
  void begin() override {
    if (stages_.empty()) {
      fail("question " + question().id + " has no recorded trace calls (trace replay needs a hexgen-trace workload)");
      return;
    }
    // Prefix per stage kind: the shortest prompt of that kind in this question, times the fraction.
    for (const auto& s : stages_)
      for (const auto& c : s.calls) {
        auto [it, inserted] = shortest_.emplace(s.kind, c.input_tokens);
        if (!inserted) it->second = std::min(it->second, c.input_tokens);
      }
    next(0, {});
  }

  RemainingWork remaining_after(StageKind, uint32_t stage_index) const override {
    if (opt_.exact_remaining) {
      double s = critical_path_s(stages_, stage_index + 1, env());
      return {s, s};
    }
    if (stage_index < table_->after.size()) return table_->after[stage_index];
    return {};
  }

 private:
  void next(size_t s, std::vector<uint32_t> parents) {
    if (s >= stages_.size()) {
      WorkflowOutcome o;
      o.completed = true;
      finish(std::move(o));
      return;
    }
    const auto& st = stages_[s];
    std::vector<LlmCall> calls;
    for (const auto& c : st.calls) {
      LlmCall call;
      call.prompt_tokens = c.input_tokens;
      call.max_output_tokens = std::max(c.output_tokens, 1);
      call.expected_output_tokens =
          static_cast<int>(trace_fitted_lengths(st.kind).output.mean() + 0.5);
      int prefix = static_cast<int>(opt_.prefix_fraction * shortest_[st.kind]);
      if (prefix > 0) {
        call.prefix_id = stable_hash(question().id + "/" + std::string(stage_kind_name(st.kind))) | 1;
        call.prefix_tokens = std::min(prefix, c.input_tokens);
      }
      auto meta = std::make_shared<TraceCallMeta>();
      meta->output_tokens = c.output_tokens;
      call.meta = std::move(meta);
      calls.push_back(std::move(call));
    }
    release_llm_stage(st.kind, std::move(calls), std::move(parents), [this, s](std::vector<LlmResult> results) {
      for (const auto& r : results)
        if (!r.ok) {
          fail("call " + std::to_string(r.call_id) + " failed: " + r.error);
          return;
        }
      next(s + 1, {static_cast<uint32_t>(stages() - 1)});
    });
  }

  TraceFactoryOptions opt_;
  std::shared_ptr<const RemainingTable> table_;
  std::vector<TraceStage> stages_;
  std::map<StageKind, int> shortest_;
};

class TraceFactory final : public WorkflowFactory {
 public:
  TraceFactory(TraceFactoryOptions opt, const workloads::Workload* workload) : opt_(opt) {
    if (workload)
      for (const auto& q : workload->questions) seen_.emplace(q.id, group_trace_stages(q.trace_calls, opt_.tool_picker));
  }

  std::unique_ptr<Workflow> make(const workloads::Question& question, const workloads::Arrival& arrival,
                                 AgentEnv& env, Done done, WorkflowObserver* observer) override {
    // The population table needs the env's cost model; questions are registered as they are seen, and the
    // table is rebuilt when new questions arrive (cheap: a few hundred short sums).
    {
      std::lock_guard<std::mutex> lock(mu_);
      bool added = seen_.emplace(question.id, group_trace_stages(question.trace_calls, opt_.tool_picker)).second;
      // Rebuilding costs O(questions x stages^2): do it when the population has doubled, not per question.
      bool doubled = added && (seen_.size() & (seen_.size() - 1)) == 0;
      if (table_env_ != &env || doubled) rebuild(env);
    }
    auto w = std::make_shared<TraceWorkflow>(question, arrival, env, std::move(done), observer, opt_, table_);
    return make_workflow_handle(std::move(w));
  }

 private:
  void rebuild(const AgentEnv& env) {
    auto table = std::make_shared<RemainingTable>();
    size_t longest = 0;
    for (const auto& [id, st] : seen_) longest = std::max(longest, st.size());
    for (size_t k = 0; k < longest; ++k) {
      std::vector<double> rest;
      for (const auto& [id, st] : seen_) rest.push_back(k < st.size() ? critical_path_s(st, k + 1, env) : 0.0);
      table->after.push_back({mean(rest), quantile(rest, 0.9)});
    }
    table_ = std::move(table);
    table_env_ = &env;
  }

  TraceFactoryOptions opt_;
  std::mutex mu_;
  std::map<std::string, std::vector<TraceStage>> seen_;
  std::shared_ptr<const RemainingTable> table_ = std::make_shared<RemainingTable>();
  const AgentEnv* table_env_ = nullptr;
};

class TraceResponder final : public Responder {
 public:
  Response respond(const LlmCall& call) override {
    if (auto* m = dynamic_cast<const TraceCallMeta*>(call.meta.get())) return {{}, m->output_tokens};
    return {{}, call.expected_output_tokens};
  }
  std::string name() const override { return "trace"; }
};

}  // namespace

std::unique_ptr<WorkflowFactory> make_trace_factory(TraceFactoryOptions options) {
  return std::make_unique<TraceFactory>(options, nullptr);
}

std::unique_ptr<WorkflowFactory> make_trace_factory(const workloads::Workload& workload, TraceFactoryOptions options) {
  return std::make_unique<TraceFactory>(options, &workload);
}

std::unique_ptr<Responder> make_trace_responder() { return std::make_unique<TraceResponder>(); }

}  // namespace t2s::agents
