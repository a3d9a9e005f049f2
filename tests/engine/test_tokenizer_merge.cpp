// The heap-based BPE merge loops against references: SentencePiece against run.c's rescanning loop
// (tests/reference/run_c_encode.hpp, as it stood before), byte-level BPE against tests/reference/bpe_reference.py,
// on random and real texts.
#include <catch2/catch.hpp>

#include <climits>
#include <cstdio>
#include <fstream>

#include "common/json.hpp"
#include "common/rng.hpp"
#include "engine/llama2c.hpp"
#include "engine/tokenizer.hpp"
#include "tests/reference/run_c_encode.hpp"
#include "tests/support.hpp"

using namespace t2s::engine;

namespace {

std::string random_text(t2s::Rng& rng, const std::string& alphabet, size_t n) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s += alphabet[static_cast<size_t>(rng.uniform_int(0, static_cast<int64_t>(alphabet.size()) - 1))];
  return s;
}

}  // namespace

TEST_CASE("SentencePiece merging equals run.c's loop on random vocabularies with tied scores", "[engine][tokenizer]") {
  t2s::Rng rng(11);
  const std::string alphabet = "ab c";
  for (int trial = 0; trial < 40; ++trial) {
    std::vector<std::string> pieces = {"<unk>", "<s>", "</s>"};
    char b[8];
    for (int i = 0; i < 256; ++i) {
      std::snprintf(b, sizeof b, "<0x%02X>", i);
      pieces.emplace_back(b);
    }
    for (char c : alphabet) pieces.emplace_back(1, c);
    // Random multi-character pieces; scores from a small set, so ties are frequent and leftmost-first matters.
    for (int k = 0; k < 40; ++k) {
      std::string p = random_text(rng, alphabet, static_cast<size_t>(rng.uniform_int(2, 5)));
      if (std::find(pieces.begin(), pieces.end(), p) == pieces.end()) pieces.push_back(p);
    }
    std::vector<float> scores(pieces.size());
    for (auto& s : scores) s = static_cast<float>(rng.uniform_int(-3, 3));
    scores[pieces.size() - 1] = -2e10f;  // never merged by run.c (not above its -1e10 floor)
    SentencePieceTokenizer tok(pieces, scores, 1, 2, true);
    for (int t = 0; t < 10; ++t) {
      std::string text = random_text(rng, alphabet + "\xc3\xa9", static_cast<size_t>(rng.uniform_int(0, 200)));
      INFO("trial " << trial << " text '" << text << "'");
      CHECK(tok.encode(text, false) == t2s::test::RunCEncoder(pieces, scores).encode(text));
    }
  }
}

TEST_CASE("SentencePiece merging equals run.c's loop on tok512 and long stories", "[engine][tokenizer][shared]") {
  Llama2cVocab v = read_llama2c_vocab(t2s::test::shared_data("llama2c/tok512.bin"), 512);
  SentencePieceTokenizer tok(v.pieces, v.scores, 1, 2, true);
  std::ifstream in(t2s::test::shared_data("llama2c/expected_t0_n200.txt"));
  std::string story((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  REQUIRE(story.size() > 200);
  t2s::Rng rng(5);
  std::vector<std::string> texts = {story, story + story + story, "One day, Tom", "caf\xc3\xa9 \xe6\x9d\xb1"};
  for (int t = 0; t < 5; ++t) texts.push_back(random_text(rng, "abcdefghijklmnopqrstuvwxyz  .,TO", 500));
  for (const auto& text : texts) {
    INFO(text.substr(0, 60));
    CHECK(tok.encode(text, false) == t2s::test::RunCEncoder(v.pieces, v.scores).encode(text));
  }
}

TEST_CASE("byte-level BPE equals bpe_reference.py on long random texts", "[engine][tokenizer]") {
  t2s::test::TempDir dir("engine-bpe-merge");
  const std::string corpus =
      "SELECT name, age FROM singer WHERE age > 30 ORDER BY age DESC;\nHow many singers do we have? "
      "What's the average age of all singers from France? The quick brown fox jumps over the lazy dog.\n"
      "Caf\xc3\xa9 r\xc3\xa9sum\xc3\xa9 na\xc3\xafve; snake_case_name = foo_bar(baz_qux) + 42_000;\n";
  // Long texts: runs of words, repeated letters (one pre-token thousands of symbols long), digits and specials.
  t2s::Rng rng(7);
  std::vector<std::string> cases;
  for (int t = 0; t < 6; ++t) {
    std::string s;
    while (s.size() < 3000) {
      switch (rng.uniform_int(0, 4)) {
        case 0: s += corpus.substr(static_cast<size_t>(rng.uniform_int(0, 100)), 40); break;
        case 1: s += std::string(static_cast<size_t>(rng.uniform_int(1, 400)), "aes"[rng.uniform_int(0, 2)]); break;
        case 2: s += random_text(rng, "abcdefgh ", 200); break;
        case 3: s += "<|im_start|>"; break;
        default: s += random_text(rng, "0123456789", 30); break;
      }
    }
    cases.push_back(s);
  }
  std::string corpus_file = dir.file("corpus.txt"), cases_file = dir.file("cases.json"), out = dir.file("ref.json");
  t2s::json::write_file(corpus_file, corpus);
  std::string arr = "[";
  for (size_t i = 0; i < cases.size(); ++i) {
    std::string esc;
    for (char c : cases[i]) {
      if (c == '"' || c == '\\') esc += '\\';
      if (c == '\n') {
        esc += "\\n";
        continue;
      }
      esc += c;
    }
    arr += (i ? ",\"" : "\"") + esc + "\"";
  }
  t2s::json::write_file(cases_file, arr + "]");
  for (std::string mode : {"gpt2", "llama3"}) {
    std::string cmd = "/usr/bin/python3 " + t2s::test::source_dir() + "/tests/reference/bpe_reference.py " + mode +
                      " " + corpus_file + " " + cases_file + " 200 > " + out;
    REQUIRE(std::system(cmd.c_str()) == 0);
    rapidjson::Document ref = t2s::json::parse_file(out);
    std::vector<std::string> tokens, merges;
    std::vector<int> special;
    for (auto& t : ref["tokens"].GetArray()) tokens.emplace_back(t.GetString(), t.GetStringLength());
    for (auto& m : ref["merges"].GetArray()) merges.emplace_back(m.GetString(), m.GetStringLength());
    for (size_t i = tokens.size() - 3; i < tokens.size(); ++i) special.push_back(static_cast<int>(i));
    ByteLevelBpeTokenizer tok(tokens, merges, -1, static_cast<int>(tokens.size()) - 1, special,
                              mode == "gpt2" ? PreTokenizer::Gpt2 : PreTokenizer::Llama3, false);
    for (auto& c : ref["cases"].GetArray()) {
      std::string text(c["text"].GetString(), c["text"].GetStringLength());
      std::vector<int> want;
      for (auto& id : c["ids"].GetArray()) want.push_back(id.GetInt());
      INFO(mode << ": " << text.substr(0, 80));
      CHECK(tok.encode(text, false) == want);
    }
  }
}
