#pragma once
//! How the CUDA backend lays out one forward pass: rows split into runs of one sequence (same block table,
//! consecutive positions), single-row runs to the decode attention kernel, longer runs to the prefill kernel in tiles
//! of ≤ 16 rows, and each run's block table copied once. Host-only, so it is unit-tested without a device.
#include <vector>

#include "engine/backend.hpp"

namespace t2s::engine::cuda {

//! Rows per prefill attention tile (= positions per KV page).
inline constexpr int kTileRows = 16;

//! The index arrays one step uploads.
struct StepPlan {
  std::vector<int> tokens;       //!< per row
  std::vector<int> positions;    //!< per row
  std::vector<int> row_table;    //!< per row: offset of its run's block table in `tables`
  std::vector<int> decode_rows;  //!< rows attended by the decode kernel
  std::vector<int> tiles;        //!< (first row, row count) pairs for the prefill kernel
  std::vector<int> logit_rows;   //!< as the batch lists them
  std::vector<int> tables;       //!< the runs' block tables, blocks 0..last position / 16 each
  bool pure_decode = false;      //!< every row is a single-row run and wants logits, in order (graph-replayable)
};

//! Plans `batch`; throws std::logic_error naming the first bad token, position, block id or logit row.
void plan_step(const ForwardBatch& batch, int vocab, int max_context, int num_blocks, StepPlan& plan);

}  // namespace t2s::engine::cuda
