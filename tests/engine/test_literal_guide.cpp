// Literal-constrained decoding: the guide's lexer against hand-written answers, guided sampling against a plain
// argmax, and the bundled model decoding under rules (its literals obey them; an answer that already obeys them is
// left exactly as it was).
#include <catch2/catch.hpp>

#include <filesystem>
#include <limits>
#include <regex>

#include "engine/batch_runner.hpp"
#include "engine/generate.hpp"
#include "engine/literal_guide.hpp"

using namespace t2s::engine;

namespace {

SqlLiteralGuide guide_of(const t2s::SqlLiteralRules& r) { return SqlLiteralGuide(std::make_shared<const LiteralTries>(r)); }

SqlLiteralGuide guide_for(std::vector<std::string> strings, std::vector<std::string> numbers) {
  return guide_of({.strings = std::move(strings), .numbers = std::move(numbers)});
}

// True when the guide accepts `text` fed in one piece and also fed byte by byte.
bool accepts_all(SqlLiteralGuide g, const std::string& text) {
  bool whole = g.accepts(text);
  for (char c : text) {
    if (!g.accepts(std::string(1, c))) return false;
    g.advance(std::string(1, c));
  }
  return whole;
}

const std::string kOpen = "Let me think.\n```sql\n";

}  // namespace

TEST_CASE("literal guide: only SQL inside a code block is constrained", "[engine][literal]") {
  auto g = guide_for({"Newport"}, {"73", "1"});
  CHECK(accepts_all(g, "Prose with 'quotes' and 125 numbers, and ``` inline."));
  CHECK_FALSE(g.constraining());
  CHECK(accepts_all(g, kOpen + "SELECT count(*) FROM t WHERE city = 'Newport' AND n > 73\n```\nAnything 'goes' 999"));
  CHECK_FALSE(accepts_all(g, kOpen + "SELECT 1 FROM t WHERE n > 125"));
  auto open = g;
  open.advance(kOpen);
  CHECK(open.constraining());
}

TEST_CASE("literal guide: string literals stay prefixes of an allowed value and close only when whole",
          "[engine][literal]") {
  auto g = guide_for({"Newport", "New York", "O'Brien", "2020%"}, {});
  g.advance(kOpen + "SELECT * FROM t WHERE city = ");
  CHECK(g.accepts("'New"));
  CHECK(g.accepts("'New Y"));
  CHECK(g.accepts("'Newport'"));
  CHECK(g.accepts("'Newport' AND"));
  CHECK_FALSE(g.accepts("'New'"));       // a prefix may not close
  CHECK_FALSE(g.accepts("'Newpork"));    // nor leave the allowed values
  CHECK_FALSE(g.accepts("'Riverton'"));
  CHECK(g.accepts("'O''Brien'"));        // SQL's escaped quote spells the value's apostrophe
  CHECK_FALSE(g.accepts("'O'Brien'"));   // the first quote closes 'O', which is not whole
  CHECK(g.accepts("'2020%'"));
  CHECK(g.accepts("\"anything\""));       // double quotes name identifiers: not a literal
  CHECK(g.can_end());
  auto inside = g;
  inside.advance("'New");
  CHECK_FALSE(inside.can_end());  // a literal that is not whole cannot end the answer
}

TEST_CASE("literal guide: LIKE patterns and LIMIT numbers only right after their keyword", "[engine][literal]") {
  auto g = guide_of({.strings = {"Newport"}, .like_patterns = {"%Newport%"}, .numbers = {"73"}, .limit_numbers = {"1"}});
  g.advance(kOpen + "SELECT name FROM t WHERE ");
  CHECK(g.accepts("city LIKE '%Newport%'"));
  CHECK(g.accepts("city like\n  '%Newport%'"));
  CHECK(g.accepts("city LIKE 'Newport'"));
  CHECK_FALSE(g.accepts("city = '%Newport%'"));
  CHECK_FALSE(g.accepts("city LIKED '%Newport%'"));
  CHECK(g.accepts("n > 73 ORDER BY n LIMIT 1"));
  CHECK(g.accepts("n > 73 LIMIT 73 OFFSET 1"));
  CHECK_FALSE(g.accepts("n > 1"));
  CHECK_FALSE(g.accepts("n > 73 LIMIT (1)"));  // only right after the keyword
}

