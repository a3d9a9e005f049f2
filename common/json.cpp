#include "common/json.hpp"

#include <algorithm>

#include <rapidjson/error/en.h>
#include <rapidjson/prettywriter.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "common/status.hpp"

namespace t2s::json {

std::string read_file(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot open file '" + path + "'");
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) throw InputError("cannot read file '" + path + "'");
  return ss.str();
}

void write_file(const std::string& path, std::string_view text) {
  auto parent = std::filesystem::path(path).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent);
  std::ofstream out(path, std::ios::binary);
  if (!out) throw std::runtime_error("cannot write file '" + path + "'");
  out.write(text.data(), static_cast<std::streamsize>(text.size()));
  if (!out) throw std::runtime_error("short write to '" + path + "'");
}

namespace {

// RapidJSON 1.1.0's full-precision number parser (kept: trace files round-trip doubles exactly) reads out of bounds
// (diyfp.h GetCachedPowerByIndex) on a long mantissa with a large negative exponent, as fuzz_cluster_file found
// (tests/fuzz/corpus/fuzz_cluster_file/rapidjson-diyfp-oob). Numbers within these limits keep its decimal exponent in
// the table's range (at most 25 + 19 + 300 < 348 below it); every double t2s writes fits (17 significant digits,
// at most 6 leading zeros). Outside strings, a '-' or digit can only start a number in valid JSON.
constexpr int kMaxNumberDigits = 25;
constexpr int kMaxNumberExponent = 300;

void check_numbers(std::string_view t, const std::string& what) {
  bool in_string = false;
  for (size_t i = 0; i < t.size(); ++i) {
    const char c = t[i];
    if (in_string) {
      if (c == '\\') ++i;
      else if (c == '"') in_string = false;
      continue;
    }
    if (c == '"') {
      in_string = true;
      continue;
    }
    if (c != '-' && (c < '0' || c > '9')) continue;
    const size_t start = i;
    int digits = 0, exponent = 0;
    if (t[i] == '-') ++i;
    auto digit = [&](size_t k) { return k < t.size() && t[k] >= '0' && t[k] <= '9'; };
    while (digit(i)) ++digits, ++i;
    if (i < t.size() && t[i] == '.')
      for (++i; digit(i); ++i) ++digits;
    if (i < t.size() && (t[i] == 'e' || t[i] == 'E')) {
      ++i;
      if (i < t.size() && (t[i] == '+' || t[i] == '-')) ++i;
      for (; digit(i); ++i) exponent = std::min(exponent * 10 + (t[i] - '0'), 100000);
    }
    if (digits > kMaxNumberDigits || exponent > kMaxNumberExponent)
      throw InputError(what + ": the number at offset " + std::to_string(start) + " has " +
                       (digits > kMaxNumberDigits ? std::to_string(digits) + " digits (at most " +
                                                        std::to_string(kMaxNumberDigits) + " are read)"
                                                  : "an exponent beyond +-" + std::to_string(kMaxNumberExponent)));
    i = i > start ? i - 1 : start;  // the loop's ++i moves past the number
  }
}

}  // namespace

rapidjson::Document parse(std::string_view text, const std::string& what) {
  check_numbers(text, what);
  rapidjson::Document doc;
  doc.Parse<rapidjson::kParseFullPrecisionFlag>(text.data(), text.size());
  if (doc.HasParseError()) {
    throw InputError(what + ": JSON parse error at offset " + std::to_string(doc.GetErrorOffset()) + ": " +
                     rapidjson::GetParseError_En(doc.GetParseError()));
  }
  return doc;
}

rapidjson::Document parse_file(const std::string& path) { return parse(read_file(path), path); }

static const rapidjson::Value& member(const rapidjson::Value& obj, const char* key, const std::string& where,
                                      const char* kind) {
  if (!obj.IsObject()) throw InputError(where + ": expected a JSON object");
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) throw InputError(where + ": missing " + kind + " field '" + key + "'");
  return it->value;
}

std::string get_string(const rapidjson::Value& obj, const char* key, const std::string& where) {
  const auto& v = member(obj, key, where, "string");
  if (!v.IsString()) throw InputError(where + ": field '" + key + "' must be a string");
  return {v.GetString(), v.GetStringLength()};
}

