// The BPE trainer: its merges against the independent reference trainer (tests/reference/bpe_reference.py), a
// hand-checked corpus, determinism, and the engine tokenizer over its vocabulary (round trips of arbitrary bytes,
// the trainer's own segmentation of the training text, loading through GGUF).
#include <catch2/catch.hpp>

#include <algorithm>

#include "common/json.hpp"
#include "common/rng.hpp"
#include "common/status.hpp"
#include "engine/bpe_trainer.hpp"
#include "engine/gguf.hpp"
#include "tests/support.hpp"

using namespace t2s::engine;

namespace {

const std::vector<std::string> kTexts = {
    "SELECT name, age FROM singer WHERE age > 30 ORDER BY age DESC;\n",
    "How many singers do we have? What's the average age of all singers from France?\n",
    "SELECT count(*) FROM singer WHERE country = 'France'",
    "List the names of the stadiums that hosted concerts in 2014 and 2015.\n",
    "The quick brown fox jumps over the lazy dog. It's 12:45 and they'll be here by 1300.\n",
    "Café résumé naïve façade; übergroße Straße.\n",
    "  indented   text\twith\ttabs\n\n\nand blank lines   \n",
    "snake_case_name = foo_bar(baz_qux) + 42_000;  SELECT COUNT(*) FROM concert;\n",
    "<|bos|>Question: How many orders?\nSQL: SELECT count(*) FROM orders<|eos|>",
    "SELECT T1.name FROM singer AS T1 JOIN concert AS T2 ON T1.singer_id = T2.singer_id GROUP BY T1.name",
};

BpeVocab train_on(const std::vector<std::string>& texts, int vocab, BpeTrainer* keep = nullptr) {
  BpeTrainer local;
  BpeTrainer& t = keep ? *keep : local;
  for (const auto& s : texts) t.add_text(s);
  return t.train({vocab, 2});
}

}  // namespace

TEST_CASE("BPE trainer: the first merges of a hand-checked corpus", "[engine][bpe]") {
  // Word counts (the Hugging Face course example): hug 10, pug 5, pun 12, bun 4, hugs 5. Pair counts: u+g 20,
  // p+u 17, u+n 16, h+u 15 → merge "u g"; then u+n 16, h+ug 15, p+un 12 → "u n"; then "h ug" (15).
  BpeTrainer t;
  for (auto [w, n] : std::vector<std::pair<std::string, int>>{{"hug", 10}, {"pug", 5}, {"pun", 12}, {"bun", 4}, {"hugs", 5}})
    for (int i = 0; i < n; ++i) t.add_text(w);
  auto v = t.train({256 + 3 + 2, 1});
  REQUIRE(v.merges.size() == 3);
  CHECK(v.merges[0] == "u g");
  CHECK(v.merges[1] == "u n");
  CHECK(v.merges[2] == "h ug");
  CHECK(v.pieces.size() == 261);
  CHECK(v.pieces[256] == "ug");
  CHECK(v.pieces[259] == "<|bos|>");
  CHECK(v.pieces[260] == "<|eos|>");
  CHECK(v.bos == 259);
  CHECK(v.eos == 260);
  CHECK(v.token_types[259] == 3);
  CHECK(v.token_types[0] == 1);
  CHECK(t.segmentation("hugs") == std::vector<int>{258, 's'});
}

TEST_CASE("BPE trainer: merges equal the reference trainer's", "[engine][bpe]") {
  t2s::test::TempDir dir("engine-bpe-train");
  std::string corpus;
  for (int rep = 0; rep < 3; ++rep)
    for (size_t i = 0; i + 1 < kTexts.size(); ++i)
      if (i != 5) corpus += kTexts[i];  // ASCII, where Python's \w and the engine's letter classes agree
  t2s::json::write_file(dir.file("corpus.txt"), corpus);
  t2s::json::write_file(dir.file("cases.json"), "[]");
  const int n = 150;
  std::string cmd = "/usr/bin/python3 " + t2s::test::source_dir() + "/tests/reference/bpe_reference.py gpt2 " +
                    dir.file("corpus.txt") + " " + dir.file("cases.json") + " " + std::to_string(n) + " > " +
                    dir.file("ref.json");
  REQUIRE(std::system(cmd.c_str()) == 0);
  auto ref = t2s::json::parse_file(dir.file("ref.json"));
  std::vector<std::string> want;
  for (auto& m : ref["merges"].GetArray()) want.emplace_back(m.GetString(), m.GetStringLength());
  BpeTrainer t(std::vector<std::string>{});
  t.add_text(corpus);
  auto v = t.train({256 + 4 * n, 1});  // room for more merges than the reference made
  REQUIRE(v.merges.size() >= want.size());
  v.merges.resize(want.size());
  CHECK(v.merges == want);
}

