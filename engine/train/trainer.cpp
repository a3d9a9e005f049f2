// Weights, data packing, AdamW with warmup + cosine, the training loop and its checkpoints.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <fstream>
#include <memory>
#include <stdexcept>

#include "common/progress.hpp"
#include "common/rng.hpp"
#include "common/status.hpp"
#include "engine/cpu/thread_pool.hpp"
#include "engine/train/decoder.hpp"
#include "engine/train/train.hpp"

namespace t2s::engine::train {

const ParamTensor& Weights::tensor(const std::string& name) const {
  for (const auto& t : tensors)
    if (t.name == name) return t;
  throw std::logic_error("no parameter tensor named " + name);
}

void validate_config(const ModelConfig& c) {
  auto need = [](bool ok, const std::string& what) {
    if (!ok) throw InputError("model config: " + what);
  };
  need(c.dim > 0 && c.hidden_dim > 0 && c.n_layers > 0 && c.vocab_size > 0 && c.max_seq_len > 0,
       "dim, hidden_dim, n_layers, vocab_size and max_seq_len must be positive");
  need(c.n_heads > 0 && c.n_kv_heads > 0 && c.n_heads % c.n_kv_heads == 0, "n_heads must be a positive multiple of n_kv_heads");
  need(c.head_dim > 0 && c.head_dim % 2 == 0, "head_dim must be positive and even");
  need(c.dim == c.n_heads * c.head_dim, "dim must equal n_heads * head_dim");
  need(c.arch == "llama" && c.rope_style == RopeStyle::Interleaved && !c.llama2c_rope,
       "only arch 'llama' with interleaved RoPE is trained");
}

Weights init_weights(const ModelConfig& config, bool tied, uint64_t seed) {
  validate_config(config);
  Weights w;
  w.config = config;
  w.tied_classifier = tied;
  size_t offset = 0;
  auto add = [&](std::string name, int64_t rows, int64_t cols, bool decay) {
    w.tensors.push_back(ParamTensor{std::move(name), rows, cols, offset, decay});
    offset += w.tensors.back().size();
  };
  const int64_t dim = config.dim, qd = config.q_dim(), kvd = config.kv_dim(), hid = config.hidden_dim;
  add("token_embd.weight", config.vocab_size, dim, false);
  for (int l = 0; l < config.n_layers; ++l) {
    const std::string p = "blk." + std::to_string(l) + ".";
    add(p + "attn_norm.weight", 1, dim, false);
    add(p + "attn_q.weight", qd, dim, true);
    add(p + "attn_k.weight", kvd, dim, true);
    add(p + "attn_v.weight", kvd, dim, true);
    add(p + "attn_output.weight", dim, qd, true);
    add(p + "ffn_norm.weight", 1, dim, false);
    add(p + "ffn_gate.weight", hid, dim, true);
    add(p + "ffn_up.weight", hid, dim, true);
    add(p + "ffn_down.weight", dim, hid, true);
  }
  add("output_norm.weight", 1, dim, false);
  if (!tied) add("output.weight", config.vocab_size, dim, true);
  w.data.assign(offset, 0.0f);
  Rng rng(seed);
  const double residual_scale = 1.0 / std::sqrt(2.0 * config.n_layers);
  for (const auto& t : w.tensors) {
    float* p = w.data.data() + t.offset;
    const bool norm = t.name.find("norm") != std::string::npos;
    const bool out_proj = t.name.find("attn_output") != std::string::npos || t.name.find("ffn_down") != std::string::npos;
    const double sd = 0.02 * (out_proj ? residual_scale : 1.0);
    for (size_t i = 0; i < t.size(); ++i) p[i] = norm ? 1.0f : static_cast<float>(rng.normal(0.0, sd));
  }
  return w;
}

double learning_rate(const TrainOptions& o, int64_t step) {
  if (o.warmup_steps > 0 && step <= o.warmup_steps) return o.lr * static_cast<double>(step) / static_cast<double>(o.warmup_steps);
  const int64_t decay_steps = std::max<int64_t>(1, o.steps - o.warmup_steps);
  const double progress = std::min(1.0, static_cast<double>(step - o.warmup_steps) / static_cast<double>(decay_steps));
  return o.min_lr + 0.5 * (o.lr - o.min_lr) * (1.0 + std::cos(3.141592653589793 * progress));
}

namespace {

// Packs the sequences `order` into rows of `seq` tokens, first fit among the last 64 rows (a sequence never
// straddles two rows): rows come out ~95% full for mixed lengths while the order stays mostly the shuffled one.
std::vector<std::vector<int>> pack_rows(const std::vector<TokenSequence>& data, const std::vector<int>& order, int seq) {
  constexpr size_t kOpenRows = 64;
  std::vector<std::vector<int>> rows;
  std::vector<int> fill;
  for (int i : order) {
    const int len = static_cast<int>(data[static_cast<size_t>(i)].tokens.size());
    size_t r = rows.size() > kOpenRows ? rows.size() - kOpenRows : 0;
    while (r < rows.size() && fill[r] + len > seq) ++r;
    if (r == rows.size()) {
      rows.emplace_back();
      fill.push_back(0);
    }
    rows[r].push_back(i);
    fill[r] += len;
  }
  return rows;
}

// Lays out `rows` (lists of sequence indices) as a PackedBatch; padding has no loss and attends only to itself.
PackedBatch make_batch(const std::vector<TokenSequence>& data, const std::vector<std::vector<int>>& rows, int seq) {
  PackedBatch b;
  b.rows = static_cast<int>(rows.size());
  b.seq = seq;
  const size_t n = rows.size() * static_cast<size_t>(seq);
  b.tokens.assign(n, 0);
  b.labels.assign(n, -1);
  b.seg_start.resize(n);
  b.pos.assign(n, 0);
  for (size_t r = 0; r < rows.size(); ++r) {
    const size_t base = r * static_cast<size_t>(seq);
    int o = 0;
    for (int i : rows[r]) {
      const TokenSequence& s = data[static_cast<size_t>(i)];
      const int len = static_cast<int>(s.tokens.size());
      for (int t = 0; t < len; ++t) {
        const size_t at = base + static_cast<size_t>(o + t);
        b.tokens[at] = s.tokens[static_cast<size_t>(t)];
        b.seg_start[at] = o;
        b.pos[at] = t;
        if (t + 1 < len && s.target[static_cast<size_t>(t + 1)]) {
          b.labels[at] = s.tokens[static_cast<size_t>(t + 1)];
          ++b.targets;
        }
      }
      o += len;
      b.real_tokens += len;
    }
    for (int t = o; t < seq; ++t) b.seg_start[base + static_cast<size_t>(t)] = t;
  }
  return b;
}

// Sum of loss over the targets of `data` (packed in their given order) and the target count.
std::pair<double, int64_t> total_loss(const Weights& w, const std::vector<TokenSequence>& data, int seq, int batch,
                                      cpu::ThreadPool& pool) {
  std::vector<int> order;
  for (size_t i = 0; i < data.size(); ++i)
    if (data[i].tokens.size() <= static_cast<size_t>(seq) && !data[i].tokens.empty()) order.push_back(static_cast<int>(i));
  const auto rows = pack_rows(data, order, seq);
  Decoder dec(w.config, pool);
  double sum = 0;
  int64_t targets = 0;
  for (size_t r0 = 0; r0 < rows.size(); r0 += static_cast<size_t>(batch)) {
    const auto end = rows.begin() + static_cast<std::ptrdiff_t>(std::min(rows.size(), r0 + static_cast<size_t>(batch)));
    const std::vector<std::vector<int>> part(rows.begin() + static_cast<std::ptrdiff_t>(r0), end);
    PackedBatch b = make_batch(data, part, seq);
    if (b.targets == 0) continue;
    dec.forward(w, b);
    sum += dec.loss(w, b, nullptr);
    targets += b.targets;
  }
  return {sum, targets};
}

constexpr char kMagic[8] = {'T', '2', 'S', 'T', 'R', 'A', 'I', 'N'};
constexpr uint32_t kVersion = 1;

}  // namespace

class TrainerImpl {
 public:
  TrainerImpl(TrainOptions o, std::vector<TokenSequence> d)
      : opt(std::move(o)), data(std::move(d)), pool(std::max(1, opt.threads)) {
    validate_config(opt.model);
    if (opt.seq_len < 2 || opt.seq_len > opt.model.max_seq_len)
      throw InputError("seq_len " + std::to_string(opt.seq_len) + " must be in [2, max_seq_len = " +
                       std::to_string(opt.model.max_seq_len) + "]");
    if (opt.batch < 1) throw InputError("batch must be at least 1");
    if (opt.steps < 1) throw InputError("steps must be at least 1");
    int64_t targets = 0;
    for (size_t i = 0; i < data.size(); ++i) {
      const TokenSequence& s = data[i];
      if (s.tokens.size() != s.target.size())
        throw InputError("training sequence " + std::to_string(i) + " has " + std::to_string(s.tokens.size()) +
                         " tokens but " + std::to_string(s.target.size()) + " target flags");
      for (int t : s.tokens)
        if (t < 0 || t >= opt.model.vocab_size)
          throw InputError("training sequence " + std::to_string(i) + " has token id " + std::to_string(t) +
                           " outside the vocabulary of " + std::to_string(opt.model.vocab_size));
      if (s.tokens.size() > static_cast<size_t>(opt.seq_len) || s.tokens.empty()) {
        ++skipped;
        continue;
      }
      trainable.push_back(static_cast<int>(i));
      for (size_t t = 1; t < s.target.size(); ++t) targets += s.target[t] != 0;
    }
    if (targets == 0) throw InputError("the training data has no target position in a sequence of at most seq_len tokens");
    weights = init_weights(opt.model, opt.tied_classifier, opt.seed);
    m.assign(weights.data.size(), 0.0f);
    v.assign(weights.data.size(), 0.0f);
    grad.assign(weights.data.size(), 0.0f);
    decoder = std::make_unique<Decoder>(opt.model, pool);
    start_epoch();
  }

