#pragma once
//! Model instances as the scheduler sees them: hardware and model profiles, the cluster file, and the per-instance
//! state (waiting queue, running batch, KV blocks, believed prefix cache) that policies read.
#include <cstdint>
#include <limits>
#include <list>
#include <string>
#include <unordered_map>
#include <vector>

#include "agents/llm_call.hpp"

namespace t2s::scheduler {

class CostModel;

//! One GPU model: datasheet numbers plus efficiency factors that belong to the GPU model (never to a call type).
//! Where each factor comes from is documented in docs/scheduler.md and beside the table in instance.cpp.
struct GpuProfile {
  std::string name;                 //!< "A100-80G", "H100-SXM", …
  double memory_gb = 0;             //!< device memory (GB, 1e9 bytes)
  double hbm_tbps = 0;              //!< memory bandwidth (TB/s)
  double fp16_tflops = 0;           //!< dense FP16 tensor throughput (TFLOP/s)
  double bw_efficiency = 0.8;       //!< achieved fraction of hbm_tbps in decode (weights + KV streaming)
  double compute_efficiency = 0.5;  //!< achieved fraction of fp16_tflops in prefill GEMMs (MFU)
  double link_gbps = 300;           //!< per-GPU all-reduce bus bandwidth (GB/s): NVLink vs PCIe
  double link_latency_us = 8;       //!< latency of one all-reduce (µs)
  double iteration_overhead_s = 0.004;  //!< per-iteration fixed cost (scheduling, kernel launches, sampling)
  double call_overhead_s = 0.02;    //!< fixed per-call cost (tokenisation, request handling, detokenisation)
  double memory_utilization = 0.9;  //!< fraction of memory the engine may use (vLLM gpu_memory_utilization)
};

//! One model architecture (FP16 weights unless bytes_per_param says otherwise).
struct ModelProfile {
  std::string name;          //!< "llama-3.1-70b", "qwen2.5-coder-7b", …
  int layers = 0;            //!< transformer blocks
  int hidden = 0;            //!< model width
  int heads = 0;             //!< attention heads
  int kv_heads = 0;          //!< key/value heads (GQA)
  int head_dim = 0;          //!< per-head width
  int intermediate = 0;      //!< MLP width
  int vocab = 0;             //!< vocabulary size
  double params_b = 0;       //!< parameter count (billions)
  double bytes_per_param = 2;  //!< 2 = FP16/BF16
  //! KV-cache bytes per token (keys and values, every layer).
  double kv_bytes_per_token() const { return 2.0 * layers * kv_heads * head_dim * bytes_per_param; }
  //! Weight bytes.
  double weight_bytes() const { return params_b * 1e9 * bytes_per_param; }
};

//! Built-in GPU profile by name (case-insensitive); throws InputError listing the known names.
const GpuProfile& gpu_profile(const std::string& name);
//! Built-in model profile by name (case-insensitive); throws InputError listing the known names.
const ModelProfile& model_profile(const std::string& name);
//! Names of all built-in GPU profiles.
std::vector<std::string> gpu_profile_names();
//! Names of all built-in model profiles.
std::vector<std::string> model_profile_names();

//! Where an instance's calls run.
enum class Backend { sim, engine, remote };

//! One model instance of a cluster (an entry of the cluster file after `count` expansion).
struct InstanceSpec {
  std::string name;             //!< unique name ("a100-0", …)
  Backend backend = Backend::sim;
  GpuProfile gpu;               //!< hardware (sim and cost model)
  int tp = 1;                   //!< tensor-parallel degree (GPUs per instance)
  ModelProfile model;           //!< architecture (sim and cost model)
  int block_tokens = 16;        //!< paged-KV block size
  int max_batch_tokens = 2048;  //!< token budget of one continuous-batching iteration
  int max_running = 256;        //!< max sequences in the running batch
  bool chunked_prefill = true;  //!< split long prefills over iterations (else a prefill runs whole)
  int kv_blocks = 0;            //!< KV capacity override in blocks (0 = from memory; for what-ifs and tests)
  std::string model_file;       //!< engine backend: model file
  std::string device;           //!< engine backend: "cpu" | "cuda"
  int threads = 1;              //!< engine backend: threads
  std::string url;              //!< remote backend: base URL
  std::string remote_model;     //!< remote backend: model name sent to the server
  int context_tokens = 0;       //!< remote backend: the served model's window (0: ask the server's /v1/models)
  std::string api_key_env;      //!< remote backend: environment variable holding the bearer token (never the key)
};

//! A cluster: its instances in file order.
struct ClusterSpec {
  std::string name;                     //!< preset name or file path
  std::vector<InstanceSpec> instances;  //!< expanded instances
};

//! Parses a cluster file (contracts.md format); errors name the file and the entry.
ClusterSpec parse_cluster_json(const std::string& text, const std::string& where);
//! A built-in preset ("hetero-small", "hetero-paper", "local"); throws InputError for unknown names.
ClusterSpec cluster_preset(const std::string& name);
//! A preset name or a cluster file path.
ClusterSpec load_cluster(const std::string& file_or_preset);
//! Names of the built-in presets.
std::vector<std::string> cluster_preset_names();

//! A call waiting in an instance's queue.
struct QueuedCall {
  const agents::LlmCall* call = nullptr;  //!< the call (owned by the simulator/runtime; stable while queued)
  double enqueued_s = 0;                  //!< when it joined this queue
  bool preempted = false;                 //!< true when it was evicted from the running batch (recompute)
};

//! A call in an instance's running batch.
struct RunningCall {
  const agents::LlmCall* call = nullptr;  //!< the call
  int cached_tokens = 0;                  //!< prompt tokens served by the prefix cache
  int prefilled = 0;                      //!< prompt tokens whose KV exists (cached ones included)
  int decoded = 0;                        //!< output tokens generated so far
  int kv_blocks = 0;                      //!< private KV blocks held (shared prefix blocks are in the cache)
  double enqueued_s = 0;                  //!< when it joined this instance's queue
  double started_s = 0;                   //!< when it was admitted
  //! True once every prompt token has its KV (the call is decoding).
  bool prefill_done() const { return prefilled >= call->prompt_tokens; }
};

//! One resident prefix in an instance's prefix cache (as the scheduler believes it).
struct PrefixEntry {
  uint64_t prefix_id = 0;  //!< LlmCall::prefix_id
  int tokens = 0;          //!< resident prefix length
  int blocks = 0;          //!< KV blocks it holds
  int refs = 0;            //!< running calls using it (pinned while > 0)
  double last_used_s = 0;  //!< LRU key
};

//! LRU prefix cache of one instance: which shared prefixes are resident and how many KV blocks they hold.
//! The simulator keeps it exact; the runtime keeps it as a belief from what it dispatched.
class PrefixCache {
 public:
  //! The entry for `prefix_id`, or nullptr when not resident.
  const PrefixEntry* find(uint64_t prefix_id) const;
  //! Resident tokens of `prefix_id` usable by a call that shares `prefix_tokens` (0 when absent).
  int hit_tokens(uint64_t prefix_id, int prefix_tokens) const;
  //! Pins an entry (a running call uses it) and refreshes its LRU position.
  void acquire(uint64_t prefix_id, double now);
  //! Unpins an entry.
  void release(uint64_t prefix_id);
  //! Inserts (or grows) a resident prefix holding `blocks` blocks, pinned once for the inserting call.
  void insert(uint64_t prefix_id, int tokens, int blocks, double now);
  //! Evicts unpinned entries in LRU order until `blocks_needed` blocks are freed or none is left; returns freed.
  int evict(int blocks_needed);
  //! Blocks held by all entries.
  int blocks() const { return blocks_; }
  //! Blocks held by unpinned entries (reclaimable).
  int evictable_blocks() const { return evictable_; }
  //! Number of resident prefixes.
  size_t size() const { return map_.size(); }
  //! Drops everything.
  void clear();

