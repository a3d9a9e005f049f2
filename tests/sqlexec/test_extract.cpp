#include <catch2/catch.hpp>

#include "sqlexec/extract.hpp"

using t2s::sqlexec::extract_sql;

TEST_CASE("extract_sql finds the query in typical model output", "[sqlexec]") {
  struct Case {
    const char* what;
    std::string text;
    std::string sql;
  };
  std::vector<Case> cases = {
      {"bare", "SELECT name FROM singer", "SELECT name FROM singer"},
      {"semicolon and spaces", "  SELECT name FROM singer ;  \n", "SELECT name FROM singer"},
      {"sql fence", "```sql\nSELECT a FROM t;\n```", "SELECT a FROM t"},
      {"fence with prose around", "Here is the query:\n```\nSELECT a\nFROM t\n```\nThis returns a.", "SELECT a\nFROM t"},
      {"upper-case fence tag", "```SQL\nselect a from t\n```", "select a from t"},
      {"inline fence", "Answer: ```SELECT 1```", "SELECT 1"},
      {"unterminated fence", "```sql\nSELECT a FROM t WHERE b = 1", "SELECT a FROM t WHERE b = 1"},
      {"sql fence after another language", "```python\nprint('select * from x')\n```\n```sql\nSELECT 1\n```",
       "SELECT 1"},
      {"SQL: prefix", "SQL: SELECT name FROM singer WHERE age > 20; -- done", "SELECT name FROM singer WHERE age > 20"},
      {"lower-case sql: prefix", "We select the names.\nsql: select name from singer", "select name from singer"},
      {"trailing prose after blank line", "SELECT name FROM singer\n\nThis query lists the names.",
       "SELECT name FROM singer"},
      {"trailing prose on the next line", "SELECT name\nFROM singer\nThe query lists the names.",
       "SELECT name\nFROM singer"},
      {"trailing label line", "SELECT name FROM singer\nExplanation: names.", "SELECT name FROM singer"},
      {"several statements", "DROP TABLE x; SELECT 1; SELECT 2", "SELECT 1"},
      {"semicolon inside a string", "SELECT 'a;b' FROM t; SELECT 2", "SELECT 'a;b' FROM t"},
      {"semicolon inside a comment", "SELECT a -- x;y\nFROM t;", "SELECT a -- x;y\nFROM t"},
      {"WITH statement", "```sql\nWITH x AS (SELECT 1 AS a) SELECT a FROM x;\n```", "WITH x AS (SELECT 1 AS a) SELECT a FROM x"},
      {"WITH RECURSIVE", "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c WHERE n<3) SELECT n FROM c",
       "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n+1 FROM c WHERE n<3) SELECT n FROM c"},
      {"prose 'with' is not a CTE", "With the singer table we get:\nSELECT name FROM singer", "SELECT name FROM singer"},
      {"after a colon in prose", "The answer is: SELECT count(*) FROM singer", "SELECT count(*) FROM singer"},
      {"multi-line IN list keeps going", "SELECT a FROM t\nWHERE b\nIN (1, 2)", "SELECT a FROM t\nWHERE b\nIN (1, 2)"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    auto sql = extract_sql(c.text);
    REQUIRE(sql);
    CHECK(*sql == c.sql);
  }
}

TEST_CASE("extract_sql returns nothing when there is no query", "[sqlexec]") {
  CHECK_FALSE(extract_sql(""));
  CHECK_FALSE(extract_sql("I don't know how to answer this."));
  CHECK_FALSE(extract_sql("We should select the tallest singer."));
  CHECK_FALSE(extract_sql("```\n```"));
  CHECK_FALSE(extract_sql("DELETE FROM singer;"));
}
