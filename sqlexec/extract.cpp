#include "sqlexec/extract.hpp"

#include <array>
#include <vector>

#include "sqlexec/text.hpp"

namespace t2s::sqlexec {

namespace {

bool is_space(char c) { return c == ' ' || c == '\t' || c == '\r' || c == '\n' || c == '\f' || c == '\v'; }

bool word_at(std::string_view s, size_t i, std::string_view word) {
  if (i + word.size() > s.size()) return false;
  if (i > 0 && is_identifier_char(s[i - 1])) return false;
  for (size_t k = 0; k < word.size(); ++k)
    if (lower_ascii(s[i + k]) != word[k]) return false;
  return i + word.size() == s.size() || !is_identifier_char(s[i + word.size()]);
}

bool all_upper(std::string_view s, size_t i, size_t n) {
  for (size_t k = 0; k < n; ++k)
    if (s[i + k] >= 'a' && s[i + k] <= 'z') return false;
  return true;
}

size_t skip_space(std::string_view s, size_t i) {
  while (i < s.size() && is_space(s[i])) ++i;
  return i;
}

// Where a statement may begin: the region start, a line start, or just after a ';' or ':' (spaces skipped back).
bool at_statement_boundary(std::string_view s, size_t i) {
  size_t j = i;
  while (j > 0 && (s[j - 1] == ' ' || s[j - 1] == '\t')) --j;
  return j == 0 || s[j - 1] == '\n' || s[j - 1] == ';' || s[j - 1] == ':' || s[j - 1] == '`';
}

// True when a WITH at `i` opens a common table expression: WITH [RECURSIVE] name [(cols)] AS (
bool opens_cte(std::string_view s, size_t i) {
  size_t j = skip_space(s, i + 4);
  if (word_at(s, j, "recursive")) j = skip_space(s, j + 9);
  if (j < s.size() && (s[j] == '"' || s[j] == '`' || s[j] == '[')) {
    char close = s[j] == '[' ? ']' : s[j];
    size_t end = s.find(close, j + 1);
    if (end == std::string_view::npos) return false;
    j = end + 1;
  } else {
    size_t start = j;
    while (j < s.size() && is_identifier_char(s[j])) ++j;
    if (j == start) return false;
  }
  j = skip_space(s, j);
  if (j < s.size() && s[j] == '(') {
    size_t end = s.find(')', j);
    if (end == std::string_view::npos) return false;
    j = skip_space(s, end + 1);
  }
  return word_at(s, j, "as");
}

// The first position in `s` where a SELECT or WITH statement starts. A keyword in lower case inside a
// sentence ("we select the rows") does not count; one at a boundary or in upper case does.
size_t find_statement_start(std::string_view s) {
  for (size_t i = 0; i < s.size(); ++i) {
    if (word_at(s, i, "select")) {
      size_t after = skip_space(s, i + 6);
      if (after >= s.size()) continue;
      if (at_statement_boundary(s, i) || all_upper(s, i, 6)) return i;
    } else if (word_at(s, i, "with") && opens_cte(s, i)) {
      if (at_statement_boundary(s, i) || all_upper(s, i, 4)) return i;
    }
  }
  return std::string_view::npos;
}

// Words that open a line of explanation rather than SQL when followed by more words.
constexpr std::array<std::string_view, 16> kProseStarts = {"this",   "the",  "here", "note", "explanation", "it",
                                                           "i",      "we",   "answer", "result", "output", "that",
                                                           "these",  "in",   "to",   "which"};

bool is_prose_line(std::string_view line) {
  size_t i = skip_space(line, 0);
  size_t j = i;
  while (j < line.size() && is_identifier_char(line[j])) ++j;
  if (j == i) return false;
  std::string word;
  for (size_t k = i; k < j; ++k) word += lower_ascii(line[k]);
  // "Explanation:" / "Note:" style labels.
  if (j < line.size() && line[j] == ':' && word != "sql") return true;
  if (j >= line.size() || line[j] != ' ') return false;
  size_t next = j + 1;
  if (next >= line.size() || !(line[next] >= 'a' && line[next] <= 'z')) return false;
  for (auto p : kProseStarts)
    if (word == p) {
      // Prose is capitalised like a sentence ("The query ..."); SQL keywords are all upper or all lower case.
      return line[i] >= 'A' && line[i] <= 'Z' && !(line[i + 1] >= 'A' && line[i + 1] <= 'Z');
    }
  return false;
}

// The statement starting at `i`: up to a ';' outside quotes and comments, a fence, a blank line or a prose line.
std::string take_statement(std::string_view s, size_t i) {
  size_t n = s.size();
  size_t j = i;
  size_t end = n;
  bool line_start = false;
  while (j < n) {
    char c = s[j];
    if (line_start) {
      line_start = false;
      size_t k = j;
      while (k < n && (s[k] == ' ' || s[k] == '\t' || s[k] == '\r')) ++k;
      if (k < n && s[k] == '\n') {  // blank line
        end = j;
        break;
      }
      size_t eol = s.find('\n', k);
      if (is_prose_line(s.substr(k, (eol == std::string_view::npos ? n : eol) - k))) {
        end = j;
        break;
      }
    }
    if (c == '\'' || c == '"' || c == '`' || c == '[') {
      if (c == '`' && s.substr(j, 3) == "```") {
        end = j;
        break;
      }
      char close = c == '[' ? ']' : c;
      size_t k = s.find(close, j + 1);
      if (k == std::string_view::npos) break;  // unterminated: keep the rest
      j = k + 1;
      continue;
    }
    if (c == '-' && j + 1 < n && s[j + 1] == '-') {
      size_t k = s.find('\n', j);
      j = k == std::string_view::npos ? n : k;
      continue;
    }
    if (c == '/' && j + 1 < n && s[j + 1] == '*') {
      size_t k = s.find("*/", j + 2);
      j = k == std::string_view::npos ? n : k + 2;
      continue;
    }
    if (c == ';') {
      end = j;
      break;
    }
    if (c == '\n') line_start = true;
    ++j;
  }
  std::string out(s.substr(i, std::min(end, n) - i));
  while (!out.empty() && (is_space(out.back()) || out.back() == ';')) out.pop_back();
  return out;
}

struct Region {
  std::string_view text;
  bool tagged_sql;
};

// Contents of ``` fenced blocks (an unterminated one runs to the end), tagged ```sql ones first.
std::vector<std::string_view> fenced_blocks(std::string_view s) {
  std::vector<Region> blocks;
  size_t pos = 0;
  while ((pos = s.find("```", pos)) != std::string_view::npos) {
    size_t info_end = s.find('\n', pos + 3);
    if (info_end == std::string_view::npos) info_end = s.size();
    std::string_view info = s.substr(pos + 3, info_end - pos - 3);
    bool tagged = info.size() >= 3 && lower_ascii(info[0]) == 's' && lower_ascii(info[1]) == 'q' && lower_ascii(info[2]) == 'l';
    // "```SELECT 1```" on one line has no info string: the content starts right after the fence.
    bool inline_body = !tagged && !info.empty() && info.find("```") != std::string_view::npos;
    size_t body = inline_body ? pos + 3 : std::min(info_end + 1, s.size());
    if (!tagged && !inline_body && !info.empty() && find_statement_start(info) == 0) body = pos + 3;
    size_t close = s.find("```", body);
    size_t body_end = close == std::string_view::npos ? s.size() : close;
    blocks.push_back({s.substr(body, body_end - body), tagged});
    if (close == std::string_view::npos) break;
    pos = close + 3;
  }
  std::vector<std::string_view> out;
  for (int want_tag = 1; want_tag >= 0; --want_tag)
    for (const auto& b : blocks)
      if (b.tagged_sql == bool(want_tag)) out.push_back(b.text);
  return out;
}

// Text after each "SQL:" label (case-insensitive), in order.
std::vector<std::string_view> labelled(std::string_view s) {
  std::vector<std::string_view> out;
  for (size_t i = 0; i + 4 <= s.size(); ++i)
    if (word_at(s, i, "sql") && i + 3 < s.size() && s[i + 3] == ':') out.push_back(s.substr(i + 4));
  return out;
}

}  // namespace

std::optional<std::string> extract_sql(std::string_view model_text) {
  std::vector<std::string_view> regions = fenced_blocks(model_text);
  for (auto r : labelled(model_text)) regions.push_back(r);
  regions.push_back(model_text);
  for (auto region : regions) {
    size_t start = find_statement_start(region);
    if (start == std::string_view::npos) continue;
    std::string sql = take_statement(region, start);
    if (!sql.empty()) return sql;
  }
  return std::nullopt;
}

}  // namespace t2s::sqlexec
