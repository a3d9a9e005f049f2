// The CUDA implementation of engine::Backend: weights uploaded once (F16/BF16 kept, F32 converted to the model's
// activation type, Q8_0/Q4_0 kept quantised and dequantised into scratch before their GEMM), cuBLAS GEMMs with FP32
// accumulation into an FP32 residual stream, fp16 paged KV, own kernels for everything else, one stream per
// instance, and CUDA Graphs replaying pure-decode steps per batch size.
#include "engine/cuda/cuda_backend.hpp"

#include <cublas_v2.h>
#include <cuda_runtime.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <map>
#include <stdexcept>
#include <unordered_map>
#include <vector>

#include "common/status.hpp"
#include "engine/cuda/kernels.hpp"
#include "engine/cuda/reference.hpp"
#include "engine/cuda/step_plan.hpp"

namespace t2s::engine {

namespace {

void cuda_ok(cudaError_t e, const char* what) {
  if (e != cudaSuccess) throw std::runtime_error(std::string("CUDA: ") + what + ": " + cudaGetErrorString(e));
}
void cublas_ok(cublasStatus_t s, const char* what) {
  if (s != CUBLAS_STATUS_SUCCESS) throw std::runtime_error(std::string("cuBLAS: ") + what + ": status " + std::to_string(static_cast<int>(s)));
}

}  // namespace

bool cuda_device_available(std::string* why) {
  int n = 0;
  cudaError_t e = cudaGetDeviceCount(&n);
  if (e != cudaSuccess) {
    if (why) *why = std::string("no usable CUDA device: ") + cudaGetErrorString(e);
    cudaGetLastError();  // clear the sticky-free error so later calls start clean
    return false;
  }
  if (n == 0) {
    if (why) *why = "no CUDA device found";
    return false;
  }
  return true;
}

namespace cuda {

DeviceInfo device_info(int ordinal) {
  cudaDeviceProp p{};
  cuda_ok(cudaGetDeviceProperties(&p, ordinal), "cudaGetDeviceProperties");
  DeviceInfo d;
  d.name = p.name;
  d.sm_count = p.multiProcessorCount;
  d.compute_capability = p.major * 10 + p.minor;
  d.total_memory = p.totalGlobalMem;
  // Vendor peak figures by part (the runtime no longer reports memory clocks on every toolkit).
  if (d.name.find("H200") != std::string::npos) {
    d.peak_bandwidth = 4.8e12;
    d.bandwidth_source = "NVIDIA H200 datasheet (4.8 TB/s)";
  } else if (d.name.find("H100") != std::string::npos && d.name.find("PCIe") != std::string::npos) {
    d.peak_bandwidth = 2.0e12;
    d.bandwidth_source = "NVIDIA H100 PCIe datasheet (2.0 TB/s)";
  } else if (d.name.find("H100") != std::string::npos) {
    d.peak_bandwidth = 3.35e12;
    d.bandwidth_source = "NVIDIA H100 SXM datasheet (3.35 TB/s)";
  } else if (d.name.find("A100") != std::string::npos) {
    d.peak_bandwidth = d.total_memory > (60ull << 30) ? 2.039e12 : 1.555e12;
    d.bandwidth_source = "NVIDIA A100 datasheet";
  } else {
    d.bandwidth_source = "unknown part: no peak figure";
  }
  return d;
}

namespace {

// Types a GEMM cannot take directly: dequantised into scratch in the activation type first.
bool needs_dequant(DType t) { return t == DType::Q8_0 || t == DType::Q4_0 || t == DType::F32; }

// A device allocation freed with the backend.
class DeviceArena {
 public:
  ~DeviceArena() {
    for (void* p : blocks_) cudaFree(p);
  }
  void* alloc(size_t bytes) {
    void* p = nullptr;
    cuda_ok(cudaMalloc(&p, std::max<size_t>(bytes, 256)), "cudaMalloc");
    blocks_.push_back(p);
    return p;
  }
  template <typename T>
  T* alloc_n(size_t n) {
    return static_cast<T*>(alloc(n * sizeof(T)));
  }

