// GGUF loading and the forward pass against the independent numpy reference (tests/reference/gguf_reference.py).
#include <catch2/catch.hpp>

#include <algorithm>

#include <cmath>
#include <cstdio>
#include <fstream>
#include <functional>
#include <map>
#include <iterator>
#include <sstream>

#include <sys/wait.h>

#include "common/json.hpp"
#include "common/status.hpp"
#include "engine/backend.hpp"
#include "engine/batch_runner.hpp"
#include "engine/chat.hpp"
#include "engine/generate.hpp"
#include "engine/gguf.hpp"
#include "tests/engine/gguf_models.hpp"
#include "tests/support.hpp"

using namespace t2s::engine;
using t2s::test::GgufSpec;

namespace {

const std::vector<int> kTokens = {1, 17, 99, 3, 42, 42, 7, 120, 64, 5, 88, 31, 2, 77, 15, 16, 23, 9};

// Our logits for every position of kTokens, computed in two chunks to exercise the paged cache.
std::vector<std::vector<float>> our_logits(const std::string& path, int threads = 1) {
  auto model = load_gguf_model(path);
  CpuBackendOptions o;
  o.threads = threads;
  o.max_batch_tokens = 32;
  o.kv_budget_bytes = kv_block_bytes(model->config) * 4;
  auto be = make_cpu_backend(model, o);
  const int V = model->config.vocab_size, T = static_cast<int>(kTokens.size());
  std::vector<int> table = {3, 0};  // non-identity block ids
  std::vector<std::vector<float>> out;
  for (int start : {0, 11}) {
    int end = start == 0 ? 11 : T;
    std::vector<int> toks(kTokens.begin() + start, kTokens.begin() + end), pos, rows;
    std::vector<const int*> tables;
    for (int i = start; i < end; ++i) {
      pos.push_back(i);
      tables.push_back(table.data());
      rows.push_back(i - start);
    }
    std::vector<float> lg(rows.size() * static_cast<size_t>(V));
    ForwardBatch fb{toks, pos, tables, rows};
    be->forward(fb, lg.data());
    for (size_t r = 0; r < rows.size(); ++r) out.emplace_back(lg.begin() + static_cast<long>(r * V), lg.begin() + static_cast<long>((r + 1) * V));
  }
  return out;
}

// The reference's logits for every model in `paths` (one Python run).
std::map<std::string, std::vector<std::vector<double>>> reference_logits(const std::vector<std::string>& paths,
                                                                        const t2s::test::TempDir& dir) {
  std::string toks, out = dir.file("ref.txt");
  for (int t : kTokens) toks += (toks.empty() ? "" : ",") + std::to_string(t);
  std::string cmd = "/usr/bin/python3 " + t2s::test::source_dir() + "/tests/reference/gguf_reference.py " + toks;
  for (const auto& p : paths) cmd += " " + p;
  cmd += " > " + out;
  REQUIRE(std::system(cmd.c_str()) == 0);
  std::ifstream f(out);
  std::map<std::string, std::vector<std::vector<double>>> all;
  std::vector<std::vector<double>>* cur = nullptr;
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("== ", 0) == 0) {
      cur = &all[line.substr(3)];
      continue;
    }
    REQUIRE(cur != nullptr);
    std::istringstream ss(line);
    cur->emplace_back(std::istream_iterator<double>(ss), std::istream_iterator<double>());
  }
  return all;
}

// max |a - b| / max |b| over all positions.
double rel_error(const std::vector<std::vector<float>>& a, const std::vector<std::vector<double>>& b) {
  REQUIRE(a.size() == b.size());
  double num = 0, den = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    REQUIRE(a[i].size() == b[i].size());
    for (size_t j = 0; j < a[i].size(); ++j) {
      num = std::max(num, std::fabs(a[i][j] - b[i][j]));
      den = std::max(den, std::fabs(b[i][j]));
    }
  }
  return num / den;
}

}  // namespace

