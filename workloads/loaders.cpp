#include "workloads/loaders.hpp"

#include <algorithm>
#include <cctype>
#include <stdexcept>
#include <filesystem>
#include <fstream>

#include "common/json.hpp"
#include "common/status.hpp"
#include "workloads/hardness.hpp"

namespace t2s::workloads {

namespace fs = std::filesystem;

namespace {

std::string entry_where(const std::string& path, size_t i) { return path + " entry " + std::to_string(i); }

int get_index(const rapidjson::Value& v, const std::string& where, const char* what) {
  if (!v.IsInt()) throw InputError(where + ": " + what + " must be an integer");
  return v.GetInt();
}

std::string join_path(const std::string& dir, const std::string& rel) {
  return dir.empty() ? rel : (fs::path(dir) / rel).string();
}

// The first existing file among `names` inside `dir`; "" when none.
std::string first_existing(const std::string& dir, std::initializer_list<const char*> names) {
  for (const char* n : names) {
    std::string p = join_path(dir, n);
    if (fs::is_regular_file(p)) return p;
  }
  return "";
}

// Fills DatabaseInfo::path from `<db_root>/<db>/<db>.sqlite` for every database that has its file.
void attach_database_files(std::map<std::string, DatabaseInfo>& dbs, const std::string& db_root) {
  for (auto& [id, db] : dbs) {
    std::string p = join_path(db_root, id + "/" + id + ".sqlite");
    if (fs::is_regular_file(p)) db.path = p;
  }
}

// Adds a schema-less entry for every `<db_root>/<db>/<db>.sqlite` not named in tables.json.
void add_databases_without_schema(std::map<std::string, DatabaseInfo>& dbs, const std::string& db_root) {
  std::error_code ec;
  if (!fs::is_directory(db_root, ec)) return;
  for (const auto& e : fs::directory_iterator(db_root, ec)) {
    if (!e.is_directory()) continue;
    std::string id = e.path().filename().string();
    fs::path f = e.path() / (id + ".sqlite");
    if (dbs.count(id) == 0 && fs::is_regular_file(f)) dbs[id] = DatabaseInfo{id, f.string(), f.string(), {}, {}};
  }
}

// Applies the limit, then marks execution unavailable when a database the questions use has no file.
void finish_sql_workload(Workload& w, size_t limit, const std::string& db_root) {
  if (limit > 0 && w.questions.size() > limit) w.questions.resize(limit);
  std::vector<std::string> missing;
  for (const auto& q : w.questions) {
    const auto& db = w.databases.at(q.db_id);
    std::string expected = join_path(db_root, q.db_id + "/" + q.db_id + ".sqlite");
    if (db.path.empty() && std::find(missing.begin(), missing.end(), expected) == missing.end())
      missing.push_back(expected);
  }
  if (missing.empty()) return;
  w.execution_available = false;
  w.execution_note = std::to_string(missing.size()) + " database file(s) missing: ";
  for (size_t i = 0; i < missing.size(); ++i) w.execution_note += (i ? ", " : "") + missing[i];
  w.execution_note += " (questions, schemas and prompt sizes are available; sim mode works)";
}

// Schemas from `tables` ("" when absent) plus database files under `db_root`; at least one must exist.
std::map<std::string, DatabaseInfo> load_databases(const std::string& kind, const std::string& tables,
                                                   const std::string& db_root) {
  std::map<std::string, DatabaseInfo> dbs;
  if (!tables.empty()) dbs = load_tables_json(tables);
  attach_database_files(dbs, db_root);
  add_databases_without_schema(dbs, db_root);
  if (dbs.empty())
    throw InputError(kind + ": found neither a tables.json nor any '" + db_root + "/<db>/<db>.sqlite'");
  return dbs;
}

rapidjson::Document parse_question_array(const std::string& qfile) {
  auto doc = json::parse_file(qfile);
  if (!doc.IsArray()) throw InputError(qfile + ": expected a JSON array of questions");
  return doc;
}

std::string resolve_data_dir(const WorkloadSpec& spec) {
  if (!spec.data_dir.empty()) {
    if (!fs::is_directory(spec.data_dir)) throw InputError("data folder '" + spec.data_dir + "' does not exist");
    return spec.data_dir;
  }
  if (!spec.questions_file.empty()) return fs::path(spec.questions_file).parent_path().string();
  throw InputError("workload '" + spec.kind + "' needs --data DIR or --questions FILE");
}

}  // namespace

std::map<std::string, DatabaseInfo> load_tables_json(const std::string& path) {
  auto doc = json::parse_file(path);
  if (!doc.IsArray()) throw InputError(path + ": expected a JSON array of schemas");
  std::map<std::string, DatabaseInfo> out;
  for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
    const auto& e = doc[i];
    std::string where = entry_where(path, i);
    DatabaseInfo db;
    db.db_id = json::get_string(e, "db_id", where);
    where += " (db_id " + db.db_id + ")";
    db.schema_source = path;
    const auto& tables = json::get_array(e, "table_names_original", where);
    const auto& cols = json::get_array(e, "column_names_original", where);
    const auto& types = json::get_array(e, "column_types", where);
    const auto& pks = json::get_array(e, "primary_keys", where);
    const auto& fks = json::get_array(e, "foreign_keys", where);
    if (types.Size() != cols.Size())
      throw InputError(where + ": column_types has " + std::to_string(types.Size()) + " entries, column_names_original " +
                       std::to_string(cols.Size()));
    for (const auto& t : tables.GetArray()) {
      if (!t.IsString()) throw InputError(where + ": table_names_original must hold strings");
      db.tables.push_back(TableInfo{t.GetString(), {}});
    }
    // Column index → (table index, column index within the table); index 0 is Spider's "*".
    std::vector<std::pair<int, size_t>> col_pos(cols.Size(), {-1, 0});
    for (rapidjson::SizeType c = 0; c < cols.Size(); ++c) {
      const auto& pair = cols[c];
      if (!pair.IsArray() || pair.Size() != 2 || !pair[1].IsString())
        throw InputError(where + ": column_names_original[" + std::to_string(c) + "] must be [table, name]");
      int t = get_index(pair[0], where, "column table index");
      if (t < 0) continue;
      if (static_cast<size_t>(t) >= db.tables.size())
        throw InputError(where + ": column_names_original[" + std::to_string(c) + "] names table " +
                         std::to_string(t) + " of " + std::to_string(db.tables.size()));
      if (!types[c].IsString()) throw InputError(where + ": column_types must hold strings");
      col_pos[c] = {t, db.tables[t].columns.size()};
      db.tables[t].columns.push_back(ColumnInfo{pair[1].GetString(), types[c].GetString(), false});
    }
    auto column_at = [&](int c) -> std::pair<int, size_t> {
      if (c < 0 || static_cast<size_t>(c) >= col_pos.size() || col_pos[c].first < 0)
        throw InputError(where + ": key refers to column " + std::to_string(c) + ", which does not exist");
      return col_pos[c];
    };
    for (const auto& pk : pks.GetArray()) {
      // BIRD writes composite keys as nested lists.
      std::vector<int> ids;
      if (pk.IsArray()) {
        for (const auto& x : pk.GetArray()) ids.push_back(get_index(x, where, "primary key"));
      } else {
        ids.push_back(get_index(pk, where, "primary key"));
      }
      for (int id : ids) {
        auto [t, c] = column_at(id);
        db.tables[t].columns[c].primary_key = true;
      }
    }
    for (const auto& fk : fks.GetArray()) {
      if (!fk.IsArray() || fk.Size() != 2) throw InputError(where + ": foreign_keys must hold [from, to] pairs");
      auto [ft, fc] = column_at(get_index(fk[0], where, "foreign key"));
      auto [tt, tc] = column_at(get_index(fk[1], where, "foreign key"));
      db.foreign_keys.push_back(ForeignKeyInfo{db.tables[ft].name, db.tables[ft].columns[fc].name, db.tables[tt].name,
                                               db.tables[tt].columns[tc].name});
    }
    if (out.count(db.db_id)) throw InputError(where + ": duplicate db_id '" + db.db_id + "'");
    out[db.db_id] = std::move(db);
  }
  return out;
}

