#pragma once
//! The narrow compute interface between the batch runner and a device: one forward pass over a batch of
//! (token, position, block table) rows into a paged KV pool the backend owns. A CUDA backend implements the same.
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "engine/model.hpp"
#include "engine/sampler.hpp"

namespace t2s::engine {

//! Tokens per KV block.
inline constexpr int kKvBlockSize = 16;

//! One forward pass: rows of the batch, grouped by sequence (rows of one sequence are contiguous and in
//! position order; a row may attend to its own sequence's earlier positions, cached or in this batch).
struct ForwardBatch {
  std::span<const int> tokens;             //!< token id per row
  std::span<const int> positions;          //!< position per row
  std::span<const int* const> block_tables;  //!< per row: its sequence's block table (block ids, position/16 → id)
  std::span<const int> logit_rows;         //!< rows whose next-token logits are wanted, ascending
};

//! How to pick the next token of one logit row: the call's parameters and, when temperature > 0, the uniform draw
//! in [0, 1) from the call's generator (drawn by the caller, so sampling stays independent of the device).
struct SampleRequest {
  SamplingParams params;  //!< temperature / top-k / top-p
  double uniform = 0;     //!< the draw (ignored when greedy)
};

//! A device that runs the decoder. Implementations own the weights' device copy (if any) and the KV pool.
class Backend {
 public:
  virtual ~Backend() = default;
  //! Runs the batch; writes logits [logit_rows.size()][vocab] into `logits`. K/V of every row are stored in the
  //! pool at (block_tables[row][pos / 16], pos % 16) before any row attends.
  virtual void forward(const ForwardBatch& batch, float* logits) = 0;
  //! Runs the batch and picks one token per logit row into `tokens` (requests.size() == logit_rows.size()).
  //! The default runs forward() into `logits` ([logit_rows][vocab] scratch) and samples on the host with
  //! sample_token_with(); a device backend samples where the logits are and leaves `logits` untouched.
  virtual void forward_sample(const ForwardBatch& batch, std::span<const SampleRequest> requests, int vocab,
                              float* logits, int* tokens);
  //! KV blocks in the pool (fixed at construction).
  virtual int num_kv_blocks() const = 0;
  //! Most rows one forward() accepts.
  virtual int max_batch_tokens() const = 0;
  //! Longest context (positions) supported.
  virtual int max_context() const = 0;
  //! A name for logs ("cpu").
  virtual std::string name() const = 0;
};

//! Options for the CPU backend.
struct CpuBackendOptions {
  int threads = 1;                     //!< worker threads including the caller
  int max_batch_tokens = 256;          //!< rows per forward pass (prefill chunk + decodes)
  int max_context = 0;                 //!< 0 = the model's context length
  size_t kv_budget_bytes = 64u << 20;  //!< KV pool size; the block count is derived from it
};

//! The multithreaded, vectorised CPU backend. Throws t2s::InputError if the budget holds no block.
std::unique_ptr<Backend> make_cpu_backend(std::shared_ptr<const Model> model, const CpuBackendOptions& options);

//! Bytes of KV pool one block costs for `config` (K and V, all layers, float32).
size_t kv_block_bytes(const ModelConfig& config);

//! Options for the CUDA backend.
struct CudaBackendOptions {
  int device = 0;                      //!< CUDA device ordinal
  int max_batch_tokens = 256;          //!< rows per forward pass
  int max_logit_rows = 256;            //!< logit rows per forward pass at most
  int max_context = 0;                 //!< 0 = the model's context length
  size_t kv_budget_bytes = 1u << 30;   //!< KV pool size on the device; the block count is derived from it
  bool cuda_graphs = true;             //!< replay pure-decode steps from a CUDA Graph captured per batch size
};

//! Bytes of device KV pool one block costs for `config` (K and V, all layers, fp16).
size_t cuda_kv_block_bytes(const ModelConfig& config);
//! True when this build has the CUDA backend and a device is usable; otherwise `why` (if given) says why not.
bool cuda_device_available(std::string* why = nullptr);
//! The CUDA backend: weights uploaded once, cuBLAS GEMMs in FP16/BF16 with FP32 accumulation, paged fp16 KV.
//! Throws t2s::InputError when this build has no CUDA backend, no device is usable, or the budget holds no block.
std::unique_ptr<Backend> make_cuda_backend(std::shared_ptr<const Model> model, const CudaBackendOptions& options);

//! A backend made by make_backend, and why it is not the one asked for (empty when it is).
struct BackendChoice {
  std::unique_ptr<Backend> backend;  //!< the backend
  std::string fallback;              //!< one log line's message when "cuda" fell back to the CPU, else ""
};
//! Makes the backend `kind` ("cpu" or "cuda") names. "cuda" without CUDA in the build or without a device falls
//! back to the CPU backend and says so in `fallback` (the caller logs it). Throws t2s::InputError for another kind.
BackendChoice make_backend(const std::string& kind, std::shared_ptr<const Model> model, const CpuBackendOptions& cpu,
                           const CudaBackendOptions& cuda);

}  // namespace t2s::engine
