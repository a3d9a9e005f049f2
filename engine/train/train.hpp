#pragma once
//! Training a Llama-architecture decoder on the CPU: weights, packed batches, AdamW with warmup + cosine,
//! checkpoint/resume, evaluation, and GGUF export loadable by engine::load_model.
//! Determinism: a fixed seed and thread count give bitwise-identical weights; every GEMM reduces each output
//! element in one fixed k order regardless of blocking and thread split, so different thread counts also agree.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "engine/model.hpp"
#include "engine/tensor.hpp"

namespace t2s::engine::train {

//! One training example. target[i] == 1 means tokens[i] is predicted (loss on predicting tokens[i] from
//! tokens[0..i-1]); prompt tokens get 0, answer tokens and the EOS after them get 1. target[0] is ignored.
struct TokenSequence {
  std::vector<int> tokens;      //!< token ids, each in [0, vocab_size)
  std::vector<uint8_t> target;  //!< same length as tokens; 1 = predicted position
};

//! One trainable tensor inside Weights::data, named as in GGUF ("blk.0.attn_q.weight").
struct ParamTensor {
  std::string name;    //!< GGUF tensor name
  int64_t rows = 0;    //!< output features (1 for vectors)
  int64_t cols = 0;    //!< input features
  size_t offset = 0;   //!< first float in Weights::data
  bool decay = false;  //!< AdamW weight decay applies (linear matrices only; not norms, not the token embedding)
  //! Element count.
  size_t size() const { return static_cast<size_t>(rows * cols); }
};

//! All parameters of a decoder in one flat float32 buffer (row-major [rows][cols] per tensor).
struct Weights {
  ModelConfig config;                //!< shape; arch "llama", interleaved RoPE, head_dim = dim / n_heads
  bool tied_classifier = true;       //!< output.weight is token_embd.weight (no separate tensor)
  std::vector<ParamTensor> tensors;  //!< layout, in GGUF order
  std::vector<float> data;           //!< every parameter
  //! The tensor named `name`; throws std::logic_error when absent.
  const ParamTensor& tensor(const std::string& name) const;
  //! Pointer to the first float of tensor `name`.
  float* ptr(const std::string& name) { return data.data() + tensor(name).offset; }
  //! Const pointer to the first float of tensor `name`.
  const float* ptr(const std::string& name) const { return data.data() + tensor(name).offset; }
};

//! Throws t2s::InputError naming the field when `config` cannot be trained (dims not positive, dim != n_heads *
//! head_dim, n_heads not a multiple of n_kv_heads, odd head_dim).
void validate_config(const ModelConfig& config);
//! Builds the layout for `config` and initialises: matrices N(0, 0.02) (attn_output and ffn_down scaled by
//! 1/sqrt(2·n_layers)), norms 1, from t2s::Rng(seed). Same seed → same bytes.
Weights init_weights(const ModelConfig& config, bool tied_classifier, uint64_t seed);

//! Statistics of one optimiser step, passed to TrainOptions::on_step.
struct StepStats {
  int64_t step = 0;            //!< 1-based number of the step just taken
  int64_t total_steps = 0;     //!< TrainOptions::steps
  double loss = 0;             //!< mean cross-entropy over the batch's target positions (before the update)
  double lr = 0;               //!< learning rate used for this step
  double grad_norm = 0;        //!< global L2 norm of the gradient before clipping
  int64_t tokens = 0;          //!< non-padding tokens in the batch
  int64_t targets = 0;         //!< predicted positions in the batch
  double tokens_per_s = 0;     //!< tokens / wall time of this step
  double elapsed_s = 0;        //!< wall time since run() started (0 when called through step())
  int64_t epoch = 0;           //!< passes over the data completed before this batch
};

//! Everything a training run needs. Batching: each epoch shuffles the sequences (t2s::Rng from seed and epoch)
//! and packs whole sequences into rows of seq_len tokens (first fit among the last 64 open rows); attention never
//! crosses sequences and positions restart at 0 for each (so training sees exactly what inference sees); the
//! unused tail of a row is padding with no loss. A sequence longer than seq_len is skipped (counted in
//! TrainResult::skipped_sequences). Loss = mean cross-entropy over all target positions of the batch.
struct TrainOptions {
  ModelConfig model;              //!< architecture (validate_config rules)
  bool tied_classifier = true;    //!< share token_embd as the output matrix
  int seq_len = 512;              //!< tokens per packed row (≤ model.max_seq_len)
  int batch = 8;                  //!< rows per step
  int64_t steps = 1000;           //!< optimiser steps in total (a resumed run continues to this number)
  float lr = 1e-3f;               //!< peak learning rate
  float min_lr = 1e-4f;           //!< floor of the cosine
  int64_t warmup_steps = 100;     //!< linear warmup from lr/warmup_steps to lr
  float weight_decay = 0.1f;      //!< decoupled decay (AdamW), on ParamTensor::decay tensors only
  float beta1 = 0.9f;             //!< Adam first-moment decay
  float beta2 = 0.95f;            //!< Adam second-moment decay
  float eps = 1e-8f;              //!< Adam epsilon
  float grad_clip = 1.0f;         //!< global-norm clip threshold (≤ 0 disables)
  uint64_t seed = 1;              //!< weight init and data order
  int threads = 1;                //!< worker threads including the caller
  std::string checkpoint_path;    //!< where save_checkpoint() writes every checkpoint_every steps ("" = never)
  int64_t checkpoint_every = 0;   //!< steps between checkpoints (0 = only at the end when a path is set)
  bool progress = true;           //!< draw a progress bar (step, loss, tokens/s, ETA) when stderr is a TTY
  //! Called after every step.
  std::function<void(const StepStats&)> on_step;
  //! Called after each checkpoint is written (step, weights), e.g. to evaluate or export.
  std::function<void(int64_t step, const Weights&)> on_checkpoint;
};

//! Summary of a Trainer::run() call.
struct TrainResult {
  int64_t steps_done = 0;          //!< optimiser steps taken by this call
  double final_loss = 0;           //!< loss of the last step
  double tokens_per_s = 0;         //!< non-padding tokens / wall time over this call
  int64_t skipped_sequences = 0;   //!< sequences longer than seq_len (not trained on)
};

class TrainerImpl;

//! Owns the weights, AdamW moments and data order of one training run.
class Trainer {
 public:
  //! A fresh run: validates options and data (InputError on a bad token id, a target/tokens length mismatch,
  //! seq_len > max_seq_len, or no trainable target at all) and initialises weights from options.seed.
  Trainer(TrainOptions options, std::vector<TokenSequence> data);
  ~Trainer();
  Trainer(const Trainer&) = delete;
  Trainer& operator=(const Trainer&) = delete;
  //! Loads a checkpoint written by save_checkpoint: weights, moments, step, data position. The file's model
  //! config, tied flag and seed must equal the options' (InputError naming the mismatch otherwise). Training
  //! continues bit-identically to an uninterrupted run with the same options, data and thread count.
  void load_checkpoint(const std::string& path);
  //! Writes weights, AdamW moments, step and data position to `path` (own binary format, "T2STRAIN").
  void save_checkpoint(const std::string& path) const;
  //! Takes one optimiser step and returns its statistics (also calls on_step).
  StepStats step();
  //! Steps until options.steps, writing checkpoints as configured; returns the summary.
  TrainResult run();
  //! Steps taken so far (including those before a resume).
  int64_t steps_done() const;
  //! Current weights.
  const Weights& weights() const;
  //! Mean cross-entropy over the target positions of `data` with the current weights (no update).
  double evaluate(const std::vector<TokenSequence>& data) const;

