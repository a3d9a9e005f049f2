#pragma once
//! The recorded-run file (`recorded.json`): the workload of a real run as it really ran — arrivals, deadlines and
//! every workflow's exact call DAG — so that the simulator can replay that run (`--workload recorded`).
#include <string>

#include "workloads/workload.hpp"

namespace t2s::workloads {

//! `recorded.json` text of a recorded workload (questions carrying `recorded`, `recorded_arrivals` one per question,
//! `recorded_instances`); doubles in shortest round-trip form. Throws std::logic_error on an inconsistent workload.
std::string format_recorded_run(const Workload& workload);

//! Parses `recorded.json` text; question i is workflow i and `recorded_arrivals[i]` its arrival. Throws InputError
//! naming `where`, the entry and the field on a missing, mistyped or inconsistent field (a parent that is not an
//! earlier stage, a tool stage with calls, a duplicate workflow id, …).
Workload parse_recorded_run(const std::string& text, const std::string& where);

//! Loads `recorded.json` from a file (errors name the file).
Workload load_recorded_run(const std::string& path);

}  // namespace t2s::workloads