std::string format_tables_json(const std::vector<DatabaseInfo>& databases) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  auto str = [&](const std::string& s) { w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size())); };
  auto spider_type = [](std::string t) {
    for (auto& c : t) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    bool numeric = t.find("int") != std::string::npos || t.find("real") != std::string::npos ||
                   t.find("num") != std::string::npos || t.find("float") != std::string::npos ||
                   t.find("double") != std::string::npos || t.find("dec") != std::string::npos;
    return std::string(numeric ? "number" : "text");
  };
  w.StartArray();
  for (const auto& db : databases) {
    // Column indices as tables.json counts them: 0 is "*", then every table's columns in order.
    std::map<std::pair<std::string, std::string>, int> index;
    int next = 1;
    for (const auto& t : db.tables)
      for (const auto& c : t.columns) index[{t.name, c.name}] = next++;
    auto col_index = [&](const std::string& table, const std::string& column) {
      auto it = index.find({table, column});
      if (it == index.end())
        throw std::invalid_argument("format_tables_json: " + db.db_id + ": foreign key names unknown column " + table +
                                    "." + column);
      return it->second;
    };
    w.StartObject();
    w.Key("db_id");
    str(db.db_id);
    for (const char* key : {"table_names_original", "table_names"}) {
      w.Key(key);
      w.StartArray();
      for (const auto& t : db.tables) str(t.name);
      w.EndArray();
    }
    for (const char* key : {"column_names_original", "column_names"}) {
      w.Key(key);
      w.StartArray();
      w.StartArray();
      w.Int(-1);
      str("*");
      w.EndArray();
      for (size_t ti = 0; ti < db.tables.size(); ++ti)
        for (const auto& c : db.tables[ti].columns) {
          w.StartArray();
          w.Int(static_cast<int>(ti));
          str(c.name);
          w.EndArray();
        }
      w.EndArray();
    }
    w.Key("column_types");
    w.StartArray();
    str("text");
    for (const auto& t : db.tables)
      for (const auto& c : t.columns) str(spider_type(c.type));
    w.EndArray();
    w.Key("primary_keys");
    w.StartArray();
    for (const auto& t : db.tables)
      for (const auto& c : t.columns)
        if (c.primary_key) w.Int(col_index(t.name, c.name));
    w.EndArray();
    w.Key("foreign_keys");
    w.StartArray();
    for (const auto& fk : db.foreign_keys) {
      w.StartArray();
      w.Int(col_index(fk.from_table, fk.from_column));
      w.Int(col_index(fk.to_table, fk.to_column));
      w.EndArray();
    }
    w.EndArray();
    w.EndObject();
  }
  w.EndArray();
  return std::string(sb.GetString(), sb.GetSize()) + "\n";
}

