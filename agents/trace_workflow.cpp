#include "agents/trace_workflow.hpp"

#include <algorithm>
#include <map>
#include <mutex>

#include "agents/staged_workflow.hpp"
#include "agents/stage_model.hpp"
#include "common/stats.hpp"
#include "common/status.hpp"

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
    TraceStage st;
    st.kind = kind;
    st.calls = {c};
    if (!stages.empty()) st.parents = {static_cast<uint32_t>(stages.size() - 1)};
    stages.push_back(std::move(st));
  }
  return stages;
}

std::vector<TraceStage> recorded_trace_stages(const workloads::Question& question) {
  std::vector<TraceStage> stages;
  if (!question.recorded) return stages;
  const auto& stages_in = question.recorded->stages;
  for (size_t i = 0; i < stages_in.size(); ++i) {
    const auto& r = stages_in[i];
    TraceStage st;
    st.kind = parse_stage_kind(r.kind);
    if (stage_kind_name(st.kind) != r.kind)
      throw InputError("question " + question.id + " stage " + std::to_string(i) + ": unknown stage kind '" + r.kind +
                       "'");
    st.parents = r.parents;
    st.tool = r.tool;
    st.tool_s = r.duration_s;
    st.done = r.done;
    st.recorded = r.calls;
    double ready_s = 0;  // when its last parent ended, after the arrival
    for (auto p : r.parents)
      if (p < i) ready_s = std::max(ready_s, stages_in[p].start_s + stages_in[p].duration_s);
    st.release_delay_s = std::max(0.0, r.start_s - ready_s);
    for (const auto& c : r.calls) st.calls.push_back({r.kind, c.prompt_tokens, c.output_tokens});
    stages.push_back(std::move(st));
  }
  return stages;
}

namespace {

// The stages a question replays: its recorded DAG, else its hexgen call sequence.
std::vector<TraceStage> question_stages(const workloads::Question& q, bool tool_picker) {
  return q.recorded ? recorded_trace_stages(q) : group_trace_stages(q.trace_calls, tool_picker);
}

}  // namespace