TEST_CASE("literal guide: named values come first and in order; then they and other strings may repeat",
          "[engine][literal]") {
  auto g = guide_of({.named_values = {"history", "novel"}, .strings = {"2020"}, .formats = {"%Y"}});
  g.advance(kOpen + "SELECT count(*) FROM books WHERE genre = ");
  CHECK_FALSE(g.accepts("'novel'"));  // not before "history"
  CHECK_FALSE(g.accepts("'n"));       // not even begun
  CHECK_FALSE(g.accepts("'2020'"));  // nor another string before the named values
  g.advance("'history' OR genre = ");
  CHECK_FALSE(g.accepts("'history'"));  // no repeat while "novel" is unwritten
  CHECK(g.accepts("'novel'"));
  g.advance("'novel' OR x = ");
  CHECK(g.accepts("'history' OR y = 'novel' OR z = '2020'"));  // both written: repeats are fine now
  // strftime's format is its own set, allowed only there.
  CHECK(g.accepts("strftime('%Y', d) = '2020'"));
  CHECK(g.accepts("STRFTIME ( '%Y' , d)"));
  CHECK_FALSE(g.accepts("'%Y'"));
  CHECK_FALSE(g.accepts("strftime('2020', d)"));
}

TEST_CASE("literal guide: numbers must be whole allowed numbers; identifiers with digits are not numbers",
          "[engine][literal]") {
  auto g = guide_for({}, {"73", "1", "3.5"});
  g.advance(kOpen + "SELECT T1.name FROM t AS T1 WHERE T1.col2 > ");
  CHECK(g.accepts("73"));
  CHECK(g.accepts("7"));  // may still become 73
  CHECK(g.accepts("73 LIMIT 1"));
  CHECK(g.accepts("3.5)"));
  CHECK_FALSE(g.accepts("7 "));  // 7 alone is not allowed
  CHECK_FALSE(g.accepts("125"));
  CHECK_FALSE(g.accepts("730"));
  CHECK_FALSE(g.accepts("73x"));
  CHECK_FALSE(g.accepts("10"));
  CHECK(g.accepts("T2 JOIN t3 ON x1 = y1"));
  auto seven = g;
  seven.advance("7");
  CHECK_FALSE(seven.can_end());  // the answer cannot end on a number that is not whole
}

TEST_CASE("literal guide: every set has its own trie (nothing of one set is allowed in another)", "[engine][literal]") {
  auto g = guide_of({.named_values = {"B777"},
                     .strings = {"x"},
                     .like_patterns = {"x%"},
                     .formats = {"%Y"},
                     .numbers = {"77"},
                     .limit_numbers = {"1"}});
  g.advance(kOpen + "SELECT a FROM t WHERE ");
  for (const char* refused : {"m = 'B77'", "m = 'B7771'", "m = '77'", "m = 'x%'", "m = '%Y'", "n = 1", "n = 7 ",
                              "m LIKE '77'", "LIMIT 7 ", "strftime('x', d)"})
    CHECK_FALSE(g.accepts(refused));
  for (const char* accepted : {"m = 'B777'", "m = 'B777' AND k = 'x'", "n = 77", "m LIKE 'x%'", "m LIKE 'B777'", "LIMIT 1",
                               "LIMIT 77", "strftime('%Y', d)"})
    CHECK(g.accepts(accepted));
}

TEST_CASE("literal guide: ordering operators point only the ways the rules allow", "[engine][literal]") {
  auto less = guide_of({.numbers = {"5"}, .comparisons = {"<"}});
  less.advance(kOpen + "SELECT a FROM t WHERE ");
  for (const char* accepted : {"n < 5", "n<5", "n <5 AND m <> 5 AND k != 5", "n = 5"})
    CHECK(accepts_all(less, accepted));
  for (const char* refused : {"n > 5", "n >= 5", "n <= 5", "n>5", "(SELECT 1) > n"})
    CHECK_FALSE(accepts_all(less, refused));
  auto or_equal = guide_of({.numbers = {"5"}, .comparisons = {">="}});
  or_equal.advance(kOpen + "SELECT a FROM t WHERE ");
  CHECK(or_equal.accepts("n >= 5"));
  CHECK(or_equal.accepts("n >"));  // may still become >=
  CHECK_FALSE(or_equal.accepts("n > 5"));
  CHECK_FALSE(or_equal.accepts("n <"));  // neither < nor <= allowed: <> cannot be entered either
  CHECK(or_equal.accepts("n != 5"));
  auto any = guide_of({.numbers = {"5"}});  // no comparisons stated: every operator
  any.advance(kOpen + "SELECT a FROM t WHERE ");
  for (const char* op : {"n < 5", "n <= 5", "n > 5", "n >= 5", "n <> 5"}) CHECK(accepts_all(any, op));
  // Outside the code block and inside literals the operators are text.
  CHECK(guide_of({.strings = {"a>b"}, .comparisons = {"<"}}).accepts("x > y\n```sql\nSELECT 'a>b'"));
}

