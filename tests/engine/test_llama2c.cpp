// llama2.c checkpoint/tokenizer loading and run.c-exact greedy generation.
#include <catch2/catch.hpp>

#include <fstream>
#include <iterator>

#include "common/status.hpp"
#include "engine/generate.hpp"
#include "engine/llama2c.hpp"
#include "tests/support.hpp"

using namespace t2s::engine;

namespace {
std::string slurp(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>()};
}
}  // namespace

TEST_CASE("stories260K greedy output matches llama2.c's expected_t0_n200", "[engine][shared]") {
  auto lm = load_model_and_tokenizer(t2s::test::shared_data("llama2c/stories260K.bin"),
                                     t2s::test::shared_data("llama2c/tok512.bin"));
  CHECK(lm.model->config.dim == 64);
  CHECK(lm.model->config.n_kv_heads == 4);
  TextGenerationOptions o;
  o.steps = 200;
  o.sampling.temperature = 0;
  std::string expected = slurp(t2s::test::shared_data("llama2c/expected_t0_n200.txt"));
  REQUIRE(expected.size() == 464);
  CHECK(generate_text(lm, o) == expected);
  o.threads = 2;  // the split across threads must not change a single bit
  CHECK(generate_text(lm, o) == expected);
}

TEST_CASE("the t2s CLI prints the expected stories260K text", "[engine][shared]") {
  t2s::test::TempDir dir("engine-cli");
  std::string out = dir.file("out.txt");
  std::string cmd = std::string(T2S_BINARY_DIR) + "/t2s generate --model " + t2s::test::shared_data("llama2c/stories260K.bin") +
                    " --tokenizer " + t2s::test::shared_data("llama2c/tok512.bin") + " --temperature 0 --steps 200 > " + out;
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::string got = slurp(out);
  REQUIRE(!got.empty());
  CHECK(got.back() == '\n');
  got.pop_back();
  CHECK(got == slurp(t2s::test::shared_data("llama2c/expected_t0_n200.txt")));
}

TEST_CASE("llama2.c tokenizer encodes like run.c", "[engine][shared]") {
  auto lm = load_model_and_tokenizer(t2s::test::shared_data("llama2c/stories260K.bin"),
                                     t2s::test::shared_data("llama2c/tok512.bin"));
  const Tokenizer& tok = *lm.tokenizer;
  std::vector<int> ids = tok.encode("One day, Tom", true);
  REQUIRE(ids.size() >= 3);
  CHECK(ids.front() == 1);
  // Decoding after BOS strips the dummy-prefix space, so the text round-trips.
  CHECK(tok.decode_all(ids) == "One day, Tom");
  // Byte fallback: a code point missing from the 512-token vocabulary becomes its UTF-8 bytes.
  std::vector<int> e = tok.encode("\xc3\xa9", false);  // "é"
  CHECK(tok.decode_all(e) == " \xc3\xa9");
}

TEST_CASE("truncated or inconsistent llama2.c checkpoints are clear errors", "[engine]") {
  t2s::test::TempDir dir("engine-l2c");
  std::string path = dir.file("m.bin");
  write_random_llama2c_checkpoint(path, {32, 64, 2, 4, 2, 300, 64, true}, 1);
  auto m = load_llama2c_checkpoint(path);
  CHECK(m->config.kv_dim() == 16);
  std::string bytes = slurp(path);
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size() - 100));
  }
  try {
    load_llama2c_checkpoint(path);
    FAIL("expected an error");
  } catch (const t2s::InputError& e) {
    CHECK(std::string(e.what()).find("truncated") != std::string::npos);
    CHECK(std::string(e.what()).find("the file has " + std::to_string(bytes.size() - 100)) != std::string::npos);
  }
  {
    std::ofstream f(path, std::ios::binary | std::ios::trunc);
    f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
    f.write("xxxx", 4);
  }
  CHECK_THROWS_AS(load_llama2c_checkpoint(path), t2s::InputError);
}

TEST_CASE("a llama2.c header claiming millions of layers fails on the file size before sizing anything",
          "[engine]") {
  // fuzz_model_files found 72 bytes claiming n_layers = 2^24 - 1: the loader sized its layer table (2.2 GB) before
  // noticing the file was short. Every header field at its maximum: the products overflow int64 unless checked first.
  t2s::test::TempDir dir("engine-l2c-huge");
  const std::string path = dir.file("huge.bin");
  const int32_t header[7] = {1 << 24, 1 << 24, (1 << 24) - 1, 1 << 12, 1 << 12, 1 << 24, 1 << 24};
  {
    std::ofstream f(path, std::ios::binary);
    f.write(reinterpret_cast<const char*>(header), sizeof header);
    f.write(std::string(44, '\0').data(), 44);
  }
  try {
    load_llama2c_checkpoint(path);
    FAIL("expected an error");
  } catch (const t2s::InputError& e) {
    const std::string msg = e.what();
    CHECK(msg.find("truncated") != std::string::npos);
    CHECK(msg.find("n_layers 16777215") != std::string::npos);
    CHECK(msg.find("the file has 72") != std::string::npos);
  }
}