namespace {

// Critical-path seconds of stages [from, end) on the reference instance.
double critical_path_s(const std::vector<TraceStage>& stages, size_t from, const AgentEnv& env) {
  double total = 0;
  for (size_t s = from; s < stages.size(); ++s) {
    double longest = stages[s].tool ? stages[s].tool_s : 0;
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
    stages_ = question_stages(q, opt.tool_picker);
    ended_.assign(stages_.size(), false);
    released_.assign(stages_.size(), false);
    index_.assign(stages_.size(), 0);
  }

 protected:
  void begin() override {
    if (stages_.empty()) {
      if (question().recorded) {
        finish_recorded(false);  // a recorded workflow that ended before its first stage
        return;
      }
      fail("question " + question().id + " has no recorded trace calls (trace replay needs a hexgen-trace workload)");
      return;
    }
    // Hexgen traces: prefix per stage kind, the shortest prompt of that kind in this question times the fraction.
    for (const auto& s : stages_)
      for (const auto& c : s.calls) {
        auto [it, inserted] = shortest_.emplace(s.kind, c.input_tokens);
        if (!inserted) it->second = std::min(it->second, c.input_tokens);
      }
    release_ready();
  }

  RemainingWork remaining_after(StageKind, uint32_t stage_index) const override {
    if (opt_.exact_remaining) {
      double s = critical_path_s(stages_, stage_index + 1, env());
      return {s, s};
    }
    if (stage_index < table_->after.size()) return table_->after[stage_index];
    return {};
  }

  // Recorded workflows that ended early in the recording end early here too, at the same deadline. (Whether the
  // agent that ran a completed one would have cut it there is not recorded: it runs on, as recorded.)
  bool on_deadline_passed() override {
    const auto* r = question().recorded.get();
    if (!r || r->outcome != "ended_early") return false;
    finish_recorded(true);
    return true;
  }

 private:
  // Releases, in recorded order, every stage whose parents have all ended.
  void release_ready() {
    for (size_t s = 0; s < stages_.size(); ++s) {
      if (released_[s]) continue;
      bool ready = true;
      for (auto p : stages_[s].parents) ready = ready && p < s && ended_[p];
      if (!ready) continue;
      released_[s] = true;
      if (stages_[s].release_delay_s > 0) {
        auto self = std::static_pointer_cast<TraceWorkflow>(shared_from_this());
        env().at(env().now() + stages_[s].release_delay_s, [self, s] {
          if (!self->finished()) self->guarded([&] { self->release(s); });
        });
        continue;
      }
      release(s);
      if (finished()) return;
    }
  }

  // The replay's stage indices of the recorded parents (release order may differ from the recording's).
  std::vector<uint32_t> parent_indices(size_t s) const {
    std::vector<uint32_t> out;
    for (auto p : stages_[s].parents) out.push_back(index_[p]);
    return out;
  }

  void release(size_t s) {
    const auto& st = stages_[s];
    if (st.tool) {
      index_[s] = release_timed_stage(st.kind, st.tool_s, parent_indices(s), [this, s](double) { stage_ended(s); });
      return;
    }
    std::vector<LlmCall> calls;
    for (size_t k = 0; k < st.calls.size(); ++k) {
      const auto& c = st.calls[k];
      LlmCall call;
      call.prompt_tokens = c.input_tokens;
      call.max_output_tokens = std::max(c.output_tokens, 1);
      call.expected_output_tokens = static_cast<int>(trace_fitted_lengths(st.kind).output.mean() + 0.5);
      if (k < st.recorded.size()) {
        // Recorded runs: the scheduler sees what it saw then.
        const auto& r = st.recorded[k];
        call.max_output_tokens = std::max({r.max_output_tokens, r.output_tokens, 1});
        call.expected_output_tokens = r.expected_output_tokens;
        call.prefix_id = r.prefix_id;
        call.prefix_tokens = std::min(r.prefix_tokens, r.prompt_tokens);
        if (opt_.measured_prefix && !r.instance.empty() && (r.cached_tokens > 0 || r.prefix_id != 0)) {
          call.prefix_id = stable_hash("measured-cache/" + r.instance) | 1;
          call.prefix_tokens = std::min(r.cached_tokens > 0 ? r.cached_tokens : r.prefix_tokens, r.prompt_tokens);
        }
      } else {
        int prefix = static_cast<int>(opt_.prefix_fraction * shortest_[st.kind]);
        if (prefix > 0) {
          call.prefix_id = stable_hash(question().id + "/" + std::string(stage_kind_name(st.kind))) | 1;
          call.prefix_tokens = std::min(prefix, c.input_tokens);
        }
      }
      auto meta = std::make_shared<TraceCallMeta>();
      meta->output_tokens = c.output_tokens;
      call.meta = std::move(meta);
      calls.push_back(std::move(call));
    }
    index_[s] = release_llm_stage(st.kind, std::move(calls), parent_indices(s), [this, s](std::vector<LlmResult> results) {
      for (const auto& r : results)
        if (!r.ok) {
          fail("call " + std::to_string(r.call_id) + " failed: " + r.error);
          return;
        }
      log_service(s, results);
      stage_ended(s);
    });
  }

  void log_service(size_t s, const std::vector<LlmResult>& results) {
    if (!opt_.service_log) return;
    const auto& rec = stages_[s].recorded;
    std::lock_guard lock(opt_.service_log->mu);
    for (size_t k = 0; k < results.size() && k < rec.size(); ++k)
      if (rec[k].ok && rec[k].service_s > 0)
        opt_.service_log->samples.push_back(
            {rec[k].instance, results[k].instance, rec[k].service_s, results[k].finished_s - results[k].started_s});
  }

  void stage_ended(size_t s) {
    ended_[s] = true;
    // Done when every stage that ended in the recording has ended (an ended_early one: at its deadline).
    const auto* r = question().recorded.get();
    const bool wait_all = !r || r->outcome == "ended_early";
    bool all = true;
    for (size_t k = 0; k < stages_.size(); ++k) all = all && (ended_[k] || (!wait_all && !stages_[k].done));
    if (all) {
      // One that ended early in the recording was cut there: its recorded work is a lower bound of what it needed,
      // so finishing that work sooner says nothing about finishing in time. It ends at its deadline, as recorded.
      if (r && r->outcome == "ended_early") return;
      if (r) {
        finish_recorded(false);
      } else {
        WorkflowOutcome o;
        o.completed = true;
        finish(std::move(o));
      }
      return;
    }
    release_ready();
  }

  // Ends a recorded workflow the way the recording ended, with the recorded answer's checks.
  void finish_recorded(bool early) {
    const auto& r = *question().recorded;
    WorkflowOutcome o;
    if (r.outcome == "failed" || r.outcome == "cancelled") {
      o.failed = true;
      o.error = "as recorded: " + (r.error.empty() ? r.outcome : r.error);
    } else {
      o.completed = true;
      o.ended_early = early;
      o.sql_executed = r.sql_executed;
      o.has_gold = r.has_gold;
      o.correct = r.correct;
    }
    finish(std::move(o));
  }

  TraceFactoryOptions opt_;
  std::shared_ptr<const RemainingTable> table_;
  std::vector<TraceStage> stages_;
  std::vector<bool> ended_, released_;
  std::vector<uint32_t> index_;  // recorded stage → the replay's stage index
  std::map<StageKind, int> shortest_;
};

class TraceFactory final : public WorkflowFactory {
 public:
  TraceFactory(TraceFactoryOptions opt, const workloads::Workload* workload) : opt_(opt) {
    if (workload)
      for (const auto& q : workload->questions) seen_.emplace(q.id, question_stages(q, opt_.tool_picker));
  }

  std::unique_ptr<Workflow> make(const workloads::Question& question, const workloads::Arrival& arrival,
                                 AgentEnv& env, Done done, WorkflowObserver* observer) override {
    // The population table needs the env's cost model; questions are registered as they are seen, and the
    // table is rebuilt when new questions arrive (cheap: a few hundred short sums).
    {
      std::lock_guard<std::mutex> lock(mu_);
      bool added = seen_.emplace(question.id, question_stages(question, opt_.tool_picker)).second;
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
