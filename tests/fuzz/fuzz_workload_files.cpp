// Workload files on arbitrary bytes: Spider and BIRD question files (beside a fixed valid schema file), tables.json,
// hexgen call traces, recorded workload traces and recorded runs (recorded.json). InputError or a workload, never a
// crash. The first byte picks.
#include <cstdint>
#include <string>

#include "tests/fuzz/fuzz_support.hpp"
#include "workloads/loaders.hpp"
#include "workloads/recorded.hpp"
#include "workloads/trace_file.hpp"

namespace {

const char* kTables = R"([{"db_id": "concert_singer", "table_names_original": ["singer"], "table_names": ["singer"],
  "column_names_original": [[-1, "*"], [0, "singer_id"], [0, "name"]], "column_names": [[-1, "*"], [0, "singer id"],
  [0, "name"]], "column_types": ["text", "number", "text"], "primary_keys": [1], "foreign_keys": []}])";

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  using namespace t2s::workloads;
  static const std::string dir = [] {
    t2s::fuzz::write_scratch("tables.json", kTables);
    t2s::fuzz::write_scratch("dev_tables.json", kTables);
    return t2s::fuzz::scratch_dir();
  }();
  WorkloadSpec spec;
  spec.data_dir = dir;
  t2s::fuzz::expect_input_errors_only([&] {
    switch (data[0] % 6) {
      case 0:
        spec.questions_file = t2s::fuzz::write_scratch("dev.json", bytes);
        load_spider(spec);
        break;
      case 1:
        spec.questions_file = t2s::fuzz::write_scratch("mini_dev_sqlite.json", bytes);
        load_bird(spec);
        break;
      case 2: load_tables_json(t2s::fuzz::write_scratch("other_tables.json", bytes)); break;
      case 3: parse_hexgen_trace_file(t2s::fuzz::write_scratch("trace.json", bytes)); break;
      case 4: load_workload_trace(t2s::fuzz::write_scratch("workload.jsonl", bytes)); break;
      default: parse_recorded_run(std::string(bytes), "recorded.json"); break;
    }
  });
  return 0;
}
