// Byte-level BPE (GPT-2 / Qwen2 / Llama-3 pre-tokenizers) against tests/reference/bpe_reference.py, round trips of
// arbitrary UTF-8 and bytes, the GGUF SentencePiece path, and chat formatting.
#include <catch2/catch.hpp>

#include "common/json.hpp"
#include "common/rng.hpp"
#include "engine/chat.hpp"
#include "engine/gguf.hpp"
#include "engine/tokenizer.hpp"
#include "tests/support.hpp"

using namespace t2s::engine;

namespace {

const char* kCorpus =
    "SELECT name, age FROM singer WHERE age > 30 ORDER BY age DESC;\n"
    "How many singers do we have? What's the average age of all singers from France?\n"
    "List the names of the stadiums that hosted concerts in 2014 and 2015.\n"
    "The quick brown fox jumps over the lazy dog. It's 12:45 and they'll be here by 1300.\n"
    "Café résumé naïve façade — übergroße Straße; 東京 大阪 京都; Ελληνικά λέξεις.\n"
    "  indented   text\twith\ttabs\n\n\nand blank lines   \n"
    "snake_case_name = foo_bar(baz_qux) + 42_000;  SELECT COUNT(*) FROM concert;\n";

const std::vector<std::string> kCases = {
    "SELECT count(*) FROM singer",
    "What's the name of the oldest singer? They'll KNOW it's 'X'.",
    "  two spaces,   three spaces\tand a tab\n\nnewlines  \n end",
    "Numbers 1234567 and 3.14159, 2014-2015!",
    "Café résumé naïve 東京 Ελληνικά",
    "emoji \xf0\x9f\x98\x80 and symbols \xe2\x86\x92 \xe2\x82\xac 100",
    "<|im_start|>user\nList all stadiums.<|im_end|>\n<|im_start|>assistant\n",
    "snake_case_name__x = a_b; weird''quotes 'S 'LL",
    "trailing space ",
    "",
};

std::unique_ptr<Tokenizer> reference_tokenizer(const std::string& mode, const t2s::test::TempDir& dir,
                                               rapidjson::Document& ref) {
  std::string corpus = dir.file("corpus.txt"), cases = dir.file("cases.json"), out = dir.file("ref.json");
  t2s::json::write_file(corpus, kCorpus);
  std::string arr = "[";
  for (size_t i = 0; i < kCases.size(); ++i) {
    std::string esc;
    for (char c : kCases[i]) {
      if (c == '"' || c == '\\') esc += '\\';
      if (c == '\n') { esc += "\\n"; continue; }
      if (c == '\t') { esc += "\\t"; continue; }
      esc += c;
    }
    arr += (i ? ",\"" : "\"") + esc + "\"";
  }
  t2s::json::write_file(cases, arr + "]");
  std::string cmd = "/usr/bin/python3 " + t2s::test::source_dir() + "/tests/reference/bpe_reference.py " + mode + " " +
                    corpus + " " + cases + " 300 > " + out;
  REQUIRE(std::system(cmd.c_str()) == 0);
  ref = t2s::json::parse_file(out);
  // Build it through a GGUF file, as a real model would carry it.
  GgufWriter w;
  std::vector<std::string> tokens, merges;
  for (auto& t : ref["tokens"].GetArray()) tokens.emplace_back(t.GetString(), t.GetStringLength());
  for (auto& m : ref["merges"].GetArray()) merges.emplace_back(m.GetString(), m.GetStringLength());
  std::vector<int32_t> types(tokens.size(), 1);
  for (size_t i = tokens.size() - 3; i < tokens.size(); ++i) types[i] = 3;
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", mode == "llama3" ? "llama-bpe" : mode);
  w.add_strings("tokenizer.ggml.tokens", tokens);
  w.add_strings("tokenizer.ggml.merges", merges);
  w.add_i32s("tokenizer.ggml.token_type", types);
  w.add_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(tokens.size() - 1));
  w.add_bool("tokenizer.ggml.add_bos_token", false);
  std::string path = dir.file(mode + ".gguf");
  w.write(path);
  return load_gguf_tokenizer(read_gguf(path));
}

}  // namespace

TEST_CASE("byte-level BPE matches the reference tokenisation table", "[engine]") {
  t2s::test::TempDir dir("engine-bpe");
  for (std::string mode : {"gpt2", "qwen2", "llama3"}) {
    rapidjson::Document ref;
    auto tok = reference_tokenizer(mode, dir, ref);
    REQUIRE(static_cast<size_t>(tok->vocab_size()) == ref["tokens"].Size());
    for (auto& c : ref["cases"].GetArray()) {
      std::string text(c["text"].GetString(), c["text"].GetStringLength());
      std::vector<int> want;
      for (auto& id : c["ids"].GetArray()) want.push_back(id.GetInt());
      INFO(mode << ": " << text);
      CHECK(tok->encode(text, false) == want);
      CHECK(tok->decode_all(want) == text);
    }
    // The merges are used: common words are single tokens.
    CHECK(tok->encode(" SELECT", false).size() == 1);
    // Stop ids include <|im_end|> and the EOS.
    CHECK(std::find(tok->stop_ids().begin(), tok->stop_ids().end(), tok->find_piece("<|im_end|>")) != tok->stop_ids().end());
  }
}