Workload load_spider(const WorkloadSpec& spec) {
  std::string dir = resolve_data_dir(spec);
  std::string qfile = spec.questions_file.empty() ? join_path(dir, "dev.json") : spec.questions_file;
  std::string tables = join_path(dir, "tables.json");
  std::string db_root = join_path(dir, "database");

  Workload w;
  w.name = "spider";
  w.databases = load_databases("spider", fs::is_regular_file(tables) ? tables : "", db_root);
  auto doc = parse_question_array(qfile);
  for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
    const auto& e = doc[i];
    std::string where = entry_where(qfile, i);
    Question q;
    q.id = "spider:" + std::to_string(i);
    q.db_id = json::get_string(e, "db_id", where);
    q.question = json::get_string(e, "question", where);
    q.gold_sql = json::get_string(e, "query", where);
    if (!w.databases.count(q.db_id))
      throw InputError(where + ": unknown db_id '" + q.db_id + "' (not in " + tables + " nor under " + db_root + ")");
    try {
      auto it = e.FindMember("sql");
      if (it != e.MemberEnd() && it->value.IsObject())
        q.difficulty = hardness_from_counts(hardness_counts_from_parsed(it->value));
      else if (auto d = e.FindMember("difficulty"); d != e.MemberEnd() && d->value.IsString())
        q.difficulty = parse_difficulty(d->value.GetString());
      else
        q.difficulty = sql_hardness(q.gold_sql);
    } catch (const InputError& err) {
      throw InputError(where + ": " + err.what());
    }
    w.questions.push_back(std::move(q));
  }
  finish_sql_workload(w, spec.limit, db_root);
  return w;
}

