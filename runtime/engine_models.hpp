#pragma once
//! Where the model files of a real-time cluster's engine instances are: the `local` preset's model (`--model`, else
//! t2s's bundled model, else the llama2.c stories260K of the shared data this build was configured with) and relative `model_file` paths of
//! cluster files (resolved against the cluster file's folder, not the working directory).
#include <string>

#include "runtime/runtime.hpp"
#include "scheduler/instance.hpp"

namespace t2s::server {

//! The shared data folder: environment variable T2S_SHARED_DIR when set, else CMake's T2S_SHARED_DIR at build time.
std::string shared_dir();

//! The folder of t2s's own trained models: environment variable T2S_MODELS_DIR when set, else the source tree's
//! models/ this build was configured from.
std::string models_dir();

//! File name of the bundled Text-to-SQL model (trained by `t2s train`, recipe in models/README.md) in models_dir().
inline constexpr const char* kBundledModelFile = "t2s-sql.gguf";

//! Model and tokenizer of the `local` preset.
struct LocalModel {
  std::string model_file;      //!< llama2.c checkpoint or GGUF
  std::string tokenizer_file;  //!< llama2.c tokenizer ("" = the GGUF's own)
};

//! The `local` preset's model: `model_flag` when given, else the bundled `<models>/t2s-sql.gguf`, else
//! `<shared>/data/llama2c/stories260K.bin`; the tokenizer is `tokenizer_flag`, else tokenizer.bin or tok512.bin
//! beside a .bin model (a GGUF carries its own). Throws InputError naming every path it tried when no model exists.
LocalModel resolve_local_model(const std::string& model_flag, const std::string& tokenizer_flag,
                               const std::string& shared = shared_dir(), const std::string& models = models_dir());

//! Makes the engine instances of `cluster` (loaded from `file_or_preset`) runnable: for the `local` preset every
//! engine instance gets resolve_local_model()'s model and `runtime.engine_tokenizer` its tokenizer; for a cluster
//! file a relative `model_file` is taken relative to the file's folder. `--model` (`model_flag`) is refused for
//! other clusters (their files name their models). Throws InputError naming the instance and path of a missing model.
void resolve_engine_models(scheduler::ClusterSpec& cluster, const std::string& file_or_preset,
                           const std::string& model_flag, RuntimeOptions& runtime,
                           const std::string& shared = shared_dir(), const std::string& models = models_dir());

}  // namespace t2s::server
