// iterations.jsonl (issue 17): the per-instance fit recovers a known linear model from noisy samples written and
// read back in the file format; a recorded run's engine instances become simulated ones only with a fit.
#include <catch2/catch.hpp>

#include <fstream>
#include <random>

#include "common/status.hpp"
#include "harness/recorded_run.hpp"
#include "scheduler/iteration_log.hpp"
#include "tests/support.hpp"

using namespace t2s;
using namespace t2s::scheduler;

namespace {

// Iterations of engine-like shapes (prefill chunks, decode batches, mixes), timed by `truth` with multiplicative
// noise of ±`noise` (uniform), as the embedded engine reports them (no prefill_attn).
std::vector<IterationRecord> synthetic_iterations(const std::string& instance, const LinearIterationModel& truth,
                                                  double noise, uint32_t seed, int n) {
  std::mt19937 rng(seed);
  std::uniform_int_distribution<int> prefill(0, 256), seqs(0, 24), ctx_per_seq(16, 600);
  std::uniform_real_distribution<double> jitter(1 - noise, 1 + noise);
  std::vector<IterationRecord> out;
  for (int k = 0; k < n; ++k) {
    IterationRecord r;
    r.instance = instance;
    r.t_s = 0.01 * k;
    auto& s = r.sample.shape;
    s.prefill_tokens = k % 3 == 0 ? prefill(rng) : 0;
    s.decode_seqs = k % 3 == 1 && s.prefill_tokens == 0 ? 1 + seqs(rng) : seqs(rng);
    if (s.prefill_tokens == 0 && s.decode_seqs == 0) s.decode_seqs = 1;
    for (int q = 0; q < s.decode_seqs; ++q) s.decode_context += ctx_per_seq(rng);
    r.sample.seconds = truth.predict(s) * jitter(rng);
    out.push_back(r);
  }
  return out;
}

}  // namespace

TEST_CASE("iterations.jsonl: fitting per instance recovers known coefficients through the file", "[cost_model][recorded]") {
  LinearIterationModel fast{0.0004, 2.0e-5, 0, 3.0e-4, 2.0e-7}, slow{0.0010, 9.0e-5, 0, 1.1e-3, 8.0e-7};
  auto a = synthetic_iterations("fast", fast, 0.02, 7, 400);
  auto b = synthetic_iterations("slow", slow, 0.02, 8, 300);
  test::TempDir dir("t2s-iterlog");
  {
    std::ofstream f(dir.file("iterations.jsonl"));
    // Interleaved, as two instances report them.
    for (size_t k = 0; k < std::max(a.size(), b.size()); ++k) {
      if (k < a.size()) f << format_iteration_line(a[k]) << "\n";
      if (k < b.size()) f << format_iteration_line(b[k]) << "\n";
    }
  }
  const auto records = load_iteration_log(dir.file("iterations.jsonl"));
  REQUIRE(records.size() == 700);
  CHECK(records[1].instance == "slow");
  CHECK(records[1].sample.seconds == b[0].sample.seconds);  // shortest round-trip doubles
  const auto by = samples_by_instance(records);
  REQUIRE(by.size() == 2);
  for (const auto& [name, truth] : {std::pair{"fast", fast}, std::pair{"slow", slow}}) {
    INFO(name);
    auto fit = fit_instance_iterations(by.at(name));
    REQUIRE(fit.ok());
    // ±2% uniform noise over a few hundred samples: every coefficient within 5%, the intercept within 30% (it is a
    // small fraction of most iterations' time, so least squares pins it down least).
    CHECK(fit->c_prefill == Approx(truth.c_prefill).epsilon(0.05));
    CHECK(fit->c_seq == Approx(truth.c_seq).epsilon(0.05));
    CHECK(fit->c_ctx == Approx(truth.c_ctx).epsilon(0.05));
    CHECK(fit->c0 == Approx(truth.c0).epsilon(0.30));
    // The engine folds prefill attention into its context: the fit prices it the same.
    CHECK(fit->c_attn == fit->c_ctx);
    CHECK(fit->samples == by.at(name).size());
  }
}

