#include "engine/cuda/reference.hpp"

#include <algorithm>
#include <cmath>

#include "engine/cpu/kernels.hpp"

namespace t2s::engine::cuda {

float round_to_act(float v, Act act) {
  return act == Act::BF16 ? bf16_to_fp32(fp32_to_bf16(v)) : fp16_to_fp32(fp32_to_fp16(v));
}

float round_to_half(float v) { return fp16_to_fp32(fp32_to_fp16(v)); }

void rope_tables(const ModelConfig& cfg, const std::vector<float>& freq_factors, int max_ctx,
                 std::vector<float>& cos_table, std::vector<float>& sin_table) {
  const int half = cfg.head_dim / 2;
  cos_table.assign(static_cast<size_t>(max_ctx) * static_cast<size_t>(half), 0);
  sin_table.assign(cos_table.size(), 0);
  for (int p = 0; p < max_ctx; ++p) {
    for (int j = 0; j < half; ++j) {
      float c, s;
      if (cfg.llama2c_rope) {  // run.c's exact float expression
        float freq = 1.0f / std::pow(10000.0f, static_cast<float>(2 * j) / static_cast<float>(cfg.head_dim));
        float val = static_cast<float>(p) * freq;
        c = std::cos(val);
        s = std::sin(val);
      } else {
        double freq = std::pow(static_cast<double>(cfg.rope_theta), -2.0 * j / cfg.head_dim);
        if (!freq_factors.empty()) freq /= freq_factors[static_cast<size_t>(j)];
        double val = p * freq;
        c = static_cast<float>(std::cos(val));
        s = static_cast<float>(std::sin(val));
      }
      cos_table[static_cast<size_t>(p) * half + j] = c;
      sin_table[static_cast<size_t>(p) * half + j] = s;
    }
  }
}

void ref_embedding(const TensorView& table, const int* tokens, int rows, float* x) {
  for (int r = 0; r < rows; ++r) dequantize_row(table.type, table.row(tokens[r]), x + r * table.cols, table.cols);
}

void ref_rmsnorm(const float* x, const int* row_index, int rows, const float* w, int dim, float eps, float* out,
                 Act act) {
  for (int r = 0; r < rows; ++r) {
    float* o = out + static_cast<int64_t>(r) * dim;
    cpu::rmsnorm(o, x + static_cast<int64_t>(row_index ? row_index[r] : r) * dim, w, dim, eps);
    for (int c = 0; c < dim; ++c) o[c] = round_to_act(o[c], act);
  }
}

void ref_rope(float* q, float* k, const float* bq, const float* bk, const int* positions, int rows, int n_heads,
              int n_kv_heads, int hd, const float* cos_table, const float* sin_table, bool neox) {
  const int half = hd / 2;
  for (int r = 0; r < rows; ++r) {
    const float* cs = cos_table + static_cast<int64_t>(positions[r]) * half;
    const float* sn = sin_table + static_cast<int64_t>(positions[r]) * half;
    for (int h = 0; h < n_heads + n_kv_heads; ++h) {
      const bool is_q = h < n_heads;
      float* x = is_q ? q + (static_cast<int64_t>(r) * n_heads + h) * hd
                      : k + (static_cast<int64_t>(r) * n_kv_heads + h - n_heads) * hd;
      const float* b = is_q ? (bq ? bq + h * hd : nullptr) : (bk ? bk + (h - n_heads) * hd : nullptr);
      for (int j = 0; j < half; ++j) {
        int a = neox ? j : 2 * j, c = neox ? j + half : 2 * j + 1;
        float x0 = x[a] + (b ? b[a] : 0.0f), x1 = x[c] + (b ? b[c] : 0.0f);
        x[a] = x0 * cs[j] - x1 * sn[j];
        x[c] = x0 * sn[j] + x1 * cs[j];
      }
    }
  }
}

void ref_swiglu(const float* gate, const float* up, int64_t n, float* out, Act act) {
  for (int64_t i = 0; i < n; ++i) {
    float g = gate[i];
    out[i] = round_to_act(g * (1.0f / (1.0f + std::exp(-g))) * up[i], act);
  }
}

void ref_kv_write(const float* k, const float* v, const float* bv, const int* positions, const int* row_table,
                  const int* tables, int rows, int kv_dim, float* k_pool, float* v_pool) {
  for (int r = 0; r < rows; ++r) {
    const int pos = positions[r];
    const int64_t slot = (static_cast<int64_t>(tables[row_table[r] + pos / 16]) * 16 + pos % 16) * kv_dim;
    for (int c = 0; c < kv_dim; ++c) {
      k_pool[slot + c] = round_to_half(k[static_cast<int64_t>(r) * kv_dim + c]);
      v_pool[slot + c] = round_to_half(v[static_cast<int64_t>(r) * kv_dim + c] + (bv ? bv[c] : 0.0f));
    }
  }
}

void ref_attention_row(const float* q, int pos, const int* table, const float* k_pool, const float* v_pool,
                       int n_heads, int n_kv_heads, int hd, float* out, Act act) {
  const int kv_dim = n_kv_heads * hd, group = n_heads / n_kv_heads;
  const double scale = 1.0 / std::sqrt(static_cast<double>(hd));
  std::vector<double> sc(static_cast<size_t>(pos) + 1);
  for (int h = 0; h < n_heads; ++h) {
    const int off = (h / group) * hd;
    double mx = -INFINITY;
    for (int t = 0; t <= pos; ++t) {
      const float* kr = k_pool + (static_cast<int64_t>(table[t / 16]) * 16 + t % 16) * kv_dim + off;
      double s = 0;
      for (int d = 0; d < hd; ++d) s += static_cast<double>(q[h * hd + d]) * kr[d];
      sc[static_cast<size_t>(t)] = s * scale;
      mx = std::max(mx, sc[static_cast<size_t>(t)]);
    }
    double sum = 0;
    for (int t = 0; t <= pos; ++t) sum += (sc[static_cast<size_t>(t)] = std::exp(sc[static_cast<size_t>(t)] - mx));
    for (int d = 0; d < hd; ++d) {
      double o = 0;
      for (int t = 0; t <= pos; ++t)
        o += sc[static_cast<size_t>(t)] * v_pool[(static_cast<int64_t>(table[t / 16]) * 16 + t % 16) * kv_dim + off + d];
      out[h * hd + d] = round_to_act(static_cast<float>(o / sum), act);
    }
  }
}

void ref_dequantize(const TensorView& w, float* out, Act act) {
  for (int64_t r = 0; r < w.rows; ++r) {
    dequantize_row(w.type, w.row(r), out + r * w.cols, w.cols);
    for (int64_t c = 0; c < w.cols; ++c) out[r * w.cols + c] = round_to_act(out[r * w.cols + c], act);
  }
}

int ref_sample(const float* logits, int vocab, const SamplingParams& params, double uniform) {
  std::vector<float> copy(logits, logits + vocab);
  std::vector<int> scratch;
  return sample_token_with(copy.data(), vocab, params, uniform, scratch);
}

}  // namespace t2s::engine::cuda
