#pragma once
//! The whole decoder's training forward and backward pass over a packed batch (internal to engine/train).
#include <cstdint>
#include <vector>

#include "engine/cpu/thread_pool.hpp"
#include "engine/train/train.hpp"

namespace t2s::engine::train {

//! A packed batch: `rows` rows of `seq` tokens. Token t of a row belongs to the sequence starting at
//! seg_start[t] (attention stays inside it) and sits at position pos[t] = t − seg_start[t].
struct PackedBatch {
  int rows = 0, seq = 0;           //!< shape
  std::vector<int> tokens;         //!< [rows][seq] input ids (padding = 0)
  std::vector<int> labels;         //!< [rows][seq] the id predicted at t (the next token), or −1 for no loss
  std::vector<int> seg_start;      //!< [rows][seq] first index of t's sequence within the row
  std::vector<int> pos;            //!< [rows][seq] RoPE position
  int64_t real_tokens = 0;         //!< non-padding tokens
  int64_t targets = 0;             //!< labels ≥ 0
};

//! One sequence as a single-row batch with every position's label (−1 at the end); for logits and tests.
PackedBatch single_sequence_batch(const std::vector<int>& tokens);

//! Activations of one forward pass, kept for the backward pass.
class Decoder {
 public:
  //! A decoder for `config` on `pool` (not owned).
  Decoder(const ModelConfig& config, cpu::ThreadPool& pool);
  //! Runs the blocks and the final norm over `batch`.
  void forward(const Weights& w, const PackedBatch& batch);
  //! After forward(): the summed cross-entropy over labelled rows. When `grad` (same layout as w.data, zeroed by
  //! the caller) is given, adds the gradient of (sum / batch.targets), i.e. of the mean loss.
  double loss(const Weights& w, const PackedBatch& batch, float* grad);
  //! After forward(): logits of every row, [rows·seq][vocab].
  std::vector<float> logits(const Weights& w);

 private:
  struct Layer {
    std::vector<float> x_in, rstd1, xn1, q, k, v, att, lse, x_mid, rstd2, xn2, h1, h3, hg;
  };
  void backward(const Weights& w, const PackedBatch& batch, std::vector<float>& dxf, float* grad);
  struct Grads {
    std::vector<float> dx, dxn, dhg, dh1, dh3, datt, dq, dk, dv, xs, logits, dxs, dxf;
  };
  ModelConfig c_;
  Grads grads_;
  cpu::ThreadPool& pool_;
  std::vector<Layer> layers_;
  std::vector<float> x_, rstdf_, xf_, rope_cos_, rope_sin_, scratch_;
  int64_t n_ = 0;  // rows·seq of the last forward
};

}  // namespace t2s::engine::train