 private:
  std::vector<void*> blocks_;
};

struct DevLayer {
  const float *attn_norm = nullptr, *ffn_norm = nullptr, *bq = nullptr, *bk = nullptr, *bv = nullptr;
  DevMatrix wq, wk, wv, wo, w_gate, w_up, w_down;
};

// Where the per-step index arrays live inside the staging buffer (ints), fixed so captured graphs stay valid.
struct StepLayout {
  size_t tokens, positions, row_table, decode_rows, logit_rows, tiles, tables, tables_cap, total;
  explicit StepLayout(size_t max_rows, size_t max_blocks_per_seq) {
    const size_t rows = (max_rows + 1) & ~size_t{1};  // even, so the int2 tiles start 8-byte aligned
    tokens = 0;
    positions = rows;
    row_table = 2 * rows;
    decode_rows = 3 * rows;
    logit_rows = 4 * rows;
    tiles = 5 * rows;  // int2 per tile, at most `rows` tiles
    tables = 7 * rows;
    tables_cap = rows * max_blocks_per_seq;
    total = tables + tables_cap;
  }
};

class CudaBackendImpl final : public CudaBackend {
 public:
  // Shared setup: config, limits, stream, cuBLAS, KV pool and activations. Weights are filled by the caller.
  CudaBackendImpl(const ModelConfig& cfg, const std::vector<float>& freq_factors, const CudaBackendOptions& o)
      : cfg_(cfg), opt_(o) {
    cuda_ok(cudaSetDevice(o.device), "cudaSetDevice");
    max_rows_ = std::max(1, o.max_batch_tokens);
    max_logits_ = std::max(1, std::min(o.max_logit_rows, max_rows_));
    max_ctx_ = o.max_context > 0 ? std::min(o.max_context, cfg_.max_seq_len) : cfg_.max_seq_len;
    if (cfg_.head_dim > 256 || cfg_.head_dim % 2 != 0)
      throw InputError("CUDA backend: head dimension " + std::to_string(cfg_.head_dim) + " unsupported (even, at most 256)");
    num_blocks_ = static_cast<int>(o.kv_budget_bytes / cuda_kv_block_bytes(cfg_));
    if (num_blocks_ < 1)
      throw InputError("KV budget of " + std::to_string(o.kv_budget_bytes) + " bytes holds no block (one needs " +
                       std::to_string(cuda_kv_block_bytes(cfg_)) + ")");
    cuda_ok(cudaStreamCreateWithFlags(&stream_, cudaStreamNonBlocking), "cudaStreamCreate");
    cublas_ok(cublasCreate(&blas_), "cublasCreate");
    cublas_ok(cublasSetStream(blas_, stream_), "cublasSetStream");
    // An explicit workspace keeps cuBLAS from allocating during graph capture.
    const size_t ws = 32u << 20;
    cublas_ok(cublasSetWorkspace(blas_, arena_.alloc(ws), ws), "cublasSetWorkspace");
    cublas_ok(cublasSetMathMode(blas_, CUBLAS_DEFAULT_MATH), "cublasSetMathMode");

    const size_t R = static_cast<size_t>(max_rows_), dim = static_cast<size_t>(cfg_.dim),
                 qd = static_cast<size_t>(cfg_.q_dim()), kvd = static_cast<size_t>(cfg_.kv_dim()),
                 hid = static_cast<size_t>(cfg_.hidden_dim), V = static_cast<size_t>(cfg_.vocab_size),
                 L = static_cast<size_t>(max_logits_);
    x_ = arena_.alloc_n<float>(R * dim);
    xn_ = arena_.alloc(R * std::max(dim, qd) * 2);
    q_ = arena_.alloc_n<float>(R * qd);
    k_ = arena_.alloc_n<float>(R * kvd);
    v_ = arena_.alloc_n<float>(R * kvd);
    att_ = arena_.alloc(R * qd * 2);
    h1_ = arena_.alloc_n<float>(R * hid);
    h3_ = arena_.alloc_n<float>(R * hid);
    hact_ = arena_.alloc(R * hid * 2);
    logits_ = arena_.alloc_n<float>(L * V);
    probs_ = arena_.alloc_n<float>(L * V);
    order_ = arena_.alloc_n<int>(L * V);
    sampled_ = arena_.alloc_n<int>(L);
    sample_rows_ = arena_.alloc_n<cuda::DevSampleRow>(L);
    cuda_ok(cudaMallocHost(reinterpret_cast<void**>(&h_sample_rows_), L * sizeof(cuda::DevSampleRow)), "cudaMallocHost");
    cuda_ok(cudaMallocHost(reinterpret_cast<void**>(&h_sampled_), L * sizeof(int)), "cudaMallocHost");

    const size_t layer_elems = static_cast<size_t>(num_blocks_) * kKvBlockSize * kvd;
    k_pool_ = arena_.alloc_n<uint16_t>(static_cast<size_t>(cfg_.n_layers) * layer_elems);
    v_pool_ = arena_.alloc_n<uint16_t>(static_cast<size_t>(cfg_.n_layers) * layer_elems);
    layer_kv_elems_ = layer_elems;

    layout_ = StepLayout(R, static_cast<size_t>(max_ctx_ / kKvBlockSize + 1));
    d_step_ = arena_.alloc_n<int>(layout_.total);
    cuda_ok(cudaMallocHost(reinterpret_cast<void**>(&h_step_), layout_.total * sizeof(int)), "cudaMallocHost");

    std::vector<float> cs, sn;
    cuda::rope_tables(cfg_, freq_factors, max_ctx_, cs, sn);
    rope_cos_ = upload_floats(cs.data(), cs.size());
    rope_sin_ = upload_floats(sn.data(), sn.size());
  }

