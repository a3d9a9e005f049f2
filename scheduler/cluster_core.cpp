#include "scheduler/cluster_core.hpp"

#include <algorithm>
#include <stdexcept>

namespace t2s::scheduler {

ClusterCore::ClusterCore(const ClusterSpec& cluster, Policy& policy) : cluster_(cluster), policy_(policy) {
  if (!policy_.dispatcher || policy_.local.size() != cluster_.instances.size())
    throw std::logic_error("cluster core: policy '" + policy_.name + "' has " + std::to_string(policy_.local.size()) +
                           " local policies for " + std::to_string(cluster_.instances.size()) + " instances");
  states_.resize(cluster_.instances.size());
  for (size_t i = 0; i < states_.size(); ++i) {
    states_[i].index = i;
    states_[i].spec = &cluster_.instances[i];
  }
}

void ClusterCore::reset(std::span<const CostModel* const> costs, std::span<const int> kv_blocks_total) {
  if (costs.size() != states_.size() || kv_blocks_total.size() != states_.size())
    throw std::logic_error("cluster core: reset needs one cost model and one KV capacity per instance");
  for (size_t i = 0; i < states_.size(); ++i) {
    InstanceState s;
    s.index = i;
    s.spec = &cluster_.instances[i];
    s.cost = costs[i];
    s.kv_blocks_total = kv_blocks_total[i];
    states_[i] = std::move(s);
  }
  held_.clear();
  policy_.reset();
}

void ClusterCore::dispatch(std::span<const agents::LlmCall* const> calls, double now,
                           std::span<DispatchDecision> out) {
  std::fill(out.begin(), out.end(), DispatchDecision{});
  policy_.dispatcher->dispatch(calls, view(now), out);
  for (const auto& d : out)
    if (d.instance >= static_cast<int>(states_.size()) || d.instance < DispatchDecision::kHold)
      throw std::logic_error("policy '" + policy_.name + "' chose instance " + std::to_string(d.instance) + " of " +
                             std::to_string(states_.size()));
}

void ClusterCore::hold(const agents::LlmCall* call, double now, std::span<const HeldCall> was_held) {
  double since = now;
  for (const auto& h : was_held)
    if (h.call == call) since = h.held_since_s;
  held_.push_back(HeldCall{call, since});
}

std::vector<HeldCall> ClusterCore::take_held() {
  std::vector<HeldCall> out;
  out.swap(held_);
  return out;
}

bool ClusterCore::drop_held(uint64_t call_id) {
  auto it = std::find_if(held_.begin(), held_.end(), [&](const HeldCall& h) { return h.call->id == call_id; });
  if (it == held_.end()) return false;
  held_.erase(it);
  return true;
}

void ClusterCore::enqueue(size_t i, const agents::LlmCall* call, double now) {
  auto& s = states_[i];
  s.waiting.push_back(QueuedCall{call, now, false});
  s.waiting_prompt_tokens += call->prompt_tokens;
  s.waiting_output_tokens += call->expected_output_tokens;
}

void ClusterCore::requeue_front(size_t i, const agents::LlmCall* call, double enqueued_s) {
  auto& s = states_[i];
  s.waiting.insert(s.waiting.begin(), QueuedCall{call, enqueued_s, true});
  s.waiting_prompt_tokens += call->prompt_tokens;
  s.waiting_output_tokens += call->expected_output_tokens;
}

QueuedCall ClusterCore::take_waiting(size_t i, size_t pos) {
  auto& s = states_[i];
  const QueuedCall q = s.waiting.at(pos);
  s.waiting.erase(s.waiting.begin() + static_cast<std::ptrdiff_t>(pos));
  s.waiting_prompt_tokens -= q.call->prompt_tokens;
  s.waiting_output_tokens -= q.call->expected_output_tokens;
  return q;
}

int ClusterCore::waiting_position(size_t i, const agents::LlmCall* call) const {
  const auto& w = states_[i].waiting;
  for (size_t k = 0; k < w.size(); ++k)
    if (w[k].call == call) return static_cast<int>(k);
  return -1;
}

bool ClusterCore::remove_waiting(size_t i, const agents::LlmCall* call) {
  const int pos = waiting_position(i, call);
  if (pos < 0) return false;
  take_waiting(i, static_cast<size_t>(pos));
  return true;
}

// A running call's share of its instance's counters: prompt left to prefill, output left to decode (≥ 0 each),
// resident context (prefilled + decoded).
void ClusterCore::count_running(InstanceState& s, const RunningCall& rc, int sign) {
  const auto& c = *rc.call;
  s.running_prefill_left += sign * std::max(0, c.prompt_tokens - rc.prefilled);
  s.running_decode_left += sign * std::max(0, c.expected_output_tokens - rc.decoded);
  s.running_context += sign * (rc.prefilled + rc.decoded);
}

void ClusterCore::start_running(size_t i, const RunningCall& call) {
  auto& s = states_[i];
  s.running.push_back(call);
  s.kv_blocks_used += call.kv_blocks;
  count_running(s, call, +1);
}

void ClusterCore::set_progress(size_t i, size_t r, int prefilled, int decoded) {
  auto& s = states_[i];
  auto& rc = s.running[r];
  count_running(s, rc, -1);
  rc.prefilled = prefilled;
  rc.decoded = decoded;
  count_running(s, rc, +1);
}

void ClusterCore::set_running_blocks(size_t i, size_t r, int blocks) {
  auto& s = states_[i];
  s.kv_blocks_used += blocks - s.running[r].kv_blocks;
  s.running[r].kv_blocks = blocks;
}

RunningCall ClusterCore::take_running(size_t i, size_t r) {
  auto& s = states_[i];
  const RunningCall rc = s.running.at(r);
  count_running(s, rc, -1);
  s.kv_blocks_used -= rc.kv_blocks;
  s.running.erase(s.running.begin() + static_cast<std::ptrdiff_t>(r));
  return rc;
}

int ClusterCore::running_position(size_t i, const agents::LlmCall* call) const {
  const auto& run = states_[i].running;
  for (size_t k = 0; k < run.size(); ++k)
    if (run[k].call == call) return static_cast<int>(k);
  return -1;
}

int ClusterCore::evict_prefixes(size_t i, int blocks) {
  auto& s = states_[i];
  const int freed = s.prefix_cache.evict(blocks);
  s.kv_blocks_used -= freed;
  return freed;
}

void ClusterCore::pin_prefix(size_t i, uint64_t prefix_id, double now) { states_[i].prefix_cache.acquire(prefix_id, now); }

void ClusterCore::unpin_prefix(size_t i, uint64_t prefix_id) { states_[i].prefix_cache.release(prefix_id); }

void ClusterCore::cache_prefix(size_t i, uint64_t prefix_id, int tokens, int blocks, double now) {
  auto& s = states_[i];
  const PrefixEntry* e = s.prefix_cache.find(prefix_id);
  const int held = e ? e->blocks : 0;
  s.prefix_cache.insert(prefix_id, tokens, blocks, now);
  s.kv_blocks_used += blocks - held;
}

int ClusterCore::next(size_t i, double now) {
  const auto& s = states_[i];
  const int idx = policy_.local[i]->next(s, now);
  if (idx < 0) return -1;
  if (static_cast<size_t>(idx) >= s.waiting.size())
    throw std::logic_error("policy '" + policy_.name + "' picked waiting[" + std::to_string(idx) + "] of " +
                           std::to_string(s.waiting.size()));
  return idx;
}

const std::vector<int>& ClusterCore::kv_victims(size_t i, double now) {
  const auto& s = states_[i];
  victims_.clear();
  if (s.running.empty()) return victims_;
  policy_.local[i]->kv_victims(s, now, victims_);
  seen_.assign(s.running.size(), 0);
  bool ok = victims_.size() == s.running.size();
  for (int v : victims_) {
    if (v < 0 || static_cast<size_t>(v) >= s.running.size() || seen_[static_cast<size_t>(v)]) {
      ok = false;
      break;
    }
    seen_[static_cast<size_t>(v)] = 1;
  }
  if (!ok) {
    std::string got;
    for (int v : victims_) {
      if (!got.empty()) got += ' ';
      got += std::to_string(v);
    }
    throw std::logic_error("policy '" + policy_.name + "' ordered KV victims [" + got + "], not each of the " +
                           std::to_string(s.running.size()) + " running calls once");
  }
  return victims_;
}

int ClusterCore::prefill_chunk_tokens(size_t i) const { return policy_.local[i]->prefill_chunk_tokens(states_[i]); }

void ClusterCore::call_finished(int i, const agents::LlmCall& call, const agents::LlmResult& result, double now) {
  PolicyEvent e;
  e.kind = PolicyEvent::Kind::call_finished;
  e.now = now;
  e.call = &call;
  e.result = &result;
  e.instance = static_cast<size_t>(std::max(0, i));
  policy_.dispatcher->observe(e);
  if (i >= 0) policy_.local[static_cast<size_t>(i)]->observe(e);
}

void ClusterCore::iteration(size_t i, const IterationShape& shape, double seconds, double now) {
  PolicyEvent e;
  e.kind = PolicyEvent::Kind::iteration;
  e.now = now;
  e.instance = i;
  e.shape = &shape;
  e.iteration_s = seconds;
  policy_.dispatcher->observe(e);
  policy_.local[i]->observe(e);
}

void ClusterCore::stage_finished(const agents::StageEvent& ev, double now) {
  PolicyEvent e;
  e.kind = PolicyEvent::Kind::stage_finished;
  e.now = now;
  e.workflow_id = ev.workflow_id;
  e.stage_index = ev.stage_index;
  e.stage_kind = ev.kind;
  e.elapsed_s = ev.elapsed_s;
  policy_.dispatcher->observe(e);
}

void ClusterCore::workflow_finished(uint64_t workflow_id, double elapsed_s, bool deadline_met, double now) {
  PolicyEvent e;
  e.kind = PolicyEvent::Kind::workflow_finished;
  e.now = now;
  e.workflow_id = workflow_id;
  e.elapsed_s = elapsed_s;
  e.deadline_met = deadline_met;
  policy_.dispatcher->observe(e);
}

std::string instance_state_problem(const InstanceState& s) {
  int64_t wp = 0, wo = 0, pl = 0, dl = 0, ctx = 0, blocks = 0;
  for (const auto& q : s.waiting) {
    wp += q.call->prompt_tokens;
    wo += q.call->expected_output_tokens;
  }
  for (const auto& r : s.running) {
    if (r.prefilled < 0 || r.prefilled > r.call->prompt_tokens || r.decoded < 0)
      return "running call " + std::to_string(r.call->id) + " has progress " + std::to_string(r.prefilled) + "/" +
             std::to_string(r.call->prompt_tokens) + " prompt, " + std::to_string(r.decoded) + " decoded, " +
             std::to_string(r.cached_tokens) + " cached";
    pl += std::max(0, r.call->prompt_tokens - r.prefilled);
    dl += std::max(0, r.call->expected_output_tokens - r.decoded);
    ctx += r.prefilled + r.decoded;
    blocks += r.kv_blocks;
    for (const auto& q : s.waiting)
      if (q.call == r.call) return "call " + std::to_string(r.call->id) + " is both waiting and running";
  }
  auto differ = [](const char* what, int64_t kept, int64_t sum) {
    return std::string(what) + " is " + std::to_string(kept) + ", its sum " + std::to_string(sum);
  };
  if (wp != s.waiting_prompt_tokens) return differ("waiting_prompt_tokens", s.waiting_prompt_tokens, wp);
  if (wo != s.waiting_output_tokens) return differ("waiting_output_tokens", s.waiting_output_tokens, wo);
  if (pl != s.running_prefill_left) return differ("running_prefill_left", s.running_prefill_left, pl);
  if (dl != s.running_decode_left) return differ("running_decode_left", s.running_decode_left, dl);
  if (ctx != s.running_context) return differ("running_context", s.running_context, ctx);
  if (blocks + s.prefix_cache.blocks() != s.kv_blocks_used)
    return differ("kv_blocks_used", s.kv_blocks_used, blocks + s.prefix_cache.blocks());
  return {};
}

}  // namespace t2s::scheduler
