#include <catch2/catch.hpp>

#include <map>

#include "common/json.hpp"
#include "common/status.hpp"
#include "tests/support.hpp"
#include "workloads/hardness.hpp"

using namespace t2s::workloads;

namespace {

// Counts worked out by hand from the official evaluation.py rules (count_component1/2, count_others, eval_hardness).
struct HandCase {
  const char* sql;
  int c1, c2, others;
  Difficulty expected;
};

const HandCase kHand[] = {
    {"SELECT count(*) FROM singer", 0, 0, 0, Difficulty::easy},
    {"SELECT name FROM singer WHERE country = 'France'", 1, 0, 0, Difficulty::easy},
    {"SELECT name, country, age FROM singer ORDER BY age DESC", 1, 0, 1, Difficulty::medium},
    {"SELECT avg(age), min(age), max(age) FROM singer WHERE country = 'France'", 1, 0, 2, Difficulty::medium},
    {"SELECT song_name, song_release_year FROM singer ORDER BY age LIMIT 1", 2, 0, 1, Difficulty::medium},
    {"SELECT name FROM stadium WHERE stadium_id NOT IN (SELECT stadium_id FROM concert)", 1, 1, 0, Difficulty::hard},
    {"SELECT country FROM singer WHERE age > 40 INTERSECT SELECT country FROM singer WHERE age < 30", 1, 1, 0,
     Difficulty::hard},
    {"SELECT T2.name, count(*) FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id "
     "GROUP BY T1.stadium_id",
     2, 0, 1, Difficulty::medium},
    {"SELECT T2.name, T2.capacity FROM concert AS T1 JOIN stadium AS T2 ON T1.stadium_id = T2.stadium_id WHERE "
     "T1.year >= 2014 GROUP BY T2.stadium_id ORDER BY count(*) DESC LIMIT 1",
     5, 0, 1, Difficulty::extra},
    // LIKE and OR count in component 1; HAVING's AND counts as an "aggregation" (a quirk of the official code).
    {"SELECT name FROM t WHERE a LIKE '%x%' OR b = 1", 3, 0, 1, Difficulty::hard},
    {"SELECT a FROM t GROUP BY a HAVING count(*) > 1 AND sum(b) < 5", 1, 0, 0, Difficulty::easy},
    {"SELECT a, count(*) FROM t GROUP BY a HAVING count(*) > 1 AND sum(b) < 5", 1, 0, 2, Difficulty::medium},
    // BETWEEN's AND is part of one condition.
    {"SELECT name FROM t WHERE age BETWEEN 20 AND 30", 1, 0, 0, Difficulty::easy},
    // A subquery in FROM is a table unit, not a nested query.
    {"SELECT count(*) FROM (SELECT a FROM t GROUP BY a)", 0, 0, 0, Difficulty::easy},
    {"SELECT a FROM t WHERE b > (SELECT avg(b) FROM t) AND c IN (SELECT c FROM u)", 1, 2, 1, Difficulty::extra},
    // Not in Spider's grammar: wrapping parentheses are dropped, each CTE counts as a nested query.
    {"(SELECT count(*) FROM singer)", 0, 0, 0, Difficulty::easy},
    {"WITH x(a) AS (SELECT a FROM t), y AS (SELECT 1) SELECT a FROM x WHERE a > 1", 1, 2, 0, Difficulty::extra},
};

}  // namespace

TEST_CASE("text hardness matches hand-computed official counts", "[workloads]") {
  for (const auto& h : kHand) {
    INFO(h.sql);
    auto c = hardness_counts_from_text(h.sql);
    CHECK(c.component1 == h.c1);
    CHECK(c.component2 == h.c2);
    CHECK(c.others == h.others);
    CHECK(hardness_from_counts(c) == h.expected);
  }
}

TEST_CASE("hardness rule thresholds follow eval_hardness", "[workloads]") {
  CHECK(hardness_from_counts({1, 0, 0}) == Difficulty::easy);
  CHECK(hardness_from_counts({1, 0, 2}) == Difficulty::medium);
  CHECK(hardness_from_counts({2, 0, 1}) == Difficulty::medium);
  CHECK(hardness_from_counts({2, 0, 2}) == Difficulty::extra);
  CHECK(hardness_from_counts({2, 0, 3}) == Difficulty::hard);
  CHECK(hardness_from_counts({3, 0, 2}) == Difficulty::hard);
  CHECK(hardness_from_counts({1, 1, 0}) == Difficulty::hard);
  CHECK(hardness_from_counts({4, 0, 0}) == Difficulty::extra);
  CHECK(hardness_from_counts({0, 2, 0}) == Difficulty::extra);
}

TEST_CASE("text hardness rejects what is not a query", "[workloads]") {
  CHECK_THROWS_AS(hardness_counts_from_text("DELETE FROM t"), t2s::InputError);
  CHECK_THROWS_AS(hardness_counts_from_text("SELECT 'abc"), t2s::InputError);
  CHECK_THROWS_AS(hardness_counts_from_text(""), t2s::InputError);
  CHECK_THROWS_AS(hardness_counts_from_text("(SELECT a FROM t"), t2s::InputError);
  CHECK_THROWS_AS(hardness_counts_from_text("WITH x SELECT 1"), t2s::InputError);
}

TEST_CASE("text and parsed hardness agree on Spider dev", "[workloads][shared]") {
  auto doc = t2s::json::parse_file(t2s::test::shared_data("spider/dev.json"));
  REQUIRE(doc.IsArray());
  size_t agree = 0, total = 0, hand_checked = 0;
  std::map<Difficulty, int> mix;
  for (const auto& e : doc.GetArray()) {
    std::string sql = e["query"].GetString();
    Difficulty parsed = hardness_from_counts(hardness_counts_from_parsed(e["sql"]));
    Difficulty text = sql_hardness(sql);
    ++total;
    mix[parsed]++;
    agree += parsed == text;
    if (parsed != text) UNSCOPED_INFO("disagree: " << sql);
    for (const auto& h : kHand)
      if (sql == h.sql) {
        ++hand_checked;
        CHECK(parsed == h.expected);
      }
  }
  double rate = static_cast<double>(agree) / static_cast<double>(total);
  WARN("hardness agreement text vs parsed on Spider dev: " << agree << "/" << total << " = " << rate
                                                           << "; hand-checked found in dev: " << hand_checked
                                                           << "; easy/medium/hard/extra = " << mix[Difficulty::easy]
                                                           << "/" << mix[Difficulty::medium] << "/"
                                                           << mix[Difficulty::hard] << "/" << mix[Difficulty::extra]);
  CHECK(total == 778);
  CHECK(rate >= 0.97);
}
