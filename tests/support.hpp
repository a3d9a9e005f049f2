#pragma once
//! Helpers for tests: where the shared data lives and scratch folders.
#include <cstdint>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iterator>
#include <map>
#include <string>
#include <utility>

#include <unistd.h>

namespace t2s::test {

//! The shared folder (env T2S_SHARED_DIR, else the CMake cache value).
inline std::string shared_dir() {
  if (const char* e = std::getenv("T2S_SHARED_DIR"); e && *e) return e;
  return T2S_SHARED_DIR_DEFAULT;
}
//! `shared_dir()/data/<rel>`.
inline std::string shared_data(const std::string& rel) { return shared_dir() + "/data/" + rel; }
//! The source tree root.
inline std::string source_dir() { return T2S_SOURCE_DIR; }

//! A fresh empty folder under the system temp dir, removed when the object dies.
class TempDir {
 public:
  explicit TempDir(const std::string& tag = "t2s") {
    auto base = std::filesystem::temp_directory_path();
    for (int i = 0;; ++i) {
      auto p = base / (tag + "-" + std::to_string(::getpid()) + "-" + std::to_string(i));
      if (std::filesystem::create_directory(p)) {
        path_ = p;
        break;
      }
    }
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  //! The folder.
  const std::filesystem::path& path() const { return path_; }
  //! A path inside it.
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

//! Every file under `dir` with its size and content hash (std::hash of the bytes): what "nothing was written
//! there" compares.
inline std::map<std::string, std::pair<uintmax_t, size_t>> folder_state(const std::filesystem::path& dir) {
  std::map<std::string, std::pair<uintmax_t, size_t>> out;
  for (const auto& e : std::filesystem::recursive_directory_iterator(dir)) {
    if (!e.is_regular_file()) continue;
    std::ifstream in(e.path(), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    out[e.path().string()] = {e.file_size(), std::hash<std::string>{}(bytes)};
  }
  return out;
}

}  // namespace t2s::test
