#include "sqlexec/compare.hpp"

#include <algorithm>
#include <cmath>
#include <numeric>
#include <regex>

#include "common/json.hpp"
#include "common/status.hpp"
#include "sqlexec/text.hpp"

namespace t2s::sqlexec {

namespace {

using Row = std::vector<Value>;
using Rows = std::vector<Row>;

int rank(const Value& v) {
  switch (v.index()) {
    case 0: return 0;
    case 1:
    case 2: return 1;
    case 3: return 2;
    default: return 3;
  }
}

template <typename T>
int three_way(const T& a, const T& b) {
  return a < b ? -1 : (b < a ? 1 : 0);
}

// Exact comparison of an integer with a double, as Python compares int and float.
int compare_int_double(int64_t i, double d) {
  if (std::isnan(d)) return -1;  // SQLite turns NaN into NULL; kept total for safety
  if (d >= 9223372036854775808.0) return -1;
  if (d < -9223372036854775808.0) return 1;
  double whole = std::trunc(d);
  auto w = static_cast<int64_t>(whole);
  if (i != w) return i < w ? -1 : 1;
  double frac = d - whole;
  return frac > 0 ? -1 : (frac < 0 ? 1 : 0);
}

int compare_rows(const Row& a, const Row& b) {
  size_t n = std::min(a.size(), b.size());
  for (size_t i = 0; i < n; ++i)
    if (int c = compare_values(a[i], b[i])) return c;
  return three_way(a.size(), b.size());
}

bool rows_less(const Row& a, const Row& b) { return compare_rows(a, b) < 0; }
bool rows_equal(const Row& a, const Row& b) { return compare_rows(a, b) == 0; }
bool values_less(const Value& a, const Value& b) { return compare_values(a, b) < 0; }

bool same_rows(const Rows& a, const Rows& b) { return std::equal(a.begin(), a.end(), b.begin(), b.end(), rows_equal); }

Rows sorted(Rows rows) {
  std::sort(rows.begin(), rows.end(), rows_less);
  return rows;
}

// Row-wise multiset (or sequence) equality of `pred` projected on `perm` against `gold` projected on
// its first perm.size() columns. A full permutation passes this exactly when the evaluator accepts it;
// a partial one passes whenever some completion could, so it prunes the search soundly.
bool projection_matches(const Rows& pred, const Rows& gold, const std::vector<size_t>& perm, bool order_matters) {
  Rows p, g;
  p.reserve(pred.size());
  g.reserve(gold.size());
  for (size_t r = 0; r < pred.size(); ++r) {
    Row pr, gr;
    for (size_t j = 0; j < perm.size(); ++j) {
      pr.push_back(pred[r][perm[j]]);
      gr.push_back(gold[r][j]);
    }
    p.push_back(std::move(pr));
    g.push_back(std::move(gr));
  }
  if (!order_matters) {
    std::sort(p.begin(), p.end(), rows_less);
    std::sort(g.begin(), g.end(), rows_less);
  }
  return same_rows(p, g);
}

struct PermutationSearch {
  const Rows& pred;
  const Rows& gold;
  bool order_matters;
  size_t ncols;
  std::vector<std::vector<size_t>> candidates;  // candidates[j]: pred columns that may stand for gold column j
  std::vector<size_t> perm;
  std::vector<bool> used;

  bool same_column(size_t a, size_t b) const {
    for (const auto& row : pred)
      if (compare_values(row[a], row[b]) != 0) return false;
    return true;
  }

