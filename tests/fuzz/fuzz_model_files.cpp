// The GGUF and llama2.c loaders (model and tokenizer files) on arbitrary bytes: an InputError or a model whose
// dimensions are consistent, never a crash, a huge allocation or an internal error. The first byte picks the loader.
#include <cstdint>
#include <string>

#include "engine/gguf.hpp"
#include "engine/llama2c.hpp"
#include "engine/model.hpp"
#include "engine/tokenizer.hpp"
#include "tests/fuzz/fuzz_support.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  using namespace t2s::engine;
  switch (data[0] % 3) {
    case 0:
      t2s::fuzz::expect_input_errors_only([&] {
        GgufFile g = read_gguf(t2s::fuzz::write_scratch("m.gguf", bytes));
        t2s::fuzz::expect_input_errors_only([&] { load_gguf_model(g); });
        auto tok = load_gguf_tokenizer(g);
        tok->decode_all(tok->encode("SELECT name FROM singer; <|im_end|>", true));
      });
      break;
    case 1:
      t2s::fuzz::expect_input_errors_only([&] { load_llama2c_checkpoint(t2s::fuzz::write_scratch("m.bin", bytes)); });
      break;
    default:
      t2s::fuzz::expect_input_errors_only([&] {
        auto tok = load_llama2c_tokenizer(t2s::fuzz::write_scratch("tok.bin", bytes), 64);
        tok->decode_all(tok->encode("One day, Tom", true));
      });
      break;
  }
  return 0;
}
