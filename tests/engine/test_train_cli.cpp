// `t2s train --smoke` end to end: corpus → tokenizer → a few steps → GGUF → the engine loads and generates; the
// same seed gives byte-identical files.
#include <catch2/catch.hpp>

#include <cmath>
#include <fstream>

#include "common/json.hpp"
#include "engine/generate.hpp"
#include "tests/support.hpp"

using namespace t2s::engine;

namespace {

std::string slurp_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

}  // namespace

TEST_CASE("t2s train --smoke: corpus, tokenizer, training, GGUF that loads and generates, deterministic", "[engine][train-cli]") {
  t2s::test::TempDir dir("engine-train-cli");
  auto run = [&](const std::string& out) {
    std::string cmd = std::string(T2S_BINARY_DIR) + "/t2s train --smoke --threads 2 --out " + out + " 2> " + out + ".err";
    return std::system(cmd.c_str());
  };
  const std::string a = dir.file("a"), b = dir.file("b");
  REQUIRE(run(a) == 0);
  for (const char* f : {"model.gguf", "train_log.jsonl", "loss.svg", "corpus.jsonl", "corpus_summary.json"})
    CHECK(std::filesystem::exists(a + "/" + f));

  // The log: one line per step with a finite loss, validation lines with EX in [0, 1].
  std::ifstream log(a + "/train_log.jsonl");
  std::string line;
  int steps = 0, evals = 0;
  while (std::getline(log, line)) {
    auto d = t2s::json::parse(line, "train_log.jsonl");
    if (d.HasMember("loss")) {
      ++steps;
      CHECK(d["step"].GetInt() == steps);
      CHECK(std::isfinite(d["loss"].GetDouble()));
      CHECK(d["loss"].GetDouble() > 0);
    }
    if (d.HasMember("val_ex")) {
      ++evals;
      CHECK(d["val_ex"].GetDouble() >= 0);
      CHECK(d["val_ex"].GetDouble() <= 1);
      CHECK(std::isfinite(d["val_loss"].GetDouble()));
    }
  }
  CHECK(steps == 4);
  CHECK(evals == 2);  // at step 2 (--eval-every) and at the end
  auto summary = t2s::json::parse_file(a + "/corpus_summary.json");
  CHECK(summary["summary"]["examples"]["candidate_generation"].GetInt() > 0);

  // The engine loads the model with its trained tokenizer and generates from a corpus prompt.
  auto lm = load_model_and_tokenizer(a + "/model.gguf", "");
  CHECK(lm.tokenizer->vocab_size() == 320);
  CHECK(lm.model->config.max_seq_len == 256);
  std::ifstream corpus(a + "/corpus.jsonl");
  REQUIRE(std::getline(corpus, line));
  auto ex = t2s::json::parse(line, "corpus.jsonl");
  std::string prompt = ex["prompt"].GetString();
  CHECK(lm.tokenizer->decode_all(lm.tokenizer->encode(prompt, true)) == prompt);
  TextGenerationOptions g;
  g.prompt = prompt.substr(0, 200);
  g.steps = static_cast<int>(lm.tokenizer->encode(g.prompt, true).size()) + 8;
  g.sampling.temperature = 0;
  CHECK_NOTHROW(generate_text(lm, g));

  // Same flags and seed → the same corpus, tokenizer and weights, byte for byte.
  REQUIRE(run(b) == 0);
  CHECK(slurp_file(a + "/model.gguf") == slurp_file(b + "/model.gguf"));
  CHECK(slurp_file(a + "/corpus.jsonl") == slurp_file(b + "/corpus.jsonl"));
}
