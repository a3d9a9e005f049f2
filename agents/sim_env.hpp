#pragma once
//! A tiny deterministic single-threaded discrete-event AgentEnv: every LLM call runs alone on a reference
//! instance (no queueing), answered by a Responder. For tests, `t2s`-side statistics and dry runs of a workflow;
//! the scheduler's simulator is the full model with instances, batching and policies.
#include <cstdint>
#include <functional>
#include <memory>
#include <queue>
#include <set>
#include <map>
#include <vector>

#include "agents/llm_call.hpp"
#include "agents/responder.hpp"

namespace t2s::agents {

//! Cost and timing model of the standalone env.
struct StandaloneEnvOptions {
  double prefill_tokens_per_s = 3800;   //!< reference prefill rate (A100x4, Llama-3.1-70B; design/scheduling.md)
  double decode_s_per_token = 0.022;    //!< reference decode time per output token
  double tool_s = 0.02;                 //!< modelled time of one tool stage (when not measured)
  bool measure_tools = false;           //!< true: a tool stage takes its measured wall time instead
  int context_tokens = 0;               //!< context window the env's LLM reports (0 = unlimited)
};

//! Deterministic event-loop env: events at equal times run in submission order.
class StandaloneEnv final : public AgentEnv, private LlmClient {
 public:
  //! `responder` writes every call's answer (not owned; must outlive the env's run).
  StandaloneEnv(Responder& responder, StandaloneEnvOptions options = {});
  double now() const override { return now_; }
  LlmClient& llm() override { return *this; }
  void run_tool(uint64_t workflow_id, StageKind kind, std::function<void()> work,
                std::function<void(double elapsed_s)> done) override;
  uint64_t next_call_id() override { return ++last_call_id_; }
  double reference_seconds(int prompt_tokens, int output_tokens) const override;

  //! Schedules `fn` at absolute time `t_s` (not before now).
  uint64_t at(double t_s, std::function<void()> fn) override;
  void cancel_at(uint64_t timer) override;
  //! Runs events until none is left; returns the final clock.
  double run();
  //! Every call submitted so far (with its response length), in submission order.
  struct CallRecord {
    LlmCall call;
    int output_tokens = 0;
    bool cancelled = false;
  };
  const std::vector<CallRecord>& calls() const { return records_; }
  //! Number of calls submitted but not yet ended.
  size_t running_calls() const { return running_.size(); }

 private:
  void submit(std::vector<LlmCall> calls, std::vector<Callback> done) override;
  void cancel(uint64_t call_id) override;
  int context_tokens() const override { return opt_.context_tokens; }

  struct Event {
    double t;
    uint64_t seq;  // also the timer id
    std::function<void()> fn;
    bool operator>(const Event& o) const { return t != o.t ? t > o.t : seq > o.seq; }
  };
  struct Running {
    Callback done;
    size_t record;
    LlmResult result;
  };
  Responder& responder_;
  StandaloneEnvOptions opt_;
  double now_ = 0;
  uint64_t seq_ = 0, last_call_id_ = 0;
  std::priority_queue<Event, std::vector<Event>, std::greater<Event>> events_;
  std::map<uint64_t, Running> running_;
  std::set<uint64_t> cancelled_timers_;
  std::vector<CallRecord> records_;
};

}  // namespace t2s::agents
