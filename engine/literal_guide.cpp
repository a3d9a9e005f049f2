#include "engine/literal_guide.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <limits>

namespace t2s::engine {

LiteralTries::LiteralTries(const SqlLiteralRules& rules) : nodes_(kRoots), names_(rules.tables) {
  for (const auto& f : rules.first_item) {
    first_item_.push_back(f);
    for (char& c : first_item_.back()) c = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
  }
  if (!first_item_.empty()) first_item_.emplace_back("DISTINCT");
  std::sort(first_item_.begin(), first_item_.end());
  int strings = 0, ignored = 0;
  for (const auto& s : rules.named_values) insert(kString, s, strings);
  named_ = std::min(strings, 64);  // the order is tracked in 64-bit masks; later named values count as other strings
  for (const auto& s : rules.strings) insert(kString, s, strings);
  for (const auto& s : rules.named_values) insert(kLikeString, s, ignored);
  for (const auto& s : rules.strings) insert(kLikeString, s, ignored);
  for (const auto& s : rules.like_patterns) insert(kLikeString, s, ignored);
  for (const auto& s : rules.formats) insert(kFormat, s, ignored);
  for (const auto& s : rules.numbers) insert(kNumber, s, ignored);
  for (const auto& s : rules.numbers) insert(kLimitNumber, s, ignored);
  for (const auto& s : rules.limit_numbers) insert(kLimitNumber, s, ignored);
  if (!rules.comparisons.empty()) {
    comparisons_ = 0;
    for (const auto& op : rules.comparisons)
      for (unsigned bit = 0; bit < 4; ++bit)
        if (op == std::array<std::string_view, 4>{"<", "<=", ">", ">="}[bit]) comparisons_ |= 1u << bit;
  }
  // What closes under each node: children have larger indices than their parent, so one backward pass suffices.
  std::vector<int> string_tree(nodes_.size(), 0);
  string_tree[kString] = 1;
  for (size_t i = 0; i < nodes_.size(); ++i)
    for (const auto& [b, child] : nodes_[i].next) string_tree[static_cast<size_t>(child)] = string_tree[i];
  for (size_t i = nodes_.size(); i-- > 0;) {
    Node& n = nodes_[i];
    if (n.terminal >= 0) {
      if (string_tree[i] && n.terminal < named_)
        n.named_below |= uint64_t{1} << n.terminal;
      else
        n.other_below = true;
    }
    for (const auto& [b, child] : n.next) {
      n.named_below |= nodes_[static_cast<size_t>(child)].named_below;
      n.other_below = n.other_below || nodes_[static_cast<size_t>(child)].other_below;
    }
  }
}

void LiteralTries::insert(int root, std::string_view s, int& count) {
  int node = root;
  for (char c : s) {
    int child = step(node, c);
    if (child < 0) {
      child = static_cast<int>(nodes_.size());
      nodes_[static_cast<size_t>(node)].next.emplace_back(c, child);
      nodes_.emplace_back();
    }
    node = child;
  }
  if (nodes_[static_cast<size_t>(node)].terminal < 0) nodes_[static_cast<size_t>(node)].terminal = count++;
}

bool LiteralTries::first_item(std::string_view upper, bool prefix) const {
  return SqlNames::find(first_item_, upper, prefix);
}

int LiteralTries::step(int node, char c) const {
  for (const auto& [b, child] : nodes_[static_cast<size_t>(node)].next)
    if (b == c) return child;
  return -1;
}

SqlLiteralGuide::SqlLiteralGuide(std::shared_ptr<const LiteralTries> tries) : tries_(std::move(tries)) {
  lex_.first_item = tries_->first_item_rule() ? 1 : 0;
}

namespace {
bool ident_char(char c) {
  return std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '$';
}
bool space(char c) {
  return c == ' ' || c == '\n' || c == '\t' || c == '\r';
}
}  // namespace

// Outside LIKE and strftime, named values come first and in order: until each was written, a string literal is the
// next one; then any allowed string.
bool SqlLiteralGuide::close_allowed(const Lexer& s) const {
  const int idx = tries_->terminal_index(s.node);
  if (idx < 0) return false;
  return s.root != LiteralTries::kString || s.named_written >= tries_->named_values() || idx == s.named_written;
}

bool SqlLiteralGuide::viable(const Lexer& s) const {
  if (s.root != LiteralTries::kString || s.named_written >= tries_->named_values())
    return tries_->other_below(s.node) || tries_->named_below(s.node) != 0;
  return (tries_->named_below(s.node) >> s.named_written & 1) != 0;
}

bool SqlLiteralGuide::can_end() const {
  switch (lex_.mode) {
    case Mode::Str:
      return false;
    case Mode::StrQuote:
      return close_allowed(lex_);
    case Mode::Num:
      return tries_->terminal(lex_.node);
    case Mode::Ident: {  // only after a whole name, and not after a function name without its '('
      Lexer probe = lex_;
      return feed(probe, '\n') && probe.need_paren == 0;
    }
    case Mode::Sql:
      return lex_.need_paren == 0 && lex_.first_item < 2;
    default:
      return true;
  }
}

namespace {
// Keywords after which a FROM clause goes on (another table may follow).
bool join_word(std::string_view w) {
  for (std::string_view k : {"JOIN", "INNER", "LEFT", "RIGHT", "FULL", "OUTER", "CROSS", "NATURAL", "AS"})
    if (w == k) return true;
  return false;
}
}  // namespace

SqlLiteralGuide::NameRole SqlLiteralGuide::role_of(const Lexer& s) const {
  if (s.first_item >= 2) return NameRole::Aggregate;
  if (!tries_->names().checks() || s.names_off) return NameRole::Free;
  if (s.qualifier != kNoQualifier) return NameRole::Qualified;
  switch (s.expect) {
    case Expect::Table:
      return NameRole::Table;
    case Expect::TableAlias:  // an alias or the keyword after the table
    case Expect::Alias:
      return NameRole::Free;
    case Expect::Name:
      break;
  }
  return (s.selecting >> s.depth & 1) != 0 ? NameRole::AnyColumn : NameRole::ScopeColumn;
}

bool SqlLiteralGuide::in_scope(const Lexer& s, std::string_view w, bool prefix, bool columns) const {
  for (size_t i = 0; i < s.scope_size; ++i) {
    const ScopeName& n = s.scope[i];
    if (columns) {
      if (n.table >= 0 && tries_->names().column(n.table, w, prefix)) return true;
    } else {
      const std::string_view name(n.name.data(), n.len);
      if (prefix ? name.substr(0, w.size()) == w : name == w) return true;
    }
  }
  return false;
}

void SqlLiteralGuide::add_scope(Lexer& s, std::string_view w, int table) const {
  if (s.scope_size == s.scope.size() || w.size() > s.scope[0].name.size()) {
    s.names_off = true;  // more names than the lexer keeps: stop checking rather than refuse a right one
    return;
  }
  ScopeName& n = s.scope[s.scope_size++];
  std::copy(w.begin(), w.end(), n.name.begin());
  n.len = static_cast<uint8_t>(w.size());
  n.table = static_cast<int16_t>(table);
}

bool SqlLiteralGuide::name_viable(const Lexer& s) const {
  const std::string_view w(s.ident.data(), s.ident_len);
  const SqlNames& names = tries_->names();
  switch (s.role) {
    case NameRole::Free:
      return true;
    case NameRole::Table:
      return names.table_prefix(w);
    case NameRole::Qualified:
      return s.qualifier < 0 || names.column(s.qualifier, w, true);
    case NameRole::AnyColumn:
      return true;
    case NameRole::Aggregate:
      return tries_->first_item(w, true);
    case NameRole::ScopeColumn:
      return names.keyword(w, true) || names.function(w, true) || in_scope(s, w, true, true) ||
             in_scope(s, w, true, false);
  }
  return true;
}

bool SqlLiteralGuide::end_name(Lexer& s, char c) const {
  const std::string_view w(s.ident.data(), s.ident_len);
  const SqlNames& names = tries_->names();
  s.last_word = w.size() <= 9 ? std::string(w) : std::string();
  const NameRole role = s.role;
  s.role = NameRole::Free;
  if (role == NameRole::Aggregate) {
    if (!tries_->first_item(w, false)) return false;
    s.first_item = w == "DISTINCT" ? 2 : 0;
    if (w != "DISTINCT") s.need_paren = 1;
    s.expect = Expect::Name;
    return true;
  }
  if (w == "SELECT" && s.first_item == 1 && s.depth == 0) s.first_item = 2;  // with or without a schema
  if (role == NameRole::Table) {
    const int t = names.table(w);
    if (t < 0) return false;
    add_scope(s, w, t);
    s.last_table = static_cast<int16_t>(t);
    s.expect = Expect::TableAlias;
    return true;
  }
  if (role == NameRole::Qualified) {
    const int t = s.qualifier;
    s.qualifier = kNoQualifier;
    s.expect = Expect::Name;
    return t < 0 || names.column(t, w, false);  // a derived table's columns are not the schema's
  }
  if (c == '.' && role != NameRole::Free) {  // a qualifier: the table (alias) whose column follows
    s.qualifier = -1;                        // in a select list the FROM that defines it comes later: any column
    if (role == NameRole::ScopeColumn) {     // the latest definition of the name (a later query may reuse T1)
      bool found = false;
      for (size_t i = s.scope_size; i-- > 0 && !found;)
        if (std::string_view(s.scope[i].name.data(), s.scope[i].len) == w) {
          s.qualifier = s.scope[i].table;
          found = true;
        }
      if (!found) return false;
    }
    return true;
  }
  const bool keyword = names.checks() && names.keyword(w, false);
  const Expect was = s.expect;
  s.expect = Expect::Name;
  if (!keyword && role == NameRole::ScopeColumn && !in_scope(s, w, false, true) && !in_scope(s, w, false, false)) {
    if (!names.function(w, false)) return false;
    s.need_paren = 1;
  }
  if (!keyword) {
    // Aliases: after a table or AS; in a select list also "expr name" (a name that is no column or function).
    if (was == Expect::TableAlias || was == Expect::Alias)
      add_scope(s, w, s.last_table);  // -1 after an expression's or a subquery's AS
    else if (role == NameRole::AnyColumn && c != '(' && !names.column(-1, w, false) && !names.function(w, false))
      add_scope(s, w, -1);
    return true;
  }
  if (w == "WITH") s.names_off = true;
  if (w == "SELECT") s.selecting |= 1u << s.depth;
  if (w == "FROM") s.selecting &= ~(1u << s.depth);
  if (w == "FROM" || w == "JOIN") s.expect = Expect::Table;
  if (w == "AS") {
    s.expect = Expect::Alias;
    if (was != Expect::TableAlias) s.last_table = -1;  // AS after an expression or a subquery
  }
  s.from_clause = w == "FROM" || w == "JOIN" || (s.from_clause && join_word(w));
  return true;
}

bool SqlLiteralGuide::feed_sql(Lexer& s, char c) const {
  if (s.need_paren != 0) {  // '(' right after the name or one space: no room to wander off in whitespace
    if (c == ' ' && s.need_paren == 1) {
      s.need_paren = 2;
      return true;
    }
    if (c != '(') return false;
    s.need_paren = 0;
  }
  if (!ident_char(c)) s.qualifier = kNoQualifier;  // a qualifier holds for the name right after its '.'
  if (s.first_item >= 2) {  // the function asked for comes next, after at most four bytes of whitespace
    if (space(c) ? s.first_item++ == 6 : !std::isalpha(static_cast<unsigned char>(c))) return false;
  }
  const bool dash = s.dash;
  s.dash = c == '-';
  if (space(c)) return true;  // the keyword before a literal stays known across spaces
  if (c == '`') {             // the closing fence: what follows is prose again, unconstrained
    s.mode = Mode::Done;
  } else if (c == '-' && dash) {
    s.mode = Mode::Comment;
  } else if (c == '\'') {
    s.mode = Mode::Str;
    s.root = s.last_word == "LIKE"        ? LiteralTries::kLikeString
             : s.last_word == "STRFTIME(" ? LiteralTries::kFormat
                                          : LiteralTries::kString;
    s.node = s.root;
  } else if (c == '"' || c == '[') {
    s.mode = Mode::QuotedIdent;
    s.quote_close = c == '"' ? '"' : ']';
    s.expect = Expect::Name;
  } else if (c == '<' || c == '>') {  // never into an operator whose every form is refused
    s.mode = Mode::Cmp;
    s.cmp = c;
    s.last_word.clear();
    return tries_->comparison_allowed(c, false) || tries_->comparison_allowed(c, true);
  } else if (std::isdigit(static_cast<unsigned char>(c))) {
    s.mode = Mode::Num;
    s.root = s.last_word == "LIMIT" || s.last_word == "OFFSET" ? LiteralTries::kLimitNumber : LiteralTries::kNumber;
    s.node = tries_->step(s.root, c);
    s.last_word.clear();
    return s.node >= 0;
  } else if (ident_char(c)) {
    s.mode = Mode::Ident;
    s.role = role_of(s);
    s.ident[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
    s.ident_len = 1;
    return name_viable(s);
  } else if (c == '(' || c == ')') {
    if (c == '(' ? s.depth == 31 : s.depth == 0) {
      s.names_off = true;   // nesting the lexer does not follow
    } else if (c == '(') {  // inside parentheses a select list goes on until a SELECT opens another
      const uint32_t bit = 1u << ++s.depth;
      s.selecting = (s.selecting & ~bit) | ((s.selecting >> (s.depth - 1) & 1u) << s.depth);
      s.derived = s.expect == Expect::Table ? s.derived | bit : s.derived & ~bit;  // FROM (SELECT …)
      s.expect = Expect::Name;
    } else {
      const bool derived = (s.derived >> s.depth & 1u) != 0;
      --s.depth;
      s.from_clause = derived;
      s.expect = derived ? Expect::TableAlias : Expect::Name;  // "(SELECT …) AS t" or "(SELECT …) t"
      if (derived) s.last_table = -1;
    }
    if (c == '(' && s.last_word == "STRFTIME") {
      s.last_word = "STRFTIME(";  // its first argument is a format
      return true;
    }
  } else if (c == ',' && s.from_clause) {
    s.expect = Expect::Table;
  } else if (c != '.') {
    s.expect = Expect::Name;
  }
  s.last_word.clear();
  return true;
}

bool SqlLiteralGuide::feed(Lexer& s, char c) const {
  switch (s.mode) {
    case Mode::Done:
      return true;
    case Mode::Prose:
      // A fence line ("```" or "```sql") opens the SQL when it ends.
      if (c == '\n') {
        if (s.fence_ticks >= 3) s.mode = Mode::Sql;
        s.fence_ticks = 0;
      } else if (c == '`' && s.fence_ticks >= 0 && s.fence_ticks < 3) {
        ++s.fence_ticks;
      } else if (s.fence_ticks < 3) {
        s.fence_ticks = -1;
      }
      return true;
    case Mode::Str:
      if (c == '\'') {  // closes the literal, or starts an escaped quote: one of them must be allowed
        s.mode = Mode::StrQuote;
        return close_allowed(s) || tries_->step(s.node, '\'') >= 0;
      }
      // Never into a value that could neither continue nor close (a named value not to be repeated yet).
      s.node = tries_->step(s.node, c);
      return s.node >= 0 && viable(s);
    case Mode::StrQuote:
      if (c == '\'') {  // '' inside a literal: an escaped quote
        s.mode = Mode::Str;
        s.node = tries_->step(s.node, '\'');
        return s.node >= 0;
      }
      if (!close_allowed(s)) return false;
      if (s.root == LiteralTries::kString && tries_->terminal_index(s.node) == s.named_written) ++s.named_written;
      s.mode = Mode::Sql;
      return feed(s, c);
    case Mode::Num:
      if (std::isdigit(static_cast<unsigned char>(c)) || c == '.') {
        s.node = tries_->step(s.node, c);
        return s.node >= 0;
      }
      if (ident_char(c) || !tries_->terminal(s.node)) return false;  // "12abc" is no literal; "1" must be whole
      s.mode = Mode::Sql;
      return feed(s, c);
    case Mode::Ident:
      if (ident_char(c)) {
        if (s.ident_len == s.ident.size()) {  // longer than any name the lexer keeps: left alone
          s.role = NameRole::Free;
          return true;
        }
        s.ident[s.ident_len++] = static_cast<char>(std::toupper(static_cast<unsigned char>(c)));
        return name_viable(s);
      }
      s.mode = Mode::Sql;
      if (!end_name(s, c)) return false;
      return c == '.' && s.qualifier != kNoQualifier ? true : feed(s, c);
    case Mode::QuotedIdent:
      if (c == s.quote_close) s.mode = Mode::Sql;
      return true;
    case Mode::Comment:
      if (c == '\n') s.mode = Mode::Sql;
      return true;
    case Mode::Cmp: {
      s.mode = Mode::Sql;
      if (c == '=') return tries_->comparison_allowed(s.cmp, true);
      if (s.cmp == '<' && c == '>') return true;  // <>: not equal
      return tries_->comparison_allowed(s.cmp, false) && feed(s, c);
    }
    case Mode::Sql:
      return feed_sql(s, c);
  }
  return true;
}

bool SqlLiteralGuide::accepts(std::string_view bytes) const {
  if (lex_.mode == Mode::Done) return true;
  Lexer probe = lex_;
  for (char c : bytes)
    if (!feed(probe, c)) return false;
  return true;
}

void SqlLiteralGuide::advance(std::string_view bytes) {
  for (char c : bytes) {
    if (lex_.mode == Mode::Done) return;
    if (!feed(lex_, c)) lex_.mode = Mode::Done;
  }
}

namespace {
// What a token opens when it starts past a literal: a number ('0'-'9'), a string ('\''), an ordering operator ('<'
// or '>'), something else (0), or nothing (-1: only spaces).
int opens(const std::string& bytes) {
  for (char c : bytes) {
    if (space(c)) continue;
    if (std::isdigit(static_cast<unsigned char>(c))) return '0';
    if (c == '>') return '<';
    return c == '\'' || c == '<' ? c : 0;
  }
  return -1;
}
}  // namespace

int sample_guided(float* logits, int n, const SamplingParams& params, double u, SqlLiteralGuide& guide,
                  const std::vector<std::string>& token_bytes, const std::vector<char>& stop,
                  std::vector<int>& scratch) {
  if (!guide.constraining()) return sample_token_with(logits, n, params, u, scratch);
  // Refusals are decided before any logit changes, so that a guide that accepts nothing leaves them as they were.
  std::vector<char> ok(static_cast<size_t>(n));
  const bool may_end = guide.can_end();
  int top = 0, any = 0;
  for (int i = 0; i < n; ++i) {
    const auto k = static_cast<size_t>(i);
    ok[k] = stop[k] ? may_end : guide.accepts(token_bytes[k]);
    any += ok[k];
    if (logits[i] > logits[top]) top = i;
  }
  if (!any) {
    guide.disable();
    return sample_token_with(logits, n, params, u, scratch);
  }
  const int intent =
      guide.in_literal() || ok[static_cast<size_t>(top)] ? 0 : opens(token_bytes[static_cast<size_t>(top)]);
  if (intent > 0) {
    bool kept = false;
    for (int i = 0; i < n && !kept; ++i)
      kept = ok[static_cast<size_t>(i)] && !stop[static_cast<size_t>(i)] &&
             opens(token_bytes[static_cast<size_t>(i)]) == intent;
    for (int i = 0; i < n && kept; ++i) {
      const int o = stop[static_cast<size_t>(i)] ? 0 : opens(token_bytes[static_cast<size_t>(i)]);
      if (o != intent && o != -1) ok[static_cast<size_t>(i)] = 0;
    }
  }
  for (int i = 0; i < n; ++i)
    if (!ok[static_cast<size_t>(i)]) logits[i] = -std::numeric_limits<float>::infinity();
  return sample_token_with(logits, n, params, u, scratch);
}

}  // namespace t2s::engine
