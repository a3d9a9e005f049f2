#pragma once
//! The RapidJSON writer that server/ and runtime/ build JSON text with, and a string helper (String wants a length).
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <string_view>

namespace t2s {

//! A compact JSON writer into a string buffer.
using JsonWriter = rapidjson::Writer<rapidjson::StringBuffer>;

//! Writes `s` as a JSON string value (embedded NULs and all).
inline void write_json_string(JsonWriter& w, std::string_view s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

}  // namespace t2s
