// Cluster files on arbitrary text: InputError or a cluster whose every instance passed the range checks.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "scheduler/instance.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  t2s::fuzz::expect_input_errors_only([&] {
    auto c = t2s::scheduler::parse_cluster_json(text, "fuzz.json");
    for (const auto& s : c.instances)
      if (s.tp < 1 || s.tp > 64 || s.name.empty() || s.max_running < 1 || s.kv_blocks < 0) std::abort();
  });
  return 0;
}