Workload load_bird(const WorkloadSpec& spec) {
  std::string dir = resolve_data_dir(spec);
  std::string qfile =
      spec.questions_file.empty() ? first_existing(dir, {"dev.json", "mini_dev_sqlite.json"}) : spec.questions_file;
  if (qfile.empty()) throw InputError("bird: no dev.json or mini_dev_sqlite.json in '" + dir + "'");
  std::string tables = first_existing(dir, {"dev_tables.json", "tables.json"});
  std::string db_root = join_path(dir, "dev_databases");

  Workload w;
  w.name = "bird";
  w.databases = load_databases("bird", tables, db_root);
  auto doc = parse_question_array(qfile);
  for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
    const auto& e = doc[i];
    std::string where = entry_where(qfile, i);
    Question q;
    int64_t qid = json::opt_int(e, "question_id", static_cast<int64_t>(i));
    q.id = "bird:" + std::to_string(qid);
    q.db_id = json::get_string(e, "db_id", where);
    q.question = json::get_string(e, "question", where);
    q.evidence = json::get_string(e, "evidence", where);
    q.gold_sql = json::get_string(e, "SQL", where);
    std::string diff = json::get_string(e, "difficulty", where);
    try {
      q.difficulty = parse_difficulty(diff);
    } catch (const InputError& err) {
      throw InputError(where + ": " + err.what());
    }
    if (!w.databases.count(q.db_id))
      throw InputError(where + ": unknown db_id '" + q.db_id + "' (not in " +
                       (tables.empty() ? std::string("any tables.json") : tables) + " nor under " + db_root + ")");
    w.questions.push_back(std::move(q));
  }
  finish_sql_workload(w, spec.limit, db_root);
  return w;
}

std::vector<Question> parse_hexgen_trace_file(const std::string& path) {
  auto doc = json::parse_file(path);
  if (!doc.IsArray()) throw InputError(path + ": expected a JSON array of queries");
  std::string stem = fs::path(path).stem().string();
  std::vector<Question> out;
  for (rapidjson::SizeType i = 0; i < doc.Size(); ++i) {
    std::string where = entry_where(path, i);
    const auto& calls = json::get_array(doc[i], "Text2SQLRequest", where);
    if (calls.Empty()) throw InputError(where + ": Text2SQLRequest is empty");
    Question q;
    q.id = stem + ":" + std::to_string(i);
    q.question = "recorded CHESS workflow " + q.id;
    for (rapidjson::SizeType k = 0; k < calls.Size(); ++k) {
      std::string cw = where + " call " + std::to_string(k);
      TraceCall c;
      c.step = json::get_string(calls[k], "step", cw);
      int64_t in = json::get_int(calls[k], "input_length", cw), outl = json::get_int(calls[k], "output_length", cw);
      if (in < 0 || outl < 0 || in > (1 << 30) || outl > (1 << 30))
        throw InputError(cw + ": token counts must be non-negative and sane");
      c.input_tokens = static_cast<int>(in);
      c.output_tokens = static_cast<int>(outl);
      q.trace_calls.push_back(std::move(c));
    }
    // The files carry no difficulty; the call count stands in for it (quartiles of the paper's traces:
    // 15/16-19/22/22-23 calls), so per-difficulty SLO scales still have something to act on.
    size_t n = q.trace_calls.size();
    q.difficulty = n <= 15 ? Difficulty::easy : n <= 18 ? Difficulty::medium : n <= 22 ? Difficulty::hard
                                                                                       : Difficulty::extra;
    out.push_back(std::move(q));
  }
  return out;
}