 private:
  TrainerImpl* impl_;
};

//! Learning rate at 1-based `step`: linear warmup to lr over warmup_steps, then cosine from lr to min_lr at steps.
double learning_rate(const TrainOptions& options, int64_t step);

//! Next-token logits [tokens.size()][vocab] of one sequence (positions 0..n-1), the trainer's own forward pass.
std::vector<float> forward_logits(const Weights& weights, const std::vector<int>& tokens, int threads = 1);

//! A byte-level BPE tokenizer as written into GGUF "tokenizer.ggml.*" keys (model "gpt2").
struct GgufTokenizerSpec {
  std::vector<std::string> pieces;  //!< token strings in GPT-2 byte-to-unicode form, index = id
  std::vector<std::string> merges;  //!< "left right" merge rules, highest priority first
  std::vector<int> token_types;     //!< per piece: 1 normal, 3 control (special), ...; empty = all normal
  int bos_id = -1;                  //!< BOS id or -1
  int eos_id = -1;                  //!< EOS id (generation stops on it) or -1
  std::string pre = "gpt2";         //!< tokenizer.ggml.pre: "gpt2", "llama-bpe" or "qwen2"
  bool add_bos = false;             //!< tokenizer.ggml.add_bos_token: the engine prepends bos_id when encoding
};

//! Writes `weights` and `tokenizer` as a GGUF v3 "llama" file that engine::load_model and load_gguf_tokenizer
//! read. Matrices are stored as `dtype` (F32, F16 or Q8_0; Q8_0 needs dim and hidden_dim multiples of 32), norms
//! always F32; q/k are stored unpermuted because the trainer uses the engine's interleaved RoPE. Throws
//! InputError when pieces.size() != vocab_size or dtype is unsupported.
void export_gguf(const Weights& weights, const GgufTokenizerSpec& tokenizer, const std::string& path, DType dtype);

}  // namespace t2s::engine::train
