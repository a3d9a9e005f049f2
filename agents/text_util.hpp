#pragma once
//! Small text helpers of the agents module.
#include <algorithm>
#include <cctype>
#include <string>
#include <string_view>

namespace t2s::agents {

//! ASCII lower case (SQL identifiers and keywords compare case-insensitively).
inline std::string ascii_lower(std::string_view s) {
  std::string r(s);
  std::transform(r.begin(), r.end(), r.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
  return r;
}

}  // namespace t2s::agents
