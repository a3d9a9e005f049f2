#include "workloads/hardness.hpp"

#include <algorithm>
#include <cctype>
#include <string>
#include <vector>

#include "common/status.hpp"

namespace t2s::workloads {

Difficulty hardness_from_counts(const HardnessCounts& c) {
  // Spider evaluation.py `eval_hardness`, condition for condition.
  const int c1 = c.component1, c2 = c.component2, o = c.others;
  if (c1 <= 1 && o == 0 && c2 == 0) return Difficulty::easy;
  if ((o <= 2 && c1 <= 1 && c2 == 0) || (c1 <= 2 && o < 2 && c2 == 0)) return Difficulty::medium;
  if ((o > 2 && c1 <= 2 && c2 == 0) || (2 < c1 && c1 <= 3 && o <= 2 && c2 == 0) || (c1 <= 1 && o == 0 && c2 <= 1))
    return Difficulty::hard;
  return Difficulty::extra;
}

// ---------------------------------------------------------------------------------------------------------------
// Parsed dict (dev.json `sql`).

namespace {

constexpr int kWhereOpLike = 9;  // WHERE_OPS.index('like')

[[noreturn]] void bad_shape(const char* what) {
  throw InputError(std::string("Spider parsed sql: unexpected shape of ") + what);
}

const rapidjson::Value& field(const rapidjson::Value& sql, const char* key) {
  if (!sql.IsObject()) bad_shape("sql (not an object)");
  auto it = sql.FindMember(key);
  if (it == sql.MemberEnd()) bad_shape(key);
  return it->value;
}

const rapidjson::Value& array_field(const rapidjson::Value& sql, const char* key) {
  const auto& v = field(sql, key);
  if (!v.IsArray()) bad_shape(key);
  return v;
}

// Python's `unit[0] != AGG_OPS.index('none')` for whatever unit the official code passes: an agg id, a not_op bool
// (for condition units, a quirk of the official code), or the strings 'and'/'or' (which always count).
bool has_agg(const rapidjson::Value& unit) {
  if (unit.IsString()) return true;
  if (!unit.IsArray() || unit.Empty()) bad_shape("unit");
  const auto& first = unit[0];
  if (first.IsBool()) return first.GetBool();
  if (first.IsNumber()) return first.GetDouble() != 0;
  if (first.IsString()) return true;
  return true;
}

struct CondList {
  std::vector<const rapidjson::Value*> units;  // even positions
  std::vector<const rapidjson::Value*> conj;   // odd positions
};

CondList split_conds(const rapidjson::Value& list) {
  CondList out;
  for (rapidjson::SizeType i = 0; i < list.Size(); ++i) (i % 2 == 0 ? out.units : out.conj).push_back(&list[i]);
  return out;
}

}  // namespace

HardnessCounts hardness_counts_from_parsed(const rapidjson::Value& sql) {
  const auto& from = field(sql, "from");
  const auto& table_units = array_field(from, "table_units");
  const auto& from_conds = array_field(from, "conds");
  const auto& where = array_field(sql, "where");
  const auto& group_by = array_field(sql, "groupBy");
  const auto& having = array_field(sql, "having");
  const auto& order_by = array_field(sql, "orderBy");
  const auto& select = array_field(sql, "select");
  const auto& limit = field(sql, "limit");
  if (select.Size() != 2 || !select[1].IsArray()) bad_shape("select");

  CondList fc = split_conds(from_conds), wc = split_conds(where), hc = split_conds(having);
  std::vector<const rapidjson::Value*> all_units, all_conj;
  for (const auto* l : {&fc, &wc, &hc}) {
    all_units.insert(all_units.end(), l->units.begin(), l->units.end());
    all_conj.insert(all_conj.end(), l->conj.begin(), l->conj.end());
  }

  HardnessCounts c;
  // count_component1
  if (!where.Empty()) ++c.component1;
  if (!group_by.Empty()) ++c.component1;
  if (!order_by.Empty()) ++c.component1;
  if (!limit.IsNull()) ++c.component1;
  if (!table_units.Empty()) c.component1 += static_cast<int>(table_units.Size()) - 1;
  for (const auto* t : all_conj)
    if (t->IsString() && std::string_view(t->GetString()) == "or") ++c.component1;
  for (const auto* u : all_units) {
    if (!u->IsArray() || u->Size() < 5) bad_shape("condition unit");
    if ((*u)[1].IsInt() && (*u)[1].GetInt() == kWhereOpLike) ++c.component1;
  }
  // count_component2 (get_nestedSQL)
  for (const auto* u : all_units) {
    if ((*u)[3].IsObject()) ++c.component2;
    if ((*u)[4].IsObject()) ++c.component2;
  }
  for (const char* op : {"intersect", "except", "union"})
    if (!field(sql, op).IsNull()) ++c.component2;
  // count_others
  int agg = 0;
  for (const auto& item : select[1].GetArray()) agg += has_agg(item);
  for (const auto* u : wc.units) agg += has_agg(*u);
  for (const auto& g : group_by.GetArray()) agg += has_agg(g);
  if (!order_by.Empty()) {
    if (order_by.Size() != 2 || !order_by[1].IsArray()) bad_shape("orderBy");
    for (const auto& vu : order_by[1].GetArray()) {
      if (!vu.IsArray() || vu.Size() < 3) bad_shape("orderBy value unit");
      if (vu[1].IsArray() && !vu[1].Empty()) agg += has_agg(vu[1]);
      if (vu[2].IsArray() && !vu[2].Empty()) agg += has_agg(vu[2]);
    }
  }
  for (const auto& h : having.GetArray()) agg += has_agg(h);
  if (agg > 1) ++c.others;
  if (select[1].Size() > 1) ++c.others;
  if (where.Size() > 1) ++c.others;
  if (group_by.Size() > 1) ++c.others;
  return c;
}

// ---------------------------------------------------------------------------------------------------------------
// SQL text.

namespace {

struct Token {
  std::string text;  // lower-cased for words; verbatim for literals
  bool literal = false;
};

std::vector<Token> tokenize(std::string_view s) {
  std::vector<Token> out;
  size_t i = 0;
  while (i < s.size()) {
    char ch = s[i];
    if (std::isspace(static_cast<unsigned char>(ch))) {
      ++i;
    } else if (ch == '\'' || ch == '"' || ch == '`' || ch == '[') {
      char close = ch == '[' ? ']' : ch;
      size_t j = i + 1;
      std::string lit;
      for (;;) {
        if (j >= s.size()) throw InputError("SQL text: unterminated quote starting at offset " + std::to_string(i));
        if (s[j] == close) {
          if (close != ']' && j + 1 < s.size() && s[j + 1] == close) {
            lit += close;
            j += 2;
            continue;
          }
          break;
        }
        lit += s[j++];
      }
      // Quoted identifiers behave like words; string literals are values.
      bool is_ident = ch == '`' || ch == '[';
      out.push_back({is_ident ? "ident:" + lit : lit, !is_ident});
      i = j + 1;
    } else if (std::isalnum(static_cast<unsigned char>(ch)) || ch == '_') {
      size_t j = i;
      while (j < s.size() && (std::isalnum(static_cast<unsigned char>(s[j])) || s[j] == '_' || s[j] == '.')) ++j;
      std::string w(s.substr(i, j - i));
      for (auto& c : w) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
      out.push_back({w, false});
      i = j;
    } else {
      static constexpr std::string_view two[] = {"!=", "<>", "<=", ">=", "==", "||"};
      bool matched = false;
      for (auto t : two) {
        if (s.substr(i, 2) == t) {
          out.push_back({std::string(t), false});
          i += 2;
          matched = true;
          break;
        }
      }
      if (!matched) {
        if (ch != ';') out.push_back({std::string(1, ch), false});
        ++i;
      }
    }
  }
  return out;
}

bool is_agg(const std::string& w) { return w == "max" || w == "min" || w == "count" || w == "sum" || w == "avg"; }

class TextCounter {
 public:
  explicit TextCounter(std::vector<Token> toks) : t_(std::move(toks)) {}

