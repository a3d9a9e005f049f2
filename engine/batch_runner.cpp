#include "engine/batch_runner.hpp"

#include <algorithm>
#include <stdexcept>

#include "engine/literal_guide.hpp"

namespace t2s::engine {

const char* finish_reason_name(FinishReason r) {
  switch (r) {
    case FinishReason::None: return "none";
    case FinishReason::Length: return "length";
    case FinishReason::StopToken: return "stop";
    case FinishReason::StopString: return "stop_string";
    case FinishReason::ContextFull: return "context";
    case FinishReason::Cancelled: return "cancelled";
  }
  return "?";
}

struct BatchRunner::Seq {
  SequenceId id = 0;
  std::vector<int> tokens;  // prompt then generated
  int prompt_len = 0;
  GenerationParams params;
  Rng rng;
  SequenceState state = SequenceState::Running;
  FinishReason reason = FinishReason::None;
  std::vector<int> blocks;        // block table
  std::vector<uint64_t> hashes;   // chain hashes of the full blocks published so far
  int computed = 0;               // positions with KV in the pool
  int high_water = 0;             // most positions ever computed (recompute accounting)
  bool prefix_checked = false;    // prefix cache consulted for the current admission
  int cached_prompt = 0, recomputed = 0;
  std::string text, held;
  std::vector<int> output;
  std::unique_ptr<SqlLiteralGuide> guide;  // calls with literal rules
  explicit Seq(uint64_t seed) : rng(seed) {}
};

BatchRunner::BatchRunner(Backend& backend, const Tokenizer& tokenizer, const RunnerOptions& options)
    : backend_(backend), tok_(tokenizer), opt_(options), blocks_(backend.num_kv_blocks(), options.prefix_caching) {
  opt_.max_batch_tokens = std::max(1, std::min(opt_.max_batch_tokens, backend.max_batch_tokens()));
  opt_.max_sequences = std::max(1, std::min(opt_.max_sequences, opt_.max_batch_tokens));
  const auto R = static_cast<size_t>(opt_.max_batch_tokens);
  b_tokens_.reserve(R);
  b_pos_.reserve(R);
  b_tables_.reserve(R);
  b_logit_rows_.reserve(static_cast<size_t>(opt_.max_sequences));
  b_logit_seq_.reserve(static_cast<size_t>(opt_.max_sequences));
  ran_.reserve(static_cast<size_t>(opt_.max_sequences) * 2);
  logits_.resize(static_cast<size_t>(opt_.max_sequences) * static_cast<size_t>(tok_.vocab_size()));
  b_requests_.reserve(static_cast<size_t>(opt_.max_sequences));
}

BatchRunner::~BatchRunner() = default;

BatchRunner::Seq& BatchRunner::get(SequenceId id) {
  for (auto& s : seqs_)
    if (s->id == id) return *s;
  throw std::out_of_range("BatchRunner: unknown sequence " + std::to_string(id));
}
const BatchRunner::Seq& BatchRunner::get(SequenceId id) const { return const_cast<BatchRunner*>(this)->get(id); }

Expected<SequenceId> BatchRunner::admit(std::vector<int> prompt, const GenerationParams& params) {
  if (prompt.empty()) return Status::error("empty prompt");
  if (static_cast<int>(prompt.size()) >= backend_.max_context())
    return Status::error("prompt of " + std::to_string(prompt.size()) + " tokens does not fit the context of " +
                         std::to_string(backend_.max_context()));
  if (blocks_for(static_cast<int>(prompt.size()) + 1) > blocks_.num_blocks())
    return Status::error("prompt needs more KV blocks than the pool holds (" + std::to_string(blocks_.num_blocks()) + ")");
  if (params.max_tokens < 1) return Status::error("max_tokens must be at least 1");
  // Preempted calls hold no batch row.
  if (const int n = running_count(); n >= opt_.max_sequences)
    return Status::error("runner is full (" + std::to_string(n) + " calls)");
  for (int t : prompt)
    if (t < 0 || t >= tok_.vocab_size()) return Status::error("prompt token id " + std::to_string(t) + " out of range");
  auto s = std::make_unique<Seq>(params.seed);
  s->id = next_id_++;
  s->prompt_len = static_cast<int>(prompt.size());
  s->tokens = std::move(prompt);
  s->params = params;
  s->tokens.reserve(s->tokens.size() + static_cast<size_t>(params.max_tokens) + 1);
  if (params.literals) {
    if (token_bytes_.empty()) {
      const int n = tok_.vocab_size();
      token_bytes_.resize(static_cast<size_t>(n));
      stop_token_.assign(static_cast<size_t>(n), 0);
      for (int t = 0; t < n; ++t) token_bytes_[static_cast<size_t>(t)] = tok_.decode(-1, t);
      for (int t : tok_.stop_ids())
        if (t >= 0 && t < n) stop_token_[static_cast<size_t>(t)] = 1;
    }
    s->guide = std::make_unique<SqlLiteralGuide>(std::make_shared<const LiteralTries>(*params.literals));
  }
  totals_.prompt_tokens += s->prompt_len;
  seqs_.push_back(std::move(s));
  return seqs_.back()->id;
}

void BatchRunner::attach_prefix(Seq& s) {
  s.prefix_checked = true;
  if (s.computed != 0 || !s.blocks.empty()) return;
  int max_blocks = (static_cast<int>(s.tokens.size()) - 1) / kKvBlockSize;  // always compute ≥ 1 position
  std::vector<uint64_t> hashes;
  s.blocks = blocks_.match_prefix(s.tokens, max_blocks, hashes);
  s.hashes = std::move(hashes);
  s.computed = static_cast<int>(s.blocks.size()) * kKvBlockSize;
  int hit_prompt = std::min(s.computed, s.prompt_len);
  s.cached_prompt += hit_prompt;
  totals_.cached_tokens += hit_prompt;
}

void BatchRunner::free_blocks(Seq& s) {
  for (int b : s.blocks) blocks_.release(b);
  s.blocks.clear();
  s.hashes.clear();
  s.computed = 0;
  s.prefix_checked = false;
}

StepReport BatchRunner::step(const StepLimits& limits) {
  StepReport rep;
  auto t0 = std::chrono::steady_clock::now();
  b_tokens_.clear();
  b_pos_.clear();
  b_tables_.clear();
  b_logit_rows_.clear();
  b_logit_seq_.clear();
  const int budget = opt_.max_batch_tokens;
  const int chunk_cap = limits.prefill_chunk_tokens > 0 ? limits.prefill_chunk_tokens : budget;
  std::vector<Ran>& ran = ran_;
  ran.clear();
  auto add_rows = [&](Seq& s, int n, bool is_decode) {
    for (int i = 0; i < n; ++i) {
      int pos = s.computed + i;
      b_tokens_.push_back(s.tokens[static_cast<size_t>(pos)]);
      b_pos_.push_back(pos);
      b_tables_.push_back(s.blocks.data());
      rep.context_tokens += pos + 1;
    }
    rep.calls.push_back({s.id, n, s.computed, is_decode});
    if (s.computed + n == static_cast<int>(s.tokens.size())) {
      b_logit_rows_.push_back(static_cast<int>(b_tokens_.size()) - 1);
      b_logit_seq_.push_back(&s);
    }
    ran.push_back({&s, n});
  };
  // Grows s's block table to cover positions < end; returns how many positions it covers.
  auto ensure_blocks = [&](Seq& s, int end) {
    while (static_cast<int>(s.blocks.size()) * kKvBlockSize < end) {
      int b = blocks_.allocate();
      if (b < 0) break;
      s.blocks.push_back(b);
    }
    return std::min(end, static_cast<int>(s.blocks.size()) * kKvBlockSize);
  };
  int rows = 0;
  // Decodes first: one row each for calls whose only uncomputed position is the last sampled token.
  for (auto& sp : seqs_) {
    Seq& s = *sp;
    if (s.state != SequenceState::Running || !s.prefix_checked) continue;
    if (static_cast<int>(s.tokens.size()) - s.computed != 1 || rows >= budget) continue;
    if (ensure_blocks(s, s.computed + 1) < s.computed + 1) {
      rep.stalled.push_back(s.id);
      continue;
    }
    add_rows(s, 1, true);
    ++rows;
    ++rep.decode_tokens;
  }
  // Then prefill (or recompute) chunks in admission order.
  for (auto& sp : seqs_) {
    Seq& s = *sp;
    if (s.state != SequenceState::Running) continue;
    if (rows >= budget) continue;
    // Consult the prefix cache only when the call gets rows now, so calls admitted together with one that is
    // still prefilling a shared prefix find its blocks once they are published.
    if (!s.prefix_checked) attach_prefix(s);
    int remaining = static_cast<int>(s.tokens.size()) - s.computed;
    if (remaining < 1) continue;
    if (std::any_of(ran.begin(), ran.end(), [&](const Ran& r) { return r.s == &s; })) continue;  // decoded above
    if (std::find(rep.stalled.begin(), rep.stalled.end(), s.id) != rep.stalled.end()) continue;
    int n = std::min({remaining, budget - rows, chunk_cap});
    int covered = ensure_blocks(s, s.computed + n) - s.computed;
    if (covered <= 0) {
      rep.stalled.push_back(s.id);
      continue;
    }
    n = covered;
    add_rows(s, n, false);
    rows += n;
    rep.prefill_tokens += n;
  }
  if (rows == 0) {
    rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return rep;
  }
  ForwardBatch fb;
  fb.tokens = b_tokens_;
  fb.positions = b_pos_;
  fb.block_tables = b_tables_;
  fb.logit_rows = b_logit_rows_;
  b_requests_.clear();
  for (Seq* s : b_logit_seq_) {
    SampleRequest q{s->params.sampling, 0.0};
    if (q.params.temperature > 0.0f) q.uniform = s->rng.uniform();  // one draw per sampled token, as sample_token
    b_requests_.push_back(q);
  }
  b_sampled_.resize(b_logit_seq_.size());
  if (std::any_of(b_logit_seq_.begin(), b_logit_seq_.end(), [](const Seq* q) { return q->guide != nullptr; }))
    sample_on_host(fb);
  else
    backend_.forward_sample(fb, b_requests_, tok_.vocab_size(), logits_.data(), b_sampled_.data());
  rep.sequences = static_cast<int>(ran.size());
  for (const Ran& r : ran) {
    Seq& s = *r.s;
    int before = s.computed;
    s.computed += r.n;
    if (before < s.high_water) s.recomputed += std::min(s.computed, s.high_water) - before;
    s.high_water = std::max(s.high_water, s.computed);
    while (static_cast<int>(s.hashes.size()) < s.computed / kKvBlockSize) {
      size_t k = s.hashes.size();
      uint64_t parent = k ? s.hashes[k - 1] : 0;
      std::span<const int> content(s.tokens.data() + k * kKvBlockSize, kKvBlockSize);
      s.hashes.push_back(blocks_.publish(s.blocks[k], parent, content));
    }
  }
  totals_.computed_prefill_tokens += rep.prefill_tokens;
  totals_.decode_tokens += rep.decode_tokens;
  for (size_t i = 0; i < b_logit_seq_.size(); ++i) on_token(*b_logit_seq_[i], b_sampled_[i], rep);
  rep.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  return rep;
}

void Backend::forward_sample(const ForwardBatch& batch, std::span<const SampleRequest> requests, int vocab,
                             float* logits, int* tokens) {
  forward(batch, logits);
  std::vector<int> scratch;
  for (size_t i = 0; i < requests.size(); ++i)
    tokens[i] = sample_token_with(logits + i * static_cast<size_t>(vocab), vocab, requests[i].params,
                                  requests[i].uniform, scratch);
}

void BatchRunner::sample_on_host(const ForwardBatch& fb) {
  const int vocab = tok_.vocab_size();
  backend_.forward(fb, logits_.data());
  std::vector<int> scratch;
  for (size_t i = 0; i < b_logit_seq_.size(); ++i) {
    float* row = logits_.data() + i * static_cast<size_t>(vocab);
    const SampleRequest& q = b_requests_[i];
    Seq& s = *b_logit_seq_[i];
    b_sampled_[i] = s.guide ? sample_guided(row, vocab, q.params, q.uniform, *s.guide, token_bytes_, stop_token_, scratch)
                            : sample_token_with(row, vocab, q.params, q.uniform, scratch);
  }
}

void BatchRunner::on_token(Seq& s, int token, StepReport& rep) {
  TokenEvent ev;
  ev.id = s.id;
  ev.token = token;
  int prev = s.tokens.back();
  s.tokens.push_back(token);
  s.output.push_back(token);
  const auto& stops = tok_.stop_ids();
  if (!s.params.ignore_eos && std::find(stops.begin(), stops.end(), token) != stops.end()) {
    ev.text = std::move(s.held);
    s.text += ev.text;
    s.held.clear();
    rep.events.push_back(std::move(ev));
    finish(s, FinishReason::StopToken, rep);
    return;
  }
  ev.piece = tok_.decode(prev, token);
  if (s.guide) s.guide->advance(token_bytes_[static_cast<size_t>(token)]);
  s.held += ev.piece;
  FinishReason reason = FinishReason::None;
  size_t release = s.held.size();
  size_t first = std::string::npos;
  for (const auto& st : s.params.stop)
    if (!st.empty()) first = std::min(first, s.held.find(st));
  if (first != std::string::npos) {
    release = first;
    reason = FinishReason::StopString;
  } else {
    // Hold back the longest tail of the text that could still start a stop string.
    size_t hold = 0;
    for (const auto& st : s.params.stop)
      for (size_t k = std::min(st.size() - (st.empty() ? 0 : 1), s.held.size()); k > hold; --k)
        if (s.held.compare(s.held.size() - k, k, st, 0, k) == 0) {
          hold = k;
          break;
        }
    release = s.held.size() - hold;
    if (static_cast<int>(s.output.size()) >= s.params.max_tokens) reason = FinishReason::Length;
    else if (static_cast<int>(s.tokens.size()) >= backend_.max_context()) reason = FinishReason::ContextFull;
    if (reason != FinishReason::None) release = s.held.size();
  }
  ev.text = s.held.substr(0, release);
  s.held.erase(0, release);
  if (reason == FinishReason::StopString) s.held.clear();
  s.text += ev.text;
  rep.events.push_back(std::move(ev));
  if (reason != FinishReason::None) finish(s, reason, rep);
}

void BatchRunner::finish(Seq& s, FinishReason r, StepReport& rep) {
  s.state = SequenceState::Finished;
  s.reason = r;
  free_blocks(s);
  if (!rep.events.empty() && rep.events.back().id == s.id) {
    rep.events.back().finished = true;
    rep.events.back().reason = r;
  } else {
    TokenEvent ev;
    ev.id = s.id;
    ev.finished = true;
    ev.reason = r;
    rep.events.push_back(std::move(ev));
  }
}

void BatchRunner::preempt(SequenceId id) {
  Seq& s = get(id);
  if (s.state != SequenceState::Running) return;
  free_blocks(s);
  s.state = SequenceState::Preempted;
}

bool BatchRunner::resume(SequenceId id) {
  Seq& s = get(id);
  if (s.state != SequenceState::Preempted) return s.state == SequenceState::Running;
  if (running_count() >= opt_.max_sequences) return false;
  s.state = SequenceState::Running;
  return true;
}

void BatchRunner::cancel(SequenceId id) {
  Seq& s = get(id);
  if (s.state == SequenceState::Finished || s.state == SequenceState::Cancelled) return;
  free_blocks(s);
  s.state = SequenceState::Cancelled;
  s.reason = FinishReason::Cancelled;
}

void BatchRunner::release(SequenceId id) {
  for (auto it = seqs_.begin(); it != seqs_.end(); ++it) {
    if ((*it)->id != id) continue;
    if ((*it)->state == SequenceState::Running || (*it)->state == SequenceState::Preempted)
      throw std::logic_error("BatchRunner::release of a live call (cancel it first)");
    seqs_.erase(it);
    return;
  }
}

SequenceInfo BatchRunner::info(SequenceId id) const {
  const Seq& s = get(id);
  SequenceInfo i;
  i.state = s.state;
  i.reason = s.reason;
  i.prompt_tokens = s.prompt_len;
  i.generated_tokens = static_cast<int>(s.output.size());
  i.computed_tokens = s.computed;
  i.cached_prompt_tokens = s.cached_prompt;
  i.recomputed_tokens = s.recomputed;
  i.text = s.text;
  i.output = s.output;
  return i;
}

SequenceCounts BatchRunner::counts(SequenceId id) const {
  const Seq& s = get(id);
  return {s.prompt_len, s.computed, static_cast<int>(s.output.size())};
}

std::vector<SequenceId> BatchRunner::running() const {
  std::vector<SequenceId> out;
  for (auto& s : seqs_)
    if (s->state == SequenceState::Running) out.push_back(s->id);
  return out;
}

std::vector<SequenceId> BatchRunner::preempted() const {
  std::vector<SequenceId> out;
  for (auto& s : seqs_)
    if (s->state == SequenceState::Preempted) out.push_back(s->id);
  return out;
}

int BatchRunner::running_count() const {
  int n = 0;
  for (auto& s : seqs_) n += s->state == SequenceState::Running;
  return n;
}

bool BatchRunner::has_work() const {
  return std::any_of(seqs_.begin(), seqs_.end(), [](auto& s) { return s->state == SequenceState::Running; });
}

}  // namespace t2s::engine