TEST_CASE("literal guide: with the schema, names after FROM are tables, columns in scope, keywords or aliases",
          "[engine][literal]") {
  const t2s::SqlLiteralRules schema{
      .numbers = {"3"},
      .tables = {{"sections", {"id", "semester", "year", "instructor_id"}}, {"Instructors", {"id", "name", "rank"}}}};
  auto open = guide_of(schema);
  open.advance(kOpen);
  for (const char* accepted :
       {"SELECT count(*) FROM sections WHERE semester IS NULL AND year > 3",
        "select T2.name from Sections as T1 join instructors T2 on T1.instructor_id = T2.id where T2.rank = T1.year",
        "SELECT name FROM instructors WHERE id NOT IN (SELECT instructor_id FROM sections)",
        "SELECT year, count(*) AS n FROM sections GROUP BY year ORDER BY n DESC LIMIT 3",
        "SELECT max(year) - min(year) span FROM sections ORDER BY span",  // an alias without AS
        "SELECT t.c FROM (SELECT count(*) AS c FROM sections GROUP BY year) t WHERE t.c > 3",
        "SELECT T9.anything, whatever FROM sections",  // a select list is not checked (its FROM comes later)
        "SELECT \"odd name\" FROM sections WHERE [odd name] IS NULL",
        "-- the instructors' ranks\nSELECT rank FROM instructors",
        "WITH x AS (SELECT year FROM sections) SELECT year FROM x"}) {
    INFO(accepted);
    CHECK(accepts_all(open, accepted));
  }
  for (const char* refused :
       {"SELECT count(*) FROM section ",                      // no such table
        "SELECT count(*) FROM sections WHERE rank = 3",       // a column of a table not in scope (RANK( is a function)
        "SELECT count(*) FROM sections WHERE hire",           // no such name at all
        "SELECT count(*) FROM sections AS T1 WHERE T1.name",  // not a column of T1's table
        "SELECT count(*) FROM sections AS T1 WHERE T3.id",    // no such alias
        "SELECT count(*) FROM sections WHERE max = 3"}) {     // a function without its '('
    INFO(refused);
    CHECK_FALSE(accepts_all(open, refused));
  }
  auto partial = open;
  partial.advance("SELECT count(*) FROM sectio");
  CHECK_FALSE(partial.can_end());  // not a whole table name yet
  CHECK_FALSE(partial.accepts("\n```"));
  auto function = open;
  function.advance("SELECT count(*) FROM sections WHERE rank");
  CHECK(function.accepts("("));
  CHECK_FALSE(function.can_end());  // RANK is a function here, not a column: '(' must follow
  function.advance(" ");
  CHECK_FALSE(function.can_end());
  CHECK(function.accepts("(id)"));
  CHECK_FALSE(function.accepts(" "));  // one space at most: no wandering off in whitespace
  CHECK_FALSE(function.accepts("\n"));
  // Without a schema names are free.
  auto free = guide_for({}, {"3"});
  free.advance(kOpen);
  CHECK(free.accepts("SELECT x FROM nowhere WHERE T7.y = 3"));
}

