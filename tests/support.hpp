#pragma once
//! Helpers for tests: where the shared data lives and scratch folders.
#include <cstdlib>
#include <filesystem>
#include <string>

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

}  // namespace t2s::test
