// Tokenizer benchmark: SentencePiece encoding of stories260K's tok512 vocabulary by the engine (heap over adjacent
// pairs, O(n log n)) against run.c's loop (rescan every pair per merge, O(n^2)), measured in the same run on
// prompts of growing size; prints both times, their ratio, and checks the two give the same ids.
//   usage: bench_tokenizer [--max-kb N] [--shared DIR]
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "engine/llama2c.hpp"
#include "engine/tokenizer.hpp"
#include "tests/reference/run_c_encode.hpp"

using namespace t2s::engine;

namespace {

template <class F>
double seconds(F f) {
  auto t0 = std::chrono::steady_clock::now();
  f();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

}  // namespace

int main(int argc, char** argv) {
  CLI::App app{"SentencePiece encoding: heap merge vs run.c's quadratic loop"};
  int max_kb = 40;
  std::string shared = T2S_SHARED_DIR_DEFAULT;
  app.add_option("--max-kb", max_kb, "largest prompt in KiB (doubling from 1)")->check(CLI::Range(1, 4096));
  app.add_option("--shared", shared, "shared data folder");
  CLI11_PARSE(app, argc, argv);
  Llama2cVocab v = read_llama2c_vocab(shared + "/data/llama2c/tok512.bin", 512);
  const t2s::test::RunCEncoder run_c(v.pieces, v.scores);  // the peer
  SentencePieceTokenizer tok(v.pieces, v.scores, 1, 2, true);
  const std::string sentence = "Once upon a time, there was a little girl named Lily. She loved to play outside. ";
  std::printf("%8s %8s %12s %12s %8s %s\n", "KiB", "tokens", "engine_s", "run_c_s", "ratio", "same");
  for (int kb = 1; kb <= max_kb; kb *= 2) {
    std::string text;
    while (text.size() < static_cast<size_t>(kb) * 1024) text += sentence;
    text.resize(static_cast<size_t>(kb) * 1024);
    std::vector<int> a, b;
    double te = seconds([&] { a = tok.encode(text, false); });
    double tr = seconds([&] { b = run_c.encode(text); });
    std::printf("%8d %8zu %12.4f %12.4f %8.1f %s\n", kb, a.size(), te, tr, tr / te, a == b ? "yes" : "NO");
  }
  return 0;
}
