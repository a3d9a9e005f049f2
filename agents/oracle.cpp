#include "agents/oracle.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <set>

#include "agents/execution.hpp"
#include "agents/stage_model.hpp"
#include "agents/text2sql.hpp"
#include "sqlexec/schema.hpp"
#include "sqlexec/text.hpp"

namespace t2s::agents {

namespace {

// A token of SQL text outside quotes: words (identifiers, keywords, numbers) and single punctuation.
struct Tok {
  size_t pos, len;
  bool word;
};

std::vector<Tok> lex(const std::string& sql) {
  std::vector<Tok> toks;
  size_t i = 0;
  while (i < sql.size()) {
    char c = sql[i];
    if (c == '\'' || c == '"' || c == '`' || c == '[') {
      char close = c == '[' ? ']' : c;
      size_t j = sql.find(close, i + 1);
      j = j == std::string::npos ? sql.size() : j + 1;
      toks.push_back({i, j - i, false});
      i = j;
    } else if (std::isalnum(static_cast<unsigned char>(c)) || c == '_') {
      size_t j = i;
      while (j < sql.size() && (std::isalnum(static_cast<unsigned char>(sql[j])) || sql[j] == '_')) ++j;
      toks.push_back({i, j - i, true});
      i = j;
    } else if (std::isspace(static_cast<unsigned char>(c))) {
      ++i;
    } else {
      size_t len = (i + 1 < sql.size() && (sql.substr(i, 2) == "<=" || sql.substr(i, 2) == ">=" ||
                                           sql.substr(i, 2) == "!=" || sql.substr(i, 2) == "<>"))
                       ? 2
                       : 1;
      toks.push_back({i, len, false});
      i += len;
    }
  }
  return toks;
}

std::string text_of(const std::string& sql, const Tok& t) { return sql.substr(t.pos, t.len); }

const std::set<std::string>& sql_keywords() {
  static const std::set<std::string> k = {
      "select", "from",  "where", "group",  "by",    "order",  "having", "limit",    "join",   "inner", "left",
      "outer",  "on",    "as",    "and",    "or",    "not",    "in",     "like",     "between", "is",   "null",
      "distinct", "count", "sum", "avg",    "min",   "max",    "union",  "intersect", "except", "desc", "asc",
      "case",   "when",  "then",  "else",   "end",   "cast",   "exists", "all",      "offset", "with", "iif",
      "real",   "float", "integer", "text", "strftime", "cross", "natural", "using", "substr", "length"};
  return k;
}

std::string replace_at(const std::string& s, size_t pos, size_t len, const std::string& with) {
  return s.substr(0, pos) + with + s.substr(pos + len);
}

std::optional<std::string> misspell_column(const std::string& sql, const std::vector<std::string>& columns, Rng& rng) {
  std::set<std::string> cols;
  for (const auto& c : columns) cols.insert(sqlexec::lower_ascii(c));
  auto toks = lex(sql);
  std::vector<size_t> choices;
  for (size_t i = 0; i < toks.size(); ++i) {
    if (!toks[i].word) continue;
    std::string w = sqlexec::lower_ascii(text_of(sql, toks[i]));
    if (std::isdigit(static_cast<unsigned char>(w[0])) || sql_keywords().count(w)) continue;
    if (i + 1 < toks.size() && sql[toks[i + 1].pos] == '(') continue;  // a function
    if (!cols.empty() && !cols.count(w)) continue;
    choices.push_back(i);
  }
  if (choices.empty()) return std::nullopt;
  const Tok& t = toks[choices[static_cast<size_t>(rng.uniform_int(0, static_cast<int64_t>(choices.size()) - 1))]];
  std::string w = text_of(sql, t);
  // The slips models make: a dropped underscore, a plural, a truncated word.
  std::vector<std::string> variants;
  if (auto u = w.find('_'); u != std::string::npos) variants.push_back(w.substr(0, u) + w.substr(u + 1));
  variants.push_back(w + (w.back() == 's' ? "es" : "s"));
  if (w.size() > 3) variants.push_back(w.substr(0, w.size() - 1));
  variants.push_back(w + "_name");
  for (const auto& v : variants)
    if (!cols.count(sqlexec::lower_ascii(v))) return replace_at(sql, t.pos, t.len, v);
  return std::nullopt;
}

std::optional<std::string> syntax_slip(const std::string& sql) {
  for (const auto& t : lex(sql))
    if (t.word && sqlexec::lower_ascii(text_of(sql, t)) == "from") return replace_at(sql, t.pos, 0, ", ");
  return sql + " )";
}

std::optional<std::string> drop_join_condition(const std::string& sql) {
  auto toks = lex(sql);
  static const std::set<std::string> stop = {"join", "where", "group", "order", "limit", "union", "intersect",
                                             "except", "left", "inner", "cross"};
  for (size_t i = 0; i < toks.size(); ++i) {
    if (!toks[i].word || sqlexec::lower_ascii(text_of(sql, toks[i])) != "on") continue;
    size_t end = sql.size();
    int depth = 0;
    for (size_t j = i + 1; j < toks.size(); ++j) {
      std::string w = sqlexec::lower_ascii(text_of(sql, toks[j]));
      if (w == "(") ++depth;
      if (w == ")" && depth-- == 0) {
        end = toks[j].pos;
        break;
      }
      if (depth == 0 && toks[j].word && stop.count(w)) {
        end = toks[j].pos;
        break;
      }
    }
    std::string out = sql.substr(0, toks[i].pos) + sql.substr(end);
    return out;
  }
  return std::nullopt;
}

std::optional<std::string> wrong_aggregate(const std::string& sql) {
  auto toks = lex(sql);
  static const std::map<std::string, std::string> swap = {{"max", "MIN"}, {"min", "MAX"}, {"avg", "SUM"},
                                                          {"sum", "AVG"}};
  for (size_t i = 0; i + 1 < toks.size(); ++i) {
    if (!toks[i].word || sql[toks[i + 1].pos] != '(') continue;
    std::string w = sqlexec::lower_ascii(text_of(sql, toks[i]));
    if (auto it = swap.find(w); it != swap.end()) return replace_at(sql, toks[i].pos, toks[i].len, it->second);
    if (w == "count" && i + 2 < toks.size()) {
      std::string arg = sqlexec::lower_ascii(text_of(sql, toks[i + 2]));
      if (arg != "*" && arg != "distinct") return replace_at(sql, toks[i + 2].pos, 0, "DISTINCT ");
      if (arg == "distinct") return replace_at(sql, toks[i + 2].pos, toks[i + 2].len + 1, "");
    }
  }
  return std::nullopt;
}

std::optional<std::string> wrong_condition(const std::string& sql) {
  auto toks = lex(sql);
  bool in_where = false;
  static const std::map<std::string, std::string> flip = {{"=", "!="}, {"!=", "="}, {"<>", "="}, {">", "<"},
                                                          {"<", ">"},  {">=", "<"}, {"<=", ">"}};
  for (const auto& t : toks) {
    std::string w = sqlexec::lower_ascii(text_of(sql, t));
    if (t.word && w == "where") in_where = true;
    if (!in_where) continue;
    if (auto it = flip.find(w); it != flip.end() && !t.word) return replace_at(sql, t.pos, t.len, it->second);
    if (t.word && w == "like") return replace_at(sql, t.pos, t.len, "NOT LIKE");
  }
  for (size_t i = 0; i < toks.size(); ++i) {
    std::string w = sqlexec::lower_ascii(text_of(sql, toks[i]));
    if (toks[i].word && (w == "desc" || w == "asc")) return replace_at(sql, toks[i].pos, toks[i].len, w == "desc" ? "ASC" : "DESC");
    if (toks[i].word && w == "limit" && i + 1 < toks.size() && std::isdigit(static_cast<unsigned char>(sql[toks[i + 1].pos])))
      return replace_at(sql, toks[i + 1].pos, toks[i + 1].len,
                        std::to_string(std::stoll(text_of(sql, toks[i + 1])) + 1));
  }
  return std::nullopt;
}

}  // namespace

std::string_view mutation_name(Mutation m) {
  switch (m) {
    case Mutation::misspelled_column: return "misspelled_column";
    case Mutation::syntax_slip: return "syntax_slip";
    case Mutation::missing_join_condition: return "missing_join_condition";
    case Mutation::wrong_aggregate: return "wrong_aggregate";
    case Mutation::wrong_condition: return "wrong_condition";
  }
  return "?";
}

std::optional<std::string> mutate_sql(const std::string& sql, Mutation m, const std::vector<std::string>& columns,
                                      Rng& rng) {
  switch (m) {
    case Mutation::misspelled_column: return misspell_column(sql, columns, rng);
    case Mutation::syntax_slip: return syntax_slip(sql);
    case Mutation::missing_join_condition: return drop_join_condition(sql);
    case Mutation::wrong_aggregate: return wrong_aggregate(sql);
    case Mutation::wrong_condition: return wrong_condition(sql);
  }
  return std::nullopt;
}

std::pair<std::string, Mutation> wrong_variant(const std::string& gold, const std::array<double, 5>& weights,
                                               const std::vector<std::string>& columns, Rng& rng) {
  std::vector<double> w(weights.begin(), weights.end());
  for (;;) {
    auto m = static_cast<Mutation>(rng.weighted(w));
    if (auto s = mutate_sql(gold, m, columns, rng); s && normalize_sql(*s) != normalize_sql(gold)) return {*s, m};
    w[static_cast<size_t>(m)] = 0;  // does not apply to this query; syntax_slip always does
    bool any = false;
    for (double x : w) any = any || x > 0;
    if (!any) return {*syntax_slip(gold), Mutation::syntax_slip};
  }
}

namespace {

const std::set<std::string>& stopwords() {
  static const std::set<std::string> s = {
      "what", "which", "who", "whom", "whose", "when", "where", "how", "many", "much", "the", "and", "for", "with",
      "that", "this", "these", "those", "from", "into", "each", "every", "all", "any", "are", "is", "was", "were",
      "have", "has", "had", "does", "did", "list", "show", "give", "find", "return", "name", "names", "number",
      "their", "there", "than", "more", "most", "least", "less", "of", "in", "on", "by", "to", "a", "an", "or",
      "not", "do", "be", "as", "at", "it", "its", "please", "also", "among", "between", "whose", "only", "them"};
  return s;
}

// Keywords a careful model would extract: quoted phrases, numbers, capitalised words, content words.
std::vector<std::string> oracle_keywords(const std::string& text) {
  std::vector<std::string> out;
  std::set<std::string> seen;
  auto add = [&](std::string k) {
    if (k.empty() || !seen.insert(sqlexec::lower_ascii(k)).second) return;
    out.push_back(std::move(k));
  };
  for (size_t i = 0; i < text.size(); ++i)
    if (text[i] == '\'' || text[i] == '"') {
      size_t j = text.find(text[i], i + 1);
      if (j == std::string::npos) break;
      if (j - i > 1 && j - i < 60) add(text.substr(i + 1, j - i - 1));
      i = j;
    }
  std::string word;
  for (size_t i = 0; i <= text.size(); ++i) {
    char c = i < text.size() ? text[i] : ' ';
    if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') {
      word += c;
      continue;
    }
    if (word.size() >= 3 && !stopwords().count(sqlexec::lower_ascii(word))) add(word);
    word.clear();
  }
  if (out.size() > 12) out.resize(12);
  return out;
}

bool mentions(const std::string& gold_lower, const std::string& name) {
  std::string n = sqlexec::lower_ascii(name);
  size_t p = 0;
  while ((p = gold_lower.find(n, p)) != std::string::npos) {
    bool left = p == 0 || !(std::isalnum(static_cast<unsigned char>(gold_lower[p - 1])) || gold_lower[p - 1] == '_');
    size_t e = p + n.size();
    bool right = e >= gold_lower.size() || !(std::isalnum(static_cast<unsigned char>(gold_lower[e])) || gold_lower[e] == '_');
    if (left && right) return true;
    p = e;
  }
  return false;
}

class OracleResponder final : public Responder {
 public:
  OracleResponder(const workloads::Workload& w, OracleOptions o) : opt_(o) {
    for (const auto& q : w.questions) questions_[q.id] = q;
    double s = std::max(0.0, opt_.error_scale);
    for (size_t i = 0; i < 4; ++i) p_wrong_[i] = std::clamp(opt_.p_wrong[i] * s, 0.0, 1.0);
    q_fix_ = std::clamp(1.0 - (1.0 - opt_.q_fix) * s, 0.0, 1.0);
    judge_error_ = std::clamp(opt_.judge_error * s, 0.0, 1.0);
  }