Workload load_hexgen_traces(const WorkloadSpec& spec) {
  std::vector<std::string> files;
  if (!spec.questions_file.empty()) {
    files.push_back(spec.questions_file);
  } else {
    if (spec.data_dir.empty()) throw InputError("hexgen-trace: needs --data DIR (folder of *.json) or --questions FILE");
    if (!fs::is_directory(spec.data_dir)) throw InputError("hexgen-trace: folder '" + spec.data_dir + "' does not exist");
    for (const auto& e : fs::directory_iterator(spec.data_dir))
      if (e.is_regular_file() && e.path().extension() == ".json") files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    if (files.empty()) throw InputError("hexgen-trace: no *.json files in '" + spec.data_dir + "'");
  }
  Workload w;
  w.name = files.size() == 1 ? "hexgen-trace:" + fs::path(files[0]).stem().string() : "hexgen-trace";
  for (const auto& f : files) {
    auto qs = parse_hexgen_trace_file(f);
    w.questions.insert(w.questions.end(), std::make_move_iterator(qs.begin()), std::make_move_iterator(qs.end()));
  }
  w.execution_available = false;
  w.execution_note = "hexgen traces hold recorded call lengths only (no SQL, no databases); replay them in sim mode";
  return w;
}

namespace {

bool has_sqlite_header(const std::filesystem::path& p) {
  static constexpr char kMagic[16] = {'S', 'Q', 'L', 'i', 't', 'e', ' ', 'f', 'o', 'r', 'm', 'a', 't', ' ', '3', '\0'};
  std::ifstream in(p, std::ios::binary);
  char head[16] = {};
  return in.read(head, sizeof head) && std::equal(head, head + 16, kMagic);
}

bool sqlite_extension(const std::filesystem::path& p) {
  auto e = p.extension().string();
  return e == ".sqlite" || e == ".sqlite3" || e == ".db";
}

}  // namespace

Workload load_database_folder(const std::string& dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw InputError("--db-dir '" + dir + "' is not a folder");
  Workload w;
  w.name = "db-folder";
  std::vector<std::string> skipped;
  auto add = [&](const fs::path& file) {
    if (!has_sqlite_header(file)) {
      skipped.push_back(file.filename().string());
      return;
    }
    std::string id = file.stem().string();
    auto [it, fresh] = w.databases.try_emplace(id);
    if (!fresh)
      throw InputError("--db-dir '" + dir + "': two files claim database '" + id + "': " + it->second.path + " and " +
                       file.string());
    it->second.db_id = id;
    it->second.path = file.string();
    it->second.schema_source = "file";
  };
  // Flat files in the folder itself, then <db>/<db>.ext one level down in the folder and in the official layouts'
  // database folders.
  std::vector<fs::path> roots{fs::path(dir)};
  for (const char* sub : {"database", "dev_databases"})
    if (fs::is_directory(fs::path(dir) / sub, ec)) roots.push_back(fs::path(dir) / sub);
  std::vector<fs::path> files;
  for (const auto& e : fs::directory_iterator(dir, ec))
    if (e.is_regular_file(ec) && sqlite_extension(e.path())) files.push_back(e.path());
  for (const auto& root : roots)
    for (const auto& e : fs::directory_iterator(root, ec)) {
      if (!e.is_directory(ec)) continue;
      for (const char* ext : {".sqlite", ".sqlite3", ".db"}) {
        auto f = e.path() / (e.path().filename().string() + ext);
        if (fs::is_regular_file(f, ec)) files.push_back(f);
      }
    }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) add(f);
  if (w.databases.empty())
    throw InputError("--db-dir '" + dir + "' holds no SQLite database (looked for *.sqlite, *.sqlite3, *.db and " +
                     "<db>/<db>.sqlite" + (skipped.empty() ? std::string() : "; not SQLite: " + skipped.front()) + ")");
  if (!skipped.empty()) {
    w.execution_note = "skipped files without the SQLite header:";
    for (const auto& s : skipped) w.execution_note += " " + s;
  }
  return w;
}

}  // namespace t2s::workloads