  ~CudaBackendImpl() override {
    if (stream_) cudaStreamSynchronize(stream_);
    for (auto& [rows, g] : graphs_) cudaGraphExecDestroy(g);
    if (h_step_) cudaFreeHost(h_step_);
    if (h_sample_rows_) cudaFreeHost(h_sample_rows_);
    if (h_sampled_) cudaFreeHost(h_sampled_);
    if (blas_) cublasDestroy(blas_);
    if (stream_) cudaStreamDestroy(stream_);
  }

  // ----- weights ------------------------------------------------------------------------------------------------
  void upload_model(const Model& m) {
    act_ = (m.layers.empty() ? m.token_embedding.type : m.layers[0].wq.type) == DType::BF16 ? cuda::Act::BF16
                                                                                             : cuda::Act::F16;
    token_embedding_ = upload_matrix(m.token_embedding, true);
    for (const LayerWeights& w : m.layers) {
      DevLayer d;
      d.attn_norm = upload_floats(w.attn_norm, static_cast<size_t>(cfg_.dim));
      d.ffn_norm = upload_floats(w.ffn_norm, static_cast<size_t>(cfg_.dim));
      d.bq = w.bq ? upload_floats(w.bq, static_cast<size_t>(cfg_.q_dim())) : nullptr;
      d.bk = w.bk ? upload_floats(w.bk, static_cast<size_t>(cfg_.kv_dim())) : nullptr;
      d.bv = w.bv ? upload_floats(w.bv, static_cast<size_t>(cfg_.kv_dim())) : nullptr;
      d.wq = upload_matrix(w.wq);
      d.wk = upload_matrix(w.wk);
      d.wv = upload_matrix(w.wv);
      d.wo = upload_matrix(w.wo);
      d.w_gate = upload_matrix(w.w_gate);
      d.w_up = upload_matrix(w.w_up);
      d.w_down = upload_matrix(w.w_down);
      layers_.push_back(d);
    }
    final_norm_ = upload_floats(m.final_norm, static_cast<size_t>(cfg_.dim));
    classifier_ = upload_matrix(m.classifier);
    finish_weights();
  }