  HardnessCounts count() {
    size_t b = 0, e = t_.size();
    // Parentheses around the whole query do not change it.
    while (open(b) && matching(b) == e - 1) {
      ++b;
      --e;
    }
    // Spider has no WITH; each common table expression is counted as one nested query.
    int ctes = 0;
    if (is_word(b, "with")) {
      size_t i = b + 1;
      if (is_word(i, "recursive")) ++i;
      for (;;) {
        ++i;                                // the CTE's name
        if (open(i)) i = matching(i) + 1;   // its column list
        if (!is_word(i, "as") || !open(i + 1)) throw InputError("SQL text: malformed WITH clause");
        i = matching(i + 1) + 1;
        ++ctes;
        if (!is_word(i, ",")) break;
        ++i;
      }
      b = i;
    }
    if (b >= e || !is_word(b, "select")) throw InputError("SQL text: expected a SELECT query");
    HardnessCounts c = count_query(b, e);
    c.component2 += ctes;
    return c;
  }

 private:
  bool is_word(size_t i, std::string_view w) const { return i < t_.size() && !t_[i].literal && t_[i].text == w; }
  bool open(size_t i) const { return is_word(i, "("); }
  bool close(size_t i) const { return is_word(i, ")"); }
  // The index of the parenthesis closing the one at `i`; throws when there is none.
  size_t matching(size_t i) const {
    int depth = 0;
    for (size_t k = i; k < t_.size(); ++k) {
      if (open(k)) ++depth;
      if (close(k) && --depth == 0) return k;
    }
    throw InputError("SQL text: unbalanced parentheses");
  }

