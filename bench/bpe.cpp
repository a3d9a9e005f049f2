// bench_bpe: the BPE trainer and the engine's byte-level encoder on the agent's own corpus (synthetic seed 1000).
// Linearity is the ratio against the same work at the base size, measured in the same run: time(k·N)/time(N)
// should be about k for the encoder (and the trainer's merge loop once the word counts stop growing).
#include <CLI/CLI.hpp>

#include <chrono>
#include <cstdio>
#include <filesystem>

#include "agents/training_corpus.hpp"
#include "engine/bpe_trainer.hpp"

using namespace t2s;
using Clock = std::chrono::steady_clock;

int main(int argc, char** argv) {
  CLI::App app{"bench_bpe: BPE training and encoding speed on the training corpus"};
  int vocab = 2048, questions = 10;
  std::string cache = "out/bench_bpe";
  app.add_option("--vocab", vocab, "vocabulary size");
  app.add_option("--questions-per-db", questions, "synthetic questions per database (corpus size)");
  app.add_option("--cache-dir", cache, "where the synthetic databases are generated");
  CLI11_PARSE(app, argc, argv);
  agents::CorpusOptions co;
  co.seeds = {agents::kFirstTrainSeed};
  co.cache_dir = cache;
  co.questions_per_db = static_cast<size_t>(questions);
  std::vector<std::string> texts;
  size_t bytes = 0;
  for (const auto& e : agents::build_training_corpus(co)) {
    texts.push_back(e.prompt);
    texts.push_back(e.answer);
    bytes += e.prompt.size() + e.answer.size();
  }
  std::printf("corpus: %zu texts, %.2f MB\n", texts.size(), static_cast<double>(bytes) / 1e6);
  std::unique_ptr<engine::ByteLevelBpeTokenizer> tok;
  double base_train = 0, base_encode = 0;
  for (int k : {1, 2, 4}) {
    auto t0 = Clock::now();
    engine::BpeTrainer trainer;
    for (int r = 0; r < k; ++r)
      for (const auto& t : texts) trainer.add_text(t);
    auto v = trainer.train({vocab, 2});
    double train_s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (!tok) tok = v.tokenizer();
    t0 = Clock::now();
    size_t ids = 0;
    for (int r = 0; r < k; ++r)
      for (const auto& t : texts) ids += tok->encode(t, false).size();
    double enc_s = std::chrono::duration<double>(Clock::now() - t0).count();
    if (k == 1) base_train = train_s, base_encode = enc_s;
    std::printf("x%d (%.2f MB): train %.2f s (x%.2f of base), encode %.2f s = %.2f MB/s, %.0f tokens/s, %.2f bytes/token "
                "(x%.2f of base)\n",
                k, static_cast<double>(bytes) * k / 1e6, train_s, train_s / base_train, enc_s,
                static_cast<double>(bytes) * k / 1e6 / enc_s, static_cast<double>(ids) / enc_s,
                static_cast<double>(bytes) * k / static_cast<double>(ids), enc_s / base_encode);
  }
  return 0;
}
