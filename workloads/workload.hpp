#pragma once
//! The workload model shared by loaders, the agent, the simulator and the runtime.
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
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

//! One LLM call of a recorded run, as the scheduler saw it and as it ran.
struct RecordedCall {
  int prompt_tokens = 0;           //!< prompt tokens as the serving tokenizer counted them
  int output_tokens = 0;           //!< tokens generated (so far, for a call cut off by its workflow's end)
  int max_output_tokens = 0;       //!< the generation cap it was submitted with
  int expected_output_tokens = 0;  //!< the agent's estimate the scheduler saw
  uint64_t prefix_id = 0;          //!< shared-prefix id the scheduler saw (0 = none)
  int prefix_tokens = 0;           //!< length of that shared prefix
  int cached_tokens = 0;           //!< prompt tokens the instance served from its prefix cache
  std::string instance;            //!< instance that ran it ("" = never placed)
  double service_s = 0;            //!< measured start → end on that instance (0 when it did not finish)
  bool ok = false;                 //!< finished with an answer
};

//! One stage of a recorded workflow: LLM calls, or a tool (SQLite) stage with its wall duration.
struct RecordedStage {
  std::string kind;                //!< stage kind name ("candidate_generation", "sql_execution", …)
  bool tool = false;               //!< true: tool work, no calls
  std::vector<uint32_t> parents;   //!< indices of the stages it waited for (all earlier than this one)
  std::vector<RecordedCall> calls; //!< its LLM calls, in submission order
  double start_s = 0;              //!< release time, seconds after the workflow's arrival
  double duration_s = 0;           //!< release → end (for tool stages: the SQL time replays wait for)
  bool done = true;                //!< ended before the workflow did (false: cut off by its end)
};

//! How one workflow of a real run went, for replaying its exact call DAG in the simulator.
struct RecordedWorkflow {
  std::string question_id;        //!< the original question
  std::string outcome = "completed";  //!< "completed" | "ended_early" | "failed" | "cancelled"
  std::string error;              //!< why it failed
  std::string sql;                //!< the final query (empty when none)
  bool sql_executed = false, has_gold = false, correct = false;  //!< the answer's checks, copied to replays
  double latency_s = 0;           //!< arrival → end in the real run
  std::vector<RecordedStage> stages;  //!< in release order (index = stage index)
};

//! An instance of a recorded run as the runtime ran it (what a simulation of it must mirror).
struct RecordedInstance {
  std::string name;
  std::string kind;            //!< "engine" | "remote" | "responder"
  int capacity = 0;            //!< sequences it ran at once at most
  int kv_blocks = 0;           //!< KV capacity in blocks (0 = unknown)
  int block_tokens = 16;       //!< tokens per KV block
  int max_batch_tokens = 0;    //!< token budget of one iteration (0 = unknown)
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
  std::shared_ptr<const RecordedWorkflow> recorded;  //!< the call DAG of one workflow of a recorded run
};

//! One column of a database schema as the loader knows it (from tables.json or the SQLite file).
struct ColumnInfo {
  std::string name;
  std::string type;          //!< declared type ("text", "number", "INTEGER", …)
  bool primary_key = false;
};

//! One table of a database schema.
struct TableInfo {
  std::string name;
  std::vector<ColumnInfo> columns;
};

//! A foreign key `from_table.from_column → to_table.to_column`.
struct ForeignKeyInfo {
  std::string from_table, from_column, to_table, to_column;
};

//! A database a workload refers to.
struct DatabaseInfo {
  std::string db_id;
  std::string path;          //!< SQLite file; empty when the file is not available
  std::string schema_source; //!< where the schema came from (tables.json, the file itself, …)
  std::vector<TableInfo> tables;             //!< schema known without opening the file (may be empty)
  std::vector<ForeignKeyInfo> foreign_keys;  //!< foreign keys of that schema
};

//! One workflow instance of a run: which question arrives when, and its absolute deadline.
struct Arrival {
  uint64_t workflow_id = 0;
  size_t question_index = 0;  //!< index into Workload::questions
  double arrival_s = 0;
  double deadline_s = 1e18;   //!< absolute deadline (arrival + SLO budget)
};

//! A loaded workload: questions plus the databases they use.
struct Workload {
  std::string name;                               //!< "synthetic", "spider", "bird", "hexgen-trace:trace1"
  std::vector<Question> questions;
  std::map<std::string, DatabaseInfo> databases;  //!< by db_id
  bool execution_available = true;                //!< false when some database files are missing
  std::string execution_note;                     //!< why execution is unavailable (names the missing files)
  //! Recorded runs: the run's own arrivals and deadlines (question i is workflow i), replayed instead of a rate.
  std::vector<Arrival> recorded_arrivals;
  std::vector<RecordedInstance> recorded_instances;  //!< recorded runs: the instances as they ran
  std::string recorded_source;                        //!< recorded runs: "policy=… cluster=… backend=…"
};

//! What `load_workload` loads.
struct WorkloadSpec {
  std::string kind = "synthetic";  //!< "synthetic" | "spider" | "bird" | "hexgen-trace" | "recorded"
  std::string data_dir;            //!< dataset folder (spider/bird: the official layout; hexgen-trace: folder of *.json)
  std::string questions_file;      //!< overrides the question file (dev.json, mini_dev_sqlite.json, one trace file)
  size_t limit = 0;                //!< keep the first N questions (0 = all)
  uint64_t seed = 1;               //!< synthetic generation seed
  std::string cache_dir = "out/synthetic";  //!< where the synthetic databases are written (reused when the manifest matches)
};

//! Loads a workload; throws InputError naming the file and entry on bad or missing input.
Workload load_workload(const WorkloadSpec& spec);

//! Throws InputError with `execution_note` (naming the missing files) when the workload cannot execute SQL.
void require_execution(const Workload& workload);

//! CREATE TABLE statements for a schema known from tables.json or the file (for prompt sizes without a database).
std::string render_ddl(const DatabaseInfo& db);

//! Index ranges [begin, end) into `calls`, one per stage: consecutive generate_candidate* calls form one parallel
//! stage, consecutive evaluate* calls another, every other call is its own stage.
std::vector<std::pair<size_t, size_t>> trace_stages(const std::vector<TraceCall>& calls);

}  // namespace t2s::workloads