  // The epoch's row list: trainable sequences shuffled by an Rng derived from (seed, epoch), then packed.
  void start_epoch() {
    std::vector<int> order = trainable;
    Rng rng = Rng(opt.seed ^ 0x6461746161ULL).fork(static_cast<uint64_t>(epoch) + 1);
    for (size_t i = order.size(); i > 1; --i)
      std::swap(order[i - 1], order[static_cast<size_t>(rng.uniform_int(0, static_cast<int64_t>(i) - 1))]);
    rows = pack_rows(data, order, opt.seq_len);
  }

  PackedBatch next_batch() {
    std::vector<std::vector<int>> part;  // copies: a new epoch replaces `rows` mid-batch
    while (static_cast<int>(part.size()) < opt.batch) {
      if (cursor == static_cast<int64_t>(rows.size())) {
        ++epoch;
        cursor = 0;
        start_epoch();
      }
      part.push_back(rows[static_cast<size_t>(cursor++)]);
    }
    return make_batch(data, part, opt.seq_len);
  }

  StepStats step() {
    const auto t0 = std::chrono::steady_clock::now();
    StepStats st;
    st.epoch = epoch;
    PackedBatch b = next_batch();
    std::fill(grad.begin(), grad.end(), 0.0f);
    decoder->forward(weights, b);
    const double sum = decoder->loss(weights, b, grad.data());
    ++done;
    st.step = done;
    st.total_steps = opt.steps;
    st.loss = b.targets ? sum / static_cast<double>(b.targets) : 0.0;
    st.tokens = b.real_tokens;
    st.targets = b.targets;
    double sq = 0;
    for (float g : grad) sq += static_cast<double>(g) * g;
    st.grad_norm = std::sqrt(sq);
    st.lr = learning_rate(opt, done);
    adamw(st.lr, opt.grad_clip > 0 && st.grad_norm > opt.grad_clip ? opt.grad_clip / st.grad_norm : 1.0);
    const double secs = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    st.tokens_per_s = secs > 0 ? static_cast<double>(b.real_tokens) / secs : 0.0;
    return st;
  }

