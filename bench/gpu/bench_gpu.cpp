// The device check's engine side: a ~1B-parameter Llama-shaped model with random weights made on the device,
// decode tokens/s at batch 1, 8, 64, 256 with the achieved memory-bandwidth utilisation, prefill TFLOP/s at 512
// and 4096 tokens, and every timed iteration as a cost-model record ({prefill_tokens, prefill_attn, decode_seqs,
// decode_context, seconds}, what `t2s cost-model --fit` reads). bench/gpu/torch_peer.py measures the same model in
// PyTorch eager in the same run; bench/gpu/run.sh drives both and merges the JSON.
#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include "common/status.hpp"
#include "engine/backend.hpp"
#include "engine/cuda/cuda_backend.hpp"

using namespace t2s::engine;

namespace {

struct Args {
  std::string out = "engine.json", iterations = "iterations.jsonl", dtype = "bf16";
  bool dry_run = false, small = false;
  int decode_steps = 32, context = 512;
  std::vector<int> batches{1, 8, 64, 256};
  std::vector<int> prefills{512, 4096};
};

const char* kUsage =
    "usage: bench_gpu [--out FILE.json] [--iterations FILE.jsonl] [--dtype bf16|f16] [--steps N] [--context N]\n"
    "                 [--small] [--dry-run]\n"
    "  --small    a 2-layer model of the same widths (a quick smoke run)\n"
    "  --dry-run  print the plan and exit before touching the GPU\n";

std::vector<int> parse_list(const std::string& s) {
  std::vector<int> v;
  std::stringstream ss(s);
  for (std::string item; std::getline(ss, item, ',');) v.push_back(std::stoi(item));
  return v;
}

Args parse(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string k = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) throw t2s::InputError(k + " needs a value");
      return argv[++i];
    };
    if (k == "--out") a.out = value();
    else if (k == "--iterations") a.iterations = value();
    else if (k == "--dtype") a.dtype = value();
    else if (k == "--steps") a.decode_steps = std::stoi(value());
    else if (k == "--context") a.context = std::stoi(value());
    else if (k == "--batches") a.batches = parse_list(value());
    else if (k == "--prefills") a.prefills = parse_list(value());
    else if (k == "--small") a.small = true;
    else if (k == "--dry-run") a.dry_run = true;
    else if (k == "--help" || k == "-h") {
      std::fputs(kUsage, stdout);
      std::exit(0);
    } else {
      throw t2s::InputError("unknown option " + k + "\n" + kUsage);
    }
  }
  if (a.dtype != "bf16" && a.dtype != "f16") throw t2s::InputError("--dtype must be bf16 or f16");
  if (a.decode_steps < 1 || a.context < 1) throw t2s::InputError("--steps and --context must be >= 1");
  return a;
}

// TinyLlama-1.1B's shape: 22 layers, width 2048, SwiGLU 5632, 32 query / 4 KV heads of 64, vocab 32000.
ModelConfig model_config(const Args& a) {
  ModelConfig c;
  c.dim = 2048;
  c.hidden_dim = 5632;
  c.n_layers = a.small ? 2 : 22;
  c.n_heads = 32;
  c.n_kv_heads = 4;
  c.head_dim = 64;
  c.vocab_size = 32000;
  c.max_seq_len = 8192;
  c.rope_theta = 10000.0f;
  c.rope_style = RopeStyle::Interleaved;
  return c;
}

// Matmul parameters a token multiplies by (everything but the embedding gather; the classifier counted separately).
double layer_params(const ModelConfig& c) {
  const double d = c.dim, q = c.q_dim(), kv = c.kv_dim(), h = c.hidden_dim;
  return c.n_layers * (d * q + 2 * d * kv + q * d + 3 * d * h);
}

struct Iteration {
  int prefill_tokens = 0, decode_seqs = 0;
  double prefill_attn = 0, decode_context = 0, seconds = 0;
};

struct Runner {
  Backend& b;
  int vocab;
  std::vector<Iteration> log;
  std::vector<int> tokens, positions, logit_rows, sampled;
  std::vector<const int*> tables;
  std::vector<SampleRequest> requests;

  // One forward_sample over `rows` rows (already in tokens/positions/tables), greedy on the listed logit rows.
  double step(const Iteration& shape) {
    requests.assign(logit_rows.size(), SampleRequest{});
    sampled.resize(logit_rows.size());
    ForwardBatch fb{tokens, positions, tables, logit_rows};
    auto t0 = std::chrono::steady_clock::now();
    b.forward_sample(fb, requests, vocab, nullptr, sampled.data());
    double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    Iteration it = shape;
    it.seconds = s;
    log.push_back(it);
    return s;
  }
  void clear() {
    tokens.clear();
    positions.clear();
    tables.clear();
    logit_rows.clear();
  }
};

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

std::string jnum(double v) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.6g", v);
  return buf;
}

}  // namespace