  void random_weights(DType type, uint64_t seed) {
    if (type != DType::F16 && type != DType::BF16) throw InputError("random CUDA model: type must be F16 or BF16");
    act_ = type == DType::BF16 ? cuda::Act::BF16 : cuda::Act::F16;
    uint64_t salt = seed * 1000003u;
    auto matrix = [&](int64_t rows, int64_t cols, float a) {
      DevMatrix d{type, arena_.alloc(static_cast<size_t>(rows * cols) * 2), rows, cols};
      cuda::fill_uniform(const_cast<void*>(d.data), type, rows * cols, ++salt, -a, a, stream_);
      weight_bytes_ += static_cast<size_t>(rows * cols) * 2;
      return d;
    };
    auto ones = [&](int64_t n) {
      float* p = arena_.alloc_n<float>(static_cast<size_t>(n));
      cuda::fill_uniform(p, DType::F32, n, ++salt, 1.0f, 1.0f, stream_);
      return p;
    };
    const int64_t dim = cfg_.dim, qd = cfg_.q_dim(), kvd = cfg_.kv_dim(), hid = cfg_.hidden_dim;
    auto a = [](int64_t cols) { return std::sqrt(3.0f / static_cast<float>(cols)); };
    token_embedding_ = matrix(cfg_.vocab_size, dim, 1.0f);
    weight_bytes_ = 0;  // the embedding is gathered, not streamed
    for (int l = 0; l < cfg_.n_layers; ++l) {
      DevLayer d;
      d.attn_norm = ones(dim);
      d.ffn_norm = ones(dim);
      d.wq = matrix(qd, dim, a(dim));
      d.wk = matrix(kvd, dim, a(dim));
      d.wv = matrix(kvd, dim, a(dim));
      d.wo = matrix(dim, qd, a(qd));
      d.w_gate = matrix(hid, dim, a(dim));
      d.w_up = matrix(hid, dim, a(dim));
      d.w_down = matrix(dim, hid, a(hid));
      layers_.push_back(d);
    }
    final_norm_ = ones(dim);
    classifier_ = matrix(cfg_.vocab_size, dim, a(dim));
    finish_weights();
  }

  // ----- Backend ------------------------------------------------------------------------------------------------
  int num_kv_blocks() const override { return num_blocks_; }
  int max_batch_tokens() const override { return max_rows_; }
  int max_context() const override { return max_ctx_; }
  std::string name() const override { return "cuda"; }
  size_t weight_bytes() const override { return weight_bytes_; }
  int graphs_captured() const override { return static_cast<int>(graphs_.size()); }

  void forward(const ForwardBatch& batch, float* logits) override {
    const int nl = run(batch);
    if (nl > 0)
      cuda_ok(cudaMemcpyAsync(logits, logits_, static_cast<size_t>(nl) * static_cast<size_t>(cfg_.vocab_size) * sizeof(float),
                              cudaMemcpyDeviceToHost, stream_),
              "logits to host");
    cuda_ok(cudaStreamSynchronize(stream_), "forward");
  }

  void forward_sample(const ForwardBatch& batch, std::span<const SampleRequest> requests, int vocab, float*,
                      int* tokens) override {
    if (requests.size() != batch.logit_rows.size()) throw std::logic_error("forward_sample: one request per logit row");
    if (vocab != cfg_.vocab_size) throw std::logic_error("forward_sample: vocabulary size differs from the model's");
    const int nl = run(batch);
    if (nl > 0) {
      for (int i = 0; i < nl; ++i) {
        const SampleRequest& q = requests[static_cast<size_t>(i)];
        h_sample_rows_[i] = cuda::DevSampleRow{q.params.temperature, q.params.top_k, q.params.top_p, 0, q.uniform};
      }
      cuda_ok(cudaMemcpyAsync(sample_rows_, h_sample_rows_, static_cast<size_t>(nl) * sizeof(cuda::DevSampleRow),
                              cudaMemcpyHostToDevice, stream_),
              "sampling parameters");
      cuda::sample(logits_, nl, cfg_.vocab_size, sample_rows_, probs_, order_, sampled_, stream_);
      cuda_ok(cudaGetLastError(), "sample kernel");
      cuda_ok(cudaMemcpyAsync(h_sampled_, sampled_, static_cast<size_t>(nl) * sizeof(int), cudaMemcpyDeviceToHost, stream_),
              "tokens to host");
    }
    cuda_ok(cudaStreamSynchronize(stream_), "forward_sample");
    std::copy_n(h_sampled_, nl, tokens);
  }

 private:
  float* upload_floats(const float* src, size_t n) {
    float* d = arena_.alloc_n<float>(n);
    cuda_ok(cudaMemcpy(d, src, n * sizeof(float), cudaMemcpyHostToDevice), "upload");
    return d;
  }

