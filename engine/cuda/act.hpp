#pragma once
//! The element type of GEMM operands on the device, in its own header so kernel files stay light to compile.
#include <cstdint>

namespace t2s::engine::cuda {

//! Element type of GEMM operands (activations fed to cuBLAS and dequantised weights).
enum class Act : uint8_t { F16, BF16 };

}  // namespace t2s::engine::cuda
