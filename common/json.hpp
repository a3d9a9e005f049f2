#pragma once
//! RapidJSON helpers: strict parsing whose errors name the file, the offset and the entry.
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>

namespace t2s::json {

//! Reads a whole file into a string; throws InputError naming the path when it cannot be read.
std::string read_file(const std::string& path);
//! Writes `text` to `path` (creating parent folders); throws std::runtime_error on failure.
void write_file(const std::string& path, std::string_view text);

//! Parses `text`; throws InputError "<what>: JSON parse error at offset N: reason".
rapidjson::Document parse(std::string_view text, const std::string& what);
//! Reads and parses a file; errors name the file.
rapidjson::Document parse_file(const std::string& path);

//! Required string member; throws InputError "<where>: missing string field 'key'".
std::string get_string(const rapidjson::Value& obj, const char* key, const std::string& where);
//! Required integer member.
int64_t get_int(const rapidjson::Value& obj, const char* key, const std::string& where);
//! Required number member (integer or real).
double get_double(const rapidjson::Value& obj, const char* key, const std::string& where);
//! Optional string member with a default.
std::string opt_string(const rapidjson::Value& obj, const char* key, std::string def);
//! Optional number member with a default.
double opt_double(const rapidjson::Value& obj, const char* key, double def);
//! Optional integer member with a default.
int64_t opt_int(const rapidjson::Value& obj, const char* key, int64_t def);
//! Optional bool member with a default.
bool opt_bool(const rapidjson::Value& obj, const char* key, bool def);
//! Optional integer member in [lo, hi]; present but not an integer ("5", 2.5, 1e3) or out of range throws
//! InputError "<where>: field 'key' must be an integer in [lo, hi]".
int64_t opt_int_in(const rapidjson::Value& obj, const char* key, int64_t def, int64_t lo, int64_t hi,
                   const std::string& where);
//! Optional number member in [lo, hi]; present but not a number or out of range throws InputError naming it.
double opt_double_in(const rapidjson::Value& obj, const char* key, double def, double lo, double hi,
                     const std::string& where);
//! Optional bool member; present but not a bool throws InputError naming it.
bool opt_bool_strict(const rapidjson::Value& obj, const char* key, bool def, const std::string& where);
//! Throws InputError "<where>: unknown field 'x' (known: ...)" for a member of `obj` not listed in `known`.
void check_fields(const rapidjson::Value& obj, std::initializer_list<std::string_view> known, const std::string& where);
//! Required array member.
const rapidjson::Value& get_array(const rapidjson::Value& obj, const char* key, const std::string& where);

//! Serialises a value compactly.
std::string to_string(const rapidjson::Value& v);
//! Serialises a value with indentation.
std::string to_pretty_string(const rapidjson::Value& v);

//! Writes a double so that NaN/inf become null (JSON has no NaN).
template <typename Writer>
void write_number(Writer& w, double v) {
  if (v != v || v == 1.0 / 0.0 || v == -1.0 / 0.0)
    w.Null();
  else
    w.Double(v);
}

}  // namespace t2s::json
