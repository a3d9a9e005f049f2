#include "agents/llm_call.hpp"

#include <algorithm>
#include <cctype>
#include <string>

namespace t2s::agents {

std::string_view stage_kind_name(StageKind kind) {
  switch (kind) {
    case StageKind::tool_picker: return "tool_picker";
    case StageKind::keyword_extraction: return "keyword_extraction";
    case StageKind::column_selection: return "column_selection";
    case StageKind::candidate_generation: return "candidate_generation";
    case StageKind::revise: return "revise";
    case StageKind::unit_test_generation: return "unit_test_generation";
    case StageKind::evaluation: return "evaluation";
    case StageKind::selection: return "selection";
    case StageKind::sql_execution: return "sql_execution";
    case StageKind::other: return "other";
  }
  return "other";
}

StageKind parse_stage_kind(std::string_view name) {
  std::string n(name);
  std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) {
    return c == ' ' || c == '-' ? '_' : static_cast<char>(std::tolower(c));
  });
  auto starts = [&](std::string_view p) { return n.rfind(p, 0) == 0; };
  // Our own names first, then the hexgen trace step names ("Information Retriever" and "unit_tester" are the
  // agentic tool-picker calls that choose the next tool).
  if (n == "tool_picker" || n == "agent" || n == "information_retriever" || n == "unit_tester" ||
      n == "candidate_generator_agent")
    return StageKind::tool_picker;
  if (n == "keyword_extraction" || starts("extract_keywords")) return StageKind::keyword_extraction;
  if (n == "column_selection" || starts("select_columns") || starts("filter_column") || starts("select_tables") ||
      starts("schema_linking"))
    return StageKind::column_selection;
  if (n == "candidate_generation" || starts("generate_candidate")) return StageKind::candidate_generation;
  if (starts("revise")) return StageKind::revise;
  if (n == "unit_test_generation" || starts("generate_unit_test")) return StageKind::unit_test_generation;
  if (n == "evaluation" || starts("evaluate")) return StageKind::evaluation;
  if (n == "selection" || n == "select" || n == "final_selection") return StageKind::selection;
  if (n == "sql_execution" || n == "execute" || n == "execution" || n == "sqlite") return StageKind::sql_execution;
  return StageKind::other;
}

bool is_llm_stage(StageKind kind) { return kind != StageKind::sql_execution; }

}  // namespace t2s::agents
