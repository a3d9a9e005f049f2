// The CUDA entry points of a build without nvcc: no device is ever available, and asking for the backend says why.
#include "common/status.hpp"
#include "engine/backend.hpp"

namespace t2s::engine {

bool cuda_device_available(std::string* why) {
  if (why) *why = "this build has no CUDA backend (nvcc was not found when it was configured)";
  return false;
}

std::unique_ptr<Backend> make_cuda_backend(std::shared_ptr<const Model>, const CudaBackendOptions&) {
  throw InputError("this build has no CUDA backend (nvcc was not found when it was configured)");
}

}  // namespace t2s::engine
