#pragma once
// Device helpers shared by the kernel files: activation element types and their conversions.
#include <cuda_bf16.h>
#include <cuda_fp16.h>

#include <cstdint>

#include "engine/cuda/kernels.hpp"

namespace t2s::engine::cuda {

//! Converts a float to activation type T.
template <typename T>
__device__ __forceinline__ T to_act(float v);
template <>
__device__ __forceinline__ __half to_act<__half>(float v) { return __float2half_rn(v); }
template <>
__device__ __forceinline__ __nv_bfloat16 to_act<__nv_bfloat16>(float v) { return __float2bfloat16_rn(v); }

//! fp16 bits → float.
__device__ __forceinline__ float half_bits_to_float(uint16_t h) { return __half2float(__ushort_as_half(h)); }
//! float → fp16 bits (round to nearest even).
__device__ __forceinline__ uint16_t float_to_half_bits(float v) { return __half_as_ushort(__float2half_rn(v)); }

//! Dispatches `f` with the activation element type that `act` names.
template <typename F>
void with_act(Act act, F&& f) {
  if (act == Act::BF16) f(__nv_bfloat16{});
  else f(__half{});
}

//! Warp-wide sum.
__device__ __forceinline__ float warp_sum(float v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}

//! Blocks of `threads` covering n elements.
inline unsigned blocks_for(int64_t n, int threads) { return static_cast<unsigned>((n + threads - 1) / threads); }

}  // namespace t2s::engine::cuda

namespace t2s::engine::cuda {

//! Element (r, c) of a device weight matrix as float, decoded exactly as dequantize_row does on the host.
__device__ __forceinline__ float weight_at(DType type, const uint8_t* data, int64_t cols, int64_t r, int64_t c) {
  switch (type) {
    case DType::F16: return half_bits_to_float(reinterpret_cast<const uint16_t*>(data)[r * cols + c]);
    case DType::BF16: return __uint_as_float(static_cast<uint32_t>(reinterpret_cast<const uint16_t*>(data)[r * cols + c]) << 16);
    case DType::F32: return reinterpret_cast<const float*>(data)[r * cols + c];
    case DType::Q8_0: {
      const uint8_t* blk = data + (r * (cols / 32) + c / 32) * 34;
      float d = half_bits_to_float(static_cast<uint16_t>(blk[0] | (blk[1] << 8)));
      return d * static_cast<float>(static_cast<int8_t>(blk[2 + c % 32]));
    }
    case DType::Q4_0: {
      const uint8_t* blk = data + (r * (cols / 32) + c / 32) * 18;
      float d = half_bits_to_float(static_cast<uint16_t>(blk[0] | (blk[1] << 8)));
      int j = static_cast<int>(c % 32);
      int q = j < 16 ? (blk[2 + j] & 0x0f) : (blk[2 + j - 16] >> 4);
      return d * static_cast<float>(q - 8);
    }
  }
  return 0.0f;
}

}  // namespace t2s::engine::cuda
