#include "engine/train/ops.hpp"

#include <algorithm>
#include <cmath>

#include "engine/train/gemm.hpp"

namespace t2s::engine::train::ops {

void rmsnorm_forward(cpu::ThreadPool& pool, float* y, float* rstd, const float* x, const float* w, int64_t rows,
                     int64_t n, float eps) {
  pool.parallel_for(rows, 1, [&](int, int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * n;
      float ss = 0.0f;
      for (int64_t j = 0; j < n; ++j) ss += xr[j] * xr[j];
      ss /= static_cast<float>(n);
      ss += eps;
      const float s = 1.0f / std::sqrt(ss);
      rstd[r] = s;
      for (int64_t j = 0; j < n; ++j) y[r * n + j] = w[j] * (s * xr[j]);
    }
  });
}

void rmsnorm_backward(cpu::ThreadPool& pool, float* dx_acc, float* dw, const float* dy, const float* x,
                      const float* w, const float* rstd, int64_t rows, int64_t n) {
  pool.parallel_for(rows, 1, [&](int, int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* xr = x + r * n;
      const float* g = dy + r * n;
      const float s = rstd[r];
      float dot = 0.0f;
      for (int64_t j = 0; j < n; ++j) dot += g[j] * w[j] * xr[j];
      const float c = s * s * s * dot / static_cast<float>(n);
      for (int64_t j = 0; j < n; ++j) dx_acc[r * n + j] += s * g[j] * w[j] - c * xr[j];
    }
  });
  // Weight gradient: columns split over threads, each column summed over rows in order.
  pool.parallel_for(n, 16, [&](int, int64_t b, int64_t e) {
    for (int64_t r = 0; r < rows; ++r)
      for (int64_t j = b; j < e; ++j) dw[j] += dy[r * n + j] * x[r * n + j] * rstd[r];
  });
}

namespace {
// Transposes with the rows split over threads (each destination element written once).
void transpose_parallel(cpu::ThreadPool& pool, const float* src, int64_t rows, int64_t cols, float* dst) {
  pool.parallel_for(rows, 32, [&](int, int64_t b, int64_t e) { transpose(src + b * cols, e - b, cols, cols, dst + b, rows); });
}
}  // namespace

void linear_forward(cpu::ThreadPool& pool, float* y, const float* x, const float* w, int64_t rows, int64_t in,
                    int64_t out, std::vector<float>& scratch) {
  scratch.resize(static_cast<size_t>(in * out));
  transpose_parallel(pool, w, out, in, scratch.data());
  gemm(&pool, rows, out, in, x, in, scratch.data(), out, y, out, false);
}

void linear_backward(cpu::ThreadPool& pool, float* dx, bool accumulate_dx, float* dw, const float* dy, const float* x,
                     const float* w, int64_t rows, int64_t in, int64_t out) {
  if (dx) gemm(&pool, rows, in, out, dy, out, w, in, dx, in, accumulate_dx);
  gemm_tn(&pool, out, in, rows, dy, out, x, in, dw, in, true);
}

void rope_table(int positions, int head_dim, float theta, std::vector<float>& cos, std::vector<float>& sin) {
  const int half = head_dim / 2;
  cos.assign(static_cast<size_t>(positions) * static_cast<size_t>(half), 0.0f);
  sin.assign(cos.size(), 0.0f);
  for (int p = 0; p < positions; ++p)
    for (int j = 0; j < half; ++j) {
      const double val = p * std::pow(static_cast<double>(theta), -2.0 * j / head_dim);
      cos[static_cast<size_t>(p) * half + j] = static_cast<float>(std::cos(val));
      sin[static_cast<size_t>(p) * half + j] = static_cast<float>(std::sin(val));
    }
}

namespace {
void rotate(cpu::ThreadPool& pool, float* x, int64_t rows, int heads, int hd, const int* pos, const float* cos,
            const float* sin, float direction) {
  const int half = hd / 2;
  pool.parallel_for(rows, 1, [&](int, int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      const float* cs = cos + static_cast<int64_t>(pos[r]) * half;
      const float* sn = sin + static_cast<int64_t>(pos[r]) * half;
      for (int h = 0; h < heads; ++h) {
        float* v = x + (r * heads + h) * hd;
        for (int j = 0; j < half; ++j) {
          const float x0 = v[2 * j], x1 = v[2 * j + 1], s = direction * sn[j];
          v[2 * j] = x0 * cs[j] - x1 * s;
          v[2 * j + 1] = x0 * s + x1 * cs[j];
        }
      }
    }
  });
}
}  // namespace

void rope_forward(cpu::ThreadPool& pool, float* x, int64_t rows, int heads, int head_dim, const int* pos,
                  const float* cos, const float* sin) {
  rotate(pool, x, rows, heads, head_dim, pos, cos, sin, 1.0f);
}

void rope_backward(cpu::ThreadPool& pool, float* dx, int64_t rows, int heads, int head_dim, const int* pos,
                   const float* cos, const float* sin) {
  rotate(pool, dx, rows, heads, head_dim, pos, cos, sin, -1.0f);
}

