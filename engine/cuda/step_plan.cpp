#include "engine/cuda/step_plan.hpp"

#include <algorithm>
#include <stdexcept>

namespace t2s::engine::cuda {

void plan_step(const ForwardBatch& batch, int vocab, int max_context, int num_blocks, StepPlan& p) {
  const int R = static_cast<int>(batch.tokens.size());
  p.tokens.assign(batch.tokens.begin(), batch.tokens.end());
  p.positions.assign(batch.positions.begin(), batch.positions.end());
  p.row_table.assign(static_cast<size_t>(R), 0);
  p.decode_rows.clear();
  p.tiles.clear();
  p.tables.clear();
  for (int r = 0; r < R;) {
    const int* table = batch.block_tables[static_cast<size_t>(r)];
    int e = r + 1;
    while (e < R && batch.block_tables[static_cast<size_t>(e)] == table &&
           batch.positions[static_cast<size_t>(e)] == batch.positions[static_cast<size_t>(e - 1)] + 1)
      ++e;
    for (int i = r; i < e; ++i) {
      const int tok = batch.tokens[static_cast<size_t>(i)], pos = batch.positions[static_cast<size_t>(i)];
      if (tok < 0 || tok >= vocab) throw std::logic_error("forward: token id out of range");
      if (pos < 0 || pos >= max_context) throw std::logic_error("forward: position past context");
      p.row_table[static_cast<size_t>(i)] = static_cast<int>(p.tables.size());
    }
    const int blocks = batch.positions[static_cast<size_t>(e - 1)] / kKvBlockSize + 1;
    for (int b = 0; b < blocks; ++b) {
      if (table[b] < 0 || table[b] >= num_blocks) throw std::logic_error("forward: block id out of range");
      p.tables.push_back(table[b]);
    }
    if (e - r == 1) {
      p.decode_rows.push_back(r);
    } else {
      for (int t = r; t < e; t += kTileRows) {
        p.tiles.push_back(t);
        p.tiles.push_back(std::min(kTileRows, e - t));
      }
    }
    r = e;
  }
  p.logit_rows.assign(batch.logit_rows.begin(), batch.logit_rows.end());
  bool in_order = static_cast<int>(p.logit_rows.size()) == R;
  for (size_t i = 0; i < p.logit_rows.size(); ++i) {
    if (p.logit_rows[i] < 0 || p.logit_rows[i] >= R) throw std::logic_error("forward: logit row out of range");
    in_order = in_order && p.logit_rows[i] == static_cast<int>(i);
  }
  p.pure_decode = R > 0 && p.tiles.empty() && static_cast<int>(p.decode_rows.size()) == R && in_order;
}

}  // namespace t2s::engine::cuda
