#pragma once
//! The training corpus of t2s's own model: every LLM call the Text-to-SQL agent makes on synthetic workloads,
//! recorded with the never-erring oracle's answer as the teacher, through the agent's own prompt builders and its
//! window fitting. Wrong candidates (oracle mutations) are fed back to the agent so that it runs them on SQLite
//! and asks for revisions with the real error text; the teacher answers those with the gold query.
#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "sqlexec/schema.hpp"

namespace t2s::agents {

//! The synthetic seed of the evidence run: never part of any corpus.
inline constexpr uint64_t kTestSeed = 42;
//! The held-out validation seed (EX at checkpoints); never part of a training corpus.
inline constexpr uint64_t kValidationSeed = 7;
//! Training seeds are kFirstTrainSeed, kFirstTrainSeed + 1, …
inline constexpr uint64_t kFirstTrainSeed = 1000;

//! What to record.
struct CorpusOptions {
  std::vector<uint64_t> seeds;      //!< synthetic seeds (training: never kTestSeed or kValidationSeed)
  bool validation = false;          //!< true: exactly {kValidationSeed}, for held-out evaluation
  std::string cache_dir;            //!< where the synthetic databases are generated, one folder per seed
  size_t questions_per_db = 40;     //!< synthetic questions per database (6 databases per seed)
  int context_tokens = 0;           //!< the serving model's window the agent fits prompts to (0: no fitting)
  sqlexec::TokenCounter count_tokens;  //!< the serving tokenizer's count of a prompt (empty: the agent's estimate)
  double wrong_candidates = 0.35;   //!< P(a candidate the agent receives is an oracle mutation of the gold query)
  //! Fraction of each stage's calls kept (deterministically), biasing the mix toward the SQL-writing stages.
  std::map<std::string, double> keep = {{"tool_picker", 0.15},       {"keyword_extraction", 1.0},
                                        {"column_selection", 1.0},   {"candidate_generation", 1.0},
                                        {"revise", 1.0},             {"unit_test_generation", 0.4},
                                        {"evaluation", 0.25}};
  uint64_t seed = 1;                //!< seed of the mutations and the keep draws
};

//! One recorded call: the exact prompt the agent sent and the teacher's answer.
struct CorpusExample {
  std::string stage;        //!< stage kind name ("candidate_generation", …)
  std::string question_id;  //!< the synthetic question ("synthetic:retail:3")
  uint64_t seed = 0;        //!< its synthetic seed
  std::string db_id;        //!< its database
  std::string prompt;       //!< prompt text as sent (after window fitting)
  std::string answer;       //!< the teacher's answer
  std::string gold_sql;     //!< the question's gold query
  std::string error;        //!< revise: the SQLite error (or finding) in the prompt
};

//! Counts of a corpus.
struct CorpusSummary {
  std::map<std::string, size_t> examples;  //!< per stage
  std::map<std::string, size_t> chars;     //!< prompt + answer characters per stage
  size_t questions = 0;                    //!< questions run through the agent
  size_t revise_with_error = 0;            //!< revise examples whose prompt carries a SQLite error message
};

//! Runs the agent over every question of the seeds' synthetic workloads and records its calls, in a fixed order
//! (seed, question, call). Throws InputError for a forbidden seed.
std::vector<CorpusExample> build_training_corpus(const CorpusOptions& options, CorpusSummary* summary = nullptr);

//! Writes one JSON object per line (the fields of CorpusExample).
void write_corpus_jsonl(const std::string& path, const std::vector<CorpusExample>& examples);
//! Reads write_corpus_jsonl's format.
std::vector<CorpusExample> read_corpus_jsonl(const std::string& path);
//! The summary as a JSON object (examples, chars per stage; questions; revise_with_error).
std::string corpus_summary_json(const CorpusSummary& summary);

}  // namespace t2s::agents