TEST_CASE("GGUF forward pass matches the numpy reference", "[engine]") {
  t2s::test::TempDir dir("engine-gguf");
  struct Case {
    const char* name;
    GgufSpec spec;
  };
  GgufSpec llama;
  GgufSpec qwen;
  qwen.arch = "qwen2";
  qwen.tied = true;
  qwen.bias = true;
  qwen.theta = 1e6f;
  qwen.eps = 1e-6f;
  qwen.kv_heads = 1;
  GgufSpec llama3 = llama;
  llama3.rope_freqs = true;
  llama3.theta = 500000.0f;
  struct Built {
    std::string path, label;
    DType type;
  };
  std::vector<Built> built;
  for (auto* base : {&llama, &qwen, &llama3}) {
    for (DType t : {DType::F32, DType::F16, DType::BF16, DType::Q8_0, DType::Q4_0}) {
      GgufSpec s = *base;
      s.type = t;
      std::string label = s.arch + (s.rope_freqs ? "-llama3rope" : "") + "-" + dtype_name(t);
      built.push_back({dir.file(label + ".gguf"), label, t});
      t2s::test::write_random_gguf(built.back().path, s);
    }
  }
  std::vector<std::string> paths;
  for (auto& b : built) paths.push_back(b.path);
  auto refs = reference_logits(paths, dir);
  std::vector<std::vector<float>> f32_logits;
  for (auto& b : built) {
    auto ours = our_logits(b.path, b.type == DType::Q8_0 ? 2 : 1);
    double err = rel_error(ours, refs.at(b.path));
    INFO(b.label << " relative error " << err);
    // Both sides read the same stored (possibly quantised) weights; only float32 vs float64 arithmetic differs.
    CHECK(err < 1e-4);
    if (b.type == DType::F32) {
      f32_logits = ours;
    } else {
      // The quantisation error itself, against the same model in F32: the stated F16/BF16/Q8_0 bounds.
      std::vector<std::vector<double>> f32d;
      for (auto& r : f32_logits) f32d.emplace_back(r.begin(), r.end());
      double q = rel_error(ours, f32d);
      INFO("vs F32 " << q);
      CHECK(q < (b.type == DType::F16 ? 5e-3 : b.type == DType::Q4_0 ? 0.5 : 5e-2));
    }
  }
}