  std::string name() const override { return "oracle"; }

  Response respond(const LlmCall& call) override {
    const auto* m = dynamic_cast<const Text2SqlCallMeta*>(call.meta.get());
    const StageLengths& lengths = trace_fitted_lengths(call.kind);
    if (!m) {
      // Not a Text-to-SQL call (e.g. a trace): only a length, drawn from the fitted distribution.
      Rng rng(opt_.seed ^ (call.id * 0x9e3779b97f4a7c15ULL));
      return {{}, lengths.output.draw(rng)};
    }
    auto qit = questions_.find(m->question_id);
    if (qit == questions_.end())
      return {"The oracle does not know question " + m->question_id + ".", 16};
    const workloads::Question& q = qit->second;
    Rng rng(opt_.seed ^ stable_hash(q.id + "/" + std::string(stage_kind_name(call.kind)) + "/" +
                                    std::to_string(m->candidate) + "/" + std::to_string(m->round) + "/" +
                                    std::to_string(m->test)));
    Response r;
    r.output_tokens = lengths.output.draw(rng);
    const std::vector<std::string> no_columns;
    const auto& columns = m->columns ? *m->columns : no_columns;
    switch (call.kind) {
      case StageKind::tool_picker:
        r.text = "{\"tool\": \"" + m->next_tool + "\"}";
        break;
      case StageKind::keyword_extraction: {
        r.text = "[";
        auto kws = oracle_keywords(q.question + " " + q.evidence);
        for (size_t i = 0; i < kws.size(); ++i) r.text += (i ? ", \"" : "\"") + kws[i] + "\"";
        r.text += "]";
        break;
      }
      case StageKind::column_selection: {
        std::string g = sqlexec::lower_ascii(q.gold_sql);
        r.text = "{";
        bool first_table = true;
        for (const auto& [table, cols] : m->schema_columns) {
          if (!mentions(g, table)) continue;
          r.text += std::string(first_table ? "" : ", ") + "\"" + table + "\": [";
          first_table = false;
          bool first = true;
          for (const auto& c : cols)
            if (mentions(g, c)) {
              r.text += std::string(first ? "" : ", ") + "\"" + c + "\"";
              first = false;
            }
          r.text += "]";
        }
        r.text += "}";
        break;
      }
      case StageKind::candidate_generation: {
        std::string sql = q.gold_sql;
        if (rng.bernoulli(p_wrong_[static_cast<size_t>(q.difficulty)]))
          sql = wrong_variant(q.gold_sql, opt_.mutation_weights, columns, rng).first;
        r.text = "Let me work through the question step by step and write the final query.\n```sql\n" + sql +
                 "\n```";
        break;
      }
      case StageKind::revise: {
        std::string sql;
        if (normalize_sql(m->previous_sql) == normalize_sql(q.gold_sql))
          sql = m->previous_sql;  // nothing to fix: the model keeps its query
        else if (rng.bernoulli(q_fix_))
          sql = q.gold_sql;
        else
          sql = wrong_variant(q.gold_sql, opt_.mutation_weights, columns, rng).first;
        r.text = "The error shows what to change. Corrected query:\n```sql\n" + sql + "\n```";
        break;
      }
      case StageKind::unit_test_generation: {
        // As many tests as the traces' evaluation fan-out (at least one), at most what the agent asked for.
        auto pmf = trace_fitted_shape().evaluation_calls_pmf;
        pmf[0] = 0;
        int k = std::min(static_cast<int>(rng.weighted(pmf)), std::max(m->tests_wanted, 1));
        for (int i = 0; i < k; ++i)
          r.text += std::to_string(i + 1) + ". " + unit_test_text(q, i) + "\n";
        break;
      }
      case StageKind::evaluation: {
        std::string g = normalize_sql(q.gold_sql);
        for (size_t i = 0; i < m->candidate_sqls.size(); ++i) {
          bool right = normalize_sql(m->candidate_sqls[i]) == g;
          if (rng.bernoulli(judge_error_)) right = !right;
          r.text += "Candidate " + std::to_string(i + 1) + ": " + (right ? "PASS" : "FAIL") + "\n";
        }
        break;
      }
      default:
        break;
    }
    r.output_tokens = std::max(r.output_tokens, sqlexec::estimate_tokens(r.text));
    return r;
  }

 private:
  static std::string unit_test_text(const workloads::Question& q, int i) {
    static const char* kinds[] = {
        "The query must return exactly the attributes the question asks for, in that order.",
        "The query must apply every filter stated in the question and evidence.",
        "Aggregations must be computed over the right groups.",
        "The query must join tables only on their key relationships.",
        "Rows must be ordered and limited as the question requires.",
        "The result must not contain duplicate rows unless the question implies them.",
        "Values must be compared with the spelling used in the database."};
    return std::string(kinds[static_cast<size_t>(i) % 7]) + " (question: " + q.question.substr(0, 60) + ")";
  }

  OracleOptions opt_;
  std::map<std::string, workloads::Question> questions_;
  std::array<double, 4> p_wrong_{};
  double q_fix_ = 1, judge_error_ = 0;
};

}  // namespace

std::unique_ptr<Responder> make_oracle_responder(const workloads::Workload& workload, OracleOptions options) {
  return std::make_unique<OracleResponder>(workload, options);
}

}  // namespace t2s::agents
