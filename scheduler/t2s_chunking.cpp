// `t2s`'s prefill chunk cap: the step_stretch rule, prefill_spread with free_slack, and the delay-minimising rule.
#include "scheduler/t2s_policy.hpp"

#include <algorithm>
#include <cmath>
#include <limits>

namespace t2s::scheduler {

double stretch_chunk_tokens(const T2sParams& p, double step_s, double prefill_per_token_s) {
  return std::max(static_cast<double>(p.chunk_floor), (p.step_stretch - 1.0) * step_s / prefill_per_token_s);
}

int free_prefill_tokens(const CostModel& cost, int decoders, int64_t context, double slack, int limit) {
  IterationShape shape;
  shape.decode_seqs = std::max(1, decoders);
  shape.decode_context = std::max<int64_t>(context, shape.decode_seqs);
  const double bound = (1.0 + slack) * cost.iteration_s(shape);
  auto fits = [&](int tokens) {
    IterationShape s = shape;
    s.prefill_tokens = tokens;
    s.prefill_attn = static_cast<double>(tokens) * (1024.0 + tokens / 2.0);  // a chunk part-way into a prompt
    return cost.iteration_s(s) <= bound;
  };
  if (limit < 1 || !fits(1)) return 0;
  if (fits(limit)) return limit;
  int lo = 1, hi = limit;  // fits(lo), !fits(hi)
  while (hi - lo > 1) {
    const int mid = lo + (hi - lo) / 2;
    (fits(mid) ? lo : hi) = mid;
  }
  return lo;
}

double spread_chunk_tokens(const T2sParams& p, const InstanceState& inst, double cap) {
  if (p.prefill_spread <= 0) return cap;
  int64_t left = 0;
  size_t prompts = 0;
  int decoders = 0;
  for (const auto& r : inst.running) {
    if (!r.prefill_done())
      left += r.call->prompt_tokens - r.prefilled, ++prompts;
    else
      ++decoders;
  }
  const size_t scan = std::min(inst.waiting.size(), p.scan_limit);
  for (size_t w = 0; w < scan; ++w) left += inst.waiting[w].call->prompt_tokens, ++prompts;
  if (prompts == 0) return cap;
  double spread = std::ceil(static_cast<double>(left) / static_cast<double>(prompts) / p.prefill_spread);
  if (p.free_slack > 0 && inst.cost) {
    // Prompt tokens that ride along almost for free (the iteration stays memory-bound) are not held back.
    const int free = free_prefill_tokens(*inst.cost, decoders, inst.running_context, p.free_slack, 1024);
    spread = std::max(spread, std::ceil(static_cast<double>(free) / static_cast<double>(prompts)));
  }
  return std::max(8.0, std::min(cap, spread));
}

int T2sLocal::prefill_chunk_tokens(const InstanceState& inst) const {
  if (p_.step_stretch <= 0 || !inst.cost) return 0;
  // Largest chunk whose prefill keeps a decode step within step_stretch × its plain duration: decoding calls
  // (short tool calls above all) then never wait long behind a long prompt.
  const int seqs = std::max<int>(1, static_cast<int>(inst.running.size()));
  const int64_t ctx = inst.running.empty() ? 4096 : inst.running_context;
  const double step = inst.cost->decode_step_s(seqs, ctx);
  const double per_token = profile_.source == inst.cost ? profile_.prefill_per_token_s
                                                        : profile_call_time(*inst.cost).prefill_per_token_s;
  if (per_token <= 0) return 0;
  if (p_.chunk_rule == 1) {
    const int c = delay_minimizing_chunk(inst, step, per_token);
    if (shared_->chunk.size() <= index_) shared_->chunk.resize(index_ + 1, 0);
    shared_->chunk[index_] = c;
    return c;
  }
  return static_cast<int>(spread_chunk_tokens(p_, inst, stretch_chunk_tokens(p_, step, per_token)));
}

int T2sLocal::delay_minimizing_chunk(const InstanceState& inst, double step, double per_token) const {
  // Total delay a chunk cap c causes, summed over the calls on the instance:
  //   decoders: call i with k_i tokens left shares iterations with each prompt f (P_f tokens left to prefill)
  //             until it ends, so it waits per_token × min(P_f, k_i·c) for it;
  //   prompts:  prompt f needs P_f / c iterations, each carrying a decode step.
  // J(c) = per_token·Σ_f Σ_i min(P_f, k_i·c) + step·Σ_f P_f / c, evaluated on powers of two from chunk_floor.
  // With k sorted and prefix sums, Σ_i min(P, k_i·c) = c·Σ_{k_i < P/c} k_i + P·#{k_i ≥ P/c}.
  left_.clear();
  prompts_.clear();
  for (const auto& r : inst.running) {
    if (r.prefill_done())
      left_.push_back(std::max(1, r.call->expected_output_tokens - r.decoded));
    else
      prompts_.push_back(r.call->prompt_tokens - r.prefilled);
  }
  const size_t scan = std::min(inst.waiting.size(), p_.scan_limit);
  for (size_t w = 0; w < scan; ++w) prompts_.push_back(inst.waiting[w].call->prompt_tokens);
  if (prompts_.empty()) return p_.chunk_floor;
  std::sort(left_.begin(), left_.end());
  prefix_.assign(left_.size() + 1, 0);
  for (size_t i = 0; i < left_.size(); ++i) prefix_[i + 1] = prefix_[i] + left_[i];
  const int64_t longest = *std::max_element(prompts_.begin(), prompts_.end());
  int best_c = p_.chunk_floor;
  double best_j = std::numeric_limits<double>::infinity();
  for (int64_t c = p_.chunk_floor;; c *= 2) {
    const int64_t cap = std::min<int64_t>(c, longest);
    double j = 0;
    for (const int64_t P : prompts_) {
      // decoders with k_i·cap < P wait k_i·cap tokens, the others the whole prompt
      const int64_t threshold = (P + cap - 1) / cap;  // k_i < threshold  ⇔  k_i·cap < P
      const size_t below = static_cast<size_t>(std::lower_bound(left_.begin(), left_.end(), threshold) - left_.begin());
      j += per_token * (static_cast<double>(cap) * static_cast<double>(prefix_[below]) +
                        static_cast<double>(P) * static_cast<double>(left_.size() - below));
      j += step * std::ceil(static_cast<double>(P) / static_cast<double>(cap));
    }
    if (j < best_j) best_j = j, best_c = static_cast<int>(cap);
    if (cap >= longest) break;
  }
  return best_c;
}

}  // namespace t2s::scheduler
