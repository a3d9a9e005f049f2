#pragma once
// Shared by the libFuzzer harnesses: the input as a file (for loaders that take paths), and the rule that input
// errors are the expected outcome while anything else is a finding.
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <fstream>
#include <string>
#include <string_view>

#include "common/status.hpp"

namespace t2s::fuzz {

//! A per-process scratch folder in /dev/shm (tmpfs: the loaders read real files without touching the disk).
inline const std::string& scratch_dir() {
  static const std::string dir = [] {
    std::string d = "/dev/shm/t2s-fuzz-" + std::to_string(::getpid());
    std::string cmd = "mkdir -p " + d;
    if (std::system(cmd.c_str()) != 0) std::abort();
    return d;
  }();
  return dir;
}

//! Writes `bytes` to `name` inside the scratch folder and returns its path.
inline std::string write_scratch(const std::string& name, std::string_view bytes) {
  std::string path = scratch_dir() + "/" + name;
  std::ofstream f(path, std::ios::binary | std::ios::trunc);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  return path;
}

//! Runs `body`; an InputError is the documented answer to bad input, any other exception is a finding.
template <class Body>
void expect_input_errors_only(Body body) {
  try {
    body();
  } catch (const t2s::InputError&) {
  }
}

}  // namespace t2s::fuzz
