#include <catch2/catch.hpp>

#include <cmath>

#include "common/rng.hpp"
#include "common/status.hpp"
#include "scheduler/cost_model.hpp"
#include "scheduler/instance.hpp"

using namespace t2s;
using namespace t2s::scheduler;

namespace {
CostModel paper_instance(const std::string& gpu, int tp) {
  InstanceSpec s;
  s.gpu = gpu_profile(gpu);
  s.tp = tp;
  s.model = model_profile("llama-3.1-70b");
  return CostModel(s);
}
}  // namespace

// Reference: HexGen-Text2SQL (arXiv 2505.05286), profiled standalone latencies of Llama-3.1-70B (FP16).
TEST_CASE("cost model reproduces the paper's profiled Llama-3.1-70B latencies within 25%", "[scheduler]") {
  struct Row {
    const char* gpu;
    int tp;
    double candidate_s, revise_s;
  };
  const Row rows[] = {{"A100-80G", 4, 18.24, 3.33}, {"H100-SXM", 4, 8.79, 1.43}, {"A6000", 8, 34.27, 8.03},
                      {"L40S", 8, 32.62, 5.89}};
  for (const auto& r : rows) {
    CostModel m = paper_instance(r.gpu, r.tp);
    const double cand = m.standalone_s(11748, 678, 0, m.default_chunk_tokens());
    const double rev = m.standalone_s(5963, 79, 0, m.default_chunk_tokens());
    INFO(r.gpu << ": candidate " << cand << " s vs " << r.candidate_s << ", revise " << rev << " s vs " << r.revise_s);
    CHECK(std::abs(cand / r.candidate_s - 1) < 0.25);
    CHECK(std::abs(rev / r.revise_s - 1) < 0.25);
  }
}

TEST_CASE("KV capacity follows memory minus weights", "[scheduler]") {
  // Llama-3.1-70B on 4 × A100-80G: 0.9 × 320 GB − 141.2 GB weights − 6 GB reserve ≈ 140.8 GB of KV;
  // one 16-token block is 16 × 2 × 80 layers × 8 KV heads × 128 × 2 bytes = 5.24 MB → ≈ 26.9k blocks.
  CostModel m = paper_instance("A100-80G", 4);
  CHECK(m.kv_capacity_blocks() == Approx(140.8e9 / 5242880.0).epsilon(0.01));
  // A 70B model does not fit on one 48 GB card at all.
  CHECK(paper_instance("L40S", 1).kv_capacity_blocks() == 0);
}

TEST_CASE("iteration cost grows with batch, context and prefill", "[scheduler]") {
  CostModel m = paper_instance("A100-80G", 4);
  IterationShape one{0, 0, 1, 1000}, many{0, 0, 64, 64000}, longctx{0, 0, 64, 64 * 16000};
  CHECK(m.iteration_s(many) > m.iteration_s(one));
  CHECK(m.iteration_s(longctx) > m.iteration_s(many));
  IterationShape prefill{2048, 2048.0 * 1024, 0, 0};
  CHECK(m.iteration_s(prefill) > 5 * m.iteration_s(one));
  CHECK(m.iteration_s(IterationShape{}) == 0.0);
}

TEST_CASE("least-squares fit recovers a linear iteration model", "[scheduler]") {
  LinearIterationModel truth{0.003, 2.5e-4, 1e-9, 2e-4, 3e-8, 0, 0};
  Rng rng(5);
  std::vector<IterationSample> samples;
  for (int i = 0; i < 200; ++i) {
    IterationShape s;
    s.prefill_tokens = rng.bernoulli(0.5) ? static_cast<int>(rng.uniform_int(16, 2048)) : 0;
    s.prefill_attn = s.prefill_tokens * rng.uniform(0, 8000);
    s.decode_seqs = static_cast<int>(rng.uniform_int(0, 64));
    s.decode_context = s.decode_seqs * rng.uniform_int(100, 8000);
    samples.push_back({s, truth.predict(s) * (1 + rng.normal(0, 0.01))});
  }
  auto fit = fit_iteration_model(samples);
  REQUIRE(fit.ok());
  CHECK(fit->c_prefill == Approx(truth.c_prefill).epsilon(0.05));
  CHECK(fit->c_seq == Approx(truth.c_seq).epsilon(0.1));
  CHECK(fit->c_ctx == Approx(truth.c_ctx).epsilon(0.1));
  CHECK(fit->rms_error_s < 0.01 * 0.5);
  // A fitted model replaces physics.
  CostModel m = paper_instance("A100-80G", 4);
  m.set_fitted(*fit);
  IterationShape probe{512, 512.0 * 300, 8, 8000};
  CHECK(m.iteration_s(probe) == Approx(truth.predict(probe)).epsilon(0.05));
  CHECK_FALSE(fit_iteration_model(std::span<const IterationSample>(samples.data(), 2)).ok());
}

