#pragma once
//! A Llama-architecture decoder's shape and weights (llama2.c checkpoints and GGUF files load into this).
#include <memory>
#include <string>
#include <vector>

#include "engine/mapped_file.hpp"
#include "engine/tensor.hpp"

namespace t2s::engine {

//! How RoPE pairs dimensions: adjacent pairs (llama2.c, GGUF "llama") or first/second half (Qwen2, "neox").
enum class RopeStyle { Interleaved, Neox };

//! Hyper-parameters of a Llama-style decoder.
struct ModelConfig {
  std::string arch = "llama";  //!< "llama" (llama2.c / Llama-2 / Llama-3) or "qwen2"
  int dim = 0;                 //!< residual width
  int hidden_dim = 0;          //!< SwiGLU inner width
  int n_layers = 0;            //!< decoder blocks
  int n_heads = 0;             //!< query heads
  int n_kv_heads = 0;          //!< key/value heads (GQA when < n_heads)
  int head_dim = 0;            //!< per-head width (usually dim / n_heads)
  int vocab_size = 0;          //!< vocabulary size
  int max_seq_len = 0;         //!< context length
  float rope_theta = 10000.0f;  //!< RoPE base
  float norm_eps = 1e-5f;       //!< RMSNorm epsilon
  RopeStyle rope_style = RopeStyle::Interleaved;  //!< pairing convention
  bool llama2c_rope = false;    //!< compute RoPE frequencies exactly as llama2.c's run.c does (float powf)
  //! q dimension (n_heads * head_dim).
  int q_dim() const { return n_heads * head_dim; }
  //! k/v dimension (n_kv_heads * head_dim).
  int kv_dim() const { return n_kv_heads * head_dim; }
};

//! Weights of one decoder block. Norm vectors and biases are float; matrices any DType.
struct LayerWeights {
  const float* attn_norm = nullptr;  //!< [dim]
  TensorView wq, wk, wv, wo;         //!< [q_dim][dim], [kv_dim][dim], [kv_dim][dim], [dim][q_dim]
  const float* bq = nullptr;         //!< [q_dim] or null (Qwen2 has QKV bias)
  const float* bk = nullptr;         //!< [kv_dim] or null
  const float* bv = nullptr;         //!< [kv_dim] or null
  const float* ffn_norm = nullptr;   //!< [dim]
  TensorView w_gate, w_down, w_up;   //!< [hidden][dim], [dim][hidden], [hidden][dim]
};

//! A loaded model: its config, weight views into the mapped file, and the storage that backs them.
struct Model {
  ModelConfig config;                 //!< shape
  TensorView token_embedding;         //!< [vocab][dim]
  std::vector<LayerWeights> layers;   //!< n_layers blocks
  const float* final_norm = nullptr;  //!< [dim]
  TensorView classifier;              //!< [vocab][dim] (may alias token_embedding when tied)
  std::vector<float> rope_freq_factors;  //!< per-pair divisors (Llama-3 rope scaling), empty when none
  std::shared_ptr<MappedFile> file;     //!< keeps the mapping alive
  std::vector<std::vector<float>> owned;  //!< float copies of small tensors that were stored in another type
  std::string source;                   //!< file path (for messages)
};

//! Loads a model from a llama2.c checkpoint or a GGUF file (detected by the magic bytes).
//! Throws t2s::InputError naming the file and the tensor or field at fault.
std::shared_ptr<Model> load_model(const std::string& path);

}  // namespace t2s::engine