  bool search(size_t j) {
    if (j == ncols) return true;  // the last assignment already passed the full check
    std::vector<size_t> tried;
    for (size_t k : candidates[j]) {
      if (used[k]) continue;
      // Two identical predicted columns lead to the same outcome; try one of them.
      if (std::any_of(tried.begin(), tried.end(), [&](size_t t) { return same_column(t, k); })) continue;
      tried.push_back(k);
      perm.push_back(k);
      used[k] = true;
      if (projection_matches(pred, gold, perm, order_matters) && search(j + 1)) return true;
      used[k] = false;
      perm.pop_back();
    }
    return false;
  }
};


std::vector<Value> sorted_column(const Rows& rows, size_t c) {
  std::vector<Value> col;
  col.reserve(rows.size());
  for (const auto& r : rows) col.push_back(r[c]);
  std::sort(col.begin(), col.end(), values_less);
  return col;
}

void replace_all(std::string& s, std::string_view from, std::string_view to) {
  for (size_t pos = 0; (pos = s.find(from, pos)) != std::string::npos; pos += to.size()) s.replace(pos, from.size(), to);
}

// Removes DISTINCT keywords outside string literals, quoted identifiers and comments.
std::string remove_distinct(std::string_view sql) {
  std::string out;
  size_t i = 0, n = sql.size();
  while (i < n) {
    char c = sql[i];
    if (c == '\'' || c == '"' || c == '`' || c == '[') {
      char close = c == '[' ? ']' : c;
      size_t j = i + 1;
      while (j < n) {
        if (sql[j] == close) {
          if (close != ']' && j + 1 < n && sql[j + 1] == close) {
            j += 2;  // doubled quote inside a literal
            continue;
          }
          break;
        }
        ++j;
      }
      size_t end = std::min(n, j + 1);
      out.append(sql.substr(i, end - i));
      i = end;
    } else if (c == '-' && i + 1 < n && sql[i + 1] == '-') {
      size_t end = sql.find('\n', i);
      end = end == std::string_view::npos ? n : end;
      out.append(sql.substr(i, end - i));
      i = end;
    } else if (c == '/' && i + 1 < n && sql[i + 1] == '*') {
      size_t end = sql.find("*/", i + 2);
      end = end == std::string_view::npos ? n : end + 2;
      out.append(sql.substr(i, end - i));
      i = end;
    } else if (is_identifier_char(c)) {
      size_t j = i;
      while (j < n && is_identifier_char(sql[j])) ++j;
      std::string_view word = sql.substr(i, j - i);
      if (!iequals(word, "distinct")) out.append(word);
      i = j;
    } else {
      out += c;
      ++i;
    }
  }
  return out;
}

std::string describe(const ExecResult& r) {
  return std::string(error_class_name(r.error)) + ": " + r.message;
}

}  // namespace

int compare_values(const Value& a, const Value& b) {
  int ra = rank(a), rb = rank(b);
  if (ra != rb) return three_way(ra, rb);
  switch (ra) {
    case 0: return 0;
    case 1: {
      if (a.index() == 1 && b.index() == 1) return three_way(std::get<int64_t>(a), std::get<int64_t>(b));
      if (a.index() == 2 && b.index() == 2) return three_way(std::get<double>(a), std::get<double>(b));
      if (a.index() == 1) return compare_int_double(std::get<int64_t>(a), std::get<double>(b));
      return -compare_int_double(std::get<int64_t>(b), std::get<double>(a));
    }
    case 2: return std::get<std::string>(a).compare(std::get<std::string>(b)) < 0 ? -1
                   : std::get<std::string>(a) == std::get<std::string>(b)   ? 0
                                                                             : 1;
    default: {
      const auto& x = std::get<Blob>(a).bytes;
      const auto& y = std::get<Blob>(b).bytes;
      return x < y ? -1 : (x == y ? 0 : 1);
    }
  }
}

bool spider_match(const ResultSet& pred, const ResultSet& gold, bool order_matters) {
  const Rows& p = pred.rows;
  const Rows& g = gold.rows;
  if (p.empty() && g.empty()) return true;
  if (p.size() != g.size()) return false;
  size_t ncols = g.front().size();
  if (p.front().size() != ncols) return false;
  for (const auto& r : p)
    if (r.size() != ncols) return false;
  for (const auto& r : g)
    if (r.size() != ncols) return false;
  if (ncols == 0) return true;

  // A predicted column can only stand for a gold column holding the same multiset of values.
  PermutationSearch s{p, g, order_matters, ncols, {}, {}, std::vector<bool>(ncols, false)};
  std::vector<std::vector<Value>> pred_cols, gold_cols;
  for (size_t c = 0; c < ncols; ++c) {
    pred_cols.push_back(sorted_column(p, c));
    gold_cols.push_back(sorted_column(g, c));
  }
  auto same_values = [](const std::vector<Value>& a, const std::vector<Value>& b) {
    return std::equal(a.begin(), a.end(), b.begin(), b.end(),
                      [](const Value& x, const Value& y) { return compare_values(x, y) == 0; });
  };
  s.candidates.resize(ncols);
  for (size_t j = 0; j < ncols; ++j) {
    // Prefer the same position first: the common case is an unpermuted match.
    if (same_values(pred_cols[j], gold_cols[j])) s.candidates[j].push_back(j);
    for (size_t k = 0; k < ncols; ++k)
      if (k != j && same_values(pred_cols[k], gold_cols[j])) s.candidates[j].push_back(k);
    if (s.candidates[j].empty()) return false;
  }
  return s.search(0);
}

bool spider_order_matters(std::string_view gold_sql) { return lower_ascii(gold_sql).find("order by") != std::string::npos; }

std::string spider_normalize_sql(std::string_view sql, bool keep_distinct) {
  std::string s(sql);
  replace_all(s, "> =", ">=");
  replace_all(s, "< =", "<=");
  replace_all(s, "! =", "!=");
  if (!keep_distinct) s = remove_distinct(s);
  static const std::regex cur_year(R"(YEAR\s*\(\s*CURDATE\s*\(\s*\)\s*\)\s*)", std::regex::icase);
  return std::regex_replace(s, cur_year, "2020");
}

bool bird_match(const ResultSet& pred, const ResultSet& gold) {
  auto unique_rows = [](const Rows& rows) {
    Rows s = sorted(rows);
    s.erase(std::unique(s.begin(), s.end(), rows_equal), s.end());
    return s;
  };
  return same_rows(unique_rows(pred.rows), unique_rows(gold.rows));
}

MatchOutcome execution_match(const Database& db, std::string_view pred_sql, std::string_view gold_sql, Metric metric,
                             bool keep_distinct) {
  MatchOutcome out;
  ExecResult gold, pred;
  bool order_matters = false;
  if (metric == Metric::spider) {
    std::string g = spider_normalize_sql(gold_sql, keep_distinct);
    order_matters = spider_order_matters(g);
    gold = db.execute(g);
    pred = db.execute(spider_normalize_sql(pred_sql, keep_distinct));
  } else {
    gold = db.execute(gold_sql, kBirdTimeoutS);
    pred = db.execute(pred_sql, kBirdTimeoutS);
  }
  if (!gold.ok()) out.gold_error = describe(gold);
  if (!pred.ok()) out.pred_error = describe(pred);
  if (gold.ok() && pred.ok())
    out.match = metric == Metric::spider ? spider_match(pred.result, gold.result, order_matters)
                                         : bird_match(pred.result, gold.result);
  return out;
}

std::string to_json(const MatchOutcome& outcome) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  auto optional_string = [&](const char* key, const std::optional<std::string>& v) {
    w.Key(key);
    if (v)
      w.String(v->data(), rapidjson::SizeType(v->size()));
    else
      w.Null();
  };
  w.StartObject();
  w.Key("match");
  w.Bool(outcome.match);
  optional_string("pred_error", outcome.pred_error);
  optional_string("gold_error", outcome.gold_error);
  w.EndObject();
  return buf.GetString();
}

Metric parse_metric(std::string_view name) {
  if (name == "spider") return Metric::spider;
  if (name == "bird") return Metric::bird;
  throw InputError("unknown metric '" + std::string(name) + "' (expected spider or bird)");
}

}  // namespace t2s::sqlexec