  // Decoupled AdamW with bias correction; the clip factor scales the gradient before the moments see it.
  void adamw(double lr, double clip) {
    const float b1 = opt.beta1, b2 = opt.beta2, eps = opt.eps, g_scale = static_cast<float>(clip);
    const float c1 = static_cast<float>(1.0 - std::pow(static_cast<double>(b1), static_cast<double>(done)));
    const float c2 = static_cast<float>(1.0 - std::pow(static_cast<double>(b2), static_cast<double>(done)));
    const float lrf = static_cast<float>(lr);
    for (const auto& t : weights.tensors) {
      const float decay = t.decay ? opt.weight_decay : 0.0f;
      float* p = weights.data.data() + t.offset;
      float* mt = m.data() + t.offset;
      float* vt = v.data() + t.offset;
      const float* gt = grad.data() + t.offset;
      pool.parallel_for(static_cast<int64_t>(t.size()), 256, [&](int, int64_t b, int64_t e) {
        for (int64_t i = b; i < e; ++i) {
          const float g = gt[i] * g_scale;
          mt[i] = b1 * mt[i] + (1.0f - b1) * g;
          vt[i] = b2 * vt[i] + (1.0f - b2) * g * g;
          const float mhat = mt[i] / c1, vhat = vt[i] / c2;
          p[i] -= lrf * (mhat / (std::sqrt(vhat) + eps) + decay * p[i]);
        }
      });
    }
  }

