#pragma once
//! The narrow compute interface between the batch runner and a device: one forward pass over a batch of
//! (token, position, block table) rows into a paged KV pool the backend owns. A CUDA backend implements the same.
#include <cstdint>
#include <memory>
#include <span>
#include <string>

#include "engine/model.hpp"

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

//! A device that runs the decoder. Implementations own the weights' device copy (if any) and the KV pool.
class Backend {
 public:
  virtual ~Backend() = default;
  //! Runs the batch; writes logits [logit_rows.size()][vocab] into `logits`. K/V of every row are stored in the
  //! pool at (block_tables[row][pos / 16], pos % 16) before any row attends.
  virtual void forward(const ForwardBatch& batch, float* logits) = 0;
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

}  // namespace t2s::engine