int main(int argc, char** argv) {
  try {
    Args a = parse(argc, argv);
    const ModelConfig cfg = model_config(a);
    const int max_batch = *std::max_element(a.batches.begin(), a.batches.end());
    const int max_prefill = *std::max_element(a.prefills.begin(), a.prefills.end());
    const int blocks_per_seq = (a.context + a.decode_steps + 8 + kKvBlockSize) / kKvBlockSize + 1;
    const int kv_blocks = std::max(max_batch * blocks_per_seq, (max_prefill + kKvBlockSize) / kKvBlockSize + 1);
    CudaBackendOptions o;
    o.max_batch_tokens = std::max(max_prefill, max_batch);
    o.max_logit_rows = max_batch;
    o.max_context = cfg.max_seq_len;
    o.kv_budget_bytes = static_cast<size_t>(kv_blocks) * cuda_kv_block_bytes(cfg);
    const double params = layer_params(cfg) + static_cast<double>(cfg.vocab_size) * cfg.dim;
    std::printf("bench_gpu: Llama-shaped %d layers, dim %d, hidden %d, %d/%d heads of %d, vocab %d: %.3g matmul "
                "parameters (+ %.3g embedding), %s; KV pool %d blocks (%.2f GiB); decode batches",
                cfg.n_layers, cfg.dim, cfg.hidden_dim, cfg.n_heads, cfg.n_kv_heads, cfg.head_dim, cfg.vocab_size, params,
                static_cast<double>(cfg.vocab_size) * cfg.dim, a.dtype.c_str(), kv_blocks,
                static_cast<double>(o.kv_budget_bytes) / (1u << 30));
    for (int b : a.batches) std::printf(" %d", b);
    std::printf(" at context %d (%d steps); prefill", a.context, a.decode_steps);
    for (int p : a.prefills) std::printf(" %d", p);
    std::printf("\n");
    if (a.dry_run) {
      std::printf("bench_gpu: dry run, stopping before the GPU\n");
      return 0;
    }
    if (std::string why; !cuda_device_available(&why)) {
      std::fprintf(stderr, "bench_gpu: %s\n", why.c_str());
      return 1;
    }
    const auto dev = cuda::device_info(o.device);
    auto backend = cuda::make_random_cuda_backend(cfg, a.dtype == "bf16" ? DType::BF16 : DType::F16, 1234, o);
    Runner run{*backend, cfg.vocab_size, {}, {}, {}, {}, {}, {}, {}};
    const double kv_token_bytes = 2.0 * cfg.n_layers * cfg.kv_dim() * 2;  // K and V, fp16, all layers
    std::ostringstream js;
    js << "{\"device\":{\"name\":\"" << dev.name << "\",\"sm_count\":" << dev.sm_count
       << ",\"compute_capability\":" << dev.compute_capability << ",\"memory_bytes\":" << dev.total_memory
       << ",\"peak_bandwidth_bytes_s\":" << jnum(dev.peak_bandwidth) << ",\"peak_bandwidth_source\":\""
       << dev.bandwidth_source << "\"},";
    js << "\"model\":{\"layers\":" << cfg.n_layers << ",\"dim\":" << cfg.dim << ",\"hidden\":" << cfg.hidden_dim
       << ",\"heads\":" << cfg.n_heads << ",\"kv_heads\":" << cfg.n_kv_heads << ",\"head_dim\":" << cfg.head_dim
       << ",\"vocab\":" << cfg.vocab_size << ",\"dtype\":\"" << a.dtype << "\",\"matmul_params\":" << jnum(params)
       << ",\"weight_bytes\":" << backend->weight_bytes() << ",\"kv_dtype\":\"fp16\"},";

    // ----- decode: B sequences prefilled to `context` positions, then timed greedy decode steps ----------------
    std::vector<std::vector<int>> seq_tables(static_cast<size_t>(max_batch), std::vector<int>(static_cast<size_t>(blocks_per_seq)));
    for (int s = 0; s < max_batch; ++s)
      for (int b = 0; b < blocks_per_seq; ++b) seq_tables[static_cast<size_t>(s)][static_cast<size_t>(b)] = s * blocks_per_seq + b;
    js << "\"decode\":[";
    for (size_t bi = 0; bi < a.batches.size(); ++bi) {
      const int B = a.batches[bi];
      // Prefill the B prompts, as many whole prompts per forward as the row budget allows.
      for (int s = 0; s < B;) {
        run.clear();
        Iteration shape;
        while (s < B && static_cast<int>(run.tokens.size()) + a.context <= o.max_batch_tokens) {
          for (int p = 0; p < a.context; ++p) {
            run.tokens.push_back((s * 131 + p * 17) % cfg.vocab_size);
            run.positions.push_back(p);
            run.tables.push_back(seq_tables[static_cast<size_t>(s)].data());
          }
          run.logit_rows.push_back(static_cast<int>(run.tokens.size()) - 1);
          shape.prefill_tokens += a.context;
          shape.prefill_attn += a.context * (a.context + 1) / 2.0;
          ++s;
        }
        run.step(shape);
      }
      std::vector<double> times;
      const int warmup = 3;
      for (int step = 0; step < warmup + a.decode_steps; ++step) {
        run.clear();
        const int pos = a.context + step;
        Iteration shape;
        shape.decode_seqs = B;
        for (int s = 0; s < B; ++s) {
          run.tokens.push_back((s + step) % cfg.vocab_size);
          run.positions.push_back(pos);
          run.tables.push_back(seq_tables[static_cast<size_t>(s)].data());
          run.logit_rows.push_back(s);
          shape.decode_context += pos + 1;
        }
        double t = run.step(shape);
        if (step >= warmup) times.push_back(t);
      }
      double total = 0;
      for (double t : times) total += t;
      const double mean_ctx = a.context + warmup + (a.decode_steps + 1) / 2.0;
      const double bytes = static_cast<double>(backend->weight_bytes()) + B * mean_ctx * kv_token_bytes;
      const double step_s = total / static_cast<double>(times.size());
      const double mbu = dev.peak_bandwidth > 0 ? bytes / step_s / dev.peak_bandwidth : 0;
      const double tps = B * static_cast<double>(times.size()) / total;
      std::printf("decode batch %4d: %10.1f tokens/s, step %.3f ms (median %.3f), %.3g bytes/step, MBU %.1f%%\n", B,
                  tps, 1e3 * step_s, 1e3 * median(times), bytes, 100 * mbu);
      js << (bi ? "," : "") << "{\"batch\":" << B << ",\"context\":" << a.context << ",\"steps\":" << times.size()
         << ",\"tokens_per_s\":" << jnum(tps) << ",\"step_ms_mean\":" << jnum(1e3 * step_s)
         << ",\"step_ms_median\":" << jnum(1e3 * median(times)) << ",\"bytes_per_step\":" << jnum(bytes)
         << ",\"mbu\":" << jnum(mbu) << "}";
    }
    js << "],\"graphs_captured\":" << backend->graphs_captured() << ",";

    // ----- prefill: one sequence of T tokens in one forward pass ---------------------------------------------------
    js << "\"prefill\":[";
    for (size_t pi = 0; pi < a.prefills.size(); ++pi) {
      const int T = a.prefills[pi];
      std::vector<int> table(static_cast<size_t>(T / kKvBlockSize + 1));
      for (size_t b = 0; b < table.size(); ++b) table[b] = static_cast<int>(b);
      std::vector<double> times;
      for (int rep = 0; rep < 4; ++rep) {
        run.clear();
        Iteration shape;
        shape.prefill_tokens = T;
        shape.prefill_attn = T * (T + 1) / 2.0;
        for (int p = 0; p < T; ++p) {
          run.tokens.push_back((p * 31 + 7) % cfg.vocab_size);
          run.positions.push_back(p);
          run.tables.push_back(table.data());
        }
        run.logit_rows.push_back(T - 1);
        double t = run.step(shape);
        if (rep > 0) times.push_back(t);  // the first pass warms up cuBLAS's heuristics
      }
      const double t = median(times);
      const double flops = 2.0 * layer_params(cfg) * T + 2.0 * cfg.vocab_size * cfg.dim +
                           4.0 * cfg.n_layers * cfg.q_dim() * (T * (T + 1) / 2.0);
      std::printf("prefill %5d tokens: %.2f ms, %.1f TFLOP/s (%.3g FLOP)\n", T, 1e3 * t, flops / t / 1e12, flops);
      js << (pi ? "," : "") << "{\"tokens\":" << T << ",\"seconds_median\":" << jnum(t) << ",\"flop\":" << jnum(flops)
         << ",\"tflops\":" << jnum(flops / t / 1e12) << "}";
    }
    js << "],";
    std::ofstream it(a.iterations);
    if (!it) throw t2s::InputError("cannot write " + a.iterations);
    for (const Iteration& r : run.log)
      it << "{\"prefill_tokens\":" << r.prefill_tokens << ",\"prefill_attn\":" << jnum(r.prefill_attn)
         << ",\"decode_seqs\":" << r.decode_seqs << ",\"decode_context\":" << jnum(r.decode_context)
         << ",\"seconds\":" << jnum(r.seconds) << "}\n";
    js << "\"iterations\":" << run.log.size() << ",\"iterations_file\":\"" << a.iterations << "\"}";
    std::ofstream out(a.out);
    if (!out) throw t2s::InputError("cannot write " + a.out);
    out << js.str() << "\n";
    std::printf("bench_gpu: wrote %s and %zu iteration records to %s\n", a.out.c_str(), run.log.size(), a.iterations.c_str());
    return 0;
  } catch (const t2s::InputError& e) {
    std::fprintf(stderr, "bench_gpu: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_gpu: error: %s\n", e.what());
    return 1;
  }
}