TEST_CASE("cluster files parse, expand counts and name their errors", "[scheduler]") {
  auto c = parse_cluster_json(R"({"instances": [
      {"name": "a100", "gpu": "A100-80G", "tp": 4, "model": "llama-3.1-70b", "count": 2},
      {"name": "l40s", "gpu": "L40S", "tp": 2, "model": "qwen2.5-coder-14b"}]})",
                              "c.json");
  REQUIRE(c.instances.size() == 3);
  CHECK(c.instances[0].name == "a100-0");
  CHECK(c.instances[1].name == "a100-1");
  CHECK(c.instances[2].tp == 2);
  CHECK(c.instances[2].model.layers == 48);
  auto bad = [](const char* text) {
    try {
      parse_cluster_json(text, "bad.json");
    } catch (const InputError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(bad(R"({"instances": [{"name": "x", "gpu": "Z80", "model": "llama-3.1-8b"}]})").find("instances[0]") !=
        std::string::npos);
  CHECK(bad(R"({"instances": [{"name": "x", "gpu": "A6000", "model": "gpt-9"}]})").find("unknown model") !=
        std::string::npos);
  CHECK(bad(R"({"instances": []})").find("empty") != std::string::npos);
  CHECK(bad(R"({"instances": [{"name": "e", "backend": "engine", "model_file": "m.gguf", "device": "tpu"}]})")
            .find("device 'tpu'") != std::string::npos);
  auto cuda = parse_cluster_json(R"({"instances": [{"name": "e", "backend": "engine", "model_file": "m.gguf",
                                                    "device": "cuda"}]})", "ok.json");
  CHECK(cuda.instances[0].device == "cuda");
  // A remote's window and where its key is: only for remotes, the window range-checked.
  auto remote = parse_cluster_json(R"({"instances": [{"name": "r", "backend": "remote", "url": "http://h:1",
                                                      "context_tokens": 8192, "api_key_env": "MY_KEY"}]})", "ok.json");
  CHECK(remote.instances[0].context_tokens == 8192);
  CHECK(remote.instances[0].api_key_env == "MY_KEY");
  CHECK(bad(R"({"instances": [{"name": "r", "backend": "remote", "url": "http://h:1", "context_tokens": -1}]})")
            .find("'context_tokens'") != std::string::npos);
  CHECK(bad(R"({"instances": [{"name": "e", "backend": "engine", "model_file": "m.gguf", "api_key_env": "K"}]})")
            .find("field 'api_key_env' applies to backend \"remote\" only") != std::string::npos);
  CHECK(parse_cluster_json(R"({"instances": [{"name": "t", "gpu": "H100-SXM", "model": "tinyllama-1.1b"}]})", "ok.json")
            .instances[0].model.params_b == Approx(1.10));
  // Every number is range-checked and must be an integer: "5", 2.5 and 1e3 became 1, a tp of 2^32 + 4 became 4.
  const std::string head = R"({"instances": [{"name": "x", "gpu": "A6000", "model": "llama-3.1-8b", )";
  for (const std::string field : {R"("count": "5")", R"("count": 2.5)", R"("count": 1e3)", R"("count": 0)",
                                  R"("count": 1025)", R"("tp": 4294967300)", R"("tp": -1)", R"("max_running": 0)",
                                  R"("kv_blocks": -3)", R"("max_batch_tokens": 8)", R"("max_running": 4294967297)"}) {
    std::string err = bad((head + field + "}]}").c_str());
    INFO(field << " -> " << err);
    std::string name = field.substr(1, field.find('"', 1) - 1);
    CHECK(err.find("instances[0]: field '" + name + "' must be an integer in [") != std::string::npos);
  }
  CHECK(bad((head + R"("chunked_prefill": 1}]})").c_str()).find("'chunked_prefill' must be true or false") !=
        std::string::npos);
  CHECK(bad((head + R"("cuont": 2}]})").c_str()).find("unknown field 'cuont'") != std::string::npos);
  CHECK(bad(R"({"instances": [{"name": "", "gpu": "A6000", "model": "llama-3.1-8b"}]})").find("'name' is empty") !=
        std::string::npos);
  CHECK(parse_cluster_json(head + R"("count": 3, "tp": 2}]})", "ok.json").instances.size() == 3);
  CHECK(cluster_preset("hetero-paper").instances.size() == 4);
  CHECK_THROWS_AS(load_cluster("no-such-preset"), InputError);
}

TEST_CASE("prefix cache pins, evicts in LRU order and counts blocks", "[scheduler]") {
  PrefixCache pc;
  pc.insert(1, 100, 7, 0.0);
  pc.insert(2, 200, 13, 1.0);
  CHECK(pc.blocks() == 20);
  CHECK(pc.evictable_blocks() == 0);
  CHECK(pc.evict(100) == 0);  // both pinned
  pc.release(1);
  pc.release(2);
  CHECK(pc.evictable_blocks() == 20);
  pc.acquire(1, 2.0);  // 1 is now pinned and most recent
  pc.release(1);
  CHECK(pc.evict(1) == 13);  // 2 is least recently used
  CHECK(pc.find(2) == nullptr);
  CHECK(pc.hit_tokens(1, 150) == 100);
  CHECK(pc.hit_tokens(1, 50) == 50);
  CHECK(pc.hit_tokens(3, 50) == 0);
}
