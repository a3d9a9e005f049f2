#pragma once
//! The CUDA backend's own API beyond engine::Backend: random-weight models made on the device (benchmarks) and
//! facts a benchmark needs (weight bytes, the device's peak memory bandwidth). Defined only when the build has CUDA.
#include <cstdint>
#include <memory>
#include <string>

#include "engine/backend.hpp"

namespace t2s::engine::cuda {

//! A Backend on a CUDA device.
class CudaBackend : public Backend {
 public:
  //! Bytes of weights one forward pass reads (all matrices, embeddings excluded, classifier included).
  virtual size_t weight_bytes() const = 0;
  //! CUDA Graphs captured so far (one per pure-decode batch size seen).
  virtual int graphs_captured() const = 0;
};

//! What a benchmark reports about the device.
struct DeviceInfo {
  std::string name;                //!< e.g. "NVIDIA H100 80GB HBM3"
  int sm_count = 0;                //!< streaming multiprocessors
  int compute_capability = 0;      //!< major * 10 + minor
  size_t total_memory = 0;         //!< bytes
  double peak_bandwidth = 0;       //!< bytes/s: the vendor figure for known parts (H100 SXM 3.35e12, H200 4.8e12), else 0
  std::string bandwidth_source;    //!< where peak_bandwidth comes from
};
//! Facts about device `ordinal`; throws std::runtime_error when it cannot be queried.
DeviceInfo device_info(int ordinal);

//! The CUDA backend over `model` (weights uploaded once). Throws InputError as make_cuda_backend.
std::unique_ptr<CudaBackend> make_cuda_backend_on(std::shared_ptr<const Model> model, const CudaBackendOptions& options);
//! A Llama-shaped model with uniform random weights made on the device in `type` (F16 or BF16), no host copy:
//! norms 1, embeddings in [-1, 1), matrices in ±sqrt(3 / cols). For benchmarks.
std::unique_ptr<CudaBackend> make_random_cuda_backend(const ModelConfig& config, DType type, uint64_t seed,
                                                      const CudaBackendOptions& options);

}  // namespace t2s::engine::cuda
