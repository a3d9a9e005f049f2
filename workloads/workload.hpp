#pragma once
//! The workload model shared by loaders, the agent, the simulator and the runtime.
#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

namespace t2s::workloads {

//! Spider-style hardness (BIRD's simple/moderate/challenging map to easy/medium/hard).
enum class Difficulty { easy, medium, hard, extra };

//! "easy" | "medium" | "hard" | "extra".
std::string_view difficulty_name(Difficulty d);
//! Parses those names and BIRD's "simple"/"moderate"/"challenging"; throws InputError otherwise.
Difficulty parse_difficulty(std::string_view name);

//! One recorded LLM call of a hexgen trace (`step`, `input_length`, `output_length`).
struct TraceCall {
  std::string step;
  int input_tokens = 0;
  int output_tokens = 0;
};

//! One question of a workload.
struct Question {
  std::string id;          //!< stable id within its workload ("spider:17", "synthetic:retail:42", "trace1:5")
  std::string db_id;       //!< database id (empty for hexgen traces)
  std::string question;    //!< natural-language question
  std::string evidence;    //!< BIRD evidence ("" elsewhere)
  std::string gold_sql;    //!< gold query ("" for hexgen traces)
  Difficulty difficulty = Difficulty::medium;
  std::vector<TraceCall> trace_calls;  //!< recorded call sequence (hexgen traces only)
};

//! A database a workload refers to.
struct DatabaseInfo {
  std::string db_id;
  std::string path;          //!< SQLite file; empty when the file is not available
  std::string schema_source; //!< where the schema came from (tables.json, the file itself, …)
};

//! A loaded workload: questions plus the databases they use.
struct Workload {
  std::string name;                               //!< "synthetic", "spider", "bird", "hexgen-trace:trace1"
  std::vector<Question> questions;
  std::map<std::string, DatabaseInfo> databases;  //!< by db_id
  bool execution_available = true;                //!< false when some database files are missing
  std::string execution_note;                     //!< why execution is unavailable (names the missing files)
};

//! One workflow instance of a run: which question arrives when, and its absolute deadline.
struct Arrival {
  uint64_t workflow_id = 0;
  size_t question_index = 0;  //!< index into Workload::questions
  double arrival_s = 0;
  double deadline_s = 1e18;   //!< absolute deadline (arrival + SLO budget)
};

}  // namespace t2s::workloads
