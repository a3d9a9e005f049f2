#pragma once
//! The workload trace file: one JSON object per workflow (JSON lines), enough to replay a run exactly.
#include <string>
#include <vector>

#include "workloads/workload.hpp"

namespace t2s::workloads {

//! A workload together with the arrivals of one run.
struct WorkloadTrace {
  Workload workload;
  std::vector<Arrival> arrivals;
};

//! Writes one line per arrival: `{"workflow", "arrival_s", "deadline_s", "workload", "question_id", "db",
//! "db_path", "question", "evidence", "gold_sql", "difficulty"[, "trace_calls": [[step, in, out], …]]}`.
//! Doubles are written in shortest round-trip form, so loading gives back the same bits.
std::string format_workload_trace(const Workload& workload, const std::vector<Arrival>& arrivals);
//! format_workload_trace to a file (parent folders created).
void save_workload_trace(const std::string& path, const Workload& workload, const std::vector<Arrival>& arrivals);

//! Reads a file written by save_workload_trace: questions in order of first use (deduplicated by id), arrivals
//! pointing at them. Throws InputError naming the file and line on a missing field or a broken line.
WorkloadTrace load_workload_trace(const std::string& path);

}  // namespace t2s::workloads
