#pragma once
//! The RapidJSON writer that server/ and runtime/ build JSON text with, and a string helper (String wants a length).
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstddef>
#include <string>
#include <string_view>

namespace t2s {

//! A compact JSON writer into a string buffer.
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

//! Length of the well-formed UTF-8 sequence (Unicode Table 3-7: no overlongs, surrogates or code points past
//! U+10FFFF) that starts `s`, or 0 when none does.
inline size_t utf8_sequence_length(std::string_view s) {
  if (s.empty()) return 0;
  const auto b = [&](size_t i) { return static_cast<unsigned char>(s[i]); };
  const unsigned char c = b(0);
  if (c < 0x80) return 1;
  size_t n;
  unsigned char lo = 0x80, hi = 0xBF;  // the allowed range of the second byte
  if (c >= 0xC2 && c <= 0xDF) n = 2;
  else if (c == 0xE0) n = 3, lo = 0xA0;
  else if (c == 0xED) n = 3, hi = 0x9F;
  else if (c >= 0xE1 && c <= 0xEF) n = 3;
  else if (c == 0xF0) n = 4, lo = 0x90;
  else if (c == 0xF4) n = 4, hi = 0x8F;
  else if (c >= 0xF1 && c <= 0xF3) n = 4;
  else return 0;
  if (s.size() < n || b(1) < lo || b(1) > hi) return 0;
  for (size_t i = 2; i < n; ++i)
    if (b(i) < 0x80 || b(i) > 0xBF) return 0;
  return n;
}

//! `s` with each byte that does not begin a well-formed UTF-8 sequence replaced by U+FFFD.
inline std::string valid_utf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_sequence_length(s.substr(i));
    if (n == 0) {
      out += "\xEF\xBF\xBD";
      ++i;
    } else {
      out.append(s.substr(i, n));
      i += n;
    }
  }
  return out;
}

//! Writes `s` as a JSON string value (embedded NULs and all), bytes as they are: a remote t2s reading engine-serve's
//! answers gets exactly the bytes the model produced, also when a streamed piece ends inside a UTF-8 sequence.
inline void write_json_string(JsonWriter& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

//! Writes `s` as a JSON string value of well-formed UTF-8: bytes that do not begin a well-formed sequence (a small
//! model's output, a database's raw TEXT) become U+FFFD. For whole messages to clients that must get UTF-8 text:
//! a WebSocket peer or a browser drops the connection on a text frame that is not.
inline void write_json_text(JsonWriter& w, std::string_view s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = utf8_sequence_length(s.substr(i));
    if (n == 0) {
      const std::string fixed = valid_utf8(s);
      w.String(fixed.data(), static_cast<rapidjson::SizeType>(fixed.size()));
      return;
    }
    i += n;
  }
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

}  // namespace t2s