TEST_CASE("literal guide: a count (aggregate) question's first select item starts with the function asked for",
          "[engine][literal]") {
  auto count = guide_of({.first_item = {"COUNT", "SUM", "CAST"}});
  count.advance(kOpen);
  for (const char* accepted :
       {"SELECT count(*) FROM t WHERE a IN (SELECT b FROM u)", "select DISTINCT Count (x) from t",
        "SELECT CAST(sum(x) AS REAL) / count(*) FROM t", "SELECT sum(a), b FROM t"})
    CHECK(accepts_all(count, accepted));
  for (const char* refused : {"SELECT name FROM t", "SELECT T2.title", "SELECT Total(x)", "SELECT *", "SELECT counter",
                              "SELECT count FROM t"})
    CHECK_FALSE(accepts_all(count, refused));
  auto pending = count;
  pending.advance("SELECT ");
  CHECK_FALSE(pending.can_end());
  CHECK(pending.accepts("\n  count(*)"));
  CHECK_FALSE(pending.accepts("\n   "));  // no wandering off in whitespace: the function comes within 4 bytes
  auto minimum = guide_of({.first_item = {"min"}});  // "Compute the minimum …"
  minimum.advance(kOpen);
  CHECK(accepts_all(minimum, "SELECT min(founded) FROM airlines"));
  CHECK_FALSE(accepts_all(minimum, "SELECT max(founded) FROM airlines"));
  CHECK_FALSE(accepts_all(minimum, "SELECT name FROM airlines ORDER BY founded LIMIT 1"));
  auto plain = guide_of({});
  plain.advance(kOpen);
  CHECK(plain.accepts("SELECT name FROM t"));
}

TEST_CASE("literal guide: a wrong token switches the guide off instead of wedging it", "[engine][literal]") {
  auto g = guide_for({"a"}, {"1"});
  g.advance(kOpen + "SELECT 99");  // refused bytes fed anyway
  CHECK_FALSE(g.constraining());
  CHECK(g.accepts("'zzz' 12345"));
}

TEST_CASE("guided sampling picks the best accepted token, and the plain argmax when nothing is accepted",
          "[engine][literal]") {
  // Vocabulary: 0 = stop token, 1 = "'Riverton'", 2 = "'Newport'", 3 = "12", 4 = " ".
  const std::vector<std::string> bytes{"", "'Riverton'", "'Newport'", "12", " "};
  const std::vector<char> stop{1, 0, 0, 0, 0};
  std::vector<int> scratch;
  SamplingParams greedy;
  {
    auto g = guide_for({"Newport"}, {"1"});
    g.advance(kOpen + "SELECT x FROM t WHERE c =");
    std::vector<float> logits{0.0f, 5.0f, 4.0f, 3.0f, 1.0f};
    CHECK(sample_guided(logits.data(), 5, greedy, 0.0, g, bytes, stop, scratch) == 2);
    CHECK(logits[1] == -std::numeric_limits<float>::infinity());
    CHECK(g.constraining());
  }
  {
    SamplingParams hot;
    hot.temperature = 1.0f;
    auto g = guide_for({"Newport"}, {"1"});
    g.advance(kOpen + "SELECT x FROM t WHERE c =");
    for (double u : {0.0, 0.3, 0.6, 0.99}) {
      std::vector<float> logits{0.0f, 5.0f, 4.0f, 3.0f, 1.0f};
      int t = sample_guided(logits.data(), 5, hot, u, g, bytes, stop, scratch);
      CHECK((t == 0 || t == 2 || t == 4));  // never a refused literal
    }
  }
  {
    // The favourite opens a number that is refused: the pick is the best accepted token that opens a number too,
    // not the better-scored word.
    const std::vector<std::string> vocab{"", " 125", "name", " 73", " ", "7"};
    const std::vector<char> stops{1, 0, 0, 0, 0, 0};
    auto g = guide_for({}, {"73"});
    g.advance(kOpen + "SELECT x FROM t WHERE n >");
    std::vector<float> logits{0.0f, 6.0f, 5.0f, 1.0f, 0.5f, 2.0f};
    CHECK(sample_guided(logits.data(), 6, greedy, 0.0, g, vocab, stops, scratch) == 5);
    std::vector<float> spaced{0.0f, 6.0f, 5.0f, 1.0f, 3.0f, -1.0f};  // a space-only token stays allowed
    CHECK(sample_guided(spaced.data(), 6, greedy, 0.0, g, vocab, stops, scratch) == 4);
    std::vector<float> wordy{0.0f, 1.0f, 5.0f, 0.5f, 0.2f, -1.0f};  // the favourite is a word: no intent
    CHECK(sample_guided(wordy.data(), 6, greedy, 0.0, g, vocab, stops, scratch) == 2);
  }
  {
    // The favourite writes the comparison the wrong way round: the pick is the best accepted operator.
    const std::vector<std::string> vocab{"", " >", " name", " <", " = 3"};
    const std::vector<char> stops{1, 0, 0, 0, 0};
    auto g = guide_of({.numbers = {"3"}, .comparisons = {"<"}});
    g.advance(kOpen + "SELECT x FROM t WHERE n");
    std::vector<float> logits{0.0f, 6.0f, 5.0f, 1.0f, 4.0f};
    CHECK(sample_guided(logits.data(), 5, greedy, 0.0, g, vocab, stops, scratch) == 3);
  }
  {
    auto g = guide_for({}, {});  // nothing but the stop token is accepted inside a string
    g.advance(kOpen + "SELECT x FROM t WHERE c = 'ab");
    std::vector<float> logits{0.0f, 5.0f, 4.0f, 3.0f, 1.0f};
    CHECK(sample_guided(logits.data(), 5, greedy, 0.0, g, bytes, stop, scratch) == 1);
    CHECK_FALSE(g.constraining());
  }
}

