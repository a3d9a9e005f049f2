#pragma once
// A tiny random-weight llama2.c model + synthetic tokenizer for fast engine tests.
#include <string>

#include "engine/generate.hpp"
#include "engine/llama2c.hpp"
#include "tests/support.hpp"

namespace t2s::test {

//! Writes and loads a 2-layer GQA model (dim 48, 6 heads, 2 KV heads, vocab 300, context 256).
struct TinyModel {
  TempDir dir{"engine-tiny"};
  engine::LoadedModel lm;
  explicit TinyModel(uint64_t seed = 7) {
    std::string m = dir.file("m.bin"), t = dir.file("t.bin");
    // Larger weights than the default make the logits peaked, so greedy choices are far from ties.
    engine::write_random_llama2c_checkpoint(m, {48, 96, 2, 6, 2, 300, 256, false}, seed, 0.3f);
    engine::write_synthetic_llama2c_vocab(t, 300);
    lm = engine::load_model_and_tokenizer(m, t);
  }
};

}  // namespace t2s::test
