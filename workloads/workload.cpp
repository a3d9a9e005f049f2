#include "workloads/workload.hpp"

#include <algorithm>
#include <cctype>

#include "common/status.hpp"
#include "workloads/loaders.hpp"
#include "workloads/recorded.hpp"
#include "workloads/synthetic.hpp"

namespace t2s::workloads {

std::string_view difficulty_name(Difficulty d) {
  switch (d) {
    case Difficulty::easy: return "easy";
    case Difficulty::medium: return "medium";
    case Difficulty::hard: return "hard";
    case Difficulty::extra: return "extra";
  }
  return "medium";
}

Difficulty parse_difficulty(std::string_view name) {
  std::string n(name);
  for (auto& c : n) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (n == "easy" || n == "simple") return Difficulty::easy;
  if (n == "medium" || n == "moderate") return Difficulty::medium;
  if (n == "hard" || n == "challenging") return Difficulty::hard;
  if (n == "extra" || n == "extra hard" || n == "extra-hard") return Difficulty::extra;
  throw InputError("unknown difficulty '" + std::string(name) +
                   "' (expected easy|medium|hard|extra or simple|moderate|challenging)");
}

Workload load_workload(const WorkloadSpec& spec) {
  Workload w;
  if (spec.kind == "synthetic") {
    w = load_synthetic(spec);
  } else if (spec.kind == "spider") {
    w = load_spider(spec);
  } else if (spec.kind == "bird") {
    w = load_bird(spec);
  } else if (spec.kind == "hexgen-trace" || spec.kind == "hexgen") {
    w = load_hexgen_traces(spec);
  } else if (spec.kind == "recorded") {
    if (spec.questions_file.empty())
      throw InputError("--workload recorded: needs --questions FILE (the recorded.json of `t2s replay --out`)");
    w = load_recorded_run(spec.questions_file);
  } else {
    throw InputError("unknown workload kind '" + spec.kind +
                     "' (expected synthetic|spider|bird|hexgen-trace|recorded)");
  }
  if (spec.limit > 0 && w.questions.size() > spec.limit) {
    w.questions.resize(spec.limit);
    // Recorded runs: question i is workflow i.
    if (w.recorded_arrivals.size() > spec.limit) w.recorded_arrivals.resize(spec.limit);
  }
  if (w.questions.empty()) throw InputError("workload '" + w.name + "' has no questions");
  return w;
}

void require_execution(const Workload& workload) {
  if (!workload.execution_available)
    throw InputError("workload '" + workload.name + "' cannot execute SQL: " + workload.execution_note);
}

std::string render_ddl(const DatabaseInfo& db) {
  std::string out;
  for (const auto& t : db.tables) {
    out += "CREATE TABLE \"" + t.name + "\" (\n";
    std::vector<std::string> lines;
    std::vector<std::string> pks;
    for (const auto& c : t.columns) {
      lines.push_back("  \"" + c.name + "\" " + (c.type.empty() ? "TEXT" : c.type));
      if (c.primary_key) pks.push_back("\"" + c.name + "\"");
    }
    if (!pks.empty()) {
      std::string pk = "  PRIMARY KEY (";
      for (size_t i = 0; i < pks.size(); ++i) pk += (i ? ", " : "") + pks[i];
      lines.push_back(pk + ")");
    }
    for (const auto& fk : db.foreign_keys)
      if (fk.from_table == t.name)
        lines.push_back("  FOREIGN KEY (\"" + fk.from_column + "\") REFERENCES \"" + fk.to_table + "\"(\"" +
                        fk.to_column + "\")");
    for (size_t i = 0; i < lines.size(); ++i) out += lines[i] + (i + 1 < lines.size() ? ",\n" : "\n");
    out += ");\n";
  }
  return out;
}

std::vector<std::pair<size_t, size_t>> trace_stages(const std::vector<TraceCall>& calls) {
  auto group_of = [](const std::string& step) -> int {
    if (step.rfind("generate_candidate", 0) == 0) return 1;
    if (step.rfind("evaluate", 0) == 0) return 2;
    return 0;
  };
  std::vector<std::pair<size_t, size_t>> stages;
  size_t i = 0;
  while (i < calls.size()) {
    int g = group_of(calls[i].step);
    size_t j = i + 1;
    if (g != 0)
      while (j < calls.size() && group_of(calls[j].step) == g) ++j;
    stages.emplace_back(i, j);
    i = j;
  }
  return stages;
}

}  // namespace t2s::workloads
