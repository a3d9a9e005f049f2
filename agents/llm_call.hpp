#pragma once
//! What the scheduler sees of an agent: one LLM call, its result, and the asynchronous client that serves it.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/sql_literal_rules.hpp"

namespace t2s::agents {

//! The kind of a workflow stage (LLM stages and tool stages).
enum class StageKind {
  tool_picker,           //!< agentic tool-picker ("agent") call, ~300 prompt tokens
  keyword_extraction,    //!< keyword extraction for schema linking
  column_selection,      //!< column/table selection for schema linking
  candidate_generation,  //!< SQL candidate generation (parallel fan-out)
  revise,                //!< self-correction after an execution error or failed check
  unit_test_generation,  //!< unit-test generation for candidate evaluation
  evaluation,            //!< one judge call per unit test (parallel fan-out)
  selection,             //!< final selection (LLM or execution-based)
  sql_execution,         //!< tool stage: SQLite execution
  other,                 //!< anything else
};

//! Stable lower-case name of a stage kind ("candidate_generation", …).
std::string_view stage_kind_name(StageKind kind);
//! Parses a stage-kind name, also accepting the hexgen trace step names
//! (agent, extract_keywords, generate_candidate, revise, generate_unit_test, evaluate, …); `other` if unknown.
StageKind parse_stage_kind(std::string_view name);
//! True for stages run by an LLM (not tools).
bool is_llm_stage(StageKind kind);

//! Opaque, agent-defined information a simulated responder may use (the real model ignores it).
struct CallMeta {
  virtual ~CallMeta() = default;
};

//! One LLM call with everything a scheduler needs to place and order it.
struct LlmCall {
  uint64_t id = 0;                   //!< unique within a run
  uint64_t workflow_id = 0;          //!< the workflow (question) it belongs to
  uint32_t stage_index = 0;          //!< index of its stage within the workflow (0, 1, 2, … in release order)
  StageKind kind = StageKind::other; //!< stage kind
  uint32_t siblings = 1;             //!< calls in the same stage (fan-out width), this one included
  std::string prompt;                //!< prompt text (may be empty in pure trace replays)
  int prompt_tokens = 0;             //!< prompt length in tokens
  uint64_t prefix_id = 0;            //!< calls with the same non-zero id share their first `prefix_tokens` tokens
  int prefix_tokens = 0;             //!< length of that shared prefix
  int max_output_tokens = 512;       //!< generation cap
  int expected_output_tokens = 64;   //!< the agent's estimate (for cost models)
  double arrival_s = 0;              //!< workflow arrival time (clock seconds)
  double deadline_s = 1e18;          //!< absolute workflow deadline (clock seconds)
  double released_s = 0;             //!< when this call became ready
  double remaining_mean_s = 0;       //!< expected remaining work of the workflow after this call (reference-instance s)
  double remaining_p90_s = 0;        //!< a high quantile of that remaining work
  double temperature = 0.0;          //!< sampling temperature (0 = greedy)
  uint64_t seed = 0;                 //!< sampling seed
  std::vector<std::string> stop;     //!< stop strings
  //! Literals the answer's SQL may contain (the embedded engine enforces them while decoding; remote servers and
  //! simulated responders ignore them); null = unconstrained.
  std::shared_ptr<const SqlLiteralRules> literals;
  std::shared_ptr<const CallMeta> meta;  //!< responder hints (question, attempt, …)
};

//! How a call ended.
struct LlmResult {
  uint64_t call_id = 0;
  bool ok = false;           //!< false: failed or cancelled (see error)
  bool cancelled = false;    //!< true when ended by cancel()
  std::string error;         //!< why it failed
  std::string text;          //!< generated text
  int prompt_tokens = 0;     //!< prompt tokens as counted by the serving tokenizer
  int cached_tokens = 0;     //!< prompt tokens served from a prefix cache
  int output_tokens = 0;     //!< generated tokens
  std::string instance;      //!< name of the instance that served it
  double queued_s = 0;       //!< clock time it was dispatched to the instance's queue
  double started_s = 0;      //!< clock time its first token of work ran
  double finished_s = 0;     //!< clock time it ended
};

//! Asynchronous LLM service as the agent sees it: the simulator, the real runtime and test fakes implement it.
class LlmClient {
 public:
  using Callback = std::function<void(const LlmResult&)>;
  virtual ~LlmClient() = default;
  //! Submits the calls of one stage together (so siblings can be placed as a group); `done[i]` fires exactly
  //! once for `calls[i]`, on the client's executor (never inside submit()).
  virtual void submit(std::vector<LlmCall> calls, std::vector<Callback> done) = 0;
  //! Cancels a queued or running call; its callback fires with cancelled=true unless it already finished.
  virtual void cancel(uint64_t call_id) = 0;
  //! The context window (prompt + generated tokens) that every instance that may serve a call holds; 0 = unknown
  //! or unlimited (simulated instances). Agents fit their prompts to it.
  virtual int context_tokens() const { return 0; }
  //! Tokens of `text` as the serving tokenizer counts them (the largest count among instances with a limited
  //! context); -1 = unknown (agents then use their own estimate).
  virtual int count_tokens(std::string_view text) const {
    (void)text;
    return -1;
  }
};

//! The world a workflow runs in: a clock, an LLM client, and a place to run tool work (SQLite).
class AgentEnv {
 public:
  virtual ~AgentEnv() = default;
  //! Current clock time in seconds (virtual in simulation, wall in the runtime).
  virtual double now() const = 0;
  //! The LLM service.
  virtual LlmClient& llm() = 0;
  //! Runs tool work for `workflow_id` (e.g. executing SQL) off the caller's stack; `done(elapsed_s)` fires once
  //! after it, on the env's executor. In simulation `work` runs for real and the clock advances by the modelled
  //! or measured time of the stage `kind`.
  virtual void run_tool(uint64_t workflow_id, StageKind kind, std::function<void()> work,
                        std::function<void(double elapsed_s)> done) = 0;
  //! Runs measurement work that is not part of serving (scoring an answer against gold), then `done` on the env's
  //! executor. It takes no clock time in simulation (the default: both at once); the runtime runs it on its SQLite
  //! workers, so that it neither blocks other workflows nor counts in anyone's latency.
  virtual void run_measurement(std::function<void()> work, std::function<void()> done) {
    work();
    done();
  }
  //! Runs `fn` on the env's executor at clock time `t_s` (now, if `t_s` has passed); returns an id for cancel_at.
  virtual uint64_t at(double t_s, std::function<void()> fn) = 0;
  //! Cancels a timer of `at` that has not fired (unknown or fired ids are ignored). A cancelled timer neither
  //! runs nor moves a virtual clock.
  virtual void cancel_at(uint64_t timer) = 0;
  //! Unique call id for this run.
  virtual uint64_t next_call_id() = 0;
  //! Standalone time (s) of one call of these lengths on the reference instance, by the active cost model;
  //! agents use it to express remaining work in seconds.
  virtual double reference_seconds(int prompt_tokens, int output_tokens) const = 0;
};

}  // namespace t2s::agents
