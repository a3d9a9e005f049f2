#include "workloads/synthetic.hpp"

#include <sqlite3.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <optional>
#include <set>
#include <stdexcept>

#include "common/json.hpp"
#include "common/rng.hpp"
#include "common/status.hpp"
#include "workloads/hardness.hpp"
#include "workloads/loaders.hpp"
#include "workloads/synthetic_domains.hpp"

namespace t2s::workloads {

namespace fs = std::filesystem;
using synth::Col;
using synth::Domain;
using synth::Kind;
using synth::Shape;
using synth::Table;

namespace {

// ------------------------------------------------------------------------------------------------ SQLite helpers

class Connection {
 public:
  explicit Connection(const std::string& path, int flags) {
    if (sqlite3_open_v2(path.c_str(), &db_, flags, nullptr) != SQLITE_OK) {
      std::string msg = db_ ? sqlite3_errmsg(db_) : "out of memory";
      sqlite3_close(db_);
      throw std::runtime_error("synthetic: cannot open '" + path + "': " + msg);
    }
  }
  ~Connection() { sqlite3_close(db_); }
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;
  sqlite3* get() const { return db_; }
  void exec(const std::string& sql) const {
    char* err = nullptr;
    if (sqlite3_exec(db_, sql.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
      std::string msg = err ? err : "unknown error";
      sqlite3_free(err);
      throw std::runtime_error("synthetic: SQL failed: " + sql + ": " + msg);
    }
  }

 private:
  sqlite3* db_ = nullptr;
};

class Statement {
 public:
  Statement(sqlite3* db, const std::string& sql) {
    if (sqlite3_prepare_v2(db, sql.c_str(), -1, &st_, nullptr) != SQLITE_OK)
      throw std::logic_error("synthetic: cannot prepare '" + sql + "': " + sqlite3_errmsg(db));
  }
  ~Statement() { sqlite3_finalize(st_); }
  Statement(const Statement&) = delete;
  Statement& operator=(const Statement&) = delete;
  sqlite3_stmt* get() const { return st_; }