TEST_CASE("byte-level BPE round-trips arbitrary UTF-8 and arbitrary bytes", "[engine]") {
  t2s::test::TempDir dir("engine-bpe-rt");
  rapidjson::Document ref;
  auto tok = reference_tokenizer("qwen2", dir, ref);
  t2s::Rng rng(3);
  auto utf8 = [](uint32_t cp) {
    std::string s;
    if (cp < 0x80) s += static_cast<char>(cp);
    else if (cp < 0x800) { s += static_cast<char>(0xc0 | (cp >> 6)); s += static_cast<char>(0x80 | (cp & 0x3f)); }
    else if (cp < 0x10000) { s += static_cast<char>(0xe0 | (cp >> 12)); s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f)); s += static_cast<char>(0x80 | (cp & 0x3f)); }
    else { s += static_cast<char>(0xf0 | (cp >> 18)); s += static_cast<char>(0x80 | ((cp >> 12) & 0x3f)); s += static_cast<char>(0x80 | ((cp >> 6) & 0x3f)); s += static_cast<char>(0x80 | (cp & 0x3f)); }
    return s;
  };
  for (int trial = 0; trial < 200; ++trial) {
    std::string s;
    int n = static_cast<int>(rng.uniform_int(0, 40));
    for (int i = 0; i < n; ++i) {
      uint32_t cp;
      switch (rng.uniform_int(0, 4)) {
        case 0: cp = static_cast<uint32_t>(rng.uniform_int(0x20, 0x7e)); break;
        case 1: cp = static_cast<uint32_t>(rng.uniform_int(0, 0x20)); break;
        case 2: cp = static_cast<uint32_t>(rng.uniform_int(0x80, 0x7ff)); break;
        case 3: cp = static_cast<uint32_t>(rng.uniform_int(0x800, 0xd7ff)); break;
        default: cp = static_cast<uint32_t>(rng.uniform_int(0x10000, 0x10ffff)); break;
      }
      s += utf8(cp);
    }
    INFO("trial " << trial);
    CHECK(tok->decode_all(tok->encode(s, false)) == s);
    std::string raw;
    for (int i = 0; i < n; ++i) raw += static_cast<char>(rng.uniform_int(0, 255));
    CHECK(tok->decode_all(tok->encode(raw, false)) == raw);
  }
}

TEST_CASE("GGUF SentencePiece tokenizer maps the space marker and falls back to bytes", "[engine]") {
  t2s::test::TempDir dir("engine-spm");
  std::vector<std::string> tokens = {"<unk>", "<s>", "</s>"};
  char b[8];
  for (int i = 0; i < 256; ++i) {
    std::snprintf(b, sizeof b, "<0x%02X>", i);
    tokens.emplace_back(b);
  }
  for (const char* p : {"\xe2\x96\x81", "h", "e", "l", "o", "w", "r", "d", "he", "ll", "llo", "hello", "\xe2\x96\x81hello",
                        "\xe2\x96\x81w", "or", "\xe2\x96\x81wor", "\xe2\x96\x81worl", "\xe2\x96\x81world"})
    tokens.emplace_back(p);
  std::vector<float> scores(tokens.size());
  for (size_t i = 0; i < tokens.size(); ++i) scores[i] = static_cast<float>(i) * 0.1f;  // longer pieces score higher
  GgufWriter w;
  w.add_string("tokenizer.ggml.model", "llama");
  w.add_strings("tokenizer.ggml.tokens", tokens);
  w.add_f32s("tokenizer.ggml.scores", scores);
  w.add_u32("tokenizer.ggml.bos_token_id", 1);
  w.add_u32("tokenizer.ggml.eos_token_id", 2);
  std::string path = dir.file("spm.gguf");
  w.write(path);
  auto tok = load_gguf_tokenizer(read_gguf(path));
  auto ids = tok->encode("hello world!", true);
  REQUIRE(ids.size() == 4);
  CHECK(ids[0] == 1);
  CHECK(tok->piece(ids[1]) == " hello");
  CHECK(tok->piece(ids[2]) == " world");
  CHECK(ids[3] == 3 + '!');  // byte fallback
  CHECK(tok->decode_all(ids) == "hello world!");
}

TEST_CASE("chat templates render Qwen ChatML and Llama-3 prompts", "[engine]") {
  std::vector<ChatMessage> msgs = {{"user", "Count singers."}};
  std::string qwen_tpl = "{% for m in messages %}<|im_start|>{{ m.role }}... You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
  REQUIRE(detect_chat_format(qwen_tpl) == ChatFormat::ChatML);
  CHECK(apply_chat_template(ChatFormat::ChatML, msgs, true, qwen_tpl) ==
        "<|im_start|>system\nYou are Qwen, created by Alibaba Cloud. You are a helpful assistant.<|im_end|>\n"
        "<|im_start|>user\nCount singers.<|im_end|>\n<|im_start|>assistant\n");
  std::vector<ChatMessage> with_sys = {{"system", "Be brief."}, {"user", "Hi"}};
  CHECK(apply_chat_template(ChatFormat::ChatML, with_sys, false, qwen_tpl) ==
        "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n");
  REQUIRE(detect_chat_format("{{ '<|start_header_id|>' + message['role'] }}") == ChatFormat::Llama3);
  CHECK(apply_chat_template(ChatFormat::Llama3, with_sys, true) ==
        "<|start_header_id|>system<|end_header_id|>\n\nBe brief.<|eot_id|><|start_header_id|>user<|end_header_id|>\n\nHi"
        "<|eot_id|><|start_header_id|>assistant<|end_header_id|>\n\n");
}