int64_t get_int(const rapidjson::Value& obj, const char* key, const std::string& where) {
  const auto& v = member(obj, key, where, "integer");
  if (!v.IsInt64()) throw InputError(where + ": field '" + key + "' must be an integer");
  return v.GetInt64();
}

double get_double(const rapidjson::Value& obj, const char* key, const std::string& where) {
  const auto& v = member(obj, key, where, "number");
  if (!v.IsNumber()) throw InputError(where + ": field '" + key + "' must be a number");
  return v.GetDouble();
}

std::string opt_string(const rapidjson::Value& obj, const char* key, std::string def) {
  if (!obj.IsObject()) return def;
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsString()) return def;
  return {it->value.GetString(), it->value.GetStringLength()};
}

double opt_double(const rapidjson::Value& obj, const char* key, double def) {
  if (!obj.IsObject()) return def;
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsNumber()) return def;
  return it->value.GetDouble();
}

int64_t opt_int(const rapidjson::Value& obj, const char* key, int64_t def) {
  if (!obj.IsObject()) return def;
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsInt64()) return def;
  return it->value.GetInt64();
}

bool opt_bool(const rapidjson::Value& obj, const char* key, bool def) {
  if (!obj.IsObject()) return def;
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd() || !it->value.IsBool()) return def;
  return it->value.GetBool();
}

const rapidjson::Value& get_array(const rapidjson::Value& obj, const char* key, const std::string& where) {
  const auto& v = member(obj, key, where, "array");
  if (!v.IsArray()) throw InputError(where + ": field '" + key + "' must be an array");
  return v;
}

std::string to_string(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  v.Accept(w);
  return {sb.GetString(), sb.GetSize()};
}

std::string to_pretty_string(const rapidjson::Value& v) {
  rapidjson::StringBuffer sb;
  rapidjson::PrettyWriter<rapidjson::StringBuffer> w(sb);
  w.SetIndent(' ', 2);
  v.Accept(w);
  return {sb.GetString(), sb.GetSize()};
}


int64_t opt_int_in(const rapidjson::Value& obj, const char* key, int64_t def, int64_t lo, int64_t hi,
                   const std::string& where) {
  if (!obj.IsObject()) return def;
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) return def;
  const auto& v = it->value;
  if (!v.IsInt64() || v.GetInt64() < lo || v.GetInt64() > hi)
    throw InputError(where + ": field '" + key + "' must be an integer in [" + std::to_string(lo) + ", " +
                     std::to_string(hi) + "] (got " + to_string(v) + ")");
  return v.GetInt64();
}

double opt_double_in(const rapidjson::Value& obj, const char* key, double def, double lo, double hi,
                     const std::string& where) {
  if (!obj.IsObject()) return def;
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) return def;
  const auto& v = it->value;
  if (!v.IsNumber() || !(v.GetDouble() >= lo && v.GetDouble() <= hi))
    throw InputError(where + ": field '" + key + "' must be a number in [" + to_string(rapidjson::Value(lo)) + ", " +
                     to_string(rapidjson::Value(hi)) + "] (got " + to_string(v) + ")");
  return v.GetDouble();
}

bool opt_bool_strict(const rapidjson::Value& obj, const char* key, bool def, const std::string& where) {
  if (!obj.IsObject()) return def;
  auto it = obj.FindMember(key);
  if (it == obj.MemberEnd()) return def;
  if (!it->value.IsBool()) throw InputError(where + ": field '" + key + "' must be true or false");
  return it->value.GetBool();
}

void check_fields(const rapidjson::Value& obj, std::initializer_list<std::string_view> known, const std::string& where) {
  if (!obj.IsObject()) return;
  for (const auto& m : obj.GetObject()) {
    std::string_view name(m.name.GetString(), m.name.GetStringLength());
    bool ok = false;
    for (auto k : known) ok = ok || k == name;
    if (ok) continue;
    std::string list;
    for (auto k : known) list += (list.empty() ? "" : ", ") + std::string(k);
    throw InputError(where + ": unknown field '" + std::string(name) + "' (known: " + list + ")");
  }
}

}  // namespace t2s::json