  // Positions in [b, e) at parenthesis depth 0 where `pred` holds.
  template <typename Pred>
  std::vector<size_t> top_level(size_t b, size_t e, Pred pred) const {
    std::vector<size_t> out;
    int depth = 0;
    for (size_t i = b; i < e; ++i) {
      if (open(i)) {
        ++depth;
      } else if (close(i)) {
        --depth;
      } else if (depth == 0 && pred(i)) {
        out.push_back(i);
      }
    }
    return out;
  }

  // Splits [b, e) at depth-0 commas.
  std::vector<std::pair<size_t, size_t>> split_commas(size_t b, size_t e) const {
    std::vector<std::pair<size_t, size_t>> out;
    size_t start = b;
    for (size_t p : top_level(b, e, [&](size_t i) { return is_word(i, ","); })) {
      out.emplace_back(start, p);
      start = p + 1;
    }
    if (start < e) out.emplace_back(start, e);
    return out;
  }

  struct Conds {
    int units = 0, ors = 0, conj = 0, likes = 0, nots = 0, nested = 0;
  };

  // A condition list (WHERE/HAVING/ON): units split by depth-0 AND/OR, where the AND of BETWEEN belongs to its unit.
  Conds conds(size_t b, size_t e) const {
    Conds c;
    if (b >= e) return c;
    size_t unit_start = b;
    bool in_between = false;
    int depth = 0;
    auto finish_unit = [&](size_t ue) {
      ++c.units;
      int d = 0;
      int nested_here = 0;
      for (size_t i = unit_start; i < ue; ++i) {
        if (open(i)) {
          if (d == 0 && is_word(i + 1, "select")) ++nested_here;
          ++d;
        } else if (close(i)) {
          --d;
        } else if (d == 0) {
          if (is_word(i, "like")) ++c.likes;
          if (is_word(i, "not") && (i == unit_start || is_word(i + 1, "in") || is_word(i + 1, "like") ||
                                    is_word(i + 1, "between")))
            ++c.nots;
        }
      }
      c.nested += std::min(nested_here, 2);
    };
    for (size_t i = b; i < e; ++i) {
      if (open(i)) {
        ++depth;
      } else if (close(i)) {
        --depth;
      } else if (depth == 0) {
        if (is_word(i, "between")) {
          in_between = true;
        } else if (is_word(i, "and") && in_between) {
          in_between = false;
        } else if (is_word(i, "and") || is_word(i, "or")) {
          finish_unit(i);
          ++c.conj;
          if (is_word(i, "or")) ++c.ors;
          unit_start = i + 1;
        }
      }
    }
    finish_unit(e);
    return c;
  }

