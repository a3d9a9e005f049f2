#include "agents/execution.hpp"

#include <sqlite3.h>

#include <algorithm>
#include <cctype>
#include <chrono>
#include <filesystem>

#include "agents/stage_model.hpp"
#include "common/status.hpp"
#include "sqlexec/text.hpp"

namespace t2s::agents {

namespace {

constexpr size_t kRowsKept = 50;  // rows rendered into an outcome (the rest only counts and hashes)

bool has_order_by(std::string_view sql) {
  std::string n = normalize_sql(sql);
  return n.find("order by") != std::string::npos;
}

// Fills rows, emptiness and the signature from a real result.
void fill_result(ExecOutcome& out, const sqlexec::ResultSet& rs, std::string_view sql) {
  out.columns = rs.columns;
  out.row_count = rs.rows.size();
  out.empty = rs.rows.empty();
  out.all_null = !rs.rows.empty();
  std::vector<std::string> lines;
  lines.reserve(rs.rows.size());
  for (size_t i = 0; i < rs.rows.size(); ++i) {
    std::string line;
    std::vector<std::string> cells;
    for (const auto& v : rs.rows[i]) {
      if (!std::holds_alternative<std::monostate>(v)) out.all_null = false;
      cells.push_back(sqlexec::render_value(v));
      line += cells.back();
      line += '\x1f';
    }
    if (i < kRowsKept) out.rows.push_back(std::move(cells));
    lines.push_back(std::move(line));
  }
  // Two candidates "agree" when they return the same rows (as a bag unless the query orders them).
  if (!has_order_by(sql)) std::sort(lines.begin(), lines.end());
  uint64_t h = stable_hash(std::to_string(rs.columns.size()));
  for (const auto& l : lines) h = h * 1099511628211ULL ^ stable_hash(l);
  out.signature = "rows:" + std::to_string(lines.size()) + ":" + std::to_string(h);
}

class SqliteBackend final : public ExecutionBackend {
 public:
  SqliteBackend(const workloads::Workload& w, sqlexec::Metric metric, sqlexec::Limits limits)
      : metric_(metric), limits_(limits) {
    for (const auto& [id, info] : w.databases) paths_[id] = info.path;
  }

  const sqlexec::Schema& schema(const std::string& db_id) override { return entry(db_id).schema; }

  ExecOutcome execute(const workloads::Question& q, std::string_view sql) override {
    auto& e = entry(q.db_id);
    auto r = e.db->execute(sql);
    ExecOutcome out;
    out.error = r.error;
    out.message = r.message;
    out.elapsed_s = r.elapsed_s;
    if (r.ok()) fill_result(out, r.result, sql);
    return out;
  }

  std::vector<ValueMatch> match_values(const std::string& db_id, const std::vector<std::string>& keywords,
                                       size_t limit) override {
    auto& e = entry(db_id);
    {
      std::lock_guard<std::mutex> lock(mu_);
      if (!e.values_built) build_values(e);
    }
    std::vector<ValueMatch> found;
    for (const auto& kw : keywords) {
      std::string k = sqlexec::lower_ascii(kw);
      if (k.size() < 3) continue;
      for (const auto& v : e.values) {
        if (found.size() >= limit) return found;
        if (v.lower.find(k) != std::string::npos) found.push_back({v.table, v.column, v.value, kw});
      }
    }
    return found;
  }

  std::optional<bool> correct(const workloads::Question& q, std::string_view sql) override {
    if (q.gold_sql.empty()) return std::nullopt;
    return sqlexec::execution_match(*entry(q.db_id).db, sql, q.gold_sql, metric_).match;
  }

  bool simulated() const override { return false; }

 private:
  struct IndexedValue {
    std::string table, column, value, lower;
  };
  struct Entry {
    std::shared_ptr<sqlexec::Database> db;
    sqlexec::Schema schema;
    bool values_built = false;
    std::vector<IndexedValue> values;
  };

  Entry& entry(const std::string& db_id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = entries_.find(db_id);
    if (it != entries_.end()) return it->second;
    auto p = paths_.find(db_id);
    if (p == paths_.end() || p->second.empty())
      throw InputError("database '" + db_id + "' has no SQLite file in this workload");
    Entry e;
    e.db = sqlexec::Database::open(p->second, limits_);
    e.schema = sqlexec::introspect(*e.db, 3);
    return entries_.emplace(db_id, std::move(e)).first->second;
  }

  // A distinct-value index of text columns (CHESS uses LSH over values; a substring scan is enough at this size).
  void build_values(Entry& e) {
    e.values_built = true;
    for (const auto& t : e.schema.tables)
      for (const auto& c : t.columns) {
        std::string type = sqlexec::lower_ascii(c.type);
        bool text = type.empty() || type.find("char") != std::string::npos || type.find("text") != std::string::npos ||
                    type.find("clob") != std::string::npos;
        if (!text) continue;
        auto r = e.db->execute("SELECT DISTINCT " + sqlexec::quote_identifier(c.name) + " FROM " +
                               sqlexec::quote_identifier(t.name) + " WHERE " + sqlexec::quote_identifier(c.name) +
                               " IS NOT NULL LIMIT 2000");
        if (!r.ok()) continue;
        for (const auto& row : r.result.rows) {
          if (row.empty() || !std::holds_alternative<std::string>(row[0])) continue;
          const auto& v = std::get<std::string>(row[0]);
          if (v.size() > 200) continue;
          e.values.push_back({t.name, c.name, v, sqlexec::lower_ascii(v)});
        }
      }
  }