  void save(const std::string& path) const {
    const std::string tmp = path + ".tmp";
    {
      std::ofstream f(tmp, std::ios::binary);
      if (!f) throw InputError("cannot write checkpoint " + tmp);
      auto put = [&](const auto& x) { f.write(reinterpret_cast<const char*>(&x), sizeof(x)); };
      f.write(kMagic, 8);
      put(kVersion);
      for (int x : config_ints(opt.model)) put(x);
      put(opt.model.rope_theta), put(opt.model.norm_eps);
      put(static_cast<uint8_t>(opt.tied_classifier));
      put(opt.seed), put(done), put(epoch), put(cursor);
      put(static_cast<uint64_t>(weights.data.size()));
      for (const auto* buf : {&weights.data, &m, &v})
        f.write(reinterpret_cast<const char*>(buf->data()), static_cast<std::streamsize>(buf->size() * sizeof(float)));
      if (!f) throw InputError("failed writing checkpoint " + tmp);
    }
    if (std::rename(tmp.c_str(), path.c_str()) != 0) throw InputError("cannot rename " + tmp + " to " + path);
  }

  void load(const std::string& path) {
    std::ifstream f(path, std::ios::binary);
    if (!f) throw InputError("cannot open checkpoint " + path);
    auto get = [&](auto& x) {
      f.read(reinterpret_cast<char*>(&x), sizeof(x));
      if (!f) throw InputError(path + ": truncated checkpoint");
    };
    char magic[8];
    f.read(magic, 8);
    if (!f || !std::equal(magic, magic + 8, kMagic)) throw InputError(path + ": not a t2s training checkpoint");
    uint32_t version = 0;
    get(version);
    if (version != kVersion) throw InputError(path + ": unsupported checkpoint version " + std::to_string(version));
    for (int want : config_ints(opt.model)) {
      int x = 0;
      get(x);
      if (x != want) throw InputError(path + ": checkpoint model shape differs from the options' model config");
    }
    float theta = 0, eps = 0;
    uint8_t tied = 0;
    uint64_t seed = 0;
    get(theta), get(eps), get(tied), get(seed);
    if (theta != opt.model.rope_theta || eps != opt.model.norm_eps)
      throw InputError(path + ": checkpoint rope_theta/norm_eps differ from the options'");
    if ((tied != 0) != opt.tied_classifier) throw InputError(path + ": checkpoint tied_classifier differs from the options'");
    if (seed != opt.seed) throw InputError(path + ": checkpoint seed " + std::to_string(seed) + " differs from the options' " + std::to_string(opt.seed));
    int64_t d = 0, ep = 0, cur = 0;
    uint64_t n = 0;
    get(d), get(ep), get(cur), get(n);
    if (n != weights.data.size()) throw InputError(path + ": checkpoint parameter count differs");
    for (auto* buf : {&weights.data, &m, &v}) {
      f.read(reinterpret_cast<char*>(buf->data()), static_cast<std::streamsize>(buf->size() * sizeof(float)));
      if (!f) throw InputError(path + ": truncated checkpoint");
    }
    done = d;
    epoch = ep;
    start_epoch();
    if (cur < 0 || cur > static_cast<int64_t>(rows.size()))
      throw InputError(path + ": checkpoint data position does not fit this data set (different data?)");
    cursor = cur;
  }

