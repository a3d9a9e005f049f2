#pragma once
//! Continuous batching with an explicit step API. The caller (t2s's local queue policy) decides what to admit,
//! preempt, resume or cancel; step() runs exactly one iteration over everything admitted and reports it.
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/rng.hpp"
#include "common/status.hpp"
#include "engine/backend.hpp"
#include "common/sql_literal_rules.hpp"
#include "engine/block_manager.hpp"
#include "engine/sampler.hpp"
#include "engine/tokenizer.hpp"

namespace t2s::engine {

//! Per-call generation settings.
struct GenerationParams {
  int max_tokens = 256;            //!< generated tokens at most (the prompt not counted)
  SamplingParams sampling;         //!< greedy by default
  uint64_t seed = 0;               //!< seeds this call's own generator (independent of batching)
  std::vector<std::string> stop;   //!< stop strings; the text returned ends before the first match
  bool ignore_eos = false;         //!< keep going past stop tokens (benchmarks)
  //! When set, the literals of SQL in a ```sql block of the answer are restricted to these (SqlLiteralGuide);
  //! such calls are sampled on the host.
  std::shared_ptr<const SqlLiteralRules> literals;
};

//! Identifies an admitted call.
using SequenceId = uint64_t;

//! Lifecycle of a call inside the runner.
enum class SequenceState { Running, Preempted, Finished, Cancelled };
//! Why a call finished.
enum class FinishReason { None, Length, StopToken, StopString, ContextFull, Cancelled };
//! "length", "stop", "stop_string", "context", "cancelled" (OpenAI-style where one exists).
const char* finish_reason_name(FinishReason r);

//! One streamed token of one call.
struct TokenEvent {
  SequenceId id = 0;          //!< the call
  int token = -1;             //!< the sampled id (-1 on a final event that carries no token)
  std::string piece;          //!< the token's own bytes as decoded
  std::string text;           //!< newly released text (stop-string hold-back applied); may be empty
  bool finished = false;      //!< this is the call's last event
  FinishReason reason = FinishReason::None;  //!< set when finished
};

//! One call's share of an iteration.
struct StepCall {
  SequenceId id = 0;     //!< the call
  int rows = 0;          //!< positions computed for it this step
  int first_pos = 0;     //!< position of its first row (its cached/computed context before this step)
  bool decode = false;   //!< true for a single decode row, false for a prefill/recompute chunk
};

//! What one iteration ran (the cost model's calibration record).
struct StepReport {
  std::vector<StepCall> calls;     //!< per call: rows and context, in batch order
  int sequences = 0;         //!< calls that ran at least one row
  int prefill_tokens = 0;    //!< rows that computed prompt (or recompute) positions
  int decode_tokens = 0;     //!< rows that computed a just-sampled token
  int context_tokens = 0;    //!< Σ over rows of attended positions (attention work)
  double seconds = 0;        //!< wall time of the iteration (forward + sampling)
  std::vector<SequenceId> stalled;  //!< calls that could not get a KV block this step (preempt one to unblock)
  std::vector<TokenEvent> events;   //!< tokens produced this step, in batch order
};

//! Per-iteration limits the caller's scheduling policy sets (the local queue's chunk cap).
struct StepLimits {
  int prefill_chunk_tokens = 0;  //!< prompt/recompute rows per call in this step at most (0: the token budget)
};

//! Runner options.
struct RunnerOptions {
  int max_batch_tokens = 256;  //!< token budget per iteration (≤ the backend's)
  int max_sequences = 64;      //!< running calls at most (preempted ones hold no batch row)
  bool prefix_caching = true;  //!< share full prompt blocks between calls
};

//! Read-only view of a call's progress.
struct SequenceInfo {
  SequenceState state = SequenceState::Running;  //!< lifecycle
  FinishReason reason = FinishReason::None;       //!< when finished
  int prompt_tokens = 0;       //!< prompt length
  int generated_tokens = 0;    //!< sampled so far
  int computed_tokens = 0;     //!< positions whose KV is in the cache
  int cached_prompt_tokens = 0;  //!< prompt positions reused from the prefix cache (over all admissions)
  int recomputed_tokens = 0;   //!< positions computed again after preemption
  std::string text;            //!< generated text released so far
  std::vector<int> output;     //!< generated token ids
};

//! A call's position counts, without its text (cheap enough to ask every step).
struct SequenceCounts {
  int prompt_tokens = 0;     //!< prompt length
  int computed_tokens = 0;   //!< positions whose KV is in the cache
  int generated_tokens = 0;  //!< sampled so far
};

//! The continuous-batching engine loop over one backend. Not thread-safe: one owner thread drives it.
class BatchRunner {
 public:
  //! `tokenizer` is used for detokenisation and stop tokens; both must outlive the runner.
  BatchRunner(Backend& backend, const Tokenizer& tokenizer, const RunnerOptions& options = {});
  ~BatchRunner();
  BatchRunner(const BatchRunner&) = delete;
  BatchRunner& operator=(const BatchRunner&) = delete;
  //! Admits a call with prompt token ids; it runs from the next step(). Errors: empty prompt, prompt not shorter
  //! than the context, more blocks than the pool holds, or max_sequences reached. Full prompt blocks already cached
  //! are reused immediately.
  Expected<SequenceId> admit(std::vector<int> prompt, const GenerationParams& params);
  //! Runs one iteration: one decode row for every running call that has a sampled token to extend, then prefill
  //! chunks in admission order (each at most `limits.prefill_chunk_tokens`) until the token budget is spent.
  //! Finished calls stay queryable until release().
  StepReport step(const StepLimits& limits = {});
  //! Frees a running call's KV (full blocks stay in the prefix cache); resume() recomputes it later.
  void preempt(SequenceId id);
  //! Makes a preempted call runnable again (its prompt and generated tokens are recomputed, reusing cached blocks);
  //! false, and it stays preempted, while max_sequences calls run.
  bool resume(SequenceId id);
  //! Stops a call now and frees its KV; its info stays until release().
  void cancel(SequenceId id);
  //! Forgets a finished or cancelled call.
  void release(SequenceId id);
  //! Progress of a call (throws std::out_of_range for an unknown id).
  SequenceInfo info(SequenceId id) const;
  //! The counts of info() without copying the text and token ids (throws std::out_of_range for an unknown id).
  SequenceCounts counts(SequenceId id) const;
  //! Calls in admission order that are Running.
  std::vector<SequenceId> running() const;
  //! Calls in admission order that are Preempted.
  std::vector<SequenceId> preempted() const;
  //! True when some admitted call is Running.
  bool has_work() const;
  //! KV blocks obtainable now.
  int available_blocks() const { return blocks_.num_available(); }
  //! Blocks a prompt of `tokens` positions needs (ceil(tokens / 16)).
  static int blocks_for(int tokens) { return (tokens + kKvBlockSize - 1) / kKvBlockSize; }
  //! Total prompt tokens admitted / served from the prefix cache / computed (prefill + recompute) so far.
  struct Totals {
    int64_t prompt_tokens = 0, cached_tokens = 0, computed_prefill_tokens = 0, decode_tokens = 0;
  };
  //! Running totals since construction.
  const Totals& totals() const { return totals_; }
  //! The backend (for its limits).
  const Backend& backend() const { return backend_; }

