// SQL extraction from model text: arbitrary model output must give nothing or a statement found in the text.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "sqlexec/extract.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  auto sql = t2s::sqlexec::extract_sql(text);
  if (sql && sql->size() > text.size()) std::abort();  // extraction only selects and trims
  return 0;
}