 private:
  sqlite3_stmt* st_ = nullptr;
};

// ------------------------------------------------------------------------------------------------ values

size_t scaled_rows(const Table& t, double scale) {
  if (t.rows <= 200) return t.rows;  // lookup tables keep their size
  return std::max<size_t>(200, static_cast<size_t>(std::llround(static_cast<double>(t.rows) * scale)));
}

double draw_numeric(const Col& c, Rng& rng) {
  double v = 0;
  switch (c.shape) {
    case Shape::uniform: v = rng.uniform(c.lo, c.hi); break;
    case Shape::normal: v = std::clamp(rng.normal((c.lo + c.hi) / 2, (c.hi - c.lo) / 6), c.lo, c.hi); break;
    case Shape::skewed: v = std::min(c.hi, c.lo + rng.exponential(8.0 / (c.hi - c.lo + 1))); break;
    case Shape::lognormal: v = c.lo * rng.lognormal(0.0, c.hi); break;
  }
  if (c.kind == Kind::integer) return std::floor(v + (c.shape == Shape::uniform ? 0.0 : 0.5));
  return std::round(v * 100.0) / 100.0;
}

std::string make_name(const Col& c, size_t i, Rng& rng) {
  if (!c.values.empty()) {
    const auto& v = c.values[i % c.values.size()];
    return i < c.values.size() ? v : v + " " + std::to_string(i / c.values.size() + 1);
  }
  const auto& p = synth::pool;
  if (c.ref == "person") return rng.pick(p("first")) + " " + rng.pick(p("last"));
  if (c.ref == "product") return rng.pick(p("adjective")) + " " + rng.pick(p("product"));
  if (c.ref == "song") return rng.pick(p("adjective")) + " " + rng.pick(p("song"));
  if (c.ref == "band") return rng.pick(p("adjective")) + " " + rng.pick(p("song")) + " " + rng.pick(p("band_suffix"));
  if (c.ref == "course") return rng.pick(p("course_prefix")) + " " + rng.pick(p("course_subject"));
  if (c.ref == "city") {
    const auto& cities = p("city");
    return i < cities.size() ? cities[i] : cities[i % cities.size()] + " " + std::to_string(i / cities.size() + 1);
  }
  throw std::logic_error("synthetic: unknown name pool " + c.ref);
}

std::string sql_type(const Col& c) {
  switch (c.kind) {
    case Kind::pk:
    case Kind::fk:
    case Kind::integer: return "INTEGER";
    case Kind::real: return "REAL";
    default: return "TEXT";
  }
}

const Table& table_named(const Domain& d, const std::string& name) {
  for (const auto& t : d.tables)
    if (t.name == name) return t;
  throw std::logic_error("synthetic: unknown table " + name);
}

// ------------------------------------------------------------------------------------------------ database writing

void write_database(const Domain& d, const std::string& path, double scale, Rng rng) {
  fs::create_directories(fs::path(path).parent_path());
  fs::remove(path);
  Connection c(path, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE);
  // Fixed page size, no journal, one transaction: the file's bytes depend only on the data.
  c.exec("PRAGMA page_size=4096; PRAGMA journal_mode=OFF; PRAGMA synchronous=OFF; PRAGMA encoding='UTF-8'; "
         "PRAGMA cache_size=-131072;");
  c.exec("BEGIN");
  std::map<std::string, size_t> rows;
  for (size_t ti = 0; ti < d.tables.size(); ++ti) {
    const Table& t = d.tables[ti];
    std::vector<std::string> lines;
    for (const Col& col : t.cols)
      lines.push_back("  " + col.name + " " + sql_type(col) + (col.kind == Kind::pk ? " PRIMARY KEY" : ""));
    for (const Col& col : t.cols)
      if (col.kind == Kind::fk) lines.push_back("  FOREIGN KEY (" + col.name + ") REFERENCES " + col.ref + "(id)");
    std::string ddl = "CREATE TABLE " + t.name + " (\n";
    for (size_t i = 0; i < lines.size(); ++i) ddl += lines[i] + (i + 1 < lines.size() ? ",\n" : "\n");
    ddl += ")";
    c.exec(ddl);

    size_t n = scaled_rows(t, scale);
    rows[t.name] = n;
    std::string ins = "INSERT INTO " + t.name + " VALUES (";
    for (size_t i = 0; i < t.cols.size(); ++i) ins += i ? ",?" : "?";
    ins += ")";
    Statement st(c.get(), ins);
    Rng trng = rng.fork(ti + 1);
    for (size_t r = 0; r < n; ++r) {
      for (size_t i = 0; i < t.cols.size(); ++i) {
        const Col& col = t.cols[i];
        int idx = static_cast<int>(i) + 1;
        switch (col.kind) {
          case Kind::pk: sqlite3_bind_int64(st.get(), idx, static_cast<int64_t>(r) + 1); break;
          case Kind::fk: {
            size_t np = rows.at(col.ref);
            // u^skew concentrates references on low ids (popular parents), skew 1 is uniform.
            double u = std::pow(trng.uniform(), col.lo > 0 ? col.lo : 1.0);
            sqlite3_bind_int64(st.get(), idx, static_cast<int64_t>(std::min(np - 1, size_t(u * double(np)))) + 1);
            break;
          }
          case Kind::name: {
            std::string s = make_name(col, r, trng);
            sqlite3_bind_text(st.get(), idx, s.c_str(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
            break;
          }
          case Kind::category: {
            const std::string& s = col.weights.empty() ? trng.pick(col.values) : col.values[trng.weighted(col.weights)];
            sqlite3_bind_text(st.get(), idx, s.c_str(), static_cast<int>(s.size()), SQLITE_TRANSIENT);
            break;
          }
          case Kind::integer:
            sqlite3_bind_int64(st.get(), idx, static_cast<int64_t>(draw_numeric(col, trng)));
            break;
          case Kind::real: sqlite3_bind_double(st.get(), idx, draw_numeric(col, trng)); break;
          case Kind::date: {
            char buf[16];
            std::snprintf(buf, sizeof buf, "%04d-%02d-%02d",
                          static_cast<int>(trng.uniform_int(static_cast<int64_t>(col.lo), static_cast<int64_t>(col.hi))),
                          static_cast<int>(trng.uniform_int(1, 12)), static_cast<int>(trng.uniform_int(1, 28)));
            sqlite3_bind_text(st.get(), idx, buf, -1, SQLITE_TRANSIENT);
            break;
          }
        }
      }
      if (sqlite3_step(st.get()) != SQLITE_DONE)
        throw std::runtime_error("synthetic: insert into " + t.name + " failed: " + sqlite3_errmsg(c.get()));
      sqlite3_reset(st.get());
    }
  }
  for (const auto& t : d.tables)
    for (const auto& col : t.cols)
      if (col.kind == Kind::fk)
        c.exec("CREATE INDEX idx_" + t.name + "_" + col.name + " ON " + t.name + "(" + col.name + ")");
  c.exec("COMMIT");
  c.exec("ANALYZE");
}

// ------------------------------------------------------------------------------------------------ questions

struct Candidate {
  std::string question, sql;
};

std::string quote(const std::string& s) {
  std::string out = "'";
  for (char ch : s) out += ch == '\'' ? std::string("''") : std::string(1, ch);
  return out + "'";
}

// A round number near x at the column's granularity (a tenth of its range, or two significant digits for
// lognormal columns), written without trailing zeros.
std::string nice_number(double x, const Col& c) {
  bool integer = c.kind == Kind::integer;
  double width = c.shape == Shape::lognormal ? std::fabs(x) : (c.hi - c.lo);
  if (width > 0) {
    double mag = std::pow(10.0, std::floor(std::log10(width / 10.0)));
    if (integer) mag = std::max(mag, 1.0);
    x = std::round(x / mag) * mag;
  }
  char buf[64];
  if (integer || x == std::floor(x))
    std::snprintf(buf, sizeof buf, "%lld", static_cast<long long>(std::llround(x)));
  else
    std::snprintf(buf, sizeof buf, "%.2f", x);
  std::string s = buf;
  if (s.find('.') != std::string::npos) {
    while (s.back() == '0') s.pop_back();
    if (s.back() == '.') s.pop_back();
  }
  return s;
}

struct Link {
  const Table* child;
  const Col* fk;
  const Table* parent;
};

class QuestionMaker {
 public:
  QuestionMaker(const Domain& d, sqlite3* db, const std::map<std::string, size_t>& rows, Rng& rng)
      : d_(d), db_(db), rows_(rows), rng_(rng) {
    for (const auto& t : d_.tables)
      for (const auto& c : t.cols)
        if (c.kind == Kind::fk) links_.push_back(Link{&t, &c, &table_named(d_, c.ref)});
  }

  //! One candidate from a template chosen by weight; nullopt when the template does not fit what it drew.
  std::optional<Candidate> draw() {
    using Fn = std::optional<Candidate> (QuestionMaker::*)();
    static constexpr std::pair<Fn, double> kTemplates[] = {
        {&QuestionMaker::count_all, 1.0},      {&QuestionMaker::count_where_cat, 1.5},
        {&QuestionMaker::list_where_cat, 1.5}, {&QuestionMaker::list_where_num, 2.0},
        {&QuestionMaker::agg_num, 1.5},        {&QuestionMaker::attr_of_named, 1.5},
        {&QuestionMaker::max_min, 1.5},        {&QuestionMaker::group_count, 2.0},
        {&QuestionMaker::group_avg, 1.5},      {&QuestionMaker::top1, 2.0},
        {&QuestionMaker::topk, 1.5},           {&QuestionMaker::two_conds, 2.0},
        {&QuestionMaker::or_conds, 1.0},       {&QuestionMaker::join_filter_count, 2.0},
        {&QuestionMaker::join_list_named, 2.0}, {&QuestionMaker::join_group_count, 1.0},
        {&QuestionMaker::most_children, 2.0},  {&QuestionMaker::above_avg, 2.5},
        {&QuestionMaker::no_children, 1.5},    {&QuestionMaker::having_count, 1.0},
        {&QuestionMaker::join_having, 1.0},    {&QuestionMaker::intersect_cats, 1.5},
        {&QuestionMaker::except_join, 1.5},    {&QuestionMaker::union_list, 1.5},
        {&QuestionMaker::three_join_count, 2.5}, {&QuestionMaker::sum_top, 1.5},
        {&QuestionMaker::four_join_top, 2.0},  {&QuestionMaker::nested_having_avg, 1.5},
        {&QuestionMaker::count_in_year, 1.5},  {&QuestionMaker::list_between_dates, 1.0},
        {&QuestionMaker::count_per_year, 1.0},
    };
    std::vector<double> w;
    for (const auto& t : kTemplates) w.push_back(t.second);
    return (this->*kTemplates[rng_.weighted(w)].first)();
  }

 private:
  // ---- helpers
  template <typename T>
  const T& pick(const std::vector<T>& v) { return rng_.pick(v); }
  std::string say(std::initializer_list<const char*> options) {
    std::vector<const char*> v(options);
    return pick(v);
  }
  static const Col* label(const Table& t) {
    for (const auto& c : t.cols)
      if (c.kind == Kind::name) return &c;
    return nullptr;
  }
  static std::vector<const Col*> of_kind(const Table& t, std::initializer_list<Kind> kinds) {
    std::vector<const Col*> out;
    for (const auto& c : t.cols)
      if (std::find(kinds.begin(), kinds.end(), c.kind) != kinds.end()) out.push_back(&c);
    return out;
  }
  static std::vector<const Col*> cats(const Table& t) { return of_kind(t, {Kind::category}); }
  static std::vector<const Col*> nums(const Table& t) { return of_kind(t, {Kind::integer, Kind::real}); }
  static std::vector<const Col*> dates(const Table& t) { return of_kind(t, {Kind::date}); }
  std::string year_of(const Col& d) { return std::to_string(rng_.uniform_int(int64_t(d.lo), int64_t(d.hi))); }
  size_t rows(const Table& t) const { return rows_.at(t.name); }
  const Table& any_table() { return pick(d_.tables); }
  // A table satisfying pred, or nullptr.
  const Table* table_where(const std::function<bool(const Table&)>& pred) {
    std::vector<const Table*> ok;
    for (const auto& t : d_.tables)
      if (pred(t)) ok.push_back(&t);
    return ok.empty() ? nullptr : pick(ok);
  }
  const Link* link_where(const std::function<bool(const Link&)>& pred) {
    std::vector<const Link*> ok;
    for (const auto& l : links_)
      if (pred(l)) ok.push_back(&l);
    return ok.empty() ? nullptr : pick(ok);
  }
  std::string value_of(const Col& c) { return pick(c.values); }
  std::string threshold(const Col& c) { return nice_number(draw_numeric(c, rng_), c); }
  // The label of a random existing row.
  std::string existing_label(const Table& t) {
    const Col* l = label(t);
    Statement st(db_, "SELECT " + l->name + " FROM " + t.name + " WHERE id = " +
                          std::to_string(rng_.uniform_int(1, static_cast<int64_t>(rows(t)))));
    if (sqlite3_step(st.get()) != SQLITE_ROW) throw std::logic_error("synthetic: missing row in " + t.name);
    return reinterpret_cast<const char*>(sqlite3_column_text(st.get(), 0));
  }
  static std::string plural_of(const Col& c) {
    if (c.phrase.empty()) return c.phrase;
    if (c.phrase.back() == 'y') return c.phrase.substr(0, c.phrase.size() - 1) + "ies";
    if (c.phrase.size() > 2 && c.phrase.substr(c.phrase.size() - 2) == "us") return c.phrase + "es";
    if (c.phrase.back() == 's') return c.phrase;
    return c.phrase + "s";
  }
  static std::string article(const std::string& noun) {
    bool vowel = !noun.empty() && std::string("aeiouAEIOU").find(noun[0]) != std::string::npos;
    return (vowel ? "an " : "a ") + noun;
  }
  static std::string cap(std::string s) {
    if (!s.empty()) s[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(s[0])));
    return s;
  }

  // ---- templates (single table)
  std::optional<Candidate> count_all() {
    const Table& t = any_table();
    std::string q = say({"How many %p are there?", "Count the number of %p.", "What is the total number of %p?",
                         "Find the number of %p in the database."});
    return Candidate{fill(q, t), "SELECT count(*) FROM " + t.name};
  }
  std::optional<Candidate> count_where_cat() {
    const Table* t = table_where([](const Table& x) { return !cats(x).empty(); });
    if (!t) return std::nullopt;
    const Col& c = *pick(cats(*t));
    std::string v = value_of(c);
    std::string q = say({"How many %p have %c \"%v\"?", "Count the %p whose %c is \"%v\".",
                         "What is the number of %p with %c equal to \"%v\"?"});
    return Candidate{fill(q, *t, &c, v), "SELECT count(*) FROM " + t->name + " WHERE " + c.name + " = " + quote(v)};
  }
  std::optional<Candidate> list_where_cat() {
    const Table* t = table_where([&](const Table& x) { return label(x) && !cats(x).empty() && rows(x) <= 3000; });
    if (!t) return std::nullopt;
    const Col& c = *pick(cats(*t));
    std::string v = value_of(c);
    std::string q = say({"List the %L of %p whose %c is \"%v\".", "What are the %L of all %p with %c \"%v\"?",
                         "Show the %l of every %s whose %c is \"%v\"."});
    return Candidate{fill(q, *t, &c, v),
                     "SELECT " + label(*t)->name + " FROM " + t->name + " WHERE " + c.name + " = " + quote(v)};
  }
  std::optional<Candidate> list_where_num() {
    const Table* t = table_where([&](const Table& x) { return label(x) && !nums(x).empty() && rows(x) <= 3000; });
    if (!t) return std::nullopt;
    const Col& n = *pick(nums(*t));
    std::string x = threshold(n);
    bool above = rng_.bernoulli(0.5);
    std::string q = above ? say({"Which %p have %n greater than %x? List their %L.",
                                 "Give the %L of %p whose %n exceeds %x.", "Show the %L of %p with %n above %x."})
                          : say({"Which %p have %n less than %x? List their %L.",
                                 "Give the %L of %p whose %n is below %x.", "Find %p with %n under %x and show their %L."});
    return Candidate{fill(q, *t, nullptr, "", &n, x), "SELECT " + label(*t)->name + " FROM " + t->name + " WHERE " +
                                                          n.name + (above ? " > " : " < ") + x};
  }
  std::optional<Candidate> agg_num() {
    const Table* t = table_where([](const Table& x) { return !nums(x).empty(); });
    if (!t) return std::nullopt;
    const Col& n = *pick(nums(*t));
    static const char* aggs[][2] = {{"avg", "average"}, {"max", "maximum"}, {"min", "minimum"}, {"sum", "total"}};
    const auto& a = aggs[rng_.uniform_int(0, 3)];
    std::string q = say({"What is the %a %n of all %p?", "Find the %a %n among %p.", "Compute the %a %n over %p."});
    q = replace(q, "%a", a[1]);
    return Candidate{fill(q, *t, nullptr, "", &n),
                     std::string("SELECT ") + a[0] + "(" + n.name + ") FROM " + t->name};
  }
  std::optional<Candidate> attr_of_named() {
    const Table* t = table_where([&](const Table& x) { return label(x) && !nums(x).empty(); });
    if (!t) return std::nullopt;
    const Col& n = *pick(nums(*t));
    std::string name = existing_label(*t);
    std::string q = label(*t)->phrase == "name"
                        ? say({"What is the %n of the %s named \"%v\"?", "Show the %n of the %s called \"%v\".",
                               "What is the %n of the %s whose name is \"%v\"?"})
                        : say({"What is the %n of the %s whose %l is \"%v\"?", "Show the %n of the %s with %l \"%v\"."});
    return Candidate{fill(q, *t, nullptr, name, &n), "SELECT " + n.name + " FROM " + t->name + " WHERE " +
                                                         label(*t)->name + " = " + quote(name)};
  }
  std::optional<Candidate> max_min() {
    const Table* t = table_where([](const Table& x) { return !nums(x).empty(); });
    if (!t) return std::nullopt;
    const Col& n = *pick(nums(*t));
    std::string q = say({"What are the maximum and minimum %n of %p?",
                         "Show the highest and the lowest %n across all %p.",
                         "Give the largest and smallest %n among %p."});
    return Candidate{fill(q, *t, nullptr, "", &n),
                     "SELECT max(" + n.name + "), min(" + n.name + ") FROM " + t->name};
  }
  std::optional<Candidate> group_count() {
    const Table* t = table_where([](const Table& x) { return !cats(x).empty(); });
    if (!t) return std::nullopt;
    const Col& c = *pick(cats(*t));
    std::string q = say({"For each %c, how many %p are there?", "Count the %p for each %c.",
                         "Show each %c and the number of %p with it."});
    return Candidate{fill(q, *t, &c),
                     "SELECT " + c.name + ", count(*) FROM " + t->name + " GROUP BY " + c.name};
  }
  std::optional<Candidate> group_avg() {
    const Table* t = table_where([](const Table& x) { return !cats(x).empty() && !nums(x).empty(); });
    if (!t) return std::nullopt;
    const Col& c = *pick(cats(*t));
    const Col& n = *pick(nums(*t));
    std::string q = say({"What is the average %n of %p for each %c?", "For every %c, show the average %n of its %p.",
                         "Group the %p by %c and give the mean %n of each group."});
    return Candidate{fill(q, *t, &c, "", &n),
                     "SELECT " + c.name + ", avg(" + n.name + ") FROM " + t->name + " GROUP BY " + c.name};
  }
  std::optional<Candidate> top1() {
    const Table* t = table_where([&](const Table& x) { return label(x) && !nums(x).empty(); });
    if (!t) return std::nullopt;
    const Col& n = *pick(nums(*t));
    bool high = rng_.bernoulli(0.6);
    std::string q = high ? say({"Which %s has the highest %n?", "What is the %l of the %s with the largest %n?",
                                "Find the %s with the greatest %n."})
                         : say({"Which %s has the lowest %n?", "What is the %l of the %s with the smallest %n?"});
    return Candidate{fill(q, *t, nullptr, "", &n), "SELECT " + label(*t)->name + " FROM " + t->name + " ORDER BY " +
                                                       n.name + (high ? " DESC" : " ASC") + " LIMIT 1"};
  }
  std::optional<Candidate> topk() {
    const Table* t = table_where([&](const Table& x) { return label(x) && !nums(x).empty(); });
    if (!t) return std::nullopt;
    const Col& n = *pick(nums(*t));
    std::string k = std::to_string(rng_.uniform_int(3, 10));
    std::string q = say({"List the %L and %n of the %k %p with the highest %n.",
                         "Show the top %k %p by %n, with their %L and %n.",
                         "What are the %k %p with the largest %n? Give %l and %n."});
    q = replace(q, "%k", k);
    return Candidate{fill(q, *t, nullptr, "", &n), "SELECT " + label(*t)->name + ", " + n.name + " FROM " + t->name +
                                                       " ORDER BY " + n.name + " DESC LIMIT " + k};
  }
  std::optional<Candidate> two_conds() {
    const Table* t = table_where([](const Table& x) { return !cats(x).empty() && !nums(x).empty(); });
    if (!t) return std::nullopt;
    const Col& c = *pick(cats(*t));
    const Col& n = *pick(nums(*t));
    std::string v = value_of(c), x = threshold(n);
    std::string q = say({"How many %p have %c \"%v\" and %n above %x?",
                         "Count the %p whose %c is \"%v\" and whose %n is greater than %x.",
                         "What is the number of %p with %c \"%v\" and %n over %x?"});
    return Candidate{fill(q, *t, &c, v, &n, x), "SELECT count(*) FROM " + t->name + " WHERE " + c.name + " = " +
                                                    quote(v) + " AND " + n.name + " > " + x};
  }
  std::optional<Candidate> or_conds() {
    const Table* t = table_where([&](const Table& x) { return !cats(x).empty(); });
    if (!t) return std::nullopt;
    const Col& c = *pick(cats(*t));
    if (c.values.size() < 3) return std::nullopt;
    std::string v1 = value_of(c), v2 = value_of(c);
    if (v1 == v2) return std::nullopt;
    std::string q = say({"How many %p have %c \"%v\" or \"%w\"?", "Count the %p whose %c is either \"%v\" or \"%w\"."});
    q = replace(q, "%w", v2);
    return Candidate{fill(q, *t, &c, v1), "SELECT count(*) FROM " + t->name + " WHERE " + c.name + " = " + quote(v1) +
                                              " OR " + c.name + " = " + quote(v2)};
  }

  // ---- templates (dates)
  std::optional<Candidate> count_in_year() {
    const Table* t = table_where([](const Table& x) { return !dates(x).empty(); });
    if (!t) return std::nullopt;
    const Col& d = *pick(dates(*t));
    std::string y = year_of(d);
    std::string q = say({"How many %p have %d in %y?", "Count the %p whose %d falls in %y.",
                         "What is the number of %p with %d in the year %y?"});
    q = replace(replace(fill(q, *t), "%d", d.phrase), "%y", y);
    return Candidate{q, "SELECT count(*) FROM " + t->name + " WHERE " + d.name + " LIKE '" + y + "%'"};
  }
  std::optional<Candidate> list_between_dates() {
    const Table* t = table_where([&](const Table& x) { return label(x) && !dates(x).empty() && rows(x) <= 3000; });
    if (!t) return std::nullopt;
    const Col& d = *pick(dates(*t));
    std::string y = year_of(d);
    int m = static_cast<int>(rng_.uniform_int(1, 10));
    char from[16], to[16];
    std::snprintf(from, sizeof from, "%s-%02d-01", y.c_str(), m);
    std::snprintf(to, sizeof to, "%s-%02d-28", y.c_str(), m + 2);
    std::string q = say({"List the %L of %p with %d between %a and %b.",
                         "Which %p have %d from %a to %b? Give their %L.",
                         "Show the %L of %p whose %d lies between %a and %b."});
    q = replace(replace(replace(fill(q, *t), "%d", d.phrase), "%a", from), "%b", to);
    return Candidate{q, "SELECT " + label(*t)->name + " FROM " + t->name + " WHERE " + d.name + " BETWEEN '" + from +
                            "' AND '" + to + "'"};
  }
  std::optional<Candidate> count_per_year() {
    const Table* t = table_where([](const Table& x) { return !dates(x).empty(); });
    if (!t) return std::nullopt;
    const Col& d = *pick(dates(*t));
    std::string q = say({"How many %p are there for each year of %d?", "Count the %p per year of %d.",
                         "For every year, show the number of %p by %d."});
    q = replace(fill(q, *t), "%d", d.phrase);
    std::string year = "strftime('%Y', " + d.name + ")";
    return Candidate{q, "SELECT " + year + ", count(*) FROM " + t->name + " GROUP BY " + year};
  }

  // ---- templates (joins)
  static std::string on(const Link& l, const char* ca, const char* pa) {
    return std::string(ca) + "." + l.fk->name + " = " + pa + ".id";
  }
  std::optional<Candidate> join_filter_count() {
    const Link* l = link_where([](const Link& x) { return !cats(*x.parent).empty(); });
    if (!l) return std::nullopt;
    const Col& c = *pick(cats(*l->parent));
    std::string v = value_of(c);
    std::string q = say({"How many %p have %AF whose %c is \"%v\"?",
                         "Count the %p whose %F has %c \"%v\".", "What is the number of %p linked to %P with %c \"%v\"?"});
    q = fill(q, *l->child, &c, v);
    q = replace(replace(replace(q, "%AF", article(l->fk->phrase)), "%P", l->parent->plural), "%F", l->fk->phrase);
    return Candidate{q, "SELECT count(*) FROM " + l->child->name + " AS T1 JOIN " + l->parent->name + " AS T2 ON " +
                            on(*l, "T1", "T2") + " WHERE T2." + c.name + " = " + quote(v)};
  }
  std::optional<Candidate> join_list_named() {
    const Link* l = link_where([&](const Link& x) { return label(*x.child) && label(*x.parent); });
    if (!l) return std::nullopt;
    std::string name = existing_label(*l->parent);
    std::string q = say({"List the %L of %p whose %F is \"%v\".", "What are the %L of the %p of the %F \"%v\"?",
                         "Show the %l of every %s whose %F is \"%v\"."});
    q = replace(fill(q, *l->child, nullptr, name), "%F", l->fk->phrase);
    return Candidate{q, "SELECT T1." + label(*l->child)->name + " FROM " + l->child->name + " AS T1 JOIN " +
                            l->parent->name + " AS T2 ON " + on(*l, "T1", "T2") + " WHERE T2." +
                            label(*l->parent)->name + " = " + quote(name)};
  }
  std::optional<Candidate> join_group_count() {
    const Link* l = link_where([&](const Link& x) { return label(*x.parent) && rows(*x.parent) <= 500; });
    if (!l) return std::nullopt;
    std::string q = say({"For each %F, how many %p are there? Show the %F's %l and the count.",
                         "Count the %p of every %F, listing the %F %l.", "Show each %F %l with its number of %p."});
    q = replace(fill(q, *l->child, nullptr, "", nullptr, "", label(*l->parent)), "%F", l->fk->phrase);
    return Candidate{q, "SELECT T2." + label(*l->parent)->name + ", count(*) FROM " + l->child->name + " AS T1 JOIN " +
                            l->parent->name + " AS T2 ON " + on(*l, "T1", "T2") + " GROUP BY T1." + l->fk->name};
  }
  std::optional<Candidate> most_children() {
    const Link* l = link_where([&](const Link& x) { return label(*x.parent) != nullptr; });
    if (!l) return std::nullopt;
    std::string q = say({"Which %F has the most %p?", "What is the %l of the %F with the largest number of %p?",
                         "Find the %F that appears in the most %p."});
    q = replace(fill(q, *l->child, nullptr, "", nullptr, "", label(*l->parent)), "%F", l->fk->phrase);
    return Candidate{q, "SELECT T2." + label(*l->parent)->name + " FROM " + l->child->name + " AS T1 JOIN " +
                            l->parent->name + " AS T2 ON " + on(*l, "T1", "T2") + " GROUP BY T1." + l->fk->name +
                            " ORDER BY count(*) DESC LIMIT 1"};
  }
  std::optional<Candidate> above_avg() {
    const Table* t = table_where([&](const Table& x) { return label(x) && !nums(x).empty() && rows(x) <= 1000; });
    if (!t) return std::nullopt;
    const Col& n = *pick(nums(*t));
    std::string q = say({"List the %L of %p whose %n is above the average.",
                         "Which %p have %n higher than the average %n of all %p?",
                         "Show the %L of %p with more than the average %n."});
    return Candidate{fill(q, *t, nullptr, "", &n), "SELECT " + label(*t)->name + " FROM " + t->name + " WHERE " +
                                                       n.name + " > (SELECT avg(" + n.name + ") FROM " + t->name + ")"};
  }
  std::optional<Candidate> no_children() {
    const Link* l = link_where([&](const Link& x) { return label(*x.parent) != nullptr; });
    if (!l) return std::nullopt;
    const Table& p = *l->parent;
    std::string q = say({"Which %p have no %C? Give their %L.", "List the %L of %p that do not have any %C.",
                         "Show the %L of %p never referenced by any %c1."});
    q = replace(replace(fill(q, p), "%C", l->child->plural), "%c1", l->child->singular);
    return Candidate{q, "SELECT " + label(p)->name + " FROM " + p.name + " WHERE id NOT IN (SELECT " + l->fk->name +
                            " FROM " + l->child->name + ")"};
  }
  std::optional<Candidate> having_count() {
    const Table* t = table_where([](const Table& x) { return !cats(x).empty(); });
    if (!t) return std::nullopt;
    const Col& c = *pick(cats(*t));
    size_t avg = rows(*t) / c.values.size();
    std::string n = std::to_string(std::max<size_t>(avg, 1));
    std::string q = say({"Which %C have more than %x %p?", "List the %C that appear in more than %x %p.",
                         "Find every %c with over %x %p."});
    q = replace(fill(q, *t, &c, "", nullptr, n), "%C", plural_of(c));
    return Candidate{q, "SELECT " + c.name + " FROM " + t->name + " GROUP BY " + c.name + " HAVING count(*) > " + n};
  }
  std::optional<Candidate> join_having() {
    const Link* l = link_where([&](const Link& x) { return label(*x.parent) && rows(*x.parent) <= 3000; });
    if (!l) return std::nullopt;
    size_t avg = rows(*l->child) / std::max<size_t>(1, rows(*l->parent));
    std::string n = std::to_string(std::max<size_t>(avg, 1));
    std::string q = say({"Which %P have more than %x %p? List their %l.", "Give the %l of every %F with over %x %p.",
                         "Find the %P that have more than %x %p, by %l."});
    q = replace(replace(fill(q, *l->child, nullptr, "", nullptr, n, label(*l->parent)), "%P", l->parent->plural), "%F",
                l->fk->phrase);
    return Candidate{q, "SELECT T2." + label(*l->parent)->name + " FROM " + l->child->name + " AS T1 JOIN " +
                            l->parent->name + " AS T2 ON " + on(*l, "T1", "T2") + " GROUP BY T1." + l->fk->name +
                            " HAVING count(*) > " + n};
  }
  std::optional<Candidate> intersect_cats() {
    const Table* t = table_where([](const Table& x) { return cats(x).size() >= 2; });
    if (!t) return std::nullopt;
    auto cs = cats(*t);
    const Col& a = *pick(cs);
    const Col& b = *pick(cs);
    if (&a == &b) return std::nullopt;
    std::string v1 = value_of(a), v2 = value_of(a);
    if (v1 == v2) return std::nullopt;
    std::string q = say({"Which %C have both %p with %c \"%v\" and %p with %c \"%w\"?",
                         "List the %C shared by %p whose %c is \"%v\" and %p whose %c is \"%w\"."});
    q = replace(replace(fill(q, *t, &a, v1), "%w", v2), "%C", plural_of(b));
    return Candidate{q, "SELECT " + b.name + " FROM " + t->name + " WHERE " + a.name + " = " + quote(v1) +
                            " INTERSECT SELECT " + b.name + " FROM " + t->name + " WHERE " + a.name + " = " +
                            quote(v2)};
  }
  std::optional<Candidate> except_join() {
    const Link* l = link_where([&](const Link& x) { return label(*x.parent) && !cats(*x.child).empty(); });
    if (!l) return std::nullopt;
    const Col& c = *pick(cats(*l->child));
    std::string v1 = value_of(c), v2 = value_of(c);
    if (v1 == v2) return std::nullopt;
    std::string q = say({"Which %P have %p with %c \"%v\" but none with %c \"%w\"? Give their %l.",
                         "List the %l of %P that have some %p whose %c is \"%v\" and no %p whose %c is \"%w\"."});
    q = replace(replace(fill(q, *l->child, &c, v1, nullptr, "", label(*l->parent)), "%w", v2), "%P",
                l->parent->plural);
    std::string part = "SELECT T2." + label(*l->parent)->name + " FROM " + l->child->name + " AS T1 JOIN " +
                       l->parent->name + " AS T2 ON " + on(*l, "T1", "T2") + " WHERE T1." + c.name + " = ";
    return Candidate{q, part + quote(v1) + " EXCEPT " + part + quote(v2)};
  }
  std::optional<Candidate> union_list() {
    const Table* t = table_where([&](const Table& x) {
      return label(x) && !cats(x).empty() && !nums(x).empty() && rows(x) <= 1000;
    });
    if (!t) return std::nullopt;
    const Col& c = *pick(cats(*t));
    const Col& n = *pick(nums(*t));
    std::string v = value_of(c), x = threshold(n);
    std::string q = say({"List the %L of %p whose %c is \"%v\" or whose %n is above %x.",
                         "Show the %L of all %p that either have %c \"%v\" or %n greater than %x."});
    return Candidate{fill(q, *t, &c, v, &n, x), "SELECT " + label(*t)->name + " FROM " + t->name + " WHERE " + c.name +
                                                    " = " + quote(v) + " UNION SELECT " + label(*t)->name + " FROM " +
                                                    t->name + " WHERE " + n.name + " > " + x};
  }
  // child → mid → parent chains.
  std::optional<std::pair<const Link*, const Link*>> chain(const std::function<bool(const Link&, const Link&)>& pred) {
    std::vector<std::pair<const Link*, const Link*>> ok;
    for (const auto& a : links_)
      for (const auto& b : links_)
        if (a.parent == b.child && pred(a, b)) ok.emplace_back(&a, &b);
    if (ok.empty()) return std::nullopt;
    return pick(ok);
  }
  std::optional<Candidate> three_join_count() {
    auto ch = chain([](const Link&, const Link& b) { return !cats(*b.parent).empty(); });
    if (!ch) return std::nullopt;
    auto [a, b] = *ch;
    const Col& c = *pick(cats(*b->parent));
    std::string v = value_of(c);
    std::string q = say({"How many %p belong to %M whose %G has %c \"%v\"?",
                         "Count the %p of %M linked to %AG with %c \"%v\"."});
    q = replace(replace(replace(fill(q, *a->child, &c, v), "%M", a->parent->plural), "%AG", article(b->fk->phrase)),
                "%G", b->fk->phrase);
    return Candidate{q, "SELECT count(*) FROM " + a->child->name + " AS T1 JOIN " + a->parent->name + " AS T2 ON " +
                            on(*a, "T1", "T2") + " JOIN " + b->parent->name + " AS T3 ON " + on(*b, "T2", "T3") +
                            " WHERE T3." + c.name + " = " + quote(v)};
  }
  std::optional<Candidate> sum_top() {
    const Link* l = link_where([&](const Link& x) { return label(*x.parent) && !nums(*x.child).empty(); });
    if (!l) return std::nullopt;
    const Col& n = *pick(nums(*l->child));
    std::string k = std::to_string(rng_.uniform_int(3, 5));
    std::string q = say({"Which %k %P have the largest total %n over their %p? Show %l and total.",
                         "List the %k %P whose %p add up to the highest %n, with the totals."});
    q = replace(replace(fill(q, *l->child, nullptr, "", &n, "", label(*l->parent)), "%k", k), "%P", l->parent->plural);
    return Candidate{q, "SELECT T2." + label(*l->parent)->name + ", sum(T1." + n.name + ") FROM " + l->child->name +
                            " AS T1 JOIN " + l->parent->name + " AS T2 ON " + on(*l, "T1", "T2") + " GROUP BY T1." +
                            l->fk->name + " ORDER BY sum(T1." + n.name + ") DESC LIMIT " + k};
  }
  std::optional<Candidate> four_join_top() {
    // T1 has a link up a chain (T1→T2→T3) and a second link to T4 with a label.
    auto ch = chain([](const Link&, const Link& b) { return !cats(*b.parent).empty(); });
    if (!ch) return std::nullopt;
    // Named copies, not a structured binding: clang 14 (the fuzz build) cannot capture bindings in a lambda.
    const Link* a = ch->first;
    const Link* b = ch->second;
    const Link* other = link_where([&](const Link& x) { return x.child == a->child && &x != a && label(*x.parent); });
    if (!other) return std::nullopt;
    const Col& c = *pick(cats(*b->parent));
    std::string v = value_of(c);
    std::string q = say({"Among %p of %M whose %G has %c \"%v\", which %O appears most often?",
                         "For %p whose %M belong to %AG with %c \"%v\", what is the most common %O?"});
    q = replace(replace(replace(replace(fill(q, *a->child, &c, v), "%M", a->parent->plural), "%AG",
                                        article(b->fk->phrase)),
                                "%G", b->fk->phrase),
                "%O", other->fk->phrase);
    return Candidate{q, "SELECT T4." + label(*other->parent)->name + " FROM " + a->child->name + " AS T1 JOIN " +
                            a->parent->name + " AS T2 ON " + on(*a, "T1", "T2") + " JOIN " + b->parent->name +
                            " AS T3 ON " + on(*b, "T2", "T3") + " JOIN " + other->parent->name + " AS T4 ON " +
                            on(*other, "T1", "T4") + " WHERE T3." + c.name + " = " + quote(v) + " GROUP BY T1." +
                            other->fk->name + " ORDER BY count(*) DESC LIMIT 1"};
  }
  std::optional<Candidate> nested_having_avg() {
    const Link* l = link_where([&](const Link& x) {
      return label(*x.parent) && !nums(*x.child).empty() && rows(*x.parent) <= 3000;
    });
    if (!l) return std::nullopt;
    const Col& n = *pick(nums(*l->child));
    std::string q = say({"Which %P have %p whose average %n is above the overall average %n? Give their %l.",
                         "List the %l of %P whose %p have a higher average %n than all %p together."});
    q = replace(fill(q, *l->child, nullptr, "", &n, "", label(*l->parent)), "%P", l->parent->plural);
    return Candidate{q, "SELECT T2." + label(*l->parent)->name + " FROM " + l->child->name + " AS T1 JOIN " +
                            l->parent->name + " AS T2 ON " + on(*l, "T1", "T2") + " GROUP BY T1." + l->fk->name +
                            " HAVING avg(T1." + n.name + ") > (SELECT avg(" + n.name + ") FROM " + l->child->name +
                            ")"};
  }

  static std::string replace(std::string s, const std::string& from, const std::string& to) {
    for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
    return s;
  }
  // %p plural, %s singular, %c category phrase, %v value, %n numeric phrase, %x threshold, %l label phrase,
  // %L label phrase plural.
  std::string fill(std::string q, const Table& t, const Col* c = nullptr, const std::string& v = "",
                   const Col* n = nullptr, const std::string& x = "", const Col* lab = nullptr) {
    const Col* l = lab ? lab : label(t);
    if (l) {
      q = replace(q, "%L", plural_of(*l));
      q = replace(q, "%l", l->phrase);
    }
    q = replace(q, "%p", t.plural);
    q = replace(q, "%s", t.singular);
    if (c) q = replace(q, "%c", c->phrase);
    q = replace(q, "%v", v);
    if (n) q = replace(q, "%n", n->phrase);
    q = replace(q, "%x", x);
    return cap(q);
  }

  const Domain& d_;
  sqlite3* db_;
  const std::map<std::string, size_t>& rows_;
  Rng& rng_;
  std::vector<Link> links_;
};

constexpr size_t kMaxGoldRows = 2000;

// True when `sql` returns 1..kMaxGoldRows rows, some value is non-NULL, and it is not a lone 0.
bool nontrivial(sqlite3* db, const std::string& sql) {
  Statement st(db, sql);
  size_t n = 0;
  bool non_null = false, lone_zero = false;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    if (++n > kMaxGoldRows) return false;
    int cols = sqlite3_column_count(st.get());
    for (int i = 0; i < cols; ++i)
      if (sqlite3_column_type(st.get(), i) != SQLITE_NULL) non_null = true;
    lone_zero = cols == 1 && sqlite3_column_type(st.get(), 0) != SQLITE_NULL &&
                sqlite3_column_type(st.get(), 0) != SQLITE_TEXT && sqlite3_column_double(st.get(), 0) == 0.0;
  }
  if (rc != SQLITE_DONE) throw std::logic_error("synthetic: gold SQL fails: " + sql + ": " + sqlite3_errmsg(db));
  return n > 0 && non_null && !(n == 1 && lone_zero);
}

// For a generated "SELECT … FROM rest ORDER BY expr DIR LIMIT k": true when rows k and k+1 of the ordering tie, so
// the gold answer would depend on SQLite's tie order (a correct prediction could fail the comparison).
bool ties_at_limit(sqlite3* db, const std::string& sql) {
  size_t from = sql.find(" FROM "), order = sql.rfind(" ORDER BY "), limit = sql.rfind(" LIMIT ");
  if (from == std::string::npos || order == std::string::npos || limit == std::string::npos || limit < order)
    return false;
  std::string by = sql.substr(order + 10, limit - order - 10);  // "expr DESC"
  size_t space = by.rfind(' ');
  std::string expr = by.substr(0, space);
  long k = std::stol(sql.substr(limit + 7));
  std::string check = "SELECT " + expr + sql.substr(from, limit - from) + " LIMIT " + std::to_string(k + 1);
  Statement st(db, check);
  std::vector<double> values;
  std::vector<int> types;
  int rc;
  while ((rc = sqlite3_step(st.get())) == SQLITE_ROW) {
    values.push_back(sqlite3_column_double(st.get(), 0));
    types.push_back(sqlite3_column_type(st.get(), 0));
  }
  if (rc != SQLITE_DONE) throw std::logic_error("synthetic: tie check fails: " + check + ": " + sqlite3_errmsg(db));
  size_t kk = static_cast<size_t>(k);
  return values.size() > kk && types[kk] == types[kk - 1] && values[kk] == values[kk - 1];
}

// Spider dev's hardness mix (easy/medium/hard/extra, as measured on the shared dev.json: 192/324/126/136 of 778).
constexpr double kTargetMix[4] = {0.25, 0.42, 0.16, 0.17};

std::vector<Question> make_questions(const Domain& d, const std::string& path,
                                     const std::map<std::string, size_t>& rows, size_t count, Rng rng) {
  Connection c(path, SQLITE_OPEN_READONLY);
  // The checks run hundreds of scans and joins over the same file: keep it in memory instead of pread-ing pages.
  c.exec("PRAGMA cache_size=-131072; PRAGMA mmap_size=268435456;");
  QuestionMaker maker(d, c.get(), rows, rng);
  std::vector<Question> out;
  std::set<std::string> seen;
  // Quotas per level keep every database close to Spider's mix; once the quota phase has had its attempts, any
  // level fills the rest.
  size_t quota[4], others = 0;
  for (int i = 0; i < 4; ++i) quota[i] = static_cast<size_t>(std::floor(kTargetMix[i] * double(count) + 0.5));
  for (int i : {0, 2, 3}) others += quota[i];
  quota[1] = count > others ? count - others : 0;  // medium takes the rounding remainder
  const size_t quota_attempts = count * 40, max_attempts = count * 60;
  for (size_t attempts = 0; out.size() < count && attempts < max_attempts; ++attempts) {
    auto cand = maker.draw();
    if (!cand || seen.count(cand->sql)) continue;
    Difficulty level = sql_hardness(cand->sql);
    size_t li = static_cast<size_t>(level);
    if (attempts < quota_attempts && quota[li] == 0) continue;
    if (!nontrivial(c.get(), cand->sql) || ties_at_limit(c.get(), cand->sql)) continue;
    seen.insert(cand->sql);
    if (quota[li] > 0) --quota[li];
    Question q;
    q.id = "synthetic:" + d.db_id + ":" + std::to_string(out.size());
    q.db_id = d.db_id;
    q.question = cand->question;
    q.gold_sql = cand->sql;
    q.difficulty = level;
    out.push_back(std::move(q));
  }
  if (out.size() < count)
    throw std::logic_error("synthetic: only " + std::to_string(out.size()) + " questions for " + d.db_id);
  return out;
}

DatabaseInfo database_info(const Domain& d, const std::string& path) {
  DatabaseInfo info;
  info.db_id = d.db_id;
  info.path = path;
  info.schema_source = "synthetic generator v" + std::to_string(kSyntheticVersion);
  for (const auto& t : d.tables) {
    TableInfo ti{t.name, {}};
    for (const auto& c : t.cols) {
      ti.columns.push_back(ColumnInfo{c.name, sql_type(c), c.kind == Kind::pk});
      if (c.kind == Kind::fk) info.foreign_keys.push_back(ForeignKeyInfo{t.name, c.name, c.ref, "id"});
    }
    info.tables.push_back(std::move(ti));
  }
  return info;
}

std::string manifest_text(const SyntheticOptions& o, size_t n_questions) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartObject();
  w.Key("generator_version");
  w.Int(kSyntheticVersion);
  w.Key("seed");
  w.Uint64(o.seed);
  w.Key("scale");
  w.Double(o.scale);
  w.Key("questions_per_db");
  w.Uint64(o.questions_per_db);
  w.Key("sqlite_version");
  w.String(sqlite3_libversion());
  w.Key("questions");
  w.Uint64(n_questions);
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize()) + "\n";
}

std::string questions_text(const std::vector<Question>& qs) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  w.StartArray();
  for (const auto& q : qs) {
    w.StartObject();
    w.Key("id");
    w.String(q.id.c_str(), static_cast<rapidjson::SizeType>(q.id.size()));
    w.Key("db_id");
    w.String(q.db_id.c_str(), static_cast<rapidjson::SizeType>(q.db_id.size()));
    w.Key("question");
    w.String(q.question.c_str(), static_cast<rapidjson::SizeType>(q.question.size()));
    w.Key("query");
    w.String(q.gold_sql.c_str(), static_cast<rapidjson::SizeType>(q.gold_sql.size()));
    w.Key("difficulty");
    auto dn = difficulty_name(q.difficulty);
    w.String(dn.data(), static_cast<rapidjson::SizeType>(dn.size()));
    w.EndObject();
  }
  w.EndArray();
  return std::string(sb.GetString(), sb.GetSize()) + "\n";
}

