#include "engine/sql_names.hpp"

#include <algorithm>
#include <array>
#include <cctype>

namespace t2s::engine {

namespace {

std::string upper(std::string_view s) {
  std::string u(s);
  for (char& c : u) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  return u;
}

void sort_unique(std::vector<std::string>& v) {
  std::sort(v.begin(), v.end());
  v.erase(std::unique(v.begin(), v.end()), v.end());
}

// SQLite's words that stand on their own (type names only follow AS, where any name is allowed).
const std::vector<std::string>& keywords() {
  static const std::vector<std::string> k = [] {
    std::vector<std::string> v{
        "ALL",       "AND",      "AS",        "ASC",       "BETWEEN",      "BY",           "CASE",
        "CAST",      "COLLATE",  "CROSS",     "CURRENT",   "CURRENT_DATE", "CURRENT_TIME", "CURRENT_TIMESTAMP",
        "DESC",      "DISTINCT", "ELSE",      "END",       "ESCAPE",       "EXCEPT",       "EXISTS",
        "FALSE",     "FILTER",   "FIRST",     "FOLLOWING", "FROM",         "FULL",         "GLOB",
        "GROUP",     "HAVING",   "IN",        "INNER",     "INTERSECT",    "IS",           "ISNULL",
        "JOIN",      "LAST",     "LEFT",      "LIKE",      "LIMIT",        "MATCH",        "NATURAL",
        "NOCASE",    "NOT",      "NOTNULL",   "NULL",      "NULLS",        "OFFSET",       "ON",
        "OR",        "ORDER",    "OUTER",     "OVER",      "PARTITION",    "PRECEDING",    "RANGE",
        "RECURSIVE", "REGEXP",   "RIGHT",     "ROW",       "ROWID",        "ROWS",         "SELECT",
        "THEN",      "TRUE",     "UNBOUNDED", "UNION",     "USING",        "VALUES",       "WHEN",
        "WHERE",     "WITH"};
    sort_unique(v);
    return v;
  }();
  return k;
}

const std::vector<std::string>& functions() {
  static const std::vector<std::string> f = [] {
    std::vector<std::string> v{
        "ABS",       "AVG",       "CEIL",       "CEILING",      "CHAR",        "COALESCE", "COUNT",      "CUME_DIST",
        "DATE",      "DATETIME",  "DENSE_RANK", "EXP",          "FIRST_VALUE", "FLOOR",    "FORMAT",     "GROUP_CONCAT",
        "HEX",       "IFNULL",    "IIF",        "INSTR",        "JULIANDAY",   "LAG",      "LAST_VALUE", "LEAD",
        "LENGTH",    "LN",        "LOG",        "LOWER",        "LTRIM",       "MAX",      "MIN",        "MOD",
        "NTH_VALUE", "NTILE",     "NULLIF",     "PERCENT_RANK", "POW",         "POWER",    "PRINTF",     "QUOTE",
        "RANDOM",    "RANK",      "REPLACE",    "ROUND",        "ROW_NUMBER",  "RTRIM",    "SIGN",       "SQRT",
        "STRFTIME",  "SUBSTR",    "SUBSTRING",  "SUM",          "TIME",        "TOTAL",    "TRIM",       "TYPEOF",
        "UNICODE",   "UNIXEPOCH", "UPPER"};
    sort_unique(v);
    return v;
  }();
  return f;
}

}  // namespace

SqlNames::SqlNames(const std::vector<std::pair<std::string, std::vector<std::string>>>& tables) {
  for (size_t i = 0; i < tables.size(); ++i) {
    std::vector<std::string> cols;
    for (const auto& c : tables[i].second) cols.push_back(upper(c));
    sort_unique(cols);
    all_columns_.insert(all_columns_.end(), cols.begin(), cols.end());
    columns_.push_back(std::move(cols));
  }
  sort_unique(all_columns_);
  std::vector<std::pair<std::string, int>> named;
  for (size_t i = 0; i < tables.size(); ++i) named.emplace_back(upper(tables[i].first), static_cast<int>(i));
  std::sort(named.begin(), named.end());
  for (auto& [name, i] : named) {
    tables_.push_back(std::move(name));
    table_index_.push_back(i);
  }
}

bool SqlNames::find(const std::vector<std::string>& sorted, std::string_view s, bool prefix) {
  auto it =
      std::lower_bound(sorted.begin(), sorted.end(), s, [](const std::string& a, std::string_view b) { return a < b; });
  if (it == sorted.end()) return false;
  return prefix ? std::string_view(*it).substr(0, s.size()) == s : *it == s;
}

int SqlNames::table(std::string_view upper_name) const {
  auto it = std::lower_bound(tables_.begin(), tables_.end(), upper_name,
                             [](const std::string& a, std::string_view b) { return a < b; });
  if (it == tables_.end() || *it != upper_name) return -1;
  return table_index_[static_cast<size_t>(it - tables_.begin())];
}

bool SqlNames::column(int t, std::string_view upper_name, bool prefix) const {
  return find(t < 0 ? all_columns_ : columns_[static_cast<size_t>(t)], upper_name, prefix);
}

bool SqlNames::keyword(std::string_view upper_name, bool prefix) const {
  return find(keywords(), upper_name, prefix);
}

bool SqlNames::function(std::string_view upper_name, bool prefix) const {
  return find(functions(), upper_name, prefix);
}

}  // namespace t2s::engine