 private:
  std::list<PrefixEntry> lru_;  // front = most recently used
  std::unordered_map<uint64_t, std::list<PrefixEntry>::iterator> map_;
  int blocks_ = 0, evictable_ = 0;
};

//! Everything a policy may know about one instance. Read-only for policies; the simulator/runtime updates it.
struct InstanceState {
  size_t index = 0;                     //!< position in the cluster
  const InstanceSpec* spec = nullptr;   //!< static description
  const CostModel* cost = nullptr;      //!< this instance's cost model
  std::vector<QueuedCall> waiting;      //!< queue, in arrival order (the local policy picks from it)
  std::vector<RunningCall> running;     //!< running batch, in admission order
  int kv_blocks_total = 0;              //!< KV capacity in blocks
  int kv_blocks_used = 0;               //!< blocks held by running calls and by the prefix cache
  PrefixCache prefix_cache;             //!< resident shared prefixes
  bool busy = false;                    //!< an iteration is in flight
  double busy_until_s = 0;              //!< when the in-flight iteration ends
  int64_t waiting_prompt_tokens = 0;    //!< sum of prompt tokens in `waiting` (for O(1) load estimates)
  int64_t waiting_output_tokens = 0;    //!< sum of expected output tokens in `waiting`
  int64_t running_prefill_left = 0;     //!< prompt tokens still to prefill in `running`
  int64_t running_decode_left = 0;      //!< expected output tokens still to generate in `running` (≥ 0 each)
  int64_t running_context = 0;          //!< Σ resident context (prefilled + decoded tokens) of `running`
  uint64_t iterations = 0;              //!< iterations run so far
  double busy_s = 0;                    //!< accumulated iteration time (utilisation)
  //! Free KV blocks (unpinned prefix-cache blocks count as used; they are reclaimable on demand).
  int kv_blocks_free() const { return kv_blocks_total - kv_blocks_used; }
};

//! A call the dispatcher held back (not yet placed on an instance).
struct HeldCall {
  const agents::LlmCall* call = nullptr;  //!< the call
  double held_since_s = 0;                //!< when it was first held
};

//! What the global dispatcher sees: every instance's state, the held calls, and the clock.
struct ClusterView {
  double now = 0;                                   //!< injected clock (virtual or wall)
  const std::vector<InstanceState>* instances = nullptr;  //!< all instances
  const std::vector<HeldCall>* held = nullptr;      //!< calls currently held by the dispatcher
  //! Instance `i`.
  const InstanceState& instance(size_t i) const { return (*instances)[i]; }
  //! Number of instances.
  size_t size() const { return instances ? instances->size() : 0; }
};

}  // namespace t2s::scheduler