std::vector<Question> read_questions(const std::string& path) {
  auto doc = json::parse_file(path);
  if (!doc.IsArray()) throw InputError(path + ": expected a JSON array");
  std::vector<Question> out;
  for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
    std::string where = path + " entry " + std::to_string(i);
    Question q;
    q.id = json::get_string(doc[i], "id", where);
    q.db_id = json::get_string(doc[i], "db_id", where);
    q.question = json::get_string(doc[i], "question", where);
    q.gold_sql = json::get_string(doc[i], "query", where);
    q.difficulty = parse_difficulty(json::get_string(doc[i], "difficulty", where));
    out.push_back(std::move(q));
  }
  return out;
}

}  // namespace

std::vector<std::string> synthetic_domains() {
  std::vector<std::string> out;
  for (const auto& d : synth::domains()) out.push_back(d.db_id);
  return out;
}

Workload generate_synthetic(const std::string& dir, const SyntheticOptions& options) {
  if (!(options.scale > 0) || options.scale > 100) throw InputError("synthetic: scale must be in (0, 100]");
  if (options.questions_per_db == 0) throw InputError("synthetic: questions_per_db must be positive");
  auto doms = synth::domains();
  Workload w;
  w.name = "synthetic";
  for (const auto& d : doms)
    w.databases[d.db_id] = database_info(d, (fs::path(dir) / "database" / d.db_id / (d.db_id + ".sqlite")).string());

  std::string manifest = (fs::path(dir) / "manifest.json").string();
  std::string qpath = (fs::path(dir) / "questions.json").string();
  size_t expected_questions = options.questions_per_db * doms.size();
  std::string want = manifest_text(options, expected_questions);
  bool reuse = fs::is_regular_file(manifest) && fs::is_regular_file(qpath);
  for (const auto& [id, db] : w.databases) reuse = reuse && fs::is_regular_file(db.path);
  if (reuse && json::read_file(manifest) == want) {
    w.questions = read_questions(qpath);
    for (const auto& q : w.questions)
      if (!w.databases.count(q.db_id)) throw InputError(qpath + ": question " + q.id + " names unknown db " + q.db_id);
    return w;
  }

  fs::create_directories(dir);
  fs::remove(manifest);  // a partial set must never look complete
  Rng root(options.seed);
  for (size_t i = 0; i < doms.size(); ++i) {
    const Domain& d = doms[i];
    Rng drng = root.fork(i + 1);
    std::map<std::string, size_t> rows;
    for (const auto& t : d.tables) rows[t.name] = scaled_rows(t, options.scale);
    write_database(d, w.databases[d.db_id].path, options.scale, drng.fork(1));
    auto qs = make_questions(d, w.databases[d.db_id].path, rows, options.questions_per_db, drng.fork(2));
    w.questions.insert(w.questions.end(), qs.begin(), qs.end());
  }
  std::vector<DatabaseInfo> infos;
  for (const auto& d : doms) infos.push_back(w.databases.at(d.db_id));
  json::write_file((fs::path(dir) / "tables.json").string(), format_tables_json(infos));
  json::write_file(qpath, questions_text(w.questions));
  json::write_file(manifest, want);
  return w;
}

Workload load_synthetic(const WorkloadSpec& spec) {
  SyntheticOptions o;
  o.seed = spec.seed;
  return generate_synthetic(spec.cache_dir.empty() ? "out/synthetic" : spec.cache_dir, o);
}

}  // namespace t2s::workloads
