#pragma once
//! The embedded synthetic benchmark: seeded SQLite databases of six domains and templated questions with gold SQL.
#include <cstdint>
#include <string>
#include <vector>

#include "workloads/workload.hpp"

namespace t2s::workloads {

//! Bumped whenever generation changes, so cached sets from older code are regenerated.
inline constexpr int kSyntheticVersion = 4;

//! What to generate.
struct SyntheticOptions {
  uint64_t seed = 1;
  double scale = 1.0;             //!< multiplies the row counts of the large tables (lookup tables keep theirs)
  size_t questions_per_db = 40;   //!< questions generated per database
};

//! The domain names, in generation order.
std::vector<std::string> synthetic_domains();

//! Generates the set into `dir` (`<dir>/<db>/<db>.sqlite`, `<dir>/questions.json` in Spider's dev.json form with
//! `difficulty`, `<dir>/manifest.json`) unless `<dir>/manifest.json` already matches version, seed, scale and count;
//! returns the workload either way. Same options → byte-identical files.
Workload generate_synthetic(const std::string& dir, const SyntheticOptions& options);

//! `generate_synthetic(spec.cache_dir, {spec.seed})` (the default set).
Workload load_synthetic(const WorkloadSpec& spec);

}  // namespace t2s::workloads
