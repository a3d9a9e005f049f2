#pragma once
//! Weight tensors as typed views into mapped memory, and element-type conversions.
#include <cstdint>
#include <cstring>
#include <string>

namespace t2s::engine {

//! Element type of a weight tensor (GGUF type ids in comments).
enum class DType : uint8_t {
  F32,   // 0
  F16,   // 1
  Q8_0,  // 8: blocks of 32 int8 with one fp16 scale (34 bytes)
  BF16,  // 30
};

//! Elements per quantisation block for `t` (1 for plain float types).
int dtype_block_elems(DType t);
//! Bytes per block for `t`.
int dtype_block_bytes(DType t);
//! Bytes for a row of `cols` elements; `cols` must be a multiple of the block size.
size_t dtype_row_bytes(DType t, int64_t cols);
//! Human-readable name ("F32", "Q8_0", ...).
const char* dtype_name(DType t);

//! A 2-D row-major weight matrix [rows][cols] (rows = output features), or a vector when rows == 1.
struct TensorView {
  DType type = DType::F32;    //!< element type
  const uint8_t* data = nullptr;  //!< first byte
  int64_t rows = 0;           //!< number of rows (output features)
  int64_t cols = 0;           //!< elements per row (input features)
  //! Start of row `r`.
  const uint8_t* row(int64_t r) const { return data + static_cast<size_t>(r) * dtype_row_bytes(type, cols); }
  //! True when the view points at data.
  bool present() const { return data != nullptr; }
};

//! IEEE half → float.
inline float fp16_to_fp32(uint16_t h) {
  uint32_t sign = (h & 0x8000u) << 16, exp = (h >> 10) & 0x1f, mant = h & 0x3ffu, bits;
  if (exp == 0) {
    if (mant == 0) {
      bits = sign;
    } else {  // subnormal: normalise
      exp = 127 - 15 + 1;
      while (!(mant & 0x400u)) {
        mant <<= 1;
        --exp;
      }
      bits = sign | (exp << 23) | ((mant & 0x3ffu) << 13);
    }
  } else if (exp == 31) {
    bits = sign | 0x7f800000u | (mant << 13);
  } else {
    bits = sign | ((exp + 127 - 15) << 23) | (mant << 13);
  }
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
//! float → IEEE half, round to nearest even.
uint16_t fp32_to_fp16(float f);
//! bfloat16 → float.
inline float bf16_to_fp32(uint16_t h) {
  uint32_t bits = static_cast<uint32_t>(h) << 16;
  float f;
  std::memcpy(&f, &bits, 4);
  return f;
}
//! float → bfloat16, round to nearest even.
uint16_t fp32_to_bf16(float f);

//! Converts `n` elements of a row of type `t` at `src` to floats in `dst` (`n` a multiple of the block size).
void dequantize_row(DType t, const uint8_t* src, float* dst, int64_t n);
//! Quantises `n` floats into Q8_0 blocks at `dst` (the reference rounding: d = max|x|/127, q = round(x/d)).
void quantize_row_q8_0(const float* src, uint8_t* dst, int64_t n);

}  // namespace t2s::engine
