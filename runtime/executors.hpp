#pragma once
//! Internal to the runtime: what runs the calls an instance's local policy admitted.
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "agents/llm_call.hpp"
#include "agents/responder.hpp"
#include "common/log.hpp"
#include "scheduler/cost_model.hpp"
#include "scheduler/instance.hpp"

namespace t2s::engine {
class Backend;
struct StepReport;
}

namespace t2s::server {

//! Wraps an engine instance's backend before its runner uses it (fault injection, instrumentation).
using BackendWrapper = std::function<std::unique_ptr<engine::Backend>(std::unique_ptr<engine::Backend>)>;

//! Where one admitted call stands after an engine iteration.
struct CallProgress {
  uint64_t call_id = 0;     //!< the call
  int prompt_tokens = 0;    //!< its prompt as the engine tokenized it
  int prompt_computed = 0;  //!< prompt positions whose KV exists now (falls back after a preemption)
  int generated = 0;        //!< output tokens sampled so far
};

//! Where executors report (from their own threads).
struct ExecutorSink {
  //! A call ended; `retryable` when another instance might succeed (connection lost, server error).
  std::function<void(uint64_t call_id, agents::LlmResult result, bool retryable)> done;
  //! A measured unit of work for the online cost model (an engine iteration, or one whole remote call).
  std::function<void(const scheduler::IterationShape& shape, double seconds)> sample;
  //! After an engine iteration, before the done() of the calls it finished: the calls whose progress changed
  //! (optional), so the runtime's instance state follows the engine's.
  std::function<void(std::vector<CallProgress> progress)> progress;
  //! A running call gave its KV back under pressure (optional). Set: the call waits until start() is called for it
  //! again (the runtime re-admits it in its local policy's order, as the simulator does); unset: the engine executor
  //! resumes it itself when KV frees (engine-serve).
  //! `named`: it came from the order set_kv_victims gave (else the newest: no order, or none of it was running).
  std::function<void(uint64_t call_id, bool named)> preempted;
  //! Newly generated text of a call (optional; engine executors stream through it).
  std::function<void(uint64_t call_id, const std::string& text)> token;
};

//! Runs admitted calls of one instance.
class InstanceExecutor {
 public:
  virtual ~InstanceExecutor() = default;
  //! Starts an admitted call (`response` is set for responder instances: the answer written in advance).
  virtual void start(const agents::LlmCall& call, const agents::Response* response, double now_s) = 0;
  //! Cancels a started call; its done() then reports cancelled unless it already ended.
  virtual void cancel(uint64_t call_id) = 0;
  //! The local queue policy's prefill chunk cap (tokens per call per iteration; 0: the token budget). Engine
  //! executors obey it from their next iteration; remote servers chunk by their own rule, responders by the model.
  virtual void set_prefill_chunk_cap(int tokens) { (void)tokens; }
  //! The order in which running calls give their KV back when the batch runs out (call ids, the local policy's, kept
  //! current by the runtime): engine executors take the first of them that runs, else the newest; others do not
  //! preempt.
  virtual void set_kv_victims(std::vector<uint64_t> call_ids) { (void)call_ids; }
  //! Calls that may run at once.
  virtual int capacity() const = 0;
  //! KV blocks of the instance (0 when unknown).
  virtual int kv_blocks() const { return 0; }
  //! Context window (prompt + output tokens) of the instance's model; 0 when unknown.
  virtual int context_tokens() const { return 0; }
  //! "engine" | "remote" | "responder".
  virtual std::string kind() const = 0;
  //! Stops threads; started calls end cancelled (idempotent).
  virtual void stop() = 0;
};

//! The cost model's shape of an engine iteration, as the simulator counts it: prompt (or recompute) rows and their
//! attended positions (rows × (context before the chunk + rows / 2)), decode rows and the context each attends to.
scheduler::IterationShape iteration_shape(const engine::StepReport& report);

//! Clock shared by executors and the runtime (seconds since the runtime started).
using ClockFn = std::function<double()>;

//! An embedded-engine executor, which can also render chat prompts with its model's template.
class EngineExecutor : public InstanceExecutor {
 public:
  //! The prompt text of `messages` (role, content) in the model's chat format, ready for the assistant's turn.
  virtual std::string chat_prompt(const std::vector<std::pair<std::string, std::string>>& messages) const = 0;
  //! Tokens of `text` as this engine counts them (BOS included).
  virtual int count_tokens(const std::string& text) const = 0;
};

//! The embedded engine: one runner thread drives a BatchRunner over the CPU backend; calls beyond its sequence
//! limit wait inside the executor (the runtime never sends that many; engine-serve may). A backend that throws
//! fails the calls of that step (retryable) and the runner thread goes on; a call that alone outgrows the KV pool
//! fails naming the pool's size. `wrap`, when set, wraps the backend made for `spec`.
std::unique_ptr<EngineExecutor> make_engine_executor(const scheduler::InstanceSpec& spec,
                                                     const std::string& tokenizer_path, double kv_mb,
                                                     int max_batch_tokens, ExecutorSink sink, ClockFn clock,
                                                     Logger* log, const BackendWrapper& wrap = {});
//! An OpenAI-compatible server: `concurrency` worker threads, each with its own keep-alive connection; a call
//! fails (retryably) after `call_timeout_s` in all or `idle_timeout_s` of silence. Its context window is the
//! what the server's /models reports (0 when none).
std::unique_ptr<InstanceExecutor> make_remote_executor(const scheduler::InstanceSpec& spec, int concurrency,
                                                       double call_timeout_s, double idle_timeout_s,
                                                       ExecutorSink sink, ClockFn clock, Logger* log);
//! A responder instance: answers written by a Responder, delivered after the cost model's standalone time.
std::unique_ptr<InstanceExecutor> make_responder_executor(const scheduler::InstanceSpec& spec,
                                                          const scheduler::CostModel& cost, double speed,
                                                          ExecutorSink sink, ClockFn clock);

}  // namespace t2s::server
