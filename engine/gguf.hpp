#pragma once
//! GGUF v3: reading metadata and tensor directories (weights memory-mapped), building a Model and a Tokenizer,
//! and a small writer (tests and benchmarks build random-weight models with it).
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "engine/mapped_file.hpp"
#include "engine/model.hpp"
#include "engine/tensor.hpp"
#include "engine/tokenizer.hpp"

namespace t2s::engine {

//! GGUF metadata value types.
enum class GgufType : uint32_t {
  U8 = 0, I8 = 1, U16 = 2, I16 = 3, U32 = 4, I32 = 5, F32 = 6, BOOL = 7, STRING = 8, ARRAY = 9, U64 = 10, I64 = 11,
  F64 = 12
};

//! One metadata value: a scalar (one entry) or an array; numbers are kept as int64 and double, strings as bytes.
struct GgufValue {
  GgufType type = GgufType::U32;       //!< scalar type, or ARRAY
  GgufType elem_type = GgufType::U32;  //!< element type for arrays
  std::vector<int64_t> ints;           //!< integer/bool values
  std::vector<double> floats;          //!< float values
  std::vector<std::string> strings;    //!< string values
};

//! One tensor's directory entry.
struct GgufTensor {
  std::string name;            //!< e.g. "blk.0.attn_q.weight"
  std::vector<uint64_t> dims;  //!< ne[0] (fastest, = columns) first
  uint32_t type = 0;           //!< GGML type id
  uint64_t offset = 0;         //!< from the start of the data section
  const uint8_t* data = nullptr;  //!< mapped bytes
  size_t bytes = 0;            //!< size in bytes
};

//! A parsed GGUF file; throws t2s::InputError naming the field or tensor on malformed input.
struct GgufFile {
  std::shared_ptr<MappedFile> file;   //!< the mapping
  uint32_t version = 0;               //!< 2 or 3
  std::map<std::string, GgufValue> kv;  //!< metadata
  std::vector<GgufTensor> tensors;      //!< directory in file order
  //! The tensor named `name`, or null.
  const GgufTensor* find(const std::string& name) const;
  //! Integer metadata `key`, or `def` when absent.
  int64_t get_int(const std::string& key, int64_t def) const;
  //! Integer metadata `key`; throws InputError naming the key when absent.
  int64_t require_int(const std::string& key) const;
  //! Float metadata `key`, or `def`.
  double get_float(const std::string& key, double def) const;
  //! String metadata `key`, or `def`.
  std::string get_string(const std::string& key, const std::string& def) const;
};

//! Parses `path`'s header, metadata and tensor directory (tensor data stays mapped).
GgufFile read_gguf(const std::string& path);
//! Builds the Model of a "llama" or "qwen2" GGUF file (Llama-2/3, Qwen2/2.5 layouts, tied or untied output).
std::shared_ptr<Model> load_gguf_model(const GgufFile& file);
//! Reads and builds in one call.
std::shared_ptr<Model> load_gguf_model(const std::string& path);
//! The file's tokenizer: "llama" (SentencePiece scores) or "gpt2" (byte-level BPE with merges).
std::unique_ptr<Tokenizer> load_gguf_tokenizer(const GgufFile& file);

//! Writes GGUF v3 files.
class GgufWriter {
 public:
  //! A string value.
  void add_string(const std::string& key, const std::string& v);
  //! A uint32 value.
  void add_u32(const std::string& key, uint32_t v);
  //! A uint64 value.
  void add_u64(const std::string& key, uint64_t v);
  //! A float32 value.
  void add_f32(const std::string& key, float v);
  //! A bool value.
  void add_bool(const std::string& key, bool v);
  //! An array of strings.
  void add_strings(const std::string& key, const std::vector<std::string>& v);
  //! An array of float32.
  void add_f32s(const std::string& key, const std::vector<float>& v);
  //! An array of int32.
  void add_i32s(const std::string& key, const std::vector<int32_t>& v);
  //! A tensor of logical shape [rows][cols] (dims written as {cols, rows}; rows = 1 writes a 1-D tensor),
  //! converted from float to `type`.
  void add_tensor(const std::string& name, DType type, int64_t rows, int64_t cols, const float* data);
  //! Writes everything to `path` (alignment 32).
  void write(const std::string& path) const;

 private:
  struct Tensor {
    std::string name;
    std::vector<uint64_t> dims;
    uint32_t type;
    std::vector<uint8_t> bytes;
  };
  std::vector<uint8_t> meta_;
  uint64_t kv_count_ = 0;
  std::vector<Tensor> tensors_;
};

//! GGML type id of `t`.
uint32_t ggml_type_id(DType t);

}  // namespace t2s::engine
