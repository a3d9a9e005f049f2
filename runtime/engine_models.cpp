#include "runtime/engine_models.hpp"

#include <cstdlib>
#include <filesystem>

#include "common/status.hpp"

namespace t2s::server {

namespace fs = std::filesystem;

std::string shared_dir() {
  if (const char* e = std::getenv("T2S_SHARED_DIR"); e && *e) return e;
  return T2S_BUILTIN_SHARED_DIR;
}

std::string models_dir() {
  if (const char* e = std::getenv("T2S_MODELS_DIR"); e && *e) return e;
  return T2S_BUILTIN_MODELS_DIR;
}

LocalModel resolve_local_model(const std::string& model_flag, const std::string& tokenizer_flag,
                               const std::string& shared, const std::string& models) {
  LocalModel m;
  if (!model_flag.empty()) {
    if (!fs::is_regular_file(model_flag)) throw InputError("--model: no model file at '" + model_flag + "'");
    m.model_file = model_flag;
  } else {
    const std::string bundled = (fs::path(models) / kBundledModelFile).string();
    const std::string stories = (fs::path(shared) / "data" / "llama2c" / "stories260K.bin").string();
    if (fs::is_regular_file(bundled))
      m.model_file = bundled;
    else if (fs::is_regular_file(stories))
      m.model_file = stories;
    else
      throw InputError("--cluster local: no model to run; tried --model (not given), t2s's bundled model '" +
                       bundled + "' (missing; set T2S_MODELS_DIR or regenerate it with models/README.md's recipe) "
                       "and the shared data's llama2.c model '" + stories +
                       "' (missing; set T2S_SHARED_DIR or pass --model FILE)");
  }
  m.tokenizer_file = tokenizer_flag;
  if (m.tokenizer_file.empty() && fs::path(m.model_file).extension() == ".bin") {
    for (const char* name : {"tokenizer.bin", "tok512.bin"}) {
      auto beside = fs::path(m.model_file).parent_path() / name;
      if (fs::is_regular_file(beside)) {
        m.tokenizer_file = beside.string();
        break;
      }
    }
    if (m.tokenizer_file.empty())
      throw InputError("--cluster local: no tokenizer for '" + m.model_file + "' (tried tokenizer.bin and tok512.bin "
                       "beside it); pass --tokenizer FILE");
  }
  return m;
}

void resolve_engine_models(scheduler::ClusterSpec& cluster, const std::string& file_or_preset,
                           const std::string& model_flag, RuntimeOptions& runtime, const std::string& shared,
                           const std::string& models) {
  if (file_or_preset == "local") {
    auto m = resolve_local_model(model_flag, runtime.engine_tokenizer, shared, models);
    for (auto& i : cluster.instances)
      if (i.backend == scheduler::Backend::engine) i.model_file = m.model_file;
    runtime.engine_tokenizer = m.tokenizer_file;
    return;
  }
  if (!model_flag.empty())
    throw InputError("--model applies to --cluster local only; cluster '" + file_or_preset +
                     "' names its models in its file (model_file)");
  const bool is_file = fs::is_regular_file(file_or_preset);
  const fs::path base = is_file ? fs::absolute(file_or_preset).parent_path() : fs::current_path();
  for (auto& i : cluster.instances) {
    if (i.backend != scheduler::Backend::engine) continue;
    fs::path p(i.model_file);
    if (p.is_relative()) i.model_file = (base / p).lexically_normal().string();
    if (!fs::is_regular_file(i.model_file))
      throw InputError("cluster '" + file_or_preset + "': instance '" + i.name + "': no model file at '" +
                       i.model_file + "'" + (p.is_relative() && is_file ? " (relative paths resolve against the "
                                                                          "cluster file's folder)" : ""));
  }
}

}  // namespace t2s::server