  // F16/BF16 stay as they are when they match the activation type; Q8_0/Q4_0 stay quantised and an F32 embedding
  // stays F32 (the gather decodes them exactly; a GEMM over one dequantises it into scratch first); other float
  // matrices are converted to the activation type on the host.
  DevMatrix upload_matrix(const TensorView& t, bool embedding = false) {
    if (auto it = uploaded_.find(t.data); it != uploaded_.end()) return it->second;
    const DType want = act_ == cuda::Act::BF16 ? DType::BF16 : DType::F16;
    DevMatrix d{t.type, nullptr, t.rows, t.cols};
    size_t bytes = dtype_row_bytes(t.type, t.cols) * static_cast<size_t>(t.rows);
    const bool raw = t.type == want || t.type == DType::Q8_0 || t.type == DType::Q4_0 || (embedding && t.type == DType::F32);
    if (raw) {
      void* p = arena_.alloc(bytes);
      cuda_ok(cudaMemcpy(p, t.data, bytes, cudaMemcpyHostToDevice), "upload");
      d.data = p;
      if (needs_dequant(t.type)) max_quantised_elems_ = std::max(max_quantised_elems_, t.rows * t.cols);
    } else {
      d.type = want;
      bytes = static_cast<size_t>(t.rows * t.cols) * 2;
      std::vector<float> row(static_cast<size_t>(t.cols));
      std::vector<uint16_t> out(static_cast<size_t>(t.rows * t.cols));
      for (int64_t r = 0; r < t.rows; ++r) {
        dequantize_row(t.type, t.row(r), row.data(), t.cols);
        for (int64_t c = 0; c < t.cols; ++c)
          out[static_cast<size_t>(r * t.cols + c)] =
              want == DType::BF16 ? fp32_to_bf16(row[static_cast<size_t>(c)]) : fp32_to_fp16(row[static_cast<size_t>(c)]);
      }
      void* p = arena_.alloc(bytes);
      cuda_ok(cudaMemcpy(p, out.data(), bytes, cudaMemcpyHostToDevice), "upload");
      d.data = p;
    }
    if (!embedding) weight_bytes_ += bytes;
    uploaded_.emplace(t.data, d);
    return d;
  }

  void finish_weights() {
    if (max_quantised_elems_ > 0) deq_ = arena_.alloc(static_cast<size_t>(max_quantised_elems_) * 2);
    cuda_ok(cudaStreamSynchronize(stream_), "weights");
  }

  // ----- one step -----------------------------------------------------------------------------------------------
  // y[rows][w.rows] = x[rows][w.cols] · wᵀ (+ beta · y): cuBLAS, inputs in the activation type, FP32 accumulate/out.
  void gemm(const DevMatrix& w, const void* x, int rows, float* y, float beta) {
    const void* a = w.data;
    if (needs_dequant(w.type)) {
      cuda::dequantize(w, deq_, act_, stream_);
      a = deq_;
    }
    const cudaDataType t = act_ == cuda::Act::BF16 ? CUDA_R_16BF : CUDA_R_16F;
    const float alpha = 1.0f;
    cublas_ok(cublasGemmEx(blas_, CUBLAS_OP_T, CUBLAS_OP_N, static_cast<int>(w.rows), rows, static_cast<int>(w.cols),
                           &alpha, a, t, static_cast<int>(w.cols), x, t, static_cast<int>(w.cols), &beta, y, CUDA_R_32F,
                           static_cast<int>(w.rows), CUBLAS_COMPUTE_32F, CUBLAS_GEMM_DEFAULT),
              "cublasGemmEx");
  }

