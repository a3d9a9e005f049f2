#include "engine/generate.hpp"

#include <algorithm>
#include <cctype>
#include <cstring>

#include "common/status.hpp"
#include "engine/backend.hpp"
#include "engine/gguf.hpp"
#include "engine/llama2c.hpp"

namespace t2s::engine {

std::shared_ptr<Model> load_model(const std::string& path) {
  MappedFile probe(path);
  if (probe.size() >= 4 && std::memcmp(probe.data(), "GGUF", 4) == 0) return load_gguf_model(path);
  return load_llama2c_checkpoint(path);
}

LoadedModel load_model_and_tokenizer(const std::string& model_path, const std::string& tokenizer_path) {
  LoadedModel lm;
  MappedFile probe(model_path);
  bool gguf = probe.size() >= 4 && std::memcmp(probe.data(), "GGUF", 4) == 0;
  if (gguf) {
    GgufFile file = read_gguf(model_path);
    lm.model = load_gguf_model(file);
    if (tokenizer_path.empty()) {
      lm.tokenizer = load_gguf_tokenizer(file);
      lm.chat_template = file.get_string("tokenizer.chat_template", "");
    }
  } else {
    lm.model = load_llama2c_checkpoint(model_path);
    if (tokenizer_path.empty())
      throw InputError(model_path + " is a llama2.c checkpoint: pass its tokenizer with --tokenizer");
  }
  if (!tokenizer_path.empty()) lm.tokenizer = load_llama2c_tokenizer(tokenizer_path, lm.model->config.vocab_size);
  if (lm.tokenizer->vocab_size() != lm.model->config.vocab_size)
    throw InputError("tokenizer has " + std::to_string(lm.tokenizer->vocab_size()) + " tokens but the model has " +
                     std::to_string(lm.model->config.vocab_size));
  return lm;
}

void run_to_completion(BatchRunner& runner, const std::function<void(const StepReport&)>& on_step) {
  while (true) {
    auto pre = runner.preempted();
    if (!runner.has_work() && pre.empty()) return;
    if (!pre.empty()) {
      SequenceId oldest = pre.front();
      SequenceInfo in = runner.info(oldest);
      int need = BatchRunner::blocks_for(in.prompt_tokens + in.generated_tokens + 1);
      if (!runner.has_work() || runner.available_blocks() >= need) runner.resume(oldest);
    }
    StepReport rep = runner.step();
    if (on_step) on_step(rep);
    if (rep.sequences == 0 && !rep.stalled.empty()) {
      auto run = runner.running();
      if (run.size() <= 1 && runner.preempted().empty())
        throw std::runtime_error("KV pool too small for a single call");
      runner.preempt(run.back());
    }
  }
}

std::string generate_text(const LoadedModel& lm, const TextGenerationOptions& o) {
  const Tokenizer& tok = *lm.tokenizer;
  std::vector<int> prompt = tok.encode(o.prompt, true);
  if (prompt.empty()) throw InputError("the prompt encodes to no tokens and the model has no BOS token");
  CpuBackendOptions bo;
  bo.threads = o.threads;
  int steps = std::min(o.steps, lm.model->config.max_seq_len);
  bo.max_context = std::max(steps + 1, static_cast<int>(prompt.size()) + 2);
  bo.max_context = std::min(bo.max_context, lm.model->config.max_seq_len);
  bo.max_batch_tokens = 64;
  bo.kv_budget_bytes = kv_block_bytes(lm.model->config) * static_cast<size_t>(BatchRunner::blocks_for(bo.max_context) + 1);
  CudaBackendOptions co;
  co.max_batch_tokens = bo.max_batch_tokens;
  co.max_logit_rows = 1;
  co.max_context = bo.max_context;
  co.kv_budget_bytes = cuda_kv_block_bytes(lm.model->config) * static_cast<size_t>(BatchRunner::blocks_for(bo.max_context) + 1);
  auto backend = std::move(make_backend(o.backend, lm.model, bo, co).backend);
  std::string out;
  auto safe_append = [&](const std::string& piece) {  // run.c's safe_printf
    if (piece.empty()) return;
    if (piece.size() == 1) {
      auto c = static_cast<unsigned char>(piece[0]);
      if (!(std::isprint(c) || std::isspace(c))) return;
    }
    out += piece;
  };
  for (size_t i = 1; i < prompt.size() && static_cast<int>(i) < steps; ++i) safe_append(tok.decode(prompt[i - 1], prompt[i]));
  int max_tokens = steps - static_cast<int>(prompt.size()) + 1;  // run.c samples at every position from the last prompt token on
  if (max_tokens < 1) return out;
  BatchRunner runner(*backend, tok, RunnerOptions{bo.max_batch_tokens, 1, false});
  GenerationParams gp;
  gp.max_tokens = max_tokens;
  gp.sampling = o.sampling;
  gp.seed = o.seed;
  runner.admit(prompt, gp).value();
  run_to_completion(runner, [&](const StepReport& rep) {
    for (const auto& ev : rep.events)
      if (ev.token >= 0) safe_append(ev.piece);
  });
  return out;
}

}  // namespace t2s::engine
