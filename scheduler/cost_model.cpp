#include "scheduler/cost_model.hpp"

#include <algorithm>
#include <array>
#include <cmath>

#include "common/stats.hpp"

namespace t2s::scheduler {

CostModel::CostModel(const GpuProfile& gpu, int tp, const ModelProfile& model, int block_tokens)
    : gpu_(gpu), model_(model), tp_(std::max(1, tp)), block_tokens_(std::max(1, block_tokens)) {}

CostModel::CostModel(const InstanceSpec& spec) : CostModel(spec.gpu, spec.tp, spec.model, spec.block_tokens) {
  default_chunk_ = spec.chunked_prefill ? spec.max_batch_tokens : 0;
  kv_override_ = spec.kv_blocks;
}

double CostModel::physical_iteration_s(const IterationShape& s) const {
  const int tokens = s.prefill_tokens + s.decode_seqs;
  if (tokens <= 0) return 0.0;
  const double tp = tp_;
  // Linear layers: 2 FLOPs per parameter per token; attention: QK^T and AV, 2×2 FLOPs per head-dim per attended token.
  const double attn_per_tok = 4.0 * model_.layers * model_.heads * model_.head_dim;
  const double flops = 2.0 * model_.params_b * 1e9 * tokens +
                       attn_per_tok * (s.prefill_attn + static_cast<double>(s.decode_context));
  const double compute_s = flops / (tp * gpu_.fp16_tflops * 1e12 * gpu_.compute_efficiency);
  // Memory: every weight once per iteration, the KV of every decoding sequence, and the KV written by prefill.
  const double bytes = model_.weight_bytes() +
                       model_.kv_bytes_per_token() * (static_cast<double>(s.decode_context) + s.prefill_tokens);
  const double memory_s = bytes / (tp * gpu_.hbm_tbps * 1e12 * gpu_.bw_efficiency);
  // Tensor parallelism: two all-reduces of the activations per layer (ring: 2(tp−1)/tp of the data per GPU).
  double comm_s = 0;
  if (tp_ > 1) {
    const double act_bytes = static_cast<double>(tokens) * model_.hidden * model_.bytes_per_param;
    comm_s = 2.0 * model_.layers *
             (gpu_.link_latency_us * 1e-6 + 2.0 * (tp - 1) / tp * act_bytes / (gpu_.link_gbps * 1e9));
  }
  return gpu_.iteration_overhead_s + std::max(compute_s, memory_s) + comm_s;
}

double CostModel::iteration_s(const IterationShape& s) const {
  if (s.prefill_tokens + s.decode_seqs <= 0) return 0.0;
  if (fitted_valid_) return std::max(1e-6, fitted_.predict(s));
  return physical_iteration_s(s);
}

double CostModel::prefill_s(int tokens, int context, int chunk_tokens) const {
  double t = 0;
  int done = 0;
  const int chunk = chunk_tokens > 0 ? chunk_tokens : std::max(1, tokens);
  while (done < tokens) {
    int n = std::min(chunk, tokens - done);
    IterationShape s;
    s.prefill_tokens = n;
    s.prefill_attn = static_cast<double>(n) * (context + done + n / 2.0);
    t += iteration_s(s);
    done += n;
  }
  return t;
}

double CostModel::decode_step_s(int seqs, int64_t context) const {
  IterationShape s;
  s.decode_seqs = seqs;
  s.decode_context = context;
  return iteration_s(s);
}

double CostModel::standalone_s(int prompt_tokens, int output_tokens, int cached_tokens, int chunk_tokens) const {
  // The iteration that completes the prefill also samples the first output token (as vLLM does).
  const int cached = std::clamp(cached_tokens, 0, std::max(0, prompt_tokens - 1));
  double t = gpu_.call_overhead_s + prefill_s(prompt_tokens - cached, cached, chunk_tokens);
  for (int j = 1; j < output_tokens; ++j) t += decode_step_s(1, prompt_tokens + j);
  return t;
}

double CostModel::prefill_tokens_per_s() const {
  const int chunk = default_chunk_ > 0 ? default_chunk_ : 2048;
  return chunk / std::max(1e-9, prefill_s(chunk, 4096, chunk));
}

double CostModel::backlog_s(const InstanceState& inst) const {
  const double prefill_ahead = static_cast<double>(inst.waiting_prompt_tokens + inst.running_prefill_left) /
                               prefill_tokens_per_s();
  const int64_t seqs = static_cast<int64_t>(inst.waiting.size() + inst.running.size());
  if (seqs == 0) return prefill_ahead;
  const int max_running = inst.spec ? inst.spec->max_running : 256;
  const int batch = static_cast<int>(std::min<int64_t>(seqs, max_running));
  const double decode_tokens = static_cast<double>(inst.waiting_output_tokens + inst.running_decode_left);
  const double ctx_per_seq =
      inst.running.empty() ? 2048.0 : static_cast<double>(inst.running_context) / inst.running.size();
  const double step = decode_step_s(batch, static_cast<int64_t>(batch * ctx_per_seq));
  return prefill_ahead + decode_tokens / batch * step;
}

double CostModel::estimate_completion_s(const agents::LlmCall& call, const InstanceState& inst, double now) const {
  const double start = inst.busy ? std::max(now, inst.busy_until_s) : now;
  const double prefill_ahead = static_cast<double>(inst.waiting_prompt_tokens + inst.running_prefill_left) /
                               prefill_tokens_per_s();
  const int hit = inst.prefix_cache.hit_tokens(call.prefix_id, call.prefix_tokens);
  const int own_prefill_tokens = std::max(1, call.prompt_tokens - hit);
  const double own_prefill = own_prefill_tokens / prefill_tokens_per_s();
  const int max_running = inst.spec ? inst.spec->max_running : 256;
  const int64_t seqs = static_cast<int64_t>(inst.waiting.size() + inst.running.size()) + 1;
  const int batch = static_cast<int>(std::min<int64_t>(seqs, max_running));
  const double ctx = call.prompt_tokens + call.expected_output_tokens / 2.0;
  const double own_decode =
      std::max(0, call.expected_output_tokens - 1) * decode_step_s(batch, static_cast<int64_t>(batch * ctx));
  // Beyond max_running sequences, calls wait for whole decode spans of the ones ahead.
  double overflow = 0;
  if (seqs > max_running) {
    const double avg_out =
        static_cast<double>(inst.waiting_output_tokens + inst.running_decode_left) / std::max<int64_t>(1, seqs - 1);
    overflow = static_cast<double>(seqs - max_running) / max_running * avg_out *
               decode_step_s(batch, static_cast<int64_t>(batch * ctx));
  }
  return start + gpu_.call_overhead_s + prefill_ahead + own_prefill + own_decode + overflow;
}

int CostModel::kv_capacity_blocks() const {
  if (kv_override_ > 0) return kv_override_;
  // vLLM-style: usable memory minus weights minus an activation/workspace reserve of 1.5 GB per GPU.
  const double usable = gpu_.memory_gb * 1e9 * gpu_.memory_utilization * tp_ - model_.weight_bytes() - 1.5e9 * tp_;
  const double block_bytes = model_.kv_bytes_per_token() * block_tokens_;
  if (usable <= 0 || block_bytes <= 0) return 0;
  return static_cast<int>(std::min(usable / block_bytes, 1e9));
}

void CostModel::set_fitted(const LinearIterationModel& fitted) {
  fitted_ = fitted;
  fitted_valid_ = true;
}

namespace {

constexpr int kFeatures = 5;
using Row = std::array<double, kFeatures>;

Row features(const IterationShape& s) {
  return {1.0, static_cast<double>(s.prefill_tokens), s.prefill_attn, static_cast<double>(s.decode_seqs),
          static_cast<double>(s.decode_context)};
}

// Solves the normal equations restricted to `active` columns; false when singular.
bool solve_active(const std::vector<Row>& x, const std::vector<double>& y, const std::array<bool, kFeatures>& active,
                  Row& coef) {
  std::vector<int> cols;
  for (int j = 0; j < kFeatures; ++j)
    if (active[j]) cols.push_back(j);
  const size_t k = cols.size();
  // Column scaling keeps the system well conditioned (features span 1 … 1e9).
  std::vector<double> scale(k, 0.0);
  for (size_t a = 0; a < k; ++a) {
    for (const auto& r : x) scale[a] = std::max(scale[a], std::abs(r[cols[a]]));
    if (scale[a] == 0) return false;
  }
  std::vector<std::vector<double>> m(k, std::vector<double>(k + 1, 0.0));
  for (size_t i = 0; i < x.size(); ++i)
    for (size_t a = 0; a < k; ++a) {
      const double xa = x[i][cols[a]] / scale[a];
      for (size_t b = 0; b < k; ++b) m[a][b] += xa * x[i][cols[b]] / scale[b];
      m[a][k] += xa * y[i];
    }
  for (size_t c = 0; c < k; ++c) {
    size_t piv = c;
    for (size_t r = c + 1; r < k; ++r)
      if (std::abs(m[r][c]) > std::abs(m[piv][c])) piv = r;
    if (std::abs(m[piv][c]) < 1e-12) return false;
    std::swap(m[c], m[piv]);
    for (size_t r = 0; r < k; ++r) {
      if (r == c) continue;
      const double f = m[r][c] / m[c][c];
      for (size_t q = c; q <= k; ++q) m[r][q] -= f * m[c][q];
    }
  }
  coef.fill(0.0);
  for (size_t a = 0; a < k; ++a) coef[cols[a]] = m[a][k] / m[a][a] / scale[a];
  return true;
}

}  // namespace

Expected<LinearIterationModel> fit_iteration_model(std::span<const IterationSample> samples) {
  if (samples.size() < 3) return Status::error("cost-model fit: need at least 3 measured iterations");
  std::vector<Row> x;
  std::vector<double> y;
  for (const auto& s : samples) {
    x.push_back(features(s.shape));
    y.push_back(s.seconds);
  }
  // Non-negative least squares by elimination: drop the most negative coefficient until all are >= 0; columns that
  // never vary (all zero) are dropped up front.
  std::array<bool, kFeatures> active{};
  for (int j = 0; j < kFeatures; ++j)
    for (const auto& r : x) active[j] = active[j] || r[j] != 0;
  Row coef{};
  for (int round = 0; round < kFeatures; ++round) {
    if (!solve_active(x, y, active, coef)) {
      // Collinear columns: drop the last active non-constant one and retry.
      int drop = -1;
      for (int j = kFeatures - 1; j > 0 && drop < 0; --j)
        if (active[j]) drop = j;
      if (drop < 0) return Status::error("cost-model fit: samples do not determine the model");
      active[drop] = false;
      continue;
    }
    int worst = -1;
    for (int j = 0; j < kFeatures; ++j)
      if (active[j] && coef[j] < 0 && (worst < 0 || coef[j] < coef[worst])) worst = j;
    if (worst < 0) break;
    active[worst] = false;
  }
  for (double& c : coef) c = std::max(0.0, c);
  LinearIterationModel m{coef[0], coef[1], coef[2], coef[3], coef[4], 0.0, samples.size()};
  double se = 0;
  for (const auto& s : samples) {
    const double e = m.predict(s.shape) - s.seconds;
    se += e * e;
  }
  m.rms_error_s = std::sqrt(se / static_cast<double>(samples.size()));
  return m;
}

CallErrorReport compare_calls(const CostModel& model, std::span<const MeasuredCall> calls) {
  CallErrorReport r;
  std::vector<double> rel;
  double bias = 0;
  for (const auto& c : calls) {
    if (c.seconds <= 0) continue;
    const double pred =
        model.standalone_s(c.prompt_tokens, c.output_tokens, c.cached_tokens, model.default_chunk_tokens());
    const double e = (pred - c.seconds) / c.seconds;
    rel.push_back(std::abs(e));
    bias += e;
  }
  r.calls = rel.size();
  if (rel.empty()) return r;
  r.mean_abs_rel = mean(rel);
  r.p90_abs_rel = quantile(rel, 0.9);
  r.bias_rel = bias / static_cast<double>(rel.size());
  return r;
}

}  // namespace t2s::scheduler
