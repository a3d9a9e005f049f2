#pragma once
//! Loaders for the official Spider and BIRD layouts and for the paper's hexgen call traces.
#include <map>
#include <string>
#include <vector>

#include "workloads/workload.hpp"

namespace t2s::workloads {

//! Reads a Spider/BIRD `tables.json` into schemas by db_id (paths left empty); errors name the file and entry.
std::map<std::string, DatabaseInfo> load_tables_json(const std::string& path);

//! Writes schemas in Spider's `tables.json` format (the inverse of load_tables_json; types "number"/"text").
std::string format_tables_json(const std::vector<DatabaseInfo>& databases);

//! Spider: `<data_dir>/dev.json` (or `questions_file`), `<data_dir>/tables.json`,
//! `<data_dir>/database/<db>/<db>.sqlite`. Difficulty by the official hardness rules.
Workload load_spider(const WorkloadSpec& spec);

//! BIRD: `<data_dir>/dev.json` or `mini_dev_sqlite.json` (or `questions_file`), `<data_dir>/dev_tables.json`,
//! `<data_dir>/dev_databases/<db>/<db>.sqlite` when present (otherwise execution_available = false).
Workload load_bird(const WorkloadSpec& spec);

//! Hexgen traces: every `*.json` in `data_dir` (sorted by name), or only `questions_file`.
Workload load_hexgen_traces(const WorkloadSpec& spec);

//! Parses one hexgen trace file (`[{"Text2SQLRequest": [{step, input_length, output_length}, …]}, …]`);
//! question ids are `<file stem>:<index>`.
std::vector<Question> parse_hexgen_trace_file(const std::string& path);

//! Any folder of SQLite files, served for free-text questions (no questions, no gold): flat `*.sqlite`, `*.sqlite3`
//! and `*.db` files, or the Spider/BIRD layouts (`<db>/<db>.sqlite` under the folder, `database/` or
//! `dev_databases/`). Files without the SQLite header are skipped; nothing is opened or written here. Throws
//! InputError when the folder is missing, holds no database, or two files claim the same db_id.
Workload load_database_folder(const std::string& dir);

}  // namespace t2s::workloads
