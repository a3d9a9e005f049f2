#pragma once
//! The CHESS-style Text-to-SQL agent: schema linking, parallel candidates, execution, a revise loop driven by
//! real SQLite errors, unit tests with parallel judges, and execution-based selection.
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "agents/execution.hpp"
#include "agents/workflow.hpp"
#include "sqlexec/schema.hpp"

namespace t2s::agents {

//! Knobs of the Text-to-SQL agent.
struct AgentOptions {
  int candidates = 2;              //!< parallel candidate-generation calls (different prompt styles)
  int max_revise_rounds = 10;      //!< K: revise rounds per candidate at most
  bool tool_picker = true;         //!< the agentic variant's tool-picker calls (7 per question, as in the traces)
  bool keyword_extraction = true;  //!< keyword extraction + value matching before column selection
  bool column_selection = true;    //!< LLM column selection (false: the full schema goes to the candidates)
  bool unit_tests = true;          //!< unit-test generation and parallel evaluation
  int max_unit_tests = 11;         //!< evaluation calls at most (one per generated test)
  bool end_at_deadline = true;     //!< past the deadline, end with the best executed candidate so far
  //! Execute the gold query at the end to fill WorkflowOutcome::correct. The check runs synchronously on the
  //! workflow's executor; a live server that never reports correctness turns it off so its event loop is not
  //! blocked by SQLite (has_gold then stays false).
  bool score_correctness = true;
  int schema_samples = 3;  //!< sample values per column in schema prompts
  //! Few-shot examples per candidate prompt: question/gold-SQL pairs of the workload from other databases (never
  //! the question's own), as CHESS's long templates carry; ~100 brings candidate prompts near the paper's size.
  int few_shot_examples = 0;
  double candidate_temperature = 0.7;  //!< sampling temperature of candidates and revisions
  //! Candidate and revise calls carry question_literal_rules() of their question (and evidence) and the database's
  //! tables and columns, so an engine that supports it only writes literals and comparisons the question states and
  //! names the schema has (false: free answers).
  bool literal_guide = true;
  uint64_t seed = 1;                   //!< base sampling seed of the calls
  sqlexec::TokenCounter count_tokens;  //!< the active tokenizer (empty: sqlexec::estimate_tokens)
  //! Execution backend; empty: real SQLite when every database file is present, else simulated from the oracle's
  //! labels with the schemas the workload read from tables.json (DatabaseInfo::tables).
  std::shared_ptr<ExecutionBackend> backend;
  std::string tables_json;  //!< optional Spider-format schema file overriding those schemas
  //! The agent's prior for its remaining-work estimates: probability that a candidate needs a revise, and that
  //! a revise round fixes it (updated per question as outcomes arrive).
  double revise_need_prior = 0.3, revise_fix_prior = 0.6;
};

//! What a Text-to-SQL call tells a simulated responder (the real model ignores it).
struct Text2SqlCallMeta final : CallMeta {
  std::string question_id;                   //!< the question's id (the oracle looks its gold query up by it)
  StageKind kind = StageKind::other;         //!< the call's stage kind
  int candidate = -1;                        //!< candidate index (generation, revise)
  int round = 0;                             //!< revise round (1…K)
  int style = 0;                             //!< candidate prompt style
  int test = -1;                             //!< unit-test index (evaluation)
  int tests_wanted = 0;                      //!< unit-test generation: how many tests at most
  std::string next_tool;                     //!< tool picker: the tool the workflow will run next
  std::string previous_sql, previous_error;  //!< revise: the failing query and its SQLite error (or finding)
  std::vector<std::pair<std::string, std::vector<std::string>>> schema_columns;  //!< column selection: tables
  std::vector<std::string> candidate_sqls;                                       //!< evaluation: the candidates judged
  std::shared_ptr<const std::vector<std::string>> columns;  //!< column names of the database (for mistakes)
};

//! The prompts of one question (exposed for tests and `t2s ask`).
struct PromptParts {
  std::string prefix;  //!< shared prefix: instructions + schema
  std::string body;    //!< call-specific rest
  //! prefix + body.
  std::string text() const { return prefix + body; }
};
//! Instruction + schema prefix shared by the candidate, revise, unit-test and evaluation calls of a question.
std::string sql_prefix(const std::string& schema_text);
//! Keyword extraction prompt.
PromptParts keyword_prompt(const workloads::Question& q);
//! Column selection prompt over the full schema, with the matched values.
PromptParts column_selection_prompt(const workloads::Question& q, const std::string& full_schema_text,
                                    const std::vector<ValueMatch>& values);
//! Candidate generation prompt in `style` (0: divide and conquer, 1: query plan, 2: direct with examples);
//! `examples` (question/SQL pairs from other databases) go between the method and the question.
PromptParts candidate_prompt(const workloads::Question& q, const std::string& schema_text, int style,
                             const std::string& examples = {});
//! Revise prompt: the failing query and the real SQLite error (or the finding, e.g. "returned no rows").
PromptParts revise_prompt(const workloads::Question& q, const std::string& schema_text, const std::string& sql,
                          const std::string& error);
//! Unit-test generation prompt over the candidates.
PromptParts unit_test_prompt(const workloads::Question& q, const std::string& schema_text,
                             const std::vector<std::string>& candidates, int tests);
//! Evaluation (judge) prompt: one unit test against every candidate and its result preview.
PromptParts evaluation_prompt(const workloads::Question& q, const std::string& schema_text, const std::string& test,
                              const std::vector<std::string>& candidates, const std::vector<std::string>& previews);
//! Tool-picker prompt: the agent's state and the tools it may call.
PromptParts tool_picker_prompt(const workloads::Question& q, const std::vector<std::string>& done_tools);

//! The literals an answer to `question` may use in its SQL: the values it names (in double quotes, and dates) as
//! named values in order; its words with a digit or, when nothing is in double quotes, every run of 1–6 of its words;
//! each of those with LIKE's '%' after LIKE; strftime's formats; the numbers it writes in digits or in words up to
//! twenty; 1 after LIMIT; and question_comparisons().
SqlLiteralRules question_literal_rules(const std::string& question);
//! The ordering comparisons `question` states ("below 5": <, "5 or more": >=, "no more than 5": <= and >; operators it
//! writes out); none (any allowed) when it states none or uses a word that points either way (older, between, an
//! unknown comparative before "than").
std::vector<std::string> question_comparisons(const std::string& question);
//! True when `question` (its first line) asks how many ("How many …", "Count the …", "What is the number of …") and
//! its answer is one aggregate: false when it counts per group (per, each, every, by) or asks for "the number of"
//! a column of `tables` ("the number of credits").
bool question_asks_count(const std::string& question,
                         const std::vector<std::pair<std::string, std::vector<std::string>>>& tables);
//! The functions the first select item of an answer to `question` must start with (SqlLiteralRules::first_item):
//! COUNT, SUM or CAST when it asks how many; AVG (or CAST) for "What is the average …", MIN for "Compute the
//! minimum …", MAX for "the largest …", SUM, COUNT or CAST for "the total …"; none when it asks per group or a
//! second question or sentence follows.
std::vector<std::string> question_answer_functions(
    const std::string& question, const std::vector<std::pair<std::string, std::vector<std::string>>>& tables);

//! Parsers of the answers (tolerant of prose around them).
std::vector<std::string> parse_keywords(const std::string& text);
//! `{"table": ["col", …]}` → pairs, keeping only names of `schema` (case-insensitive), in schema spelling.
std::vector<std::pair<std::string, std::vector<std::string>>> parse_column_selection(const std::string& text,
                                                                                     const sqlexec::Schema& schema);
//! Numbered or bulleted test lines.
std::vector<std::string> parse_unit_tests(const std::string& text);
//! "Candidate i: PASS|FAIL" lines → per-candidate pass (1) / fail (0) / missing (-1).
std::vector<int> parse_judgement(const std::string& text, size_t candidates);

//! A factory of Text-to-SQL workflows over `workload` (its databases, or simulated execution when absent).
std::unique_ptr<WorkflowFactory> make_text2sql_factory(const workloads::Workload& workload, AgentOptions options = {});

}  // namespace t2s::agents