namespace {

constexpr int kAttnRows = 64;  // query rows per block: the score block [64][≤ seq] stays in L2

// Columns [c0, i1) cover every key that rows [i0, i1) may see, because seg_start is non-decreasing.
struct RowBlock {
  int i0, i1, c0;
  int rows() const { return i1 - i0; }
  int cols() const { return i1 - c0; }
};

// Scores of one row block, turned into probabilities exp(s/√hd − lse) (zero outside each row's window).
// The forward pass computes lse here (lse_out); the backward pass reuses the saved one, giving the same bits.
void block_probs(const AttentionShape& s, const RowBlock& rb, const int* seg, const float* qh, int64_t ldq,
                 const float* kt, float* p, const float* lse, float* lse_out) {
  gemm(nullptr, rb.rows(), rb.cols(), s.head_dim, qh + static_cast<int64_t>(rb.i0) * ldq, ldq, kt + rb.c0, s.seq, p,
       rb.cols(), false);
  const float inv = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  for (int t = rb.i0; t < rb.i1; ++t) {
    float* row = p + static_cast<int64_t>(t - rb.i0) * rb.cols();
    const int lo = seg[t] - rb.c0, hi = t - rb.c0;
    for (int j = lo; j <= hi; ++j) row[j] *= inv;
    if (lse_out) {
      float mx = -INFINITY;
      for (int j = lo; j <= hi; ++j) mx = std::max(mx, row[j]);
      float sum = 0.0f;
      for (int j = lo; j <= hi; ++j) sum += std::exp(row[j] - mx);
      lse_out[t] = mx + std::log(sum);
    }
    const float l = lse[t];
    for (int j = 0; j < lo; ++j) row[j] = 0.0f;
    for (int j = lo; j <= hi; ++j) row[j] = std::exp(row[j] - l);
    for (int j = hi + 1; j < rb.cols(); ++j) row[j] = 0.0f;
  }
}

template <typename F>
void for_each_block(const AttentionShape& s, const int* seg, F&& fn) {
  for (int i0 = 0; i0 < s.seq; i0 += kAttnRows) {
    const int i1 = std::min(s.seq, i0 + kAttnRows);
    fn(RowBlock{i0, i1, seg[i0]});
  }
}

}  // namespace

void attention_forward(cpu::ThreadPool& pool, const AttentionShape& s, float* out, float* lse, const float* q,
                       const float* k, const float* v, std::vector<float>& scratch) {
  const int64_t T = s.seq, hd = s.head_dim, qd = int64_t{s.heads} * hd, kvd = int64_t{s.kv_heads} * hd;
  const int group = s.heads / s.kv_heads;
  const int64_t per_thread = hd * T + kAttnRows * T;
  scratch.resize(static_cast<size_t>(per_thread * pool.size()));
  pool.parallel_for(int64_t{s.batch} * s.heads, 1, [&](int thread, int64_t b_, int64_t e_) {
    float* kt = scratch.data() + thread * per_thread;
    float* p = kt + hd * T;
    for (int64_t task = b_; task < e_; ++task) {
      const int64_t b = task / s.heads, h = task % s.heads, g = h / group;
      const int* seg = s.seg_start + b * T;
      const float* qh = q + b * T * qd + h * hd;
      const float* vh = v + b * T * kvd + g * hd;
      float* oh = out + b * T * qd + h * hd;
      float* lh = lse + (b * s.heads + h) * T;
      transpose(k + b * T * kvd + g * hd, T, hd, kvd, kt, T);
      for_each_block(s, seg, [&](const RowBlock& rb) {
        block_probs(s, rb, seg, qh, qd, kt, p, lh, lh);
        gemm(nullptr, rb.rows(), hd, rb.cols(), p, rb.cols(), vh + rb.c0 * kvd, kvd, oh + rb.i0 * qd, qd, false);
      });
    }
  });
}

