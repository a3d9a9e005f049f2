// `t2s`'s dispatcher: the completion estimate on every instance, stage-level placement, workflow homing, and the
// delay a call adds to the calls already running (externality).
#include "scheduler/t2s_policy.hpp"

#include <algorithm>
#include <cmath>
#include <limits>
#include <numeric>

namespace t2s::scheduler {

double added_decode_delay_s(const agents::LlmCall& call, const InstanceState& inst) {
  if (inst.running.empty() || !inst.cost) return 0.0;
  const int b = static_cast<int>(inst.running.size());
  const int64_t ctx = std::max<int64_t>(1, inst.running_context);
  const double longer = inst.cost->decode_step_s(b + 1, ctx + call.prompt_tokens) - inst.cost->decode_step_s(b, ctx);
  const double their_steps = static_cast<double>(inst.running_decode_left) / b;
  const double shared_steps = std::min(static_cast<double>(std::max(0, call.expected_output_tokens - 1)), their_steps);
  return b * std::max(0.0, longer) * shared_steps;
}

double added_prefill_delay_s(const agents::LlmCall& call, const InstanceState& inst, int cached_tokens) {
  if (inst.running.empty() || !inst.cost) return 0.0;
  const int b = static_cast<int>(inst.running.size());
  IterationShape plain;
  plain.decode_seqs = b;
  plain.decode_context = std::max<int64_t>(1, inst.running_context);
  IterationShape with_prompt = plain;
  with_prompt.prefill_tokens = std::max(1, call.prompt_tokens - cached_tokens);
  with_prompt.prefill_attn = with_prompt.prefill_tokens * (cached_tokens + with_prompt.prefill_tokens / 2.0);
  return b * std::max(0.0, inst.cost->iteration_s(with_prompt) - inst.cost->iteration_s(plain));
}

void T2sDispatcher::reset() {
  profiles_.clear();
  shared_->speed.clear();
  shared_->inflation = 1.0;
  shared_->chunk.clear();
  standalone_.clear();
  bias_.clear();
  pending_.clear();
  home_.clear();
}

void T2sDispatcher::observe(const PolicyEvent& e) {
  if (e.kind == PolicyEvent::Kind::workflow_finished) home_.erase(e.workflow_id);
  if (e.kind != PolicyEvent::Kind::call_finished || !e.call) return;
  const auto& c = *e.call;
  bool fast_path = true;
  if (auto it = pending_.find(c.id); it != pending_.end()) {
    const Pending pend = it->second;
    pending_.erase(it);
    fast_path = pend.fast_path;
    if (e.result && e.result->ok && pend.predicted_s > 0) {
      if (bias_.size() <= pend.instance) bias_.resize(pend.instance + 1, 1.0);
      const double ratio = std::clamp((e.now - pend.dispatched_s) / pend.predicted_s, 0.2, 20.0);
      bias_[pend.instance] += p_.inflation_weight * (ratio - bias_[pend.instance]);
    }
  }
  // The inflation describes the fast path (where a call goes by earliest completion): offloaded calls run slower
  // by choice and would feed back into more offloading.
  if (!fast_path || !e.result || !e.result->ok) return;
  double best = 0;
  for (const auto& s : standalone_) {
    const double t = s.seconds(c.prompt_tokens, std::max(1, e.result->output_tokens));
    if (t > 0 && (best == 0 || t < best)) best = t;
  }
  if (best <= 0) return;
  const double ratio = std::clamp((e.now - c.released_s) / best, 1.0, 50.0);
  shared_->inflation += p_.inflation_weight * (ratio - shared_->inflation);
}

double T2sDispatcher::estimate(const agents::LlmCall& call, const InstanceState& inst, double now) {
  QueueSnapshot snap;
  snapshot(inst, now, snap);
  return completion(call, inst, now, Placed{}, snap);
}

void T2sDispatcher::snapshot(const InstanceState& inst, double now, QueueSnapshot& snap) {
  snap.rank.clear();
  snap.hopeless.clear();
  snap.tokens.clear();
  snap.prefix.clear();
  const auto& prof = profiles_.get(inst);
  snap.running_step = snap.chunk = snap.slot_free_s = 0;
  snap.knee = 0;
  if (!inst.running.empty())
    snap.running_step =
        inst.cost->decode_step_s(static_cast<int>(inst.running.size()), std::max<int64_t>(1, inst.running_context));
  // The chunk the instance's prefill runs under, the same for every call of this offer.
  if (p_.batch_aware && p_.chunk_wait && snap.running_step > 0 && prof.prefill_per_token_s > 0) {
    const int chosen = p_.chunk_rule == 1 && inst.index < shared_->chunk.size() ? shared_->chunk[inst.index] : 0;
    const double stretch_cap = stretch_chunk_tokens(p_, snap.running_step, prof.prefill_per_token_s);
    snap.chunk = chosen > 0 ? chosen : p_.step_stretch > 1 ? spread_chunk_tokens(p_, inst, stretch_cap) : 0.0;
  }
  if (p_.batch_knee > 0 && inst.spec && snap.running_step > 0) {
    const double runs = static_cast<double>(inst.running.size());
    snap.knee = throughput_knee_batch(*inst.cost, inst.spec->max_running, inst.running_context / runs, p_.batch_knee);
    // The running calls finish spread over their mean decode left: one frees a slot every (that time) ÷ count.
    snap.slot_free_s = static_cast<double>(inst.running_decode_left) / runs * snap.running_step / runs;
  }
  snap.valid = p_.batch_aware && p_.slack && p_.priority_wait && inst.waiting.size() <= p_.scan_limit;
  if (!snap.valid) return;
  const double f = p_.adapt ? shared_->factor(inst.index) : 1.0;
  for (const auto& w : inst.waiting) {
    const auto& c = *w.call;
    const LaxityKey k = laxity_key(c, f * prof.seconds(c.prompt_tokens, c.expected_output_tokens), now, p_);
    snap.rank.push_back(k.hopeless ? c.arrival_s : k.latest_start);
    snap.hopeless.push_back(k.hopeless ? 1 : 0);
    snap.tokens.push_back(c.prompt_tokens);
    snap.prefix.push_back(c.prefix_id);
  }
}

double T2sDispatcher::completion(const agents::LlmCall& call, const InstanceState& inst, double now,
                                 const Placed& placed, const QueueSnapshot& snap) {
  const auto& prof = profiles_.get(inst);
  const double f = p_.adapt ? shared_->factor(inst.index) : 1.0;
  const double in_flight = inst.busy ? std::max(0.0, inst.busy_until_s - now) : 0.0;
  const bool shares = p_.affinity && call.prefix_id != 0 && call.prefix_tokens > 0;
  bool prefix_coming = shares && std::find(placed.prefixes.begin(), placed.prefixes.end(), call.prefix_id) !=
                                     placed.prefixes.end();
  // Prompt tokens that will be prefilled before this call starts, and how many calls share the batch with it.
  double ahead_tokens = static_cast<double>(inst.running_prefill_left);
  int64_t batch = static_cast<int64_t>(inst.running.size()) + 1 + placed.calls;
  if (snap.valid) {
    // Waiting calls that the local queue admits before this one (ties count as ahead: they queued earlier).
    const LaxityKey mine = laxity_key(call, f * prof.seconds(call.prompt_tokens, call.expected_output_tokens), now, p_);
    const uint8_t my_class = mine.hopeless ? 1 : 0;
    const double my_rank = mine.hopeless ? call.arrival_s : mine.latest_start;
    int64_t tokens = 0, count = 0;
    for (size_t i = 0; i < snap.rank.size(); ++i) {
      const bool ahead = snap.hopeless[i] < my_class || (snap.hopeless[i] == my_class && snap.rank[i] <= my_rank);
      tokens += ahead ? snap.tokens[i] : 0;
      count += ahead ? 1 : 0;
    }
    ahead_tokens += static_cast<double>(tokens);
    batch += count;
    if (shares && !prefix_coming)
      prefix_coming = std::find(snap.prefix.begin(), snap.prefix.end(), call.prefix_id) != snap.prefix.end();
  } else {
    ahead_tokens += static_cast<double>(inst.waiting_prompt_tokens);
    batch += static_cast<int64_t>(inst.waiting.size());
    if (shares && !prefix_coming)
      for (const auto& w : inst.waiting)
        if (w.call->prefix_id == call.prefix_id) {
          prefix_coming = true;
          break;
        }
  }
  if (shares && !prefix_coming)
    for (const auto& r : inst.running)
      if (r.call->prefix_id == call.prefix_id) {
        prefix_coming = true;
        break;
      }
  int hit = 0;
  if (shares) {
    hit = inst.prefix_cache.hit_tokens(call.prefix_id, call.prefix_tokens);
    if (prefix_coming) hit = std::max(hit, call.prefix_tokens);
  }
  double step = prof.decode_per_token_s;
  // Under a prefill chunk cap, prompts ahead and our own are prefilled a chunk per iteration, each iteration
  // also carrying the running calls' decode step: prefill time stretches by 1 + step / (chunk × prefill/token).
  // The chunk is modelled by the step_stretch rule even under chunk_rule=1 (whose chunk depends on the whole
  // running set): step_stretch then only shapes this estimate.
  double prefill_stretch = 1.0;
  if (p_.batch_aware) {
    const int max_running = snap.knee > 0 ? snap.knee : inst.spec ? inst.spec->max_running : 256;
    const int b = static_cast<int>(std::min<int64_t>(batch, max_running));
    const double ctx = inst.running.empty() ? call.prompt_tokens + call.expected_output_tokens / 2.0
                                            : static_cast<double>(inst.running_context) / inst.running.size();
    step = inst.cost->decode_step_s(b, static_cast<int64_t>(b * std::max(ctx, 1.0)));
    if (snap.chunk > 0) prefill_stretch = 1.0 + snap.running_step / (snap.chunk * prof.prefill_per_token_s);
  }
  double wait = in_flight + (ahead_tokens * prof.prefill_per_token_s + placed.prefill_s) * prefill_stretch;
  // Under the batch cap, the calls beyond it wait for running ones to finish.
  if (snap.knee > 0 && batch > snap.knee) wait += static_cast<double>(batch - snap.knee) * snap.slot_free_s;
  const double own_prefill = prof.seconds(call.prompt_tokens, 1, hit) +
                             (prefill_stretch - 1.0) * (call.prompt_tokens - hit) * prof.prefill_per_token_s;
  const int steps = std::max(0, call.expected_output_tokens - 1);
  double own_decode = steps * step;
  if (p_.batch_aware) {
    // Continuous batching interleaves this call's decode steps with the prefill of the calls queued behind it:
    // each step can carry up to a budget of their prompt tokens, so the decode stretches by that prefill work.
    const double queued = static_cast<double>(inst.waiting_prompt_tokens + inst.running_prefill_left);
    const double behind = std::max(0.0, queued - ahead_tokens);
    const double budget = inst.spec ? inst.spec->max_batch_tokens : 2048;
    own_decode += std::min(behind, steps * budget) * prof.prefill_per_token_s;
  }
  // What this call costs the calls already running there (weighted; 0 = a selfish earliest completion).
  double externality = 0;
  if (p_.externality > 0) externality += p_.externality * added_decode_delay_s(call, inst);
  if (p_.prefill_externality > 0) externality += p_.prefill_externality * added_prefill_delay_s(call, inst, hit);
  return now + f * (wait + own_prefill + own_decode + externality);
}

void T2sDispatcher::dispatch(std::span<const agents::LlmCall* const> calls, const ClusterView& view,
                             std::span<DispatchDecision> out) {
  const size_t n = view.size();
  if (n == 0) return;
  if (placed_.size() != n) placed_.resize(n);
  if (snaps_.size() != n) snaps_.resize(n);
  if (standalone_.size() != n) {
    standalone_.clear();
    for (size_t j = 0; j < n; ++j) standalone_.push_back(profiles_.get(view.instance(j)));
  }
  for (size_t j = 0; j < n; ++j) snapshot(view.instance(j), view.now, snaps_[j]);
  for (auto& pl : placed_) {
    pl.prefill_s = 0;
    pl.calls = 0;
    pl.prefixes.clear();
  }
  order_.resize(calls.size());
  std::iota(order_.begin(), order_.end(), size_t{0});
  // Largest first: the stage ends with its slowest call, so the big ones get the best instances.
  if (p_.stage)
    std::stable_sort(order_.begin(), order_.end(), [&](size_t a, size_t b) {
      return calls[a]->prompt_tokens + 8 * calls[a]->expected_output_tokens >
             calls[b]->prompt_tokens + 8 * calls[b]->expected_output_tokens;
    });
  static const Placed kNothing{};
  for (size_t i : order_) {
    const auto& call = *calls[i];
    done_.resize(n);
    for (size_t j = 0; j < n; ++j)
      done_[j] = completion(call, view.instance(j), view.now, p_.stage ? placed_[j] : kNothing, snaps_[j]);
    size_t best_j = argmin_instance(n, [&](size_t j) { return done_[j]; });
    const size_t fastest = best_j;
    if (p_.offload_home) best_j = home_choice(call, view, best_j);
    out[i].instance = static_cast<int>(best_j);
    if (p_.offload_home)
      pending_[call.id] = {best_j, view.now, done_[best_j] - view.now, best_j == fastest};
    auto& pl = placed_[best_j];
    const auto& prof = profiles_.get(view.instance(best_j));
    const bool shared_prefix = p_.affinity && call.prefix_id != 0 &&
                               std::find(pl.prefixes.begin(), pl.prefixes.end(), call.prefix_id) != pl.prefixes.end();
    pl.prefill_s += (call.prompt_tokens - (shared_prefix ? call.prefix_tokens : 0)) * prof.prefill_per_token_s;
    ++pl.calls;
    if (call.prefix_id != 0) pl.prefixes.push_back(call.prefix_id);
  }
}

size_t T2sDispatcher::home_choice(const agents::LlmCall& call, const ClusterView& view, size_t best_j) {
  // A workflow is homed on a slower instance when that is no worse for the workflow itself: the rest of it, run
  // there at that instance's standalone slowness, ends no later than on the fast path, where it meets the queueing
  // stretch observed on fast-path calls (`inflation`) — which only grows under load, so homing starts by itself
  // when the fast instances saturate, and never costs an idle cluster latency. Only a first stage moves, only onto
  // an instance with nothing waiting (its queue stays short), and the workflow's later calls stay home while they
  // still meet the deadline there.
  const size_t n = view.size();
  const double rest = remaining_work(call);
  const double alone = shared_->factor(best_j) * profiles_.get(view.instance(best_j))
                                                     .seconds(call.prompt_tokens, call.expected_output_tokens);
  if (alone <= 0) return best_j;
  // Slowness of the rest against the fastest instance (the agents' remaining work is in its seconds): the larger
  // of this call's and a decode token's ratio (later stages are decode-heavy).
  double fastest_call = 0, fastest_decode = 0, fastest_prefill = 0;
  for (size_t j = 0; j < n; ++j) {
    const auto& prof = profiles_.get(view.instance(j));
    const double t = shared_->factor(j) * prof.seconds(call.prompt_tokens, call.expected_output_tokens);
    const double d = shared_->factor(j) * prof.decode_per_token_s;
    const double q = shared_->factor(j) * prof.prefill_per_token_s;
    if (j == 0 || t < fastest_call) fastest_call = t;
    if (j == 0 || d < fastest_decode) fastest_decode = d;
    if (j == 0 || q < fastest_prefill) fastest_prefill = q;
  }
  auto slowness = [&](size_t j) {
    const auto& prof = profiles_.get(view.instance(j));
    const double t = shared_->factor(j) * prof.seconds(call.prompt_tokens, call.expected_output_tokens);
    const double decode = shared_->factor(j) * prof.decode_per_token_s;
    const double prefill = shared_->factor(j) * prof.prefill_per_token_s;
    return std::max({1.0, fastest_call > 0 ? t / fastest_call : 1.0, fastest_decode > 0 ? decode / fastest_decode : 1.0,
                     p_.home_prefill && fastest_prefill > 0 ? prefill / fastest_prefill : 1.0});
  };
  // A learned bias below 1 (the model was pessimistic) is not trusted for a move that is hard to undo.
  auto home_done = [&](size_t j) {
    return view.now + std::max(1.0, j < bias_.size() ? bias_[j] : 1.0) * (done_[j] - view.now) + slowness(j) * rest;
  };
  if (auto it = home_.find(call.workflow_id); it != home_.end()) {
    if (it->second < n && home_done(it->second) <= call.deadline_s) return it->second;
    home_.erase(it);  // the home can no longer carry it: back to the fast path for good
    return best_j;
  }
  if (call.stage_index != 0) return best_j;
  // The fast path: this call where it completes first, the rest at the observed stretch (on the fast instances).
  const double fast_done = done_[best_j] + shared_->inflation * rest;
  size_t choice = best_j;
  double slowest = profiles_.get(view.instance(best_j)).prefill_per_token_s * shared_->factor(best_j);
  for (size_t j = 0; j < n; ++j) {
    if (j == best_j || !view.instance(j).waiting.empty()) continue;
    const double speed = profiles_.get(view.instance(j)).prefill_per_token_s * shared_->factor(j);
    const double done = home_done(j);
    if (speed > slowest && done <= call.deadline_s && done <= fast_done)
      slowest = speed, choice = j;
  }
  if (choice != best_j) home_[call.workflow_id] = choice;
  return choice;
}

double T2sDispatcher::remaining_work(const agents::LlmCall& call) const {
  const double mean = std::max(0.0, call.remaining_mean_s);
  return mean + p_.remaining_q * (std::max(mean, call.remaining_p90_s) - mean);
}

}  // namespace t2s::scheduler
