#include "sqlexec/schema.hpp"

#include "sqlexec/text.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>
#include <filesystem>

namespace t2s::sqlexec {

namespace {

std::string text_of(const Value& v) {
  if (const auto* s = std::get_if<std::string>(&v)) return *s;
  return render_value(v);
}

// Sample lookups are a nicety: a huge table must not stall introspection.
constexpr double kSampleTimeoutS = 2.0;

bool contains_name(const std::vector<std::string>& names, std::string_view name) {
  std::string l = lower_ascii(name);
  return std::any_of(names.begin(), names.end(), [&](const std::string& n) { return lower_ascii(n) == l; });
}

const std::vector<std::string>* columns_for(const SchemaPromptOptions& o, std::string_view table) {
  std::string l = lower_ascii(table);
  for (const auto& [t, cols] : o.columns)
    if (lower_ascii(t) == l) return &cols;
  return nullptr;
}

std::string sample_text(const std::string& s, size_t max_chars, bool quote) {
  std::string v = s;
  if (v.size() > max_chars) {
    size_t cut = max_chars;
    while (cut > 0 && (static_cast<unsigned char>(v[cut]) & 0xC0) == 0x80) --cut;  // keep UTF-8 whole
    v = v.substr(0, cut) + "...";
  }
  for (char& c : v)
    if (c == '\n' || c == '\r') c = ' ';
  if (!quote) return v;
  std::string q = "'";
  for (char c : v) {
    q += c;
    if (c == '\'') q += '\'';
  }
  return q + "'";
}

bool is_numeric_type(std::string_view type) {
  std::string t = lower_ascii(type);
  for (auto k : {"int", "real", "floa", "doub", "num", "dec", "bool"})
    if (t.find(k) != std::string::npos) return true;
  return false;
}

}  // namespace

std::string quote_identifier(std::string_view name) {
  bool plain = !name.empty() && !(name[0] >= '0' && name[0] <= '9');
  for (char c : name)
    if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_')) plain = false;
  if (plain) return std::string(name);
  std::string q = "\"";
  for (char c : name) {
    q += c;
    if (c == '"') q += '"';
  }
  return q + "\"";
}

Schema introspect(const Database& db, int samples_per_column) {
  Schema schema;
  schema.db_id = std::filesystem::path(db.path()).stem().string();
  auto run = [&](const std::string& sql) {
    ExecResult r = db.execute(sql);
    if (!r.ok()) throw std::runtime_error("schema introspection of '" + db.path() + "' failed on `" + sql + "`: " + r.message);
    return r.result.rows;
  };
  auto str = [](const Value& v) { return text_of(v); };
  for (const auto& row : run("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite!_%' "
                             "ESCAPE '!'")) {
    Table table;
    table.name = str(row[0]);
    std::string qt = quote_identifier(table.name);
    // table_info: cid, name, type, notnull, dflt_value, pk
    for (const auto& c : run("PRAGMA table_info(" + qt + ")")) {
      Column col;
      col.name = str(c[1]);
      col.type = std::holds_alternative<std::monostate>(c[2]) ? "" : str(c[2]);
      col.primary_key = std::holds_alternative<int64_t>(c[5]) && std::get<int64_t>(c[5]) > 0;
      if (samples_per_column > 0) {
        std::string qc = quote_identifier(col.name);
        ExecResult s = db.execute("SELECT DISTINCT " + qc + " FROM " + qt + " WHERE " + qc + " IS NOT NULL LIMIT " +
                                      std::to_string(samples_per_column),
                                  std::min(kSampleTimeoutS, db.limits().timeout_s));
        if (s.ok())
          for (const auto& v : s.result.rows)
            if (!std::holds_alternative<Blob>(v[0])) {
              col.samples.push_back(str(v[0]));
              col.sample_values.push_back(v[0]);
            }
      }
      table.columns.push_back(std::move(col));
    }
    schema.tables.push_back(std::move(table));
  }
  for (const auto& t : schema.tables) {
    // foreign_key_list: id, seq, table, from, to, on_update, on_delete, match
    for (const auto& fk : run("PRAGMA foreign_key_list(" + quote_identifier(t.name) + ")")) {
      ForeignKey k{t.name, str(fk[3]), str(fk[2]), std::holds_alternative<std::monostate>(fk[4]) ? "" : str(fk[4])};
      if (k.to_column.empty()) {
        // REFERENCES parent without a column list means the parent's primary key (seq-th column of it).
        int64_t seq = std::holds_alternative<int64_t>(fk[1]) ? std::get<int64_t>(fk[1]) : 0;
        for (const auto& p : schema.tables)
          if (lower_ascii(p.name) == lower_ascii(k.to_table)) {
            int64_t i = 0;
            for (const auto& c : p.columns)
              if (c.primary_key && i++ == seq) k.to_column = c.name;
          }
      }
      schema.foreign_keys.push_back(std::move(k));
    }
  }
  return schema;
}

std::string schema_prompt(const Schema& schema, const SchemaPromptOptions& options) {
  std::string out = "-- Database: " + schema.db_id + "\n";
  auto kept_table = [&](std::string_view name) { return options.tables.empty() || contains_name(options.tables, name); };
  for (const auto& t : schema.tables) {
    if (!kept_table(t.name)) continue;
    const auto* only = columns_for(options, t.name);
    std::vector<const Column*> cols;
    std::vector<std::string> pk;
    for (const auto& c : t.columns) {
      bool is_fk = std::any_of(schema.foreign_keys.begin(), schema.foreign_keys.end(), [&](const ForeignKey& k) {
        return lower_ascii(k.from_table) == lower_ascii(t.name) && lower_ascii(k.from_column) == lower_ascii(c.name);
      });
      if (only && !c.primary_key && !is_fk && !contains_name(*only, c.name)) continue;
      cols.push_back(&c);
      if (c.primary_key) pk.push_back(quote_identifier(c.name));
    }
    std::vector<std::string> lines, comments;
    for (const Column* c : cols) {
      std::string line = "  " + quote_identifier(c->name);
      if (!c->type.empty()) line += " " + c->type;
      if (c->primary_key && pk.size() == 1) line += " PRIMARY KEY";
      std::string comment;
      if (options.samples && !c->samples.empty()) {
        comment = " -- e.g. ";
        for (size_t i = 0; i < c->samples.size(); ++i) {
          // Quote what is TEXT in the data, whatever the declared type says (Spider has 'T'/'F' in bool columns).
          bool quote = i < c->sample_values.size() ? std::holds_alternative<std::string>(c->sample_values[i])
                                                   : !is_numeric_type(c->type);
          comment += (i ? ", " : "") + sample_text(c->samples[i], options.max_sample_chars, quote);
        }
      }
      lines.push_back(std::move(line));
      comments.push_back(std::move(comment));
    }
    if (pk.size() > 1) {
      std::string line = "  PRIMARY KEY (";
      for (size_t i = 0; i < pk.size(); ++i) line += (i ? ", " : "") + pk[i];
      lines.push_back(line + ")");
      comments.emplace_back();
    }
    if (options.foreign_keys)
      for (const auto& k : schema.foreign_keys)
        if (lower_ascii(k.from_table) == lower_ascii(t.name) && kept_table(k.to_table)) {
          lines.push_back("  FOREIGN KEY (" + quote_identifier(k.from_column) + ") REFERENCES " +
                          quote_identifier(k.to_table) + "(" + quote_identifier(k.to_column) + ")");
          comments.emplace_back();
        }
    out += "CREATE TABLE " + quote_identifier(t.name) + " (\n";
    for (size_t i = 0; i < lines.size(); ++i)
      out += lines[i] + (i + 1 < lines.size() ? "," : "") + comments[i] + "\n";
    out += ");\n";
  }
  return out;
}

int estimate_tokens(std::string_view text) {
  // A linear model over five counts, fitted (least squares on relative error) to the cl100k_base token counts
  // of the Spider dev gold queries, questions and schema prompts (docs/sqlexec.md has the figures): a letter
  // run is about one token plus 0.14 per letter past the sixth, a digit run 1.5 per group of three digits,
  // other visible characters 0.68 each (they often merge with a neighbour), a line break with its indent 0.7;
  // other whitespace merges into the next token.
  constexpr double kWord = 1.0, kLongWordExtra = 0.14, kDigitGroup = 1.5, kSymbol = 0.68, kLineBreak = 0.7;
  auto is_letter = [](unsigned char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80; };
  auto is_digit = [](unsigned char c) { return c >= '0' && c <= '9'; };
  double tokens = 0;
  size_t i = 0, n = text.size();
  while (i < n) {
    auto c = static_cast<unsigned char>(text[i]);
    size_t j = i + 1;
    if (is_letter(c)) {
      while (j < n && is_letter(static_cast<unsigned char>(text[j]))) ++j;
      tokens += kWord + kLongWordExtra * double(j - i > 6 ? j - i - 6 : 0);
    } else if (is_digit(c)) {
      while (j < n && is_digit(static_cast<unsigned char>(text[j]))) ++j;
      tokens += kDigitGroup * double((j - i + 2) / 3);
    } else if (c == '\n') {
      while (j < n && (text[j] == '\n' || text[j] == ' ')) ++j;
      tokens += kLineBreak;
    } else if (!std::isspace(c)) {
      tokens += kSymbol;
    }
    i = j;
  }
  return int(std::lround(tokens));
}

int schema_prompt_tokens(const Schema& schema, const SchemaPromptOptions& options, const TokenCounter& counter) {
  std::string text = schema_prompt(schema, options);
  return counter ? counter(text) : estimate_tokens(text);
}

}  // namespace t2s::sqlexec