TEST_CASE("BPE trainer: the engine encodes training text into the trainer's own segmentation", "[engine][bpe]") {
  BpeTrainer t;
  auto v = train_on(kTexts, 340, &t);
  CHECK(v.pieces.size() == 340);
  auto tok = v.tokenizer();
  REQUIRE(tok->vocab_size() == 340);
  for (const auto& s : kTexts) {
    INFO(s);
    auto ids = tok->encode(s, false);
    CHECK(ids == t.segmentation(s));
    std::string want = s;  // decode_all drops BOS tokens by design
    if (auto at = want.find("<|bos|>"); at != std::string::npos) want.erase(at, 7);
    CHECK(tok->decode_all(ids) == want);
  }
  // The merges compress: SQL keywords of the corpus are single tokens.
  CHECK(tok->encode(" FROM", false).size() == 1);
  CHECK(tok->encode("SELECT", false).size() == 1);
  // Special tokens are matched verbatim and never merged.
  auto ids = tok->encode("<|bos|>SELECT<|eos|>", false);
  CHECK(ids.front() == v.bos);
  CHECK(ids.back() == v.eos);
}

TEST_CASE("BPE trainer: the vocabulary round-trips arbitrary bytes and invalid UTF-8", "[engine][bpe]") {
  auto v = train_on(kTexts, 400);
  auto tok = v.tokenizer();
  t2s::Rng rng(11);
  for (int k = 0; k < 300; ++k) {
    std::string s;
    int len = static_cast<int>(rng.uniform_int(0, 60));
    for (int i = 0; i < len; ++i) {
      int mode = static_cast<int>(rng.uniform_int(0, 3));
      if (mode == 0) s += static_cast<char>(rng.uniform_int(0, 255));         // any byte (invalid UTF-8 too)
      else if (mode == 1) s += kTexts[static_cast<size_t>(rng.uniform_int(0, 7))].substr(0, 12);
      else if (mode == 2) s += "é東\xf0\x9f\x98\x80";
      else s += static_cast<char>(rng.uniform_int(32, 126));
    }
    if (k % 3 == 0) s += "<|eos|>";  // specials decode to themselves (decode_all drops only BOS, by design)
    INFO(k);
    CHECK(tok->decode_all(tok->encode(s, false)) == s);
  }
}

TEST_CASE("BPE trainer: deterministic, whatever the order texts are added in", "[engine][bpe]") {
  auto a = train_on(kTexts, 380);
  auto b = train_on(kTexts, 380);
  auto rev = kTexts;
  std::reverse(rev.begin(), rev.end());
  auto c = train_on(rev, 380);
  CHECK(a.pieces == b.pieces);
  CHECK(a.merges == b.merges);
  CHECK(a.pieces == c.pieces);
  CHECK(a.merges == c.merges);
  CHECK(a.token_types == c.token_types);
}

TEST_CASE("BPE trainer: the vocabulary loads from a GGUF file as the gpt2 tokenizer", "[engine][bpe]") {
  t2s::test::TempDir dir("engine-bpe-gguf");
  auto v = train_on(kTexts, 360);
  GgufWriter w;
  w.add_string("tokenizer.ggml.model", "gpt2");
  w.add_string("tokenizer.ggml.pre", "gpt2");
  w.add_strings("tokenizer.ggml.tokens", v.pieces);
  w.add_strings("tokenizer.ggml.merges", v.merges);
  w.add_i32s("tokenizer.ggml.token_type", std::vector<int32_t>(v.token_types.begin(), v.token_types.end()));
  w.add_u32("tokenizer.ggml.bos_token_id", static_cast<uint32_t>(v.bos));
  w.add_u32("tokenizer.ggml.eos_token_id", static_cast<uint32_t>(v.eos));
  w.add_bool("tokenizer.ggml.add_bos_token", false);
  w.write(dir.file("tok.gguf"));
  auto loaded = load_gguf_tokenizer(read_gguf(dir.file("tok.gguf")));
  auto direct = v.tokenizer();
  for (const auto& s : kTexts) CHECK(loaded->encode(s, false) == direct->encode(s, false));
  CHECK(loaded->eos_id() == v.eos);
}

TEST_CASE("BPE trainer: rejects a vocabulary smaller than its bytes and specials", "[engine][bpe]") {
  BpeTrainer t;
  t.add_text("abc");
  CHECK_THROWS_AS(t.train({200, 2}), t2s::InputError);
}