  sqlexec::Metric metric_;
  sqlexec::Limits limits_;
  std::map<std::string, std::string> paths_;
  std::mutex mu_;
  std::map<std::string, Entry> entries_;
};

std::string sql_quoted(std::string_view name) {
  std::string q = "\"";
  for (char c : name) q += c == '"' ? std::string("\"\"") : std::string(1, c);
  return q + "\"";
}

class SimulatedBackend final : public ExecutionBackend {
 public:
  explicit SimulatedBackend(std::map<std::string, sqlexec::Schema> schemas) : schemas_(std::move(schemas)) {}
  ~SimulatedBackend() override {
    for (auto& [id, db] : dbs_) sqlite3_close(db);
  }

  const sqlexec::Schema& schema(const std::string& db_id) override {
    auto it = schemas_.find(db_id);
    if (it == schemas_.end()) throw InputError("no schema for database '" + db_id + "'");
    return it->second;
  }

  ExecOutcome execute(const workloads::Question& q, std::string_view sql) override {
    ExecOutcome out;
    out.simulated = true;
    auto t0 = std::chrono::steady_clock::now();
    std::lock_guard<std::mutex> lock(mu_);
    sqlite3* db = open(q.db_id);
    sqlite3_stmt* stmt = nullptr;
    const char* tail = nullptr;
    std::string text(sql);
    int rc = sqlite3_prepare_v2(db, text.c_str(), static_cast<int>(text.size()), &stmt, &tail);
    if (rc != SQLITE_OK || !stmt) {
      out.message = rc != SQLITE_OK ? sqlite3_errmsg(db) : "empty statement";
      std::string detail;
      out.error = rc != SQLITE_OK ? sqlexec::classify_error(rc, out.message, &detail) : sqlexec::ErrorClass::syntax;
    } else {
      for (int i = 0; i < sqlite3_column_count(stmt); ++i) out.columns.emplace_back(sqlite3_column_name(stmt, i));
      // What the oracle knows: the gold query's answer, or some other answer for any other query.
      std::string n = normalize_sql(sql);
      out.signature = !q.gold_sql.empty() && n == normalize_sql(q.gold_sql) ? "gold" : "sql:" + n;
    }
    sqlite3_finalize(stmt);
    out.elapsed_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    return out;
  }

  std::vector<ValueMatch> match_values(const std::string&, const std::vector<std::string>&, size_t) override {
    return {};  // no database file: no values to match
  }

  std::optional<bool> correct(const workloads::Question& q, std::string_view sql) override {
    if (q.gold_sql.empty()) return std::nullopt;
    return normalize_sql(sql) == normalize_sql(q.gold_sql);
  }

  bool simulated() const override { return true; }

 private:
  sqlite3* open(const std::string& db_id) {
    auto it = dbs_.find(db_id);
    if (it != dbs_.end()) return it->second;
    const auto& s = schema(db_id);
    sqlite3* db = nullptr;
    if (sqlite3_open_v2(":memory:", &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MEMORY, nullptr) != SQLITE_OK) {
      sqlite3_close(db);
      throw std::runtime_error("cannot open an in-memory SQLite database");
    }
    for (const auto& t : s.tables) {
      // Always quoted: BIRD has tables named like keywords ("order").
      std::string ddl = "CREATE TABLE " + sql_quoted(t.name) + " (";
      for (size_t i = 0; i < t.columns.size(); ++i)
        ddl += (i ? ", " : "") + sql_quoted(t.columns[i].name) + " " + t.columns[i].type;
      ddl += ")";
      char* err = nullptr;
      if (sqlite3_exec(db, ddl.c_str(), nullptr, nullptr, &err) != SQLITE_OK) {
        std::string m = err ? err : "?";
        sqlite3_free(err);
        sqlite3_close(db);
        throw InputError("schema of '" + db_id + "': table " + t.name + ": " + m);
      }
    }
    dbs_[db_id] = db;
    return db;
  }

  std::map<std::string, sqlexec::Schema> schemas_;
  std::mutex mu_;
  std::map<std::string, sqlite3*> dbs_;
};

}  // namespace

std::string normalize_sql(std::string_view sql) {
  std::string out;
  char quote = 0;
  bool space = false;
  for (char ch : sql) {
    if (quote) {
      out += ch;
      if (ch == quote) quote = 0;
      continue;
    }
    if (ch == '\'' || ch == '"' || ch == '`') {
      if (space && !out.empty()) out += ' ';
      space = false;
      quote = ch;
      out += ch;
      continue;
    }
    if (std::isspace(static_cast<unsigned char>(ch))) {
      space = true;
      continue;
    }
    if (space && !out.empty()) out += ' ';
    space = false;
    out += static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  }
  while (!out.empty() && (out.back() == ';' || out.back() == ' ')) out.pop_back();
  return out;
}

sqlexec::Schema schema_from_database_info(const workloads::DatabaseInfo& db) {
  sqlexec::Schema s;
  s.db_id = db.db_id;
  for (const auto& t : db.tables) {
    sqlexec::Table table{t.name, {}};
    for (const auto& c : t.columns) {
      sqlexec::Column col;
      col.name = c.name;
      col.type = c.type;
      col.primary_key = c.primary_key;
      table.columns.push_back(std::move(col));
    }
    s.tables.push_back(std::move(table));
  }
  for (const auto& f : db.foreign_keys) s.foreign_keys.push_back({f.from_table, f.from_column, f.to_table, f.to_column});
  return s;
}

std::unique_ptr<ExecutionBackend> make_sqlite_backend(const workloads::Workload& workload, sqlexec::Metric metric,
                                                      sqlexec::Limits limits) {
  return std::make_unique<SqliteBackend>(workload, metric, limits);
}

std::unique_ptr<ExecutionBackend> make_simulated_backend(std::map<std::string, sqlexec::Schema> schemas) {
  return std::make_unique<SimulatedBackend>(std::move(schemas));
}

}  // namespace t2s::agents