  HardnessCounts count_query(size_t b, size_t e) const {
    HardnessCounts c;
    // Set operations: the right side is one nested query, counted but not looked into (as the official rules do).
    auto setops = top_level(b, e, [&](size_t i) {
      return is_word(i, "intersect") || is_word(i, "union") || is_word(i, "except");
    });
    if (!setops.empty()) {
      e = setops.front();
      c.component2 += 1;
    }
    const char* clause_words[] = {"select", "from", "where", "group", "having", "order", "limit"};
    auto clause_pos = top_level(b, e, [&](size_t i) {
      for (auto* w : clause_words)
        if (is_word(i, w)) return true;
      return false;
    });
    auto clause = [&](std::string_view name, size_t& cb, size_t& ce) {
      for (size_t k = 0; k < clause_pos.size(); ++k) {
        if (is_word(clause_pos[k], name)) {
          cb = clause_pos[k] + 1;
          if ((name == "group" || name == "order") && is_word(cb, "by")) ++cb;
          ce = k + 1 < clause_pos.size() ? clause_pos[k + 1] : e;
          return true;
        }
      }
      return false;
    };
    size_t sb = 0, se = 0, fb = 0, fe = 0, wb = 0, we = 0, gb = 0, ge = 0, hb = 0, he = 0, ob = 0, oe = 0, lb = 0,
           le = 0;
    if (!clause(std::string_view("select"), sb, se)) throw InputError("SQL text: no SELECT clause");
    bool has_from = clause("from", fb, fe);
    bool has_where = clause("where", wb, we);
    bool has_group = clause("group", gb, ge);
    bool has_having = clause("having", hb, he);
    bool has_order = clause("order", ob, oe);
    bool has_limit = clause("limit", lb, le);

    // SELECT items
    if (is_word(sb, "distinct")) ++sb;
    auto items = split_commas(sb, se);
    int agg = 0;
    for (auto [ib, ie] : items)
      if (ib < ie && is_agg(t_[ib].text) && open(ib + 1)) ++agg;

    // FROM: table units separated by JOIN or commas; ON conditions.
    int table_units = 0;
    Conds from_conds;
    if (has_from) {
      auto seps = top_level(fb, fe, [&](size_t i) { return is_word(i, "join") || is_word(i, ","); });
      table_units = static_cast<int>(seps.size()) + 1;
      auto ons = top_level(fb, fe, [&](size_t i) { return is_word(i, "on"); });
      for (size_t on : ons) {
        size_t end = fe;
        for (size_t s : seps)
          if (s > on) {
            end = s;
            // words like LEFT/INNER before JOIN are not part of the condition
            while (end > on + 1 && (is_word(end - 1, "left") || is_word(end - 1, "inner") ||
                                    is_word(end - 1, "outer") || is_word(end - 1, "cross") ||
                                    is_word(end - 1, "right") || is_word(end - 1, "full")))
              --end;
            break;
          }
        Conds fc = conds(on + 1, end);
        from_conds.units += fc.units;
        from_conds.ors += fc.ors;
        from_conds.likes += fc.likes;
        from_conds.nested += fc.nested;
        from_conds.conj += fc.conj;
      }
      // Spider joins ON-condition lists with AND into one list: count those joints as conjunctions (never OR).
    }
    Conds wc = has_where ? conds(wb, we) : Conds{};
    Conds hc = has_having ? conds(hb, he) : Conds{};
    auto groups = has_group ? split_commas(gb, ge) : std::vector<std::pair<size_t, size_t>>{};

    c.component1 += has_where + has_group + has_order + has_limit;
    if (table_units > 0) c.component1 += table_units - 1;
    c.component1 += from_conds.ors + wc.ors + hc.ors;
    c.component1 += from_conds.likes + wc.likes + hc.likes;
    c.component2 += from_conds.nested + wc.nested + hc.nested;

    agg += wc.nots;  // the official code tests not_op of WHERE units as if it were an aggregation
    for (auto [ib, ie] : groups)
      if (ib < ie && is_agg(t_[ib].text) && open(ib + 1)) ++agg;
    if (has_order) {
      for (auto [ib, ie] : split_commas(ob, oe)) {
        int n = 0;
        for (size_t p : top_level(ib, ie, [&](size_t i) { return is_agg(t_[i].text) && !t_[i].literal && open(i + 1); }))
          (void)p, ++n;
        agg += std::min(n, 2);
      }
    }
    agg += hc.nots + hc.conj;  // the official code counts HAVING's 'and'/'or' strings and NOTs, not its aggregates
    if (agg > 1) ++c.others;
    if (items.size() > 1) ++c.others;
    if (wc.units > 1) ++c.others;
    if (groups.size() > 1) ++c.others;
    return c;
  }

  std::vector<Token> t_;
};

}  // namespace

HardnessCounts hardness_counts_from_text(std::string_view sql) { return TextCounter(tokenize(sql)).count(); }

}  // namespace t2s::workloads
