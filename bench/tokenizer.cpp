// Tokenizer benchmark: SentencePiece encoding of stories260K's tok512 vocabulary by the engine (heap over adjacent
// pairs, O(n log n)) against run.c's loop (rescan every pair per merge, O(n^2)), measured in the same run on
// prompts of growing size; prints both times, their ratio, and checks the two give the same ids.
//   usage: bench_tokenizer [--max-kb N] [--shared DIR]
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <string>
#include <unordered_map>
#include <vector>

#include "engine/llama2c.hpp"
#include "engine/tokenizer.hpp"

using namespace t2s::engine;

namespace {

// run.c's encoder (the peer): byte fallback, then repeatedly merge the best-scoring adjacent pair.
std::vector<int> run_c_encode(const std::vector<std::string>& pieces, const std::vector<float>& scores,
                              const std::unordered_map<std::string, int>& index, const std::string& text) {
  auto find = [&](const std::string& s) {
    auto it = index.find(s);
    return it == index.end() ? -1 : it->second;
  };
  std::vector<int> work;
  if (!text.empty() && find(" ") >= 0) work.push_back(find(" "));
  for (size_t i = 0; i < text.size();) {
    size_t start = i++;
    while (i < text.size() && (static_cast<unsigned char>(text[i]) & 0xc0) == 0x80 && i - start < 4) ++i;
    std::string cp = text.substr(start, i - start);
    int id = find(cp);
    if (id >= 0) {
      work.push_back(id);
    } else {
      char b[8];
      for (char c : cp) {
        std::snprintf(b, sizeof b, "<0x%02X>", static_cast<unsigned char>(c));
        work.push_back(find(b));
      }
    }
  }
  std::string buf;
  while (true) {
    float best = -1e10f;
    int best_id = -1;
    size_t best_i = 0;
    for (size_t i = 0; i + 1 < work.size(); ++i) {
      buf = pieces[static_cast<size_t>(work[i])];
      buf += pieces[static_cast<size_t>(work[i + 1])];
      int id = find(buf);
      if (id >= 0 && scores[static_cast<size_t>(id)] > best) {
        best = scores[static_cast<size_t>(id)];
        best_id = id;
        best_i = i;
      }
    }
    if (best_id < 0) break;
    work[best_i] = best_id;
    work.erase(work.begin() + static_cast<std::ptrdiff_t>(best_i) + 1);
  }
  return work;
}

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
  std::unordered_map<std::string, int> index;
  for (size_t i = 0; i < v.pieces.size(); ++i) index.emplace(v.pieces[i], static_cast<int>(i));
  SentencePieceTokenizer tok(v.pieces, v.scores, 1, 2, true);
  const std::string sentence = "Once upon a time, there was a little girl named Lily. She loved to play outside. ";
  std::printf("%8s %8s %12s %12s %8s %s\n", "KiB", "tokens", "engine_s", "run_c_s", "ratio", "same");
  for (int kb = 1; kb <= max_kb; kb *= 2) {
    std::string text;
    while (text.size() < static_cast<size_t>(kb) * 1024) text += sentence;
    text.resize(static_cast<size_t>(kb) * 1024);
    std::vector<int> a, b;
    double te = seconds([&] { a = tok.encode(text, false); });
    double tr = seconds([&] { b = run_c_encode(v.pieces, v.scores, index, text); });
    std::printf("%8d %8zu %12.4f %12.4f %8.1f %s\n", kb, a.size(), te, tr, tr / te, a == b ? "yes" : "NO");
  }
  return 0;
}