TEST_CASE("malformed GGUF files are errors naming the tensor or field", "[engine]") {
  t2s::test::TempDir dir("engine-gguf-bad");
  std::string path = dir.file("m.gguf");
  t2s::test::write_random_gguf(path, GgufSpec{});
  std::string bytes;
  {
    std::ifstream f(path, std::ios::binary);
    bytes.assign(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
  }
  auto expect_error = [&](const std::string& content, const std::string& needle) {
    {
      std::ofstream f(path, std::ios::binary | std::ios::trunc);
      f.write(content.data(), static_cast<std::streamsize>(content.size()));
    }
    try {
      load_gguf_model(path);
      FAIL("no error for " << needle);
    } catch (const t2s::InputError& e) {
      INFO(e.what());
      CHECK(std::string(e.what()).find(needle) != std::string::npos);
    }
  };
  expect_error(bytes.substr(0, bytes.size() - 1000), "tensor output.weight extends past the end");
  expect_error(bytes.substr(0, 200), "truncated while reading");
  std::string bad = bytes;
  bad[0] = 'X';
  expect_error(bad, "bad magic");
  // A model whose metadata disagrees with a tensor's shape.
  GgufSpec s;
  t2s::test::write_random_gguf(path, s);
  std::string wrong = dir.file("wrong.gguf");
  {
    GgufWriter w;
    w.add_string("general.architecture", "llama");
    w.add_u32("llama.embedding_length", 64);
    w.add_u32("llama.block_count", 1);
    w.add_u32("llama.attention.head_count", 4);
    std::vector<float> z(64 * 128, 0.0f);
    w.add_tensor("token_embd.weight", DType::F32, 128, 64, z.data());
    w.write(wrong);
  }
  CHECK_THROWS_WITH(load_gguf_model(wrong), Catch::Contains("llama.feed_forward_length"));
  {
    GgufWriter w;
    w.add_string("general.architecture", "llama");
    w.add_u32("llama.embedding_length", 64);
    w.add_u32("llama.feed_forward_length", 96);
    w.add_u32("llama.block_count", 1);
    w.add_u32("llama.attention.head_count", 4);
    std::vector<float> z(128 * 128, 0.0f);
    w.add_tensor("token_embd.weight", DType::F32, 128, 64, z.data());
    w.add_tensor("blk.0.attn_norm.weight", DType::F32, 1, 64, z.data());
    w.add_tensor("blk.0.attn_q.weight", DType::F32, 32, 64, z.data());
    w.write(wrong);
  }
  CHECK_THROWS_WITH(load_gguf_model(wrong), Catch::Contains("blk.0.attn_q.weight has shape"));
}

TEST_CASE("a GGUF chat model serves a ChatML prompt through the batch runner and the CLI", "[engine]") {
  t2s::test::TempDir dir("engine-gguf-chat");
  GgufSpec s;
  s.arch = "qwen2";
  s.type = DType::Q8_0;
  s.tied = true;
  s.bias = true;
  s.tokenizer = true;
  std::string path = dir.file("chat.gguf");
  t2s::test::write_random_gguf(path, s);
  LoadedModel lm = load_model_and_tokenizer(path, "");
  REQUIRE(lm.model->config.vocab_size == 259);
  REQUIRE(detect_chat_format(lm.chat_template) == ChatFormat::ChatML);
  std::string prompt = apply_chat_template(ChatFormat::ChatML, {{"user", "List singers."}}, true, lm.chat_template);
  std::vector<int> ids = lm.tokenizer->encode(prompt, true);
  CHECK(ids.front() == lm.tokenizer->find_piece("<|im_start|>"));  // no BOS for Qwen, specials matched verbatim
  CHECK(lm.tokenizer->decode_all(ids) == prompt);
  CpuBackendOptions o;
  o.kv_budget_bytes = kv_block_bytes(lm.model->config) * 16;
  auto be = make_cpu_backend(lm.model, o);
  BatchRunner runner(*be, *lm.tokenizer);
  GenerationParams g;
  g.max_tokens = 20;
  SequenceId id = runner.admit(ids, g).value();
  run_to_completion(runner);
  SequenceInfo info = runner.info(id);
  CHECK(info.state == SequenceState::Finished);
  CHECK(info.generated_tokens >= 1);
  CHECK(info.generated_tokens <= 20);
  // The text is the decode of the ids, minus a final stop token.
  std::vector<int> out = info.output;
  if (info.reason == FinishReason::StopToken) out.pop_back();
  CHECK(lm.tokenizer->decode_all(out) == info.text);
  // The CLI reads the same file (its tokenizer from the GGUF); without a CUDA device, --backend cuda says so in one
  // log line and gives the CPU's text.
  std::string cmd = std::string(T2S_BINARY_DIR) + "/t2s generate --model " + path + " --temperature 0 --steps 12 --prompt hi > " +
                    dir.file("out.txt");
  CHECK(std::system(cmd.c_str()) == 0);
  if (!cuda_device_available()) {
    std::string cuda = std::string(T2S_BINARY_DIR) + "/t2s generate --model " + path +
                       " --backend cuda --temperature 0 --steps 12 --prompt hi > " + dir.file("out_cuda.txt") + " 2> " +
                       dir.file("err.txt");
    CHECK(std::system(cuda.c_str()) == 0);
    CHECK(t2s::json::read_file(dir.file("out_cuda.txt")) == t2s::json::read_file(dir.file("out.txt")));
    std::string err = t2s::json::read_file(dir.file("err.txt"));
    CHECK(err.find("event=backend_fallback requested=cuda using=cpu") != std::string::npos);
    CHECK(std::count(err.begin(), err.end(), '\n') == 1);
  }
}

TEST_CASE("crafted GGUF numbers are range-checked before they size anything", "[engine]") {
  t2s::test::TempDir dir("engine-gguf-crafted");
  std::string path = dir.file("m.gguf");
  struct Case {
    std::function<void(GgufWriter&)> meta;
    std::string needle;
  };
  std::vector<Case> cases = {
      // A 3 KB file claiming 4 M layers allocated 1 GB of per-layer state before failing.
      {[](GgufWriter& w) { w.add_u32("llama.block_count", 4u << 20); }, "llama.block_count = 4194304 is outside"},
      {[](GgufWriter& w) { w.add_u32("llama.block_count", 2147483647u); }, "llama.block_count = 2147483647"},
      // 2^32 + 1 and 2^32 + 64 were read as 1 and 64 through a narrowing cast.
      {[](GgufWriter& w) { w.add_u64("llama.block_count", (uint64_t{1} << 32) + 1); }, "llama.block_count = 4294967297"},
      {[](GgufWriter& w) { w.add_u64("llama.context_length", (uint64_t{1} << 32) + 64); },
       "llama.context_length = 4294967360"},
      {[](GgufWriter& w) { w.add_u64("llama.embedding_length", ~uint64_t{0}); }, "llama.embedding_length = -1"},
      {[](GgufWriter& w) { w.add_f32("llama.rope.freq_base", std::nanf("")); }, "llama.rope.freq_base = nan"},
      {[](GgufWriter& w) { w.add_f32("llama.attention.layer_norm_rms_epsilon", -1e-5f); },
       "llama.attention.layer_norm_rms_epsilon = -0.00001"},
      {[](GgufWriter& w) { w.add_f32("llama.attention.head_count", 4.5f); }, "llama.attention.head_count is not an integer"},
  };
  for (const auto& c : cases) {
    GgufSpec s;
    s.extra_metadata = c.meta;
    t2s::test::write_random_gguf(path, s);
    INFO(c.needle);
    CHECK_THROWS_WITH(load_gguf_model(path), Catch::Contains(c.needle));
  }
  // A layer count within the cap but beyond the file's tensors fails before allocating the layers.
  GgufSpec few;
  few.extra_metadata = [](GgufWriter& w) { w.add_u32("llama.block_count", 4000); };
  t2s::test::write_random_gguf(path, few);
  CHECK_THROWS_WITH(load_gguf_model(path), Catch::Contains("block_count = 4000 but the file has only"));
  // Out-of-range token ids name their field (it was an internal error, exit 1).
  for (std::string key : {"tokenizer.ggml.bos_token_id", "tokenizer.ggml.eos_token_id", "tokenizer.ggml.eot_token_id"}) {
    GgufSpec s;
    s.tokenizer = true;
    s.extra_metadata = [key](GgufWriter& w) { w.add_u32(key, 100000); };
    t2s::test::write_random_gguf(path, s);
    CHECK_THROWS_WITH(load_gguf_tokenizer(read_gguf(path)), Catch::Contains(key + " = 100000 is not a token id"));
  }
  // The unmodified model still loads.
  t2s::test::write_random_gguf(path, GgufSpec{});
  CHECK(load_gguf_model(path)->config.n_layers == 2);
}

TEST_CASE("numeric CLI flags refuse NaN, negatives and unknown knobs with exit 2", "[engine]") {
  t2s::test::TempDir dir("engine-cli-flags");
  std::string path = dir.file("m.gguf");
  t2s::test::write_random_gguf(path, GgufSpec{});
  const std::string t2s = std::string(T2S_BINARY_DIR) + "/t2s ";
  struct Case {
    std::string args, needle;
  };
  std::vector<Case> cases = {
      {"generate --model " + path + " --temperature nan", "--temperature"},
      {"generate --model " + path + " --top-p nan", "--top-p"},
      {"generate --model " + path + " --temperature -1", "--temperature"},
      {"replay --limit -1", "--limit"},
      {"replay --param bogus=1", "unknown knob 'bogus'"},
      {"replay --param alpha=nan", "--param 'alpha=nan'"},
      {"replay --rate nan", "--rate"},
      {"replay --time-limit -1", "--time-limit"},
      {"replay --workflows 10000000", "--workflows"},
      {"workload --workflows 10000000 --save-trace " + dir.file("t.jsonl"), "--workflows"},
  };
  for (const auto& c : cases) {
    std::string err = dir.file("err.txt");
    int rc = std::system((t2s + c.args + " > /dev/null 2> " + err).c_str());
    std::string text = t2s::json::read_file(err);
    INFO(c.args << " -> " << text);
    CHECK(WEXITSTATUS(rc) == 2);
    CHECK(text.find(c.needle) != std::string::npos);
  }
}