  // Validates the batch, fills the staging buffer and enqueues the step (replaying a graph for pure decode).
  // Returns the number of logit rows.
  int run(const ForwardBatch& batch) {
    const int R = static_cast<int>(batch.tokens.size());
    const int nl = static_cast<int>(batch.logit_rows.size());
    if (R == 0) return 0;
    if (R > max_rows_) throw std::logic_error("forward: batch larger than max_batch_tokens");
    if (nl > max_logits_) throw std::logic_error("forward: more logit rows than max_logit_rows");
    cuda_ok(cudaSetDevice(opt_.device), "cudaSetDevice");
    cuda::plan_step(batch, cfg_.vocab_size, max_ctx_, num_blocks_, plan_);
    if (plan_.tables.size() > layout_.tables_cap) throw std::logic_error("forward: block tables exceed the staging buffer");
    int* h = h_step_;
    std::copy(plan_.tokens.begin(), plan_.tokens.end(), h + layout_.tokens);
    std::copy(plan_.positions.begin(), plan_.positions.end(), h + layout_.positions);
    std::copy(plan_.row_table.begin(), plan_.row_table.end(), h + layout_.row_table);
    std::copy(plan_.decode_rows.begin(), plan_.decode_rows.end(), h + layout_.decode_rows);
    std::copy(plan_.logit_rows.begin(), plan_.logit_rows.end(), h + layout_.logit_rows);
    std::copy(plan_.tiles.begin(), plan_.tiles.end(), h + layout_.tiles);
    std::copy(plan_.tables.begin(), plan_.tables.end(), h + layout_.tables);
    const size_t n_tables = plan_.tables.size();
    const int n_decode = static_cast<int>(plan_.decode_rows.size()), n_tiles = static_cast<int>(plan_.tiles.size() / 2);
    cuda_ok(cudaMemcpyAsync(d_step_, h_step_, layout_.tables * sizeof(int), cudaMemcpyHostToDevice, stream_), "step upload");
    cuda_ok(cudaMemcpyAsync(d_step_ + layout_.tables, h_step_ + layout_.tables, n_tables * sizeof(int),
                            cudaMemcpyHostToDevice, stream_),
            "block tables upload");
    if (plan_.pure_decode && opt_.cuda_graphs) {
      auto it = graphs_.find(R);
      if (it == graphs_.end()) it = graphs_.emplace(R, capture(R)).first;
      cuda_ok(cudaGraphLaunch(it->second, stream_), "cudaGraphLaunch");
    } else {
      enqueue(R, n_decode, n_tiles, nl);
    }
    cuda_ok(cudaGetLastError(), "forward kernels");
    return nl;
  }

  cudaGraphExec_t capture(int R) {
    cudaGraph_t graph = nullptr;
    cuda_ok(cudaStreamBeginCapture(stream_, cudaStreamCaptureModeThreadLocal), "cudaStreamBeginCapture");
    try {
      enqueue(R, R, 0, R);
    } catch (...) {
      cudaStreamEndCapture(stream_, &graph);
      if (graph) cudaGraphDestroy(graph);
      throw;
    }
    cuda_ok(cudaStreamEndCapture(stream_, &graph), "cudaStreamEndCapture");
    cudaGraphExec_t exec = nullptr;
    cudaError_t e = cudaGraphInstantiate(&exec, graph, 0);
    cudaGraphDestroy(graph);
    cuda_ok(e, "cudaGraphInstantiate");
    return exec;
  }

  // The whole forward pass over device-resident step arrays.
  void enqueue(int R, int n_decode, int n_tiles, int nl) {
    const int dim = cfg_.dim, kvd = cfg_.kv_dim();
    const int* tokens = d_step_ + layout_.tokens;
    const int* pos = d_step_ + layout_.positions;
    const int* row_table = d_step_ + layout_.row_table;
    const int* decode_rows = d_step_ + layout_.decode_rows;
    const int* logit_rows = d_step_ + layout_.logit_rows;
    const auto* tiles = reinterpret_cast<const int2*>(d_step_ + layout_.tiles);
    const int* tables = d_step_ + layout_.tables;
    const cuda::AttnShape shape{cfg_.n_heads, cfg_.n_kv_heads, cfg_.head_dim};
    cuda::embedding(token_embedding_, tokens, R, x_, stream_);
    for (int l = 0; l < cfg_.n_layers; ++l) {
      const DevLayer& w = layers_[static_cast<size_t>(l)];
      uint16_t* kp = k_pool_ + static_cast<size_t>(l) * layer_kv_elems_;
      uint16_t* vp = v_pool_ + static_cast<size_t>(l) * layer_kv_elems_;
      cuda::rmsnorm(x_, nullptr, R, w.attn_norm, dim, cfg_.norm_eps, xn_, act_, stream_);
      gemm(w.wq, xn_, R, q_, 0.0f);
      gemm(w.wk, xn_, R, k_, 0.0f);
      gemm(w.wv, xn_, R, v_, 0.0f);
      cuda::rope(q_, k_, w.bq, w.bk, pos, R, cfg_.n_heads, cfg_.n_kv_heads, cfg_.head_dim, rope_cos_, rope_sin_,
                 cfg_.rope_style == RopeStyle::Neox, stream_);
      cuda::kv_write(k_, v_, w.bv, pos, row_table, tables, R, kvd, kp, vp, stream_);
      cuda::paged_attention(q_, decode_rows, n_decode, pos, row_table, tables, kp, vp, shape, att_, act_, stream_);
      cuda::prefill_attention(q_, tiles, n_tiles, pos, row_table, tables, kp, vp, shape, att_, act_, stream_);
      gemm(w.wo, att_, R, x_, 1.0f);  // the residual add is the GEMM's beta = 1
      cuda::rmsnorm(x_, nullptr, R, w.ffn_norm, dim, cfg_.norm_eps, xn_, act_, stream_);
      gemm(w.w_gate, xn_, R, h1_, 0.0f);
      gemm(w.w_up, xn_, R, h3_, 0.0f);
      cuda::swiglu(h1_, h3_, static_cast<int64_t>(R) * cfg_.hidden_dim, hact_, act_, stream_);
      gemm(w.w_down, hact_, R, x_, 1.0f);
    }
    if (nl > 0) {
      cuda::rmsnorm(x_, logit_rows, nl, final_norm_, dim, cfg_.norm_eps, xn_, act_, stream_);
      gemm(classifier_, xn_, nl, logits_, 0.0f);
    }
  }

