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

TEST_CASE("training corpus: literals of the question and their fresh copies", "[agents][corpus]") {
  const std::string prompt =
      "Schema:\n  city TEXT, -- e.g. 'Newport', 'Salem', 'New Salem'\n  area INTEGER -- e.g. 1900, 19000, 21.55\n"
      "Example: Question: What is the revenue of \"Acme\" in 2022?\n"
      "Question: Which stores in \"New Salem\" or \"Salem\" have area above 1900 or 21.5, top 3 of model B747?\n"
      "Answer:";
  CHECK(question_literals(prompt) == std::vector<std::string>{"New Salem", "Salem", "1900", "21.5"});
  CHECK(question_literals("no question line").empty());

  CorpusExample e;
  e.stage = "candidate_generation";
  e.question_id = "synthetic:retail:1";
  e.prompt = prompt;
  e.answer = "```sql\nSELECT name FROM stores WHERE city IN ('New Salem', 'Salem') AND (area > 1900 OR area > 21.5)"
             " LIMIT 3\n```";
  CorpusExample kw = e;  // the keyword teacher lists a value's capitalised words on their own too
  kw.answer = "[\"New Salem\", \"New\", \"Salem\", \"stores\", \"1900\"]";
  e.gold_sql = "SELECT 1";
  CorpusExample none = e;
  none.prompt = "Question: How many stores are there?\n";
  const auto v = vary_literals({e, none}, 2, 9);
  REQUIRE(v.size() == 2);  // the question without literals gets no copies
  CHECK(v[0].prompt != v[1].prompt);
  for (const auto& c : v) {
    const auto lit = question_literals(c.prompt);
    REQUIRE(lit.size() == 4);
    // Each fresh literal is used in the answer exactly where the old one was, and the old ones are gone from it.
    CHECK(c.answer == "```sql\nSELECT name FROM stores WHERE city IN ('" + lit[0] + "', '" + lit[1] +
                          "') AND (area > " + lit[2] + " OR area > " + lit[3] + ") LIMIT 3\n```");
    CHECK(lit[0] != "New Salem");
    CHECK(lit[0].find(' ') != std::string::npos);  // two words stay two words
    CHECK(std::isupper(static_cast<unsigned char>(lit[1][0])));
    CHECK(lit[2].size() == 4);
    CHECK(lit[2][0] != '0');
    CHECK((lit[3].size() == 4 && lit[3][2] == '.'));
    // Consistent across the prompt: the schema's samples follow; longer numbers and other words are untouched.
    CHECK(c.prompt.find("'" + lit[1] + "', '" + lit[0] + "'") != std::string::npos);
    CHECK(c.prompt.find(lit[2] + ", 19000, 21.55") != std::string::npos);
    CHECK(c.prompt.find("'Newport'") != std::string::npos);
    CHECK(c.prompt.find("top 3 of model B747") != std::string::npos);
    CHECK(c.prompt.find("\"Acme\" in 2022") != std::string::npos);  // the example line is not the question
  }
  CHECK(vary_literals({e}, 2, 9)[1].prompt == v[1].prompt);  // deterministic for the seed
  const auto k = vary_literals({kw}, 1, 9)[0];
  const auto lit = question_literals(k.prompt);
  const auto space = lit[0].find(' ');
  CHECK(k.answer == "[\"" + lit[0] + "\", \"" + lit[0].substr(0, space) + "\", \"" + lit[1] + "\", \"stores\", \"" +
                        lit[2] + "\"]");
  CHECK(vary_literals({e}, 1, 10)[0].prompt != v[0].prompt);
}
