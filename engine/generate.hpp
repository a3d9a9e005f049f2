#pragma once
//! Convenience layers over the batch runner: loading a model with its tokenizer, a default drive loop, and
//! llama2.c-compatible text generation (what `t2s generate` prints).
#include <functional>
#include <memory>
#include <string>

#include "engine/batch_runner.hpp"
#include "engine/model.hpp"
#include "engine/tokenizer.hpp"

namespace t2s::engine {

//! A model with its tokenizer and chat template.
struct LoadedModel {
  std::shared_ptr<Model> model;           //!< weights
  std::unique_ptr<Tokenizer> tokenizer;   //!< text ↔ ids
  std::string chat_template;              //!< the GGUF `tokenizer.chat_template` ("" when none)
};

//! Loads `model_path` (llama2.c or GGUF). A llama2.c checkpoint needs `tokenizer_path`; a GGUF file carries its
//! own tokenizer (a non-empty `tokenizer_path` to a llama2.c tokenizer overrides it).
LoadedModel load_model_and_tokenizer(const std::string& model_path, const std::string& tokenizer_path);

//! Steps `runner` until no call is running or preempted. A minimal default policy for tools and tests: when
//! every running call is stalled for KV memory, preempt the most recently admitted; resume preempted calls oldest
//! first when nothing else runs or when their blocks fit. `on_step` sees every report.
void run_to_completion(BatchRunner& runner, const std::function<void(const StepReport&)>& on_step = {});

//! Options of llama2.c-style generation.
struct TextGenerationOptions {
  std::string prompt;           //!< "" = start from BOS only
  int steps = 256;              //!< total positions, prompt included (as run.c's -n); clamped to the context
  SamplingParams sampling;      //!< temperature / top-k / top-p
  uint64_t seed = 0;            //!< sampling seed
  int threads = 1;              //!< CPU threads
  std::string backend = "cpu";  //!< "cpu" or "cuda" (callers check cuda_device_available first and say so)
};

//! Generates like llama2.c's run.c: prints the prompt's pieces after BOS, then sampled pieces, skipping
//! unprintable single bytes; stops at a stop token or after `steps` positions. Returns the text (no final newline).
std::string generate_text(const LoadedModel& lm, const TextGenerationOptions& options);

}  // namespace t2s::engine