  static std::vector<int> config_ints(const ModelConfig& c) {
    return {c.dim, c.hidden_dim, c.n_layers, c.n_heads, c.n_kv_heads, c.head_dim, c.vocab_size, c.max_seq_len};
  }

  TrainOptions opt;
  std::vector<TokenSequence> data;
  cpu::ThreadPool pool;
  std::vector<int> trainable;
  int64_t skipped = 0;
  Weights weights;
  std::vector<float> m, v, grad;
  std::unique_ptr<Decoder> decoder;
  std::vector<std::vector<int>> rows;
  int64_t epoch = 0, cursor = 0, done = 0;
};

Trainer::Trainer(TrainOptions options, std::vector<TokenSequence> data)
    : impl_(new TrainerImpl(std::move(options), std::move(data))) {}
Trainer::~Trainer() { delete impl_; }
void Trainer::load_checkpoint(const std::string& path) { impl_->load(path); }
void Trainer::save_checkpoint(const std::string& path) const { impl_->save(path); }
int64_t Trainer::steps_done() const { return impl_->done; }
const Weights& Trainer::weights() const { return impl_->weights; }

StepStats Trainer::step() {
  StepStats st = impl_->step();
  if (impl_->opt.on_step) impl_->opt.on_step(st);
  return st;
}

namespace {
std::string clock_text(double secs) {
  const auto s = static_cast<int64_t>(secs + 0.5);
  char buf[32];
  std::snprintf(buf, sizeof buf, "%lld:%02lld", static_cast<long long>(s / 60), static_cast<long long>(s % 60));
  return buf;
}
}  // namespace

TrainResult Trainer::run() {
  TrainerImpl& t = *impl_;
  TrainResult res;
  res.skipped_sequences = t.skipped;
  ProgressBar bar("train", static_cast<size_t>(t.opt.steps), !t.opt.progress);
  bar.advance(static_cast<size_t>(t.done));
  const auto start = std::chrono::steady_clock::now();
  const int64_t first = t.done;
  int64_t tokens = 0;
  while (t.done < t.opt.steps) {
    StepStats st = t.step();
    const double elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    st.elapsed_s = elapsed;
    tokens += st.tokens;
    res.final_loss = st.loss;
    ++res.steps_done;
    const double eta = elapsed / static_cast<double>(t.done - first) * static_cast<double>(t.opt.steps - t.done);
    char status[160];
    std::snprintf(status, sizeof status, "loss %.4f | %.0f tok/s | ETA %s", st.loss, static_cast<double>(tokens) / elapsed,
                  clock_text(eta).c_str());
    bar.set_status(status);
    bar.advance();
    if (t.opt.on_step) t.opt.on_step(st);
    const bool last = t.done == t.opt.steps;
    if (!t.opt.checkpoint_path.empty() && ((t.opt.checkpoint_every > 0 && t.done % t.opt.checkpoint_every == 0) || last)) {
      t.save(t.opt.checkpoint_path);
      if (t.opt.on_checkpoint) t.opt.on_checkpoint(t.done, t.weights);
    }
  }
  const double total = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  res.tokens_per_s = total > 0 ? static_cast<double>(tokens) / total : 0.0;
  return res;
}

double Trainer::evaluate(const std::vector<TokenSequence>& data) const {
  auto [sum, targets] = total_loss(impl_->weights, data, impl_->opt.seq_len, impl_->opt.batch, impl_->pool);
  if (targets == 0) throw InputError("evaluation data has no target position in a sequence of at most seq_len tokens");
  return sum / static_cast<double>(targets);
}

std::vector<float> forward_logits(const Weights& weights, const std::vector<int>& tokens, int threads) {
  if (tokens.empty() || tokens.size() > static_cast<size_t>(weights.config.max_seq_len))
    throw InputError("forward_logits: need 1 to max_seq_len tokens, got " + std::to_string(tokens.size()));
  for (int t : tokens)
    if (t < 0 || t >= weights.config.vocab_size) throw InputError("forward_logits: token id " + std::to_string(t) + " out of range");
  cpu::ThreadPool pool(std::max(1, threads));
  Decoder dec(weights.config, pool);
  dec.forward(weights, single_sequence_batch(tokens));
  return dec.logits(weights);
}

}  // namespace t2s::engine::train