TEST_CASE("iterations.jsonl: bad lines are refused naming the file and line", "[cost_model][recorded]") {
  test::TempDir dir("t2s-iterlog");
  auto refused = [&](const std::string& line, const std::string& needle) {
    {
      std::ofstream f(dir.file("bad.jsonl"));
      f << "{\"instance\":\"a\",\"prefill_tokens\":4,\"seconds\":0.01}\n\n" << line << "\n";
    }
    INFO(line);
    CHECK_THROWS_WITH(load_iteration_log(dir.file("bad.jsonl")), Catch::Contains("bad.jsonl:3") && Catch::Contains(needle));
  };
  refused("{\"prefill_tokens\":4}", "'seconds'");
  refused("{\"seconds\":-1}", "'seconds' must be a finite number > 0");
  refused("{\"seconds\":0.1,\"decode_seqs\":-2}", "'decode_seqs'");
  refused("{\"seconds\":0.1,\"speed\":3}", "unknown field 'speed'");
  refused("not json", "JSON parse error");
  // bench_gpu's %g form of decode_context is read.
  {
    std::ofstream f(dir.file("g.jsonl"));
    f << "{\"prefill_tokens\":0,\"prefill_attn\":0,\"decode_seqs\":8,\"decode_context\":1.2e+06,\"seconds\":0.02}\n";
  }
  CHECK(load_iteration_log(dir.file("g.jsonl")).at(0).sample.shape.decode_context == 1200000);
}

TEST_CASE("prepare_fitted_setup: recorded engine instances are simulated with their fit and recorded limits",
          "[cost_model][recorded]") {
  ReplaySetup setup;
  InstanceSpec eng;
  eng.name = "cpu-a";
  eng.backend = Backend::engine;
  eng.model_file = "model.bin";
  InstanceSpec sim;
  sim.name = "gpu";
  sim.gpu = gpu_profile("A100-80G");
  sim.model = model_profile("llama-3.1-8b");
  setup.cluster = {"mixed", {eng, sim}};
  setup.workload.recorded_instances = {{"cpu-a", "engine", 12, 500, 16, 128}};

  SECTION("without iterations of the engine instance it cannot be simulated") {
    CHECK_THROWS_WITH(prepare_fitted_setup(setup, {}), Catch::Contains("'cpu-a'") && Catch::Contains("cannot be simulated"));
  }
  SECTION("iterations of an instance the cluster lacks are refused") {
    auto recs = synthetic_iterations("nope", {0.001, 1e-5, 0, 1e-4, 1e-7}, 0.01, 3, 50);
    CHECK_THROWS_WITH(prepare_fitted_setup(setup, recs), Catch::Contains("'nope'"));
  }
  SECTION("with them: fitted, simulated, the recorded capacity, KV and token budget; the GPU keeps its preset") {
    LinearIterationModel truth{0.001, 4e-5, 0, 6e-4, 3e-7};
    auto notes = prepare_fitted_setup(setup, synthetic_iterations("cpu-a", truth, 0.0, 5, 60));
    REQUIRE(notes.size() == 2);
    CHECK_THAT(notes[0], Catch::Contains("cpu-a: fitted on 60 iterations"));
    CHECK_THAT(notes[1], Catch::Contains("gpu: no iterations: keeps its preset model"));
    const auto& s = setup.cluster.instances[0];
    CHECK(s.backend == Backend::sim);
    CHECK(s.max_running == 12);
    CHECK(s.kv_blocks == 500);
    CHECK(s.max_batch_tokens == 128);
    CHECK(s.gpu.call_overhead_s == 0);
    REQUIRE(setup.sim.fitted_costs.count("cpu-a"));
    CHECK(setup.sim.fitted_costs.at("cpu-a").c_seq == Approx(truth.c_seq).epsilon(1e-6));  // noise-free: exact
    CHECK_FALSE(setup.sim.fitted_costs.count("gpu"));
  }
}
