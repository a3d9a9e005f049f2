// Backend selection by name, shared by `t2s generate` and the runtime's engine instances.
#include "engine/backend.hpp"

#include "common/status.hpp"

namespace t2s::engine {

size_t cuda_kv_block_bytes(const ModelConfig& c) {
  return size_t{2} * static_cast<size_t>(c.n_layers) * kKvBlockSize * static_cast<size_t>(c.kv_dim()) * sizeof(uint16_t);
}

BackendChoice make_backend(const std::string& kind, std::shared_ptr<const Model> model, const CpuBackendOptions& cpu,
                           const CudaBackendOptions& cuda) {
  if (kind == "cpu") return {make_cpu_backend(std::move(model), cpu), ""};
  if (kind != "cuda") throw InputError("unknown engine backend '" + kind + "' (expected cpu or cuda)");
  std::string why;
  if (!cuda_device_available(&why))
    return {make_cpu_backend(std::move(model), cpu), "cuda backend unavailable (" + why + "); using the cpu backend"};
  return {make_cuda_backend(std::move(model), cuda), ""};
}

}  // namespace t2s::engine
