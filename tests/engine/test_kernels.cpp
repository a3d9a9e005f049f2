// CPU kernels on every ISA this machine has: batch-shape and thread-split invariance, and accuracy vs float64.
#include <catch2/catch.hpp>

#include <cmath>
#include <cstring>
#include <vector>

#include "common/rng.hpp"
#include "engine/cpu/kernels.hpp"

using namespace t2s::engine;
using cpu::Isa;

TEST_CASE("matmul is bit-identical for every batch size and thread count, and accurate", "[engine]") {
  const Isa best = cpu::detect_isa();
  t2s::Rng rng(11);
  for (Isa isa : {Isa::Generic, Isa::Avx2, Isa::Avx512}) {
    if (static_cast<int>(isa) > static_cast<int>(best)) continue;
    for (int64_t n : {int64_t{8}, int64_t{172}, int64_t{288}}) {  // 172: a tail after the vector part
      for (DType type : {DType::F32, DType::F16, DType::Q8_0}) {
        if (type == DType::Q8_0 && n % 32 != 0) continue;
        const int64_t rows = 37, max_batch = 17;
        std::vector<float> wf(static_cast<size_t>(rows * n)), x(static_cast<size_t>(max_batch * n));
        for (auto& v : wf) v = static_cast<float>(rng.uniform(-1, 1));
        for (auto& v : x) v = static_cast<float>(rng.uniform(-1, 1));
        std::vector<uint8_t> wq(dtype_row_bytes(type, n) * static_cast<size_t>(rows));
        std::vector<float> deq(static_cast<size_t>(n));
        for (int64_t r = 0; r < rows; ++r) {
          uint8_t* dst = wq.data() + static_cast<size_t>(r) * dtype_row_bytes(type, n);
          const float* src = wf.data() + r * n;
          if (type == DType::F32) std::memcpy(dst, src, static_cast<size_t>(n) * 4);
          if (type == DType::Q8_0) quantize_row_q8_0(src, dst, n);
          if (type == DType::F16)
            for (int64_t i = 0; i < n; ++i) {
              uint16_t h = fp32_to_fp16(src[i]);
              std::memcpy(dst + 2 * i, &h, 2);
            }
        }
        TensorView w;
        w.type = type;
        w.data = wq.data();
        w.rows = rows;
        w.cols = n;
        std::vector<float> scratch_buf(2 * 2 * static_cast<size_t>(n));
        cpu::MatmulScratch scratch{scratch_buf.data(), n};
        cpu::ThreadPool one(1), two(2);
        std::vector<float> solo(static_cast<size_t>(max_batch * rows)), out(solo.size());
        for (int64_t b = 0; b < max_batch; ++b) cpu::matmul(one, isa, w, x.data() + b * n, 1, solo.data() + b * rows, scratch);
        for (int64_t batch : {int64_t{2}, int64_t{3}, int64_t{5}, int64_t{16}, int64_t{17}}) {
          for (auto* pool : {&one, &two}) {
            cpu::matmul(*pool, isa, w, x.data(), batch, out.data(), scratch);
            INFO("isa " << static_cast<int>(isa) << " n " << n << " " << dtype_name(type) << " batch " << batch);
            CHECK(std::memcmp(out.data(), solo.data(), static_cast<size_t>(batch * rows) * 4) == 0);
          }
        }
        double err = 0;
        for (int64_t r = 0; r < rows; ++r) {
          dequantize_row(type, w.row(r), deq.data(), n);
          for (int64_t b = 0; b < max_batch; ++b) {
            double ref = 0;
            for (int64_t k = 0; k < n; ++k) ref += static_cast<double>(deq[static_cast<size_t>(k)]) * x[static_cast<size_t>(b * n + k)];
            err = std::max(err, std::fabs(ref - solo[static_cast<size_t>(b * rows + r)]));
          }
        }
        CHECK(err < 1e-4);
      }
    }
  }
}
