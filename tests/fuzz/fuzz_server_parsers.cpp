// What a hostile peer controls in the server: WebSocket protocol JSON (parse_client_frame) and an OpenAI-compatible
// remote's SSE stream (SseParser, fed in arbitrary pieces). The first byte picks; never a crash, never a throw.
#include <cstdint>
#include <cstdlib>
#include <string>

#include "server/openai_client.hpp"
#include "server/protocol.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  std::string_view bytes(reinterpret_cast<const char*>(data) + 1, size - 1);
  if (data[0] % 2 == 0) {
    t2s::server::parse_client_frame(bytes);
    return 0;
  }
  // The same stream fed whole and in pieces of the first byte's size must give the same events.
  std::string whole, pieces;
  t2s::server::SseParser a, b;
  a.feed(bytes, [&](std::string_view d) { whole.append(d).push_back('\n'); });
  size_t step = 1 + data[0] / 2 % 16;
  for (size_t i = 0; i < bytes.size(); i += step)
    b.feed(bytes.substr(i, step), [&](std::string_view d) { pieces.append(d).push_back('\n'); });
  if (whole != pieces) std::abort();
  return 0;
}
