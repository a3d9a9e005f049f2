// `t2s train`: t2s's own small model, end to end on the CPU: the agent's corpus on synthetic seeds → a byte-level
// BPE trained on it → answer-masked token sequences → the training engine (progress bar) with validation at
// checkpoints (loss, and EX of greedy candidate answers on the held-out seed) → GGUF + JSONL log + loss plot.
#include <algorithm>
#include <cstdio>
#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <memory>
#include <sstream>
#include <string>

#include "agents/execution.hpp"
#include "agents/training_corpus.hpp"
#include "cli/commands.hpp"
#include "common/json.hpp"
#include "common/progress.hpp"
#include "common/status.hpp"
#include "engine/backend.hpp"
#include "engine/batch_runner.hpp"
#include "engine/bpe_trainer.hpp"
#include "engine/generate.hpp"
#include "engine/train/train.hpp"
#include "sqlexec/extract.hpp"
#include "workloads/synthetic.hpp"

namespace t2s::cli {

namespace {

namespace fs = std::filesystem;
using engine::train::TokenSequence;

struct TrainFlags {
  std::string out = "out/train";
  int seeds = 16, bpe_seeds = 3, questions_per_db = 40, vocab = 2048;
  int dim = 256, layers = 4, heads = 8, kv_heads = 4, hidden = 688, context = 512;
  int64_t steps = 2000, warmup = 100, eval_every = 250;
  int batch = 8, threads = 2, eval_questions = 48;
  float lr = 2e-3f, min_lr = 2e-4f;
  uint64_t seed = 1;
  double time_budget_min = 0;
  std::string dtype = "f16";
  bool smoke = false;
};

// The small configuration of `--smoke`: every stage runs, in seconds.
void apply_smoke(TrainFlags& f) {
  f.seeds = 1;
  f.bpe_seeds = 1;
  f.questions_per_db = 3;
  f.vocab = 320;
  f.dim = 32;
  f.layers = 1;
  f.heads = 2;
  f.kv_heads = 1;
  f.hidden = 64;
  f.context = 256;
  f.steps = 4;
  f.warmup = 1;
  f.eval_every = 2;
  f.batch = 2;
  f.eval_questions = 2;
  f.dtype = "f32";
}

std::vector<uint64_t> train_seeds(int n) {
  std::vector<uint64_t> s;
  for (int i = 0; i < n; ++i) s.push_back(agents::kFirstTrainSeed + static_cast<uint64_t>(i));
  return s;
}

engine::DType parse_dtype(const std::string& s) {
  if (s == "f32") return engine::DType::F32;
  if (s == "f16") return engine::DType::F16;
  if (s == "q8_0") return engine::DType::Q8_0;
  throw InputError("--dtype " + s + ": expected f32, f16 or q8_0");
}

TokenSequence to_sequence(const engine::Tokenizer& tok, const agents::CorpusExample& e) {
  TokenSequence s;
  s.tokens = tok.encode(e.prompt, true);  // as the engine encodes a prompt at run time
  s.target.assign(s.tokens.size(), 0);
  for (int t : tok.encode(e.answer, false)) {
    s.tokens.push_back(t);
    s.target.push_back(1);
  }
  s.tokens.push_back(tok.eos_id());
  s.target.push_back(1);
  return s;
}

// Greedy answers of the model in `gguf` to `prompts`, all batched through one runner.
std::vector<std::string> greedy_answers(const std::string& gguf, const std::vector<std::string>& prompts, int max_tokens,
                                        int threads) {
  auto lm = engine::load_model_and_tokenizer(gguf, "");
  engine::CpuBackendOptions bo;
  bo.threads = threads;
  bo.max_batch_tokens = 512;
  bo.kv_budget_bytes = engine::kv_block_bytes(lm.model->config) *
                       static_cast<size_t>(engine::BatchRunner::blocks_for(lm.model->config.max_seq_len) + 1) *
                       std::min<size_t>(prompts.size(), 16);
  auto backend = engine::make_cpu_backend(lm.model, bo);
  engine::BatchRunner runner(*backend, *lm.tokenizer, engine::RunnerOptions{512, 16, false});
  std::vector<std::string> out(prompts.size());
  for (size_t lo = 0; lo < prompts.size(); lo += 16) {
    std::vector<std::pair<size_t, engine::SequenceId>> ids;
    for (size_t i = lo; i < std::min(prompts.size(), lo + 16); ++i) {
      auto toks = lm.tokenizer->encode(prompts[i], true);
      engine::GenerationParams gp;
      gp.max_tokens = std::max(1, std::min(max_tokens, lm.model->config.max_seq_len - static_cast<int>(toks.size()) - 1));
      auto id = runner.admit(std::move(toks), gp);
      if (!id.ok()) throw std::runtime_error("validation: cannot admit a prompt: " + id.error().message());
      ids.emplace_back(i, id.value());
    }
    engine::run_to_completion(runner);
    for (auto [i, id] : ids) {
      out[i] = runner.info(id).text;
      runner.release(id);
    }
  }
  return out;
}

// EX of greedy candidate answers: the SQL the agent would take from each answer (the answer itself when it has no
// SQL block), executed against the question's gold on the validation databases.
struct Validation {
  workloads::Workload workload;
  std::unique_ptr<agents::ExecutionBackend> backend;
  std::vector<agents::CorpusExample> candidates;  // first-style candidate prompts, spread over the databases
  std::vector<TokenSequence> loss_set;            // every stage, for the validation loss
};

double validation_ex(Validation& v, const std::string& gguf, int max_tokens, int threads, std::string* sample) {
  std::vector<std::string> prompts;
  for (const auto& e : v.candidates) prompts.push_back(e.prompt);
  auto answers = greedy_answers(gguf, prompts, max_tokens, threads);
  std::map<std::string, const workloads::Question*> qs;
  for (const auto& q : v.workload.questions) qs[q.id] = &q;
  int right = 0;
  for (size_t i = 0; i < answers.size(); ++i) {
    auto sql = sqlexec::extract_sql(answers[i]).value_or(answers[i]);
    right += v.backend->correct(*qs.at(v.candidates[i].question_id), sql).value_or(false) ? 1 : 0;
  }
  if (sample && !answers.empty()) *sample = answers[0];
  return answers.empty() ? 0.0 : static_cast<double>(right) / static_cast<double>(answers.size());
}

// A loss-curve SVG: training loss per step (and validation loss / EX points) on one chart.
void write_plot(const std::string& path, const std::vector<std::pair<int64_t, double>>& loss,
                const std::vector<std::tuple<int64_t, double, double>>& evals) {
  const double W = 800, H = 420, L = 60, R = 60, T = 30, B = 50;
  int64_t max_step = 1;
  double max_loss = 0.1;
  for (auto [s, l] : loss) max_step = std::max(max_step, s), max_loss = std::max(max_loss, l);
  auto x = [&](double s) { return L + (W - L - R) * s / static_cast<double>(max_step); };
  auto y = [&](double l) { return H - B - (H - T - B) * l / max_loss; };
  auto y_ex = [&](double e) { return H - B - (H - T - B) * e; };
  std::ostringstream o;
  o << "<svg xmlns='http://www.w3.org/2000/svg' width='" << W << "' height='" << H << "' font-family='sans-serif' "
    << "font-size='12'>\n<rect width='100%' height='100%' fill='white'/>\n";
  o << "<line x1='" << L << "' y1='" << H - B << "' x2='" << W - R << "' y2='" << H - B << "' stroke='black'/>\n";
  o << "<line x1='" << L << "' y1='" << T << "' x2='" << L << "' y2='" << H - B << "' stroke='black'/>\n";
  for (int k = 0; k <= 4; ++k) {
    double l = max_loss * k / 4;
    o << "<text x='" << L - 6 << "' y='" << y(l) + 4 << "' text-anchor='end'>" << std::round(l * 100) / 100 << "</text>\n";
    o << "<text x='" << W - R + 6 << "' y='" << y_ex(k / 4.0) + 4 << "' fill='#c0392b'>" << k * 25 << "%</text>\n";
    o << "<text x='" << x(static_cast<double>(max_step) * k / 4) << "' y='" << H - B + 18 << "' text-anchor='middle'>"
      << max_step * k / 4 << "</text>\n";
  }
  o << "<text x='" << (W / 2) << "' y='" << H - 10 << "' text-anchor='middle'>step</text>\n";
  o << "<text x='" << L << "' y='" << T - 10 << "'>training loss (blue), validation loss (green), validation EX (red, right axis)</text>\n";
  o << "<polyline fill='none' stroke='#2c6fbb' stroke-width='1' points='";
  for (auto [s, l] : loss) o << x(static_cast<double>(s)) << "," << y(l) << " ";
  o << "'/>\n";
  for (auto [s, vl, ex] : evals) {
    o << "<circle cx='" << x(static_cast<double>(s)) << "' cy='" << y(vl) << "' r='4' fill='#27ae60'/>\n";
    o << "<circle cx='" << x(static_cast<double>(s)) << "' cy='" << y_ex(ex) << "' r='4' fill='#c0392b'/>\n";
  }
  o << "</svg>\n";
  json::write_file(path, o.str());
}

std::string fmt(double v) {
  std::ostringstream o;
  o.precision(6);
  o << v;
  return o.str();
}

void run_train(TrainFlags f) {
  if (f.smoke) apply_smoke(f);
  const auto started = std::chrono::steady_clock::now();
  auto minutes = [&] { return std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count() / 60; };
  if (f.seeds < 1 || f.bpe_seeds < 1) throw InputError("--seeds and --bpe-seeds must be at least 1");
  const auto dtype = parse_dtype(f.dtype);
  fs::create_directories(f.out);
  const std::string cache = (fs::path(f.out) / "cache").string();  // our own folder: generated databases
  auto say = [&](const std::string& s) { std::cerr << "[train " << fmt(std::round(minutes() * 60)) << "s] " << s << "\n"; };

  // 1. The tokenizer, trained on the agent's unfitted prompts and answers of the first seeds.
  agents::CorpusOptions co;
  co.cache_dir = cache;
  co.questions_per_db = static_cast<size_t>(f.questions_per_db);
  co.seeds = train_seeds(std::min(f.bpe_seeds, f.seeds));
  engine::BpeTrainer bpe;
  for (const auto& e : agents::build_training_corpus(co)) {
    bpe.add_text(e.prompt);
    bpe.add_text(e.answer);
  }
  const engine::BpeVocab vocab = bpe.train({f.vocab, 2});
  auto tok = vocab.tokenizer();
  say("tokenizer: " + std::to_string(vocab.pieces.size()) + " tokens, " + std::to_string(vocab.merges.size()) + " merges");

  // 2. The corpus, with prompts fitted to the model's window by this tokenizer's counts, as the agent fits them.
  auto counter = [&tok](std::string_view s) { return static_cast<int>(tok->encode(s, true).size()); };
  co.seeds = train_seeds(f.seeds);
  co.context_tokens = f.context;
  co.count_tokens = counter;
  agents::CorpusSummary summary;
  auto corpus = agents::build_training_corpus(co, &summary);
  agents::write_corpus_jsonl((fs::path(f.out) / "corpus.jsonl").string(), corpus);
  std::vector<TokenSequence> data;
  int64_t tokens = 0, answer_tokens = 0;
  for (const auto& e : corpus) {
    data.push_back(to_sequence(*tok, e));
    tokens += static_cast<int64_t>(data.back().tokens.size());
    for (auto t : data.back().target) answer_tokens += t;
  }
  json::write_file((fs::path(f.out) / "corpus_summary.json").string(),
                   "{\"summary\": " + agents::corpus_summary_json(summary) + ", \"seeds\": [" +
                       std::to_string(agents::kFirstTrainSeed) + ", " +
                       std::to_string(agents::kFirstTrainSeed + static_cast<uint64_t>(f.seeds) - 1) +
                       "], \"tokens\": " + std::to_string(tokens) + ", \"answer_tokens\": " +
                       std::to_string(answer_tokens) + "}\n");
  say("corpus: " + std::to_string(corpus.size()) + " examples, " + std::to_string(tokens) + " tokens (" +
      std::to_string(answer_tokens) + " answer)");
  corpus.clear();
  corpus.shrink_to_fit();

  // 3. Validation on the held-out seed: first-style candidate prompts (the agent's greedy candidate) and a loss set.
  Validation val;
  agents::CorpusOptions vo = co;
  vo.seeds = {agents::kValidationSeed};
  vo.validation = true;
  vo.wrong_candidates = 0.35;
  auto vcorpus = agents::build_training_corpus(vo);
  workloads::SyntheticOptions so;
  so.seed = agents::kValidationSeed;
  so.questions_per_db = static_cast<size_t>(f.questions_per_db);
  val.workload = workloads::generate_synthetic((fs::path(cache) / "synthetic-seed-7").string(), so);
  val.backend = agents::make_sqlite_backend(val.workload, sqlexec::Metric::spider);
  std::vector<agents::CorpusExample> cands;
  for (const auto& e : vcorpus)
    if (e.stage == "candidate_generation" && e.prompt.find("Method: divide and conquer") != std::string::npos)
      cands.push_back(e);
  const size_t n_eval = std::min(cands.size(), static_cast<size_t>(f.eval_questions));
  for (size_t i = 0; i < n_eval; ++i) val.candidates.push_back(cands[i * cands.size() / std::max<size_t>(1, n_eval)]);
  for (size_t i = 0; i < vcorpus.size(); i += std::max<size_t>(1, vcorpus.size() / 200))
    val.loss_set.push_back(to_sequence(*tok, vcorpus[i]));

  // 4. Training.
  engine::train::TrainOptions to;
  to.model.dim = f.dim;
  to.model.hidden_dim = f.hidden;
  to.model.n_layers = f.layers;
  to.model.n_heads = f.heads;
  to.model.n_kv_heads = f.kv_heads;
  to.model.head_dim = f.heads > 0 ? f.dim / f.heads : 0;
  to.model.vocab_size = static_cast<int>(vocab.pieces.size());
  to.model.max_seq_len = f.context;
  engine::train::validate_config(to.model);
  to.seq_len = f.context;
  to.batch = f.batch;
  to.steps = f.steps;
  to.lr = f.lr;
  to.min_lr = f.min_lr;
  to.warmup_steps = std::min(f.warmup, f.steps);
  to.seed = f.seed;
  to.threads = f.threads;
  to.progress = false;  // the loop below draws its own bar (it evaluates and may stop early)
  engine::train::GgufTokenizerSpec spec{vocab.pieces, vocab.merges, vocab.token_types, vocab.bos, vocab.eos, "gpt2"};
  const std::string gguf = (fs::path(f.out) / "model.gguf").string();
  std::ofstream log(fs::path(f.out) / "train_log.jsonl");
  std::vector<std::pair<int64_t, double>> losses;
  std::vector<std::tuple<int64_t, double, double>> evals;
  ProgressBar bar("train", static_cast<size_t>(f.steps));
  const auto train_start = std::chrono::steady_clock::now();
  int64_t trained_tokens = 0;
  to.on_step = [&](const engine::train::StepStats& s) {
    const double el = std::chrono::duration<double>(std::chrono::steady_clock::now() - train_start).count();
    trained_tokens += s.tokens;
    log << "{\"step\": " << s.step << ", \"loss\": " << fmt(s.loss) << ", \"lr\": " << fmt(s.lr)
        << ", \"grad_norm\": " << fmt(s.grad_norm) << ", \"tokens\": " << s.tokens << ", \"tokens_per_s\": "
        << fmt(s.tokens_per_s) << ", \"elapsed_s\": " << fmt(el) << ", \"epoch\": " << s.epoch << "}\n";
    losses.emplace_back(s.step, s.loss);
    const double eta = el / static_cast<double>(s.step) * static_cast<double>(f.steps - s.step);
    char status[160];
    std::snprintf(status, sizeof status, "loss %.4f | %.0f tok/s | ETA %d:%02d", s.loss,
                  static_cast<double>(trained_tokens) / std::max(el, 1e-9), static_cast<int>(eta) / 60,
                  static_cast<int>(eta) % 60);
    bar.set_status(status);
    bar.advance();
  };
  engine::train::Trainer trainer(to, std::move(data));
  const int max_answer = std::max(16, f.context / 4);  // what the agent leaves for a candidate's answer
  auto evaluate = [&](int64_t step) {
    engine::train::export_gguf(trainer.weights(), spec, gguf, dtype);
    std::string sample;
    double vl = trainer.evaluate(val.loss_set);
    double ex = validation_ex(val, gguf, max_answer, f.threads, &sample);
    evals.emplace_back(step, vl, ex);
    rapidjson::StringBuffer b;
    rapidjson::Writer<rapidjson::StringBuffer> w(b);
    w.String(sample.c_str(), static_cast<rapidjson::SizeType>(sample.size()));
    log << "{\"step\": " << step << ", \"val_loss\": " << fmt(vl) << ", \"val_ex\": " << fmt(ex)
        << ", \"val_questions\": " << val.candidates.size() << ", \"val_seed\": " << agents::kValidationSeed
        << ", \"sample_answer\": " << b.GetString() << "}\n";
    log.flush();
    say("step " + std::to_string(step) + ": validation loss " + fmt(vl) + ", EX " + fmt(ex) + " on " +
        std::to_string(val.candidates.size()) + " candidate prompts of seed 7");
  };
  bool cut = false;
  while (trainer.steps_done() < f.steps) {
    trainer.step();
    const int64_t s = trainer.steps_done();
    if (f.eval_every > 0 && s % f.eval_every == 0 && s < f.steps) evaluate(s);
    if (f.time_budget_min > 0 && minutes() > f.time_budget_min && s < f.steps) {
      cut = true;
      say("time budget of " + fmt(f.time_budget_min) + " min spent: stopping at step " + std::to_string(s) + " of " +
          std::to_string(f.steps));
      log << "{\"stopped_by_time_budget_at_step\": " << s << "}\n";
      break;
    }
  }
  bar.finish();
  evaluate(trainer.steps_done());
  write_plot((fs::path(f.out) / "loss.svg").string(), losses, evals);
  say(std::string(cut ? "stopped early; " : "") + "wrote " + gguf + ", train_log.jsonl, loss.svg");
}

}  // namespace

void add_train_command(CLI::App& app) {
  auto f = std::make_shared<TrainFlags>();
  auto* cmd = app.add_subcommand(
      "train",
      "Train t2s's own small Llama-architecture model on the CPU: corpus of the agent's calls on synthetic seeds "
      "1000.. (validation seed 7; seed 42 is never used), a byte-level BPE, answer-masked training with validation "
      "EX at checkpoints; writes model.gguf, train_log.jsonl, loss.svg, corpus.jsonl into --out");
  cmd->add_option("--out", f->out, "Output folder (databases are generated under <out>/cache)");
  cmd->add_option("--seeds", f->seeds, "Training seeds: 1000 .. 1000+N-1")->check(CLI::Range(1, 100000));
  cmd->add_option("--bpe-seeds", f->bpe_seeds, "Seeds whose unfitted prompts train the tokenizer")->check(CLI::Range(1, 1000));
  cmd->add_option("--questions-per-db", f->questions_per_db, "Synthetic questions per database")->check(CLI::Range(1, 10000));
  cmd->add_option("--vocab", f->vocab, "Tokenizer vocabulary size")->check(CLI::Range(258, 65536));
  cmd->add_option("--dim", f->dim, "Residual width")->check(CLI::PositiveNumber);
  cmd->add_option("--layers", f->layers, "Decoder blocks")->check(CLI::PositiveNumber);
  cmd->add_option("--heads", f->heads, "Query heads")->check(CLI::PositiveNumber);
  cmd->add_option("--kv-heads", f->kv_heads, "Key/value heads (GQA)")->check(CLI::PositiveNumber);
  cmd->add_option("--hidden", f->hidden, "SwiGLU inner width")->check(CLI::PositiveNumber);
  cmd->add_option("--context", f->context, "Context window = training sequence length")->check(CLI::Range(64, 8192));
  cmd->add_option("--steps", f->steps, "Optimiser steps")->check(CLI::PositiveNumber);
  cmd->add_option("--warmup", f->warmup, "Warmup steps")->check(CLI::NonNegativeNumber);
  cmd->add_option("--batch", f->batch, "Packed rows per step")->check(CLI::PositiveNumber);
  cmd->add_option("--lr", f->lr, "Peak learning rate")->check(CLI::PositiveNumber);
  cmd->add_option("--min-lr", f->min_lr, "Final learning rate of the cosine")->check(CLI::NonNegativeNumber);
  cmd->add_option("--seed", f->seed, "Weight initialisation and data order");
  cmd->add_option("--threads", f->threads, "CPU threads")->check(CLI::Range(1, 256));
  cmd->add_option("--eval-every", f->eval_every, "Steps between validation checkpoints (0: only at the end)")->check(CLI::NonNegativeNumber);
  cmd->add_option("--eval-questions", f->eval_questions, "Validation candidate prompts for EX")->check(CLI::PositiveNumber);
  cmd->add_option("--time-budget", f->time_budget_min, "Stop after this many minutes (0: no limit; the step count then depends on the machine)")
      ->check(CLI::NonNegativeNumber);
  cmd->add_option("--dtype", f->dtype, "Matrix type in the GGUF file: f32, f16, q8_0")->check(CLI::IsMember({"f32", "f16", "q8_0"}));
  cmd->add_flag("--smoke", f->smoke, "A tiny configuration that runs every stage in seconds (tests)");
  cmd->callback([f] { run_train(*f); });
}

}  // namespace t2s::cli