 private:
  int running_count() const;  // calls in state Running (the ones that hold a batch row)
  struct Seq;
  struct Ran {
    Seq* s;  // a call that ran this step
    int n;   // its rows
  };
  Seq& get(SequenceId id);
  const Seq& get(SequenceId id) const;
  void attach_prefix(Seq& s);
  void free_blocks(Seq& s);
  void finish(Seq& s, FinishReason r, StepReport& rep);
  void on_token(Seq& s, int token, StepReport& rep);
  void sample_on_host(const ForwardBatch& fb);  // forward + host sampling, guided where a call has rules

  Backend& backend_;
  const Tokenizer& tok_;
  RunnerOptions opt_;
  BlockManager blocks_;
  std::vector<std::unique_ptr<Seq>> seqs_;  // admission order
  SequenceId next_id_ = 1;
  Totals totals_;
  // Per-step buffers, reserved once.
  std::vector<int> b_tokens_, b_pos_, b_logit_rows_;
  std::vector<const int*> b_tables_;
  std::vector<Seq*> b_logit_seq_;
  std::vector<Ran> ran_;
  std::vector<float> logits_;
  std::vector<SampleRequest> b_requests_;
  std::vector<int> b_sampled_;
  // Each token's bytes and the stop tokens, for literal guides (filled on the first guided admission).
  std::vector<std::string> token_bytes_;
  std::vector<char> stop_token_;
};

}  // namespace t2s::engine
