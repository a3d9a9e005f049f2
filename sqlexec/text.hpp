#pragma once
//! Small ASCII text helpers shared by the sqlexec sources (SQL keywords and identifiers are ASCII-case-insensitive).
#include <string>
#include <string_view>

namespace t2s::sqlexec {

//! `c` lower-cased if it is an ASCII capital.
inline char lower_ascii(char c) { return c >= 'A' && c <= 'Z' ? char(c - 'A' + 'a') : c; }

//! `s` with ASCII capitals lower-cased (other bytes unchanged).
inline std::string lower_ascii(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = lower_ascii(c);
  return out;
}

//! ASCII-case-insensitive equality.
inline bool iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (lower_ascii(a[i]) != lower_ascii(b[i])) return false;
  return true;
}

//! True for bytes that may continue an unquoted SQL identifier or keyword (letters, digits, _, $, non-ASCII).
inline bool is_identifier_char(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_' || c == '$' ||
         static_cast<unsigned char>(c) >= 0x80;
}

}  // namespace t2s::sqlexec