  ModelConfig cfg_;
  CudaBackendOptions opt_;
  cuda::Act act_ = cuda::Act::F16;
  int max_rows_ = 0, max_logits_ = 0, max_ctx_ = 0, num_blocks_ = 0;
  cudaStream_t stream_ = nullptr;
  cublasHandle_t blas_ = nullptr;
  DeviceArena arena_;
  std::unordered_map<const void*, DevMatrix> uploaded_;
  DevMatrix token_embedding_, classifier_;
  std::vector<DevLayer> layers_;
  const float* final_norm_ = nullptr;
  size_t weight_bytes_ = 0;
  int64_t max_quantised_elems_ = 0;
  void* deq_ = nullptr;
  float *x_ = nullptr, *q_ = nullptr, *k_ = nullptr, *v_ = nullptr, *h1_ = nullptr, *h3_ = nullptr;
  void *xn_ = nullptr, *att_ = nullptr, *hact_ = nullptr;
  float *logits_ = nullptr, *probs_ = nullptr, *rope_cos_ = nullptr, *rope_sin_ = nullptr;
  int *order_ = nullptr, *sampled_ = nullptr;
  cuda::DevSampleRow* sample_rows_ = nullptr;
  cuda::DevSampleRow* h_sample_rows_ = nullptr;
  int* h_sampled_ = nullptr;
  uint16_t *k_pool_ = nullptr, *v_pool_ = nullptr;
  size_t layer_kv_elems_ = 0;
  StepLayout layout_{1, 1};
  cuda::StepPlan plan_;
  int* d_step_ = nullptr;
  int* h_step_ = nullptr;
  std::map<int, cudaGraphExec_t> graphs_;
};

void require_device() {
  std::string why;
  if (!cuda_device_available(&why)) throw InputError("CUDA backend: " + why);
}

}  // namespace

std::unique_ptr<CudaBackend> make_cuda_backend_on(std::shared_ptr<const Model> model, const CudaBackendOptions& options) {
  require_device();
  auto b = std::make_unique<CudaBackendImpl>(model->config, model->rope_freq_factors, options);
  b->upload_model(*model);
  return b;
}

std::unique_ptr<CudaBackend> make_random_cuda_backend(const ModelConfig& config, DType type, uint64_t seed,
                                                      const CudaBackendOptions& options) {
  require_device();
  auto b = std::make_unique<CudaBackendImpl>(config, std::vector<float>{}, options);
  b->random_weights(type, seed);
  return b;
}

}  // namespace cuda

std::unique_ptr<Backend> make_cuda_backend(std::shared_ptr<const Model> model, const CudaBackendOptions& options) {
  return cuda::make_cuda_backend_on(std::move(model), options);
}

}  // namespace t2s::engine
