// The training corpus: deterministic for its seeds, every teacher query executes and matches gold, revise prompts
// carry the real SQLite error of the query they show, held-out seeds are refused, prompts fit the window.
#include <catch2/catch.hpp>

#include <filesystem>
#include <set>

#include "agents/execution.hpp"
#include "agents/training_corpus.hpp"
#include "common/status.hpp"
#include "sqlexec/extract.hpp"
#include "workloads/synthetic.hpp"
#include "tests/support.hpp"

using namespace t2s;
using namespace t2s::agents;

namespace {

CorpusOptions small_options(const std::string& cache) {
  CorpusOptions o;
  o.seeds = {kFirstTrainSeed};
  o.cache_dir = cache;
  o.questions_per_db = 5;
  return o;
}

// The text between `open` and `close` after the first `open`.
std::string between(const std::string& s, const std::string& open, const std::string& close) {
  auto a = s.find(open);
  if (a == std::string::npos) return {};
  a += open.size();
  auto b = s.find(close, a);
  return b == std::string::npos ? std::string{} : s.substr(a, b - a);
}

}  // namespace

TEST_CASE("training corpus: deterministic, executable teacher answers, real SQLite errors", "[agents][corpus]") {
  test::TempDir dir("agents-corpus");
  CorpusSummary sum;
  auto a = build_training_corpus(small_options(dir.file("cache")), &sum);
  auto b = build_training_corpus(small_options(dir.file("cache")));
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].prompt == b[i].prompt);
    CHECK(a[i].answer == b[i].answer);
  }
  CHECK(sum.questions == 30);
  for (const char* stage : {"keyword_extraction", "column_selection", "candidate_generation", "revise",
                            "unit_test_generation", "evaluation", "tool_picker"}) {
    INFO(stage);
    CHECK(sum.examples[stage] > 0);
  }
  CHECK(sum.examples["candidate_generation"] == 60);  // two candidate styles per question, all kept

  workloads::SyntheticOptions so;
  so.seed = kFirstTrainSeed;
  so.questions_per_db = 5;
  auto w = workloads::generate_synthetic(dir.file("cache") + "/synthetic-seed-1000", so);
  std::map<std::string, const workloads::Question*> qs;
  for (const auto& q : w.questions) qs[q.id] = &q;
  auto backend = make_sqlite_backend(w, sqlexec::Metric::spider);
  size_t sql_answers = 0, sqlite_errors = 0;
  for (const auto& e : a) {
    REQUIRE(e.seed == kFirstTrainSeed);
    const auto& q = *qs.at(e.question_id);
    CHECK(e.gold_sql == q.gold_sql);
    if (e.stage == "candidate_generation" || e.stage == "revise") {
      auto sql = sqlexec::extract_sql(e.answer);
      REQUIRE(sql);
      CHECK(*sql == q.gold_sql);
      auto out = backend->execute(q, *sql);
      INFO(*sql << ": " << out.message);
      CHECK(out.ok());
      CHECK(backend->correct(q, *sql).value_or(false));
      ++sql_answers;
    }
    if (e.stage == "revise") {
      // The query the prompt shows really fails (or returns nothing) on SQLite with the text the prompt quotes.
      std::string shown = between(e.prompt, "This query was written for the question:\n```sql\n", "\n```\nRunning");
      REQUIRE(!shown.empty());
      CHECK(e.prompt.find("Running it on SQLite gave: " + e.error + "\n") != std::string::npos);
      auto out = backend->execute(q, shown);
      if (!out.ok()) {
        CHECK(out.message == e.error);
        ++sqlite_errors;
      } else {
        CHECK(e.error.rfind("the query ran but", 0) == 0);
      }
    }
  }
  CHECK(sql_answers > 60);
  CHECK(sqlite_errors > 0);
  CHECK(sqlite_errors == sum.revise_with_error);
}

TEST_CASE("training corpus: held-out seeds are refused", "[agents][corpus]") {
  test::TempDir dir("agents-corpus-seeds");
  auto o = small_options(dir.file("cache"));
  o.seeds = {kFirstTrainSeed, kTestSeed};
  CHECK_THROWS_AS(build_training_corpus(o), InputError);
  o.seeds = {kValidationSeed};
  CHECK_THROWS_AS(build_training_corpus(o), InputError);
  o.validation = true;
  o.seeds = {kTestSeed};
  CHECK_THROWS_AS(build_training_corpus(o), InputError);
  CHECK(!std::filesystem::exists(dir.file("cache")));  // refused before generating anything
}

TEST_CASE("training corpus: prompts are fitted to the window by the given token counter", "[agents][corpus]") {
  test::TempDir dir("agents-corpus-window");
  auto o = small_options(dir.file("cache"));
  o.questions_per_db = 2;
  // One token per 2 characters: a crude counter that makes the full prompts far too long for 256 tokens.
  o.count_tokens = [](std::string_view s) { return static_cast<int>((s.size() + 1) / 2); };
  o.context_tokens = 256;
  auto fitted = build_training_corpus(o);
  o.context_tokens = 0;
  auto full = build_training_corpus(o);
  size_t longer = 0;
  for (const auto& e : full) longer += o.count_tokens(e.prompt) > 192 ? 1 : 0;
  CHECK(longer > 0);
  REQUIRE(fitted.size() == full.size());  // the same calls, only their prompts are fitted
  for (size_t i = 0; i < fitted.size(); ++i) {
    const auto& e = fitted[i];
    INFO(e.stage);
    CHECK(e.stage == full[i].stage);
    CHECK(o.count_tokens(e.prompt) <= 256 - 64);  // the agent keeps a quarter of the window for the answer
    // What the agent gives up first is the schema and the start; the answer instruction at the end stays.
    const auto tail = full[i].prompt.substr(full[i].prompt.size() - 40);
    CHECK(e.prompt.size() >= 40);
    CHECK(e.prompt.substr(e.prompt.size() - 40) == tail);
    if (e.stage == "candidate_generation") CHECK(e.prompt.find("Question: ") != std::string::npos);
  }
}

TEST_CASE("training corpus: JSONL round trip", "[agents][corpus]") {
  test::TempDir dir("agents-corpus-jsonl");
  auto o = small_options(dir.file("cache"));
  o.questions_per_db = 1;
  auto a = build_training_corpus(o);
  write_corpus_jsonl(dir.file("c.jsonl"), a);
  auto b = read_corpus_jsonl(dir.file("c.jsonl"));
  REQUIRE(a.size() == b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    CHECK(a[i].prompt == b[i].prompt);
    CHECK(a[i].answer == b[i].answer);
    CHECK(a[i].error == b[i].error);
    CHECK(a[i].seed == b[i].seed);
  }
}
