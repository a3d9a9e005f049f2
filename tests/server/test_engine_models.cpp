// Model files of real-time clusters: the `local` preset's model (--model, else the shared stories260K, with the
// paths tried named when neither exists) and relative model_file paths of a cluster file, which resolve against
// the file's folder whatever the working directory.
#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>

#include "common/status.hpp"
#include "engine/generate.hpp"
#include "engine/llama2c.hpp"
#include "runtime/engine_models.hpp"
#include "tests/server/runtime_support.hpp"
#include "tests/support.hpp"

using namespace t2s;
using namespace t2s::server;
namespace fs = std::filesystem;

namespace {

// A tiny random llama2.c model `m.bin` with its tokenizer `tok512.bin` (the name stories260K's tokenizer has) in
// `dir/sub`.
std::string write_model(const t2s::test::TempDir& dir) {
  fs::create_directories(dir.path() / "sub");
  std::string model = (dir.path() / "sub" / "m.bin").string();
  engine::write_random_llama2c_checkpoint(model, {48, 96, 2, 6, 2, 300, 256, false}, 3, 0.3f);
  engine::write_synthetic_llama2c_vocab((dir.path() / "sub" / "tok512.bin").string(), 300);
  return model;
}

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("engine models: relative model_file resolves against the cluster file's folder", "[server]") {
  t2s::test::TempDir dir("engine-models");
  std::string model = write_model(dir);
  std::string file = dir.file("cluster.json");
  std::ofstream(file) << R"({"instances": [{"name": "cpu0", "backend": "engine", "model_file": "sub/m.bin"}]})";
  REQUIRE_FALSE(fs::exists("sub/m.bin"));  // the working directory has no such file: only the file's folder does
  auto cluster = scheduler::load_cluster(file);
  RuntimeOptions ro;  // no tokenizer given: tok512.bin beside the model is found
  resolve_engine_models(cluster, file, "", ro);
  CHECK(cluster.instances[0].model_file == fs::path(model).lexically_normal().string());
  // The resolved cluster runs: the model loads and answers a call.
  Runtime rt(cluster, server::test::make_policy("rr-fcfs", cluster), ro, nullptr);
  auto r = server::test::run_call(rt, "hello", 8);
  CHECK(r.ok);
  CHECK(r.output_tokens > 0);
  // The runtime reports its engine's context window and tokenizer to agents (they fit their prompts to it).
  auto reference = engine::load_model_and_tokenizer(model, dir.file("sub/tok512.bin"));
  CHECK(rt.llm().context_tokens() == 256);
  const std::string text = "SELECT name FROM singer WHERE country = 'France'";
  CHECK(rt.llm().count_tokens(text) == static_cast<int>(reference.tokenizer->encode(text, true).size()));
  rt.stop();

  // A missing relative model names the path it looked at and how it was resolved.
  std::string bad = dir.file("bad.json");
  std::ofstream(bad) << R"({"instances": [{"name": "cpu1", "backend": "engine", "model_file": "nope.bin"}]})";
  auto bc = scheduler::load_cluster(bad);
  auto msg = error_of([&] { resolve_engine_models(bc, bad, "", ro); });
  CHECK(msg.find("cpu1") != std::string::npos);
  CHECK(msg.find(dir.file("nope.bin")) != std::string::npos);
  CHECK(msg.find("cluster file's folder") != std::string::npos);
  // --model belongs to the local preset only.
  auto c2 = scheduler::load_cluster(file);
  CHECK(error_of([&] { resolve_engine_models(c2, file, model, ro); }).find("--cluster local") != std::string::npos);
}

TEST_CASE("engine models: the local preset uses --model, else the bundled model, else the shared stories260K, "
          "else names what it tried",
          "[server]") {
  t2s::test::TempDir dir("engine-models-local");
  std::string model = write_model(dir);
  const std::string no_models = dir.file("no-models");
  // --model wins; the tokenizer is found beside it (tok512.bin) and becomes the runtime's.
  auto local = scheduler::load_cluster("local");
  RuntimeOptions ro;
  resolve_engine_models(local, "local", model, ro, dir.file("no-shared"), no_models);
  REQUIRE(local.instances.size() == 1);
  CHECK(local.instances[0].model_file == model);
  CHECK(ro.engine_tokenizer == dir.file("sub/tok512.bin"));
  // No --model and no bundled model: the shared data's llama2c/stories260K.bin (a fake shared folder here).
  fs::create_directories(dir.path() / "shared" / "data" / "llama2c");
  fs::copy_file(model, dir.path() / "shared" / "data" / "llama2c" / "stories260K.bin");
  fs::copy_file(dir.file("sub/tok512.bin"), dir.path() / "shared" / "data" / "llama2c" / "tok512.bin");
  auto m = resolve_local_model("", "", dir.file("shared"), no_models);
  CHECK(m.model_file == dir.file("shared/data/llama2c/stories260K.bin"));
  CHECK(m.tokenizer_file == dir.file("shared/data/llama2c/tok512.bin"));
  CHECK(resolve_local_model("", "/x/tok.bin", dir.file("shared"), no_models).tokenizer_file == "/x/tok.bin");
  // A bundled model (a GGUF: no tokenizer file beside it) comes before the shared one.
  fs::create_directories(dir.path() / "models");
  std::ofstream(dir.file(std::string("models/") + kBundledModelFile)) << "GGUF";
  auto b = resolve_local_model("", "", dir.file("shared"), dir.file("models"));
  CHECK(b.model_file == dir.file(std::string("models/") + kBundledModelFile));
  CHECK(b.tokenizer_file.empty());
  // None: the error names every place it looked.
  auto msg = error_of([&] { resolve_local_model("", "", dir.file("no-shared"), no_models); });
  CHECK(msg.find("--model") != std::string::npos);
  CHECK(msg.find(no_models + "/" + kBundledModelFile) != std::string::npos);
  CHECK(msg.find(dir.file("no-shared") + "/data/llama2c/stories260K.bin") != std::string::npos);
  CHECK(error_of([&] { resolve_local_model(dir.file("missing.bin"), "", dir.file("shared"), no_models); })
            .find(dir.file("missing.bin")) != std::string::npos);
}

TEST_CASE("engine models: with no bundled model, the build's shared stories260K is the local default",
          "[server][shared]") {
  auto m = resolve_local_model("", "", shared_dir(), "/nonexistent-t2s-models");
  CHECK(fs::equivalent(m.model_file, t2s::test::shared_data("llama2c/stories260K.bin")));
  CHECK(fs::equivalent(m.tokenizer_file, t2s::test::shared_data("llama2c/tok512.bin")));
}