TEST_CASE("literal guide on the bundled model: guided literals obey the rules, compliant answers are unchanged",
          "[engine][literal]") {
  const std::string path = std::string(T2S_SOURCE_DIR) + "/models/t2s-sql.gguf";
  if (!std::filesystem::exists(path)) {
    WARN("no bundled model at " << path);
    return;
  }
  LoadedModel lm = load_model_and_tokenizer(path, "");
  CpuBackendOptions o;
  o.max_batch_tokens = 512;
  auto backend = make_cpu_backend(lm.model, o);
  auto run = [&](const std::string& prompt, std::shared_ptr<const t2s::SqlLiteralRules> rules) {
    BatchRunner runner(*backend, *lm.tokenizer, RunnerOptions{512, 4, false});
    GenerationParams gp;
    gp.max_tokens = 120;
    gp.literals = std::move(rules);
    auto id = runner.admit(lm.tokenizer->encode(prompt, true), gp).value();
    run_to_completion(runner);
    return runner.info(id).text;
  };
  const std::string schema =
      "Database schema:\nCREATE TABLE stores (id INTEGER, name TEXT, region TEXT, floor_area INTEGER);\n"
      "-- stores sample rows: (1, 'Central', 'North', 1500)\n";
  const std::string prompt = "You are a SQLite expert. Write one SQL query that answers the question.\n" + schema +
                             "Question: What is the number of stores with region \"Zenith\" and floor area over "
                             "4321?\nThink it through, then give the final query in a ```sql code block.\n";
  auto literals = [](const std::string& text) {
    std::vector<std::string> out;
    auto sql = text.substr(std::min(text.size(), text.find("```sql")));
    std::regex lit(R"('([^']*)'|(?:^|[^\w.])(\d+(?:\.\d+)?))");
    for (auto it = std::sregex_iterator(sql.begin(), sql.end(), lit); it != std::sregex_iterator(); ++it)
      out.push_back((*it)[1].matched ? "s:" + (*it)[1].str() : "n:" + (*it)[2].str());
    return out;
  };
  const std::string free = run(prompt, nullptr);
  INFO("free answer: " << free);
  const std::string guided = run(prompt, std::make_shared<const t2s::SqlLiteralRules>(t2s::SqlLiteralRules{
                                             .named_values = {"Zenith"}, .numbers = {"4321"}, .limit_numbers = {"1"}}));
  INFO("guided answer: " << guided);
  REQUIRE(guided.find("```sql") != std::string::npos);
  for (const auto& l : literals(guided)) CHECK((l == "s:Zenith" || l == "n:4321" || l == "n:1"));
  // Rules that allow exactly the free answer's own literals leave it as it was.
  t2s::SqlLiteralRules own;
  for (const auto& l : literals(free)) (l[0] == 's' ? own.strings : own.numbers).push_back(l.substr(2));
  CHECK(run(prompt, std::make_shared<const t2s::SqlLiteralRules>(own)) == free);
}