void attention_backward(cpu::ThreadPool& pool, const AttentionShape& s, float* dq, float* dk, float* dv,
                        const float* dout, const float* q, const float* k, const float* v, const float* out,
                        const float* lse, std::vector<float>& scratch) {
  const int64_t T = s.seq, hd = s.head_dim, qd = int64_t{s.heads} * hd, kvd = int64_t{s.kv_heads} * hd;
  const int group = s.heads / s.kv_heads;
  const float inv = 1.0f / std::sqrt(static_cast<float>(s.head_dim));
  const int64_t blk = kAttnRows * T, per_thread = 2 * hd * T + 2 * blk + T;
  scratch.resize(static_cast<size_t>(per_thread * pool.size()));
  // One task per (row, kv head): it owns that head's dk/dv and the dq of the query heads sharing it.
  pool.parallel_for(int64_t{s.batch} * s.kv_heads, 1, [&](int thread, int64_t b_, int64_t e_) {
    float* kt = scratch.data() + thread * per_thread;
    float* vt = kt + hd * T;
    float* p = vt + hd * T;
    float* dp = p + blk;
    float* delta = dp + blk;
    for (int64_t task = b_; task < e_; ++task) {
      const int64_t b = task / s.kv_heads, g = task % s.kv_heads;
      const int* seg = s.seg_start + b * T;
      const float* kh = k + b * T * kvd + g * hd;
      float* dkh = dk + b * T * kvd + g * hd;
      float* dvh = dv + b * T * kvd + g * hd;
      for (int64_t t = 0; t < T; ++t) {
        std::fill_n(dkh + t * kvd, hd, 0.0f);
        std::fill_n(dvh + t * kvd, hd, 0.0f);
      }
      transpose(kh, T, hd, kvd, kt, T);
      transpose(v + b * T * kvd + g * hd, T, hd, kvd, vt, T);
      for (int64_t h = g * group; h < (g + 1) * group; ++h) {
        const float* qh = q + b * T * qd + h * hd;
        const float* doh = dout + b * T * qd + h * hd;
        const float* oh = out + b * T * qd + h * hd;
        float* dqh = dq + b * T * qd + h * hd;
        const float* lh = lse + (b * s.heads + h) * T;
        for (int64_t t = 0; t < T; ++t) {
          float d = 0.0f;
          for (int64_t j = 0; j < hd; ++j) d += doh[t * qd + j] * oh[t * qd + j];
          delta[t] = d;
        }
        for_each_block(s, seg, [&](const RowBlock& rb) {
          const int rows = rb.rows(), cols = rb.cols();
          block_probs(s, rb, seg, qh, qd, kt, p, lh, nullptr);
          gemm(nullptr, rows, cols, hd, doh + rb.i0 * qd, qd, vt + rb.c0, T, dp, cols, false);
          for (int r = 0; r < rows; ++r) {
            const float d = delta[rb.i0 + r];
            float* dpr = dp + static_cast<int64_t>(r) * cols;
            const float* pr = p + static_cast<int64_t>(r) * cols;
            for (int j = 0; j < cols; ++j) dpr[j] = pr[j] * (dpr[j] - d) * inv;
          }
          gemm(nullptr, rows, hd, cols, dp, cols, kh + rb.c0 * kvd, kvd, dqh + rb.i0 * qd, qd, false);
          gemm_tn(nullptr, cols, hd, rows, dp, cols, qh + rb.i0 * qd, qd, dkh + rb.c0 * kvd, kvd, true);
          gemm_tn(nullptr, cols, hd, rows, p, cols, doh + rb.i0 * qd, qd, dvh + rb.c0 * kvd, kvd, true);
        });
      }
    }
  });
}

void swiglu_forward(cpu::ThreadPool& pool, float* out, const float* g, const float* u, int64_t n) {
  pool.parallel_for(n, 1024, [&](int, int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) out[i] = g[i] / (1.0f + std::exp(-g[i])) * u[i];
  });
}

void swiglu_backward(cpu::ThreadPool& pool, float* dg, float* du, const float* dout, const float* g, const float* u,
                     int64_t n) {
  pool.parallel_for(n, 1024, [&](int, int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) {
      const float sig = 1.0f / (1.0f + std::exp(-g[i]));
      du[i] = dout[i] * g[i] * sig;
      dg[i] = dout[i] * u[i] * sig * (1.0f + g[i] * (1.0f - sig));
    }
  });
}

double cross_entropy(cpu::ThreadPool& pool, float* logits, const int* labels, int64_t rows, int64_t vocab, float scale) {
  std::vector<double> loss(static_cast<size_t>(rows));
  pool.parallel_for(rows, 1, [&](int, int64_t b, int64_t e) {
    for (int64_t r = b; r < e; ++r) {
      float* z = logits + r * vocab;
      float mx = -INFINITY;
      for (int64_t j = 0; j < vocab; ++j) mx = std::max(mx, z[j]);
      double sum = 0;
      for (int64_t j = 0; j < vocab; ++j) sum += std::exp(static_cast<double>(z[j] - mx));
      const double lse = mx + std::log(sum);
      loss[static_cast<size_t>(r)] = lse - z[labels[r]];
      for (int64_t j = 0; j < vocab; ++j) z[j] = static_cast<float>(std::exp(z[j] - lse)) * scale;
      z[labels[r]] -= scale;
    }
  });
  double total = 0;
  for (double l : loss) total += l;
  return total;
}

void embedding_forward(float* y, const float* table, const int* tokens, int64_t rows, int64_t dim) {
  for (int64_t r = 0; r < rows; ++r) std::copy_n(table + static_cast<int64_t>(tokens[r]) * dim, dim, y + r * dim);
}

void embedding_backward(float* dtable, const float* dy, const int* tokens, int64_t rows, int64_t dim) {
  for (int64_t r = 0; r < rows; ++r) {
    float* d = dtable + static_cast<int64_t>(tokens[r]) * dim;
    for (int64_t j = 0; j < dim; ++j) d[j] += dy[r * dim + j];
  }
}

}  // namespace t2s::engine::train::ops
