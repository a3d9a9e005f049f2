#pragma once
//! Read-only memory mapping of a whole file (weights are used in place, never copied).
#include <cstddef>
#include <cstdint>
#include <string>

namespace t2s::engine {

//! A read-only mmap of one file; throws t2s::InputError naming the file when it cannot be opened.
class MappedFile {
 public:
  //! Maps `path` read-only.
  explicit MappedFile(const std::string& path);
  ~MappedFile();
  MappedFile(const MappedFile&) = delete;
  MappedFile& operator=(const MappedFile&) = delete;
  //! First byte of the mapping.
  const uint8_t* data() const { return data_; }
  //! Size in bytes.
  size_t size() const { return size_; }
  //! The path it was opened with (for error messages).
  const std::string& path() const { return path_; }

 private:
  std::string path_;
  const uint8_t* data_ = nullptr;
  size_t size_ = 0;
};

}  // namespace t2s::engine
