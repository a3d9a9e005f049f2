#pragma once
//! Iteration-level cost model of one instance (GPU profile × TP × model), physical by default and refittable
//! from measured iterations by least squares; plus load-aware completion estimates that policies use.
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "agents/llm_call.hpp"
#include "common/status.hpp"
#include "scheduler/instance.hpp"

namespace t2s::scheduler {

//! What one continuous-batching iteration contains.
struct IterationShape {
  int prefill_tokens = 0;          //!< prompt tokens computed in this iteration (all chunks)
  double prefill_attn = 0;         //!< Σ over prefill chunks of chunk_tokens × mean attended context
  int decode_seqs = 0;             //!< sequences generating one token
  int64_t decode_context = 0;      //!< Σ context length of the decoding sequences (KV read)
};

//! One measured iteration (for fitting).
struct IterationSample {
  IterationShape shape;
  double seconds = 0;
};

//! Coefficients of the linear iteration model
//! t = c0 + c_prefill·prefill_tokens + c_attn·prefill_attn + c_seq·decode_seqs + c_ctx·decode_context.
struct LinearIterationModel {
  double c0 = 0, c_prefill = 0, c_attn = 0, c_seq = 0, c_ctx = 0;
  double rms_error_s = 0;   //!< fit residual
  size_t samples = 0;       //!< samples used
  //! Predicted seconds for `s`.
  double predict(const IterationShape& s) const {
    return c0 + c_prefill * s.prefill_tokens + c_attn * s.prefill_attn + c_seq * s.decode_seqs +
           c_ctx * static_cast<double>(s.decode_context);
  }
};

//! Fits the linear model by least squares (non-negative coefficients); error when samples cannot determine it.
Expected<LinearIterationModel> fit_iteration_model(std::span<const IterationSample> samples);

//! The cost model of one instance. Immutable after construction except for `set_fitted`.
class CostModel {
 public:
  //! Physical model from the profiles.
  CostModel(const GpuProfile& gpu, int tp, const ModelProfile& model, int block_tokens = 16);
  //! From an instance spec (also takes its prefill chunking: max_batch_tokens when chunked_prefill).
  explicit CostModel(const InstanceSpec& spec);

  //! Seconds of one iteration of this shape (fitted model when set, else physics).
  double iteration_s(const IterationShape& shape) const;
  //! Physics-only seconds of one iteration (roofline: max(compute, memory) + TP communication + overhead).
  double physical_iteration_s(const IterationShape& shape) const;
  //! Fixed per-call overhead (s).
  double call_overhead_s() const { return gpu_.call_overhead_s; }

  //! Standalone latency of one call alone on an idle instance (prefill in chunks of `chunk_tokens`, or whole
  //! when 0), with `cached_tokens` of its prompt served from the prefix cache.
  double standalone_s(int prompt_tokens, int output_tokens, int cached_tokens = 0, int chunk_tokens = 0) const;
  //! Time to prefill `tokens` more prompt tokens after `context` already-resident ones, alone.
  double prefill_s(int tokens, int context = 0, int chunk_tokens = 0) const;
  //! Time of one decode step of a batch of `seqs` sequences with total context `context`.
  double decode_step_s(int seqs, int64_t context) const;

  //! Estimated completion time (absolute clock s) of `call` if dispatched now to `inst`, given its load: the
  //! work already queued and running ahead of it (FCFS view), its own prefill (minus believed prefix-cache hits)
  //! and its decode at the batch size the instance will run with. O(1) in the queue length.
  double estimate_completion_s(const agents::LlmCall& call, const InstanceState& inst, double now) const;
  //! Estimated seconds until `inst` has drained the work already queued and running (FCFS view). O(1).
  double backlog_s(const InstanceState& inst) const;
  //! Prefill throughput alone (tokens/s) at a typical context, for capacity bounds.
  double prefill_tokens_per_s() const;

  //! KV capacity in blocks: (memory × utilisation × tp − weights − activation reserve) / block bytes, unless the
  //! instance spec overrides it.
  int kv_capacity_blocks() const;
  //! Tokens per KV block.
  int block_tokens() const { return block_tokens_; }
  //! Prefill chunk used by estimates (0 = whole prompts in one iteration).
  int default_chunk_tokens() const { return default_chunk_; }

  //! Uses a fitted linear model instead of physics (e.g. calibrated from the real engine's iterations).
  void set_fitted(const LinearIterationModel& fitted);
  //! Drops a fitted model (back to physics).
  void clear_fitted() { fitted_valid_ = false; }
  //! True when a fitted model is active.
  bool fitted() const { return fitted_valid_; }
  //! The active fitted model (meaningful when fitted()).
  const LinearIterationModel& fitted_model() const { return fitted_; }

  //! The GPU profile.
  const GpuProfile& gpu() const { return gpu_; }
  //! The model profile.
  const ModelProfile& model() const { return model_; }
  //! Tensor-parallel degree.
  int tp() const { return tp_; }

 private:
  GpuProfile gpu_;
  ModelProfile model_;
  int tp_ = 1;
  int block_tokens_ = 16;
  int default_chunk_ = 0;
  int kv_override_ = 0;
  bool fitted_valid_ = false;
  LinearIterationModel fitted_;
};

//! Prediction error of a cost model against measured call latencies, for `t2s` reports.
struct CallErrorReport {
  size_t calls = 0;          //!< calls compared
  double mean_abs_rel = 0;   //!< mean |pred − meas| / meas
  double p90_abs_rel = 0;    //!< 90th percentile of that
  double bias_rel = 0;       //!< mean (pred − meas) / meas
};

//! One measured call (for reports of predicted vs measured error).
struct MeasuredCall {
  int prompt_tokens = 0, cached_tokens = 0, output_tokens = 0;
  double seconds = 0;   //!< measured service time (admission to end), standalone
};

//! Compares `model.standalone_s` with measured calls.
CallErrorReport compare_calls(const CostModel& model, std::span<const MeasuredCall> calls);

}  // namespace t2s::scheduler
