#include <catch2/catch.hpp>

#include "common/status.hpp"
#include "sqlexec/compare.hpp"
#include "tests/sqlexec/fixture.hpp"
#include "tests/support.hpp"

using namespace t2s::sqlexec;

namespace {

const Value N{};  // NULL
Value I(int64_t v) { return Value{v}; }
Value R(double v) { return Value{v}; }
Value S(const char* v) { return Value{std::string(v)}; }

ResultSet rs(std::vector<std::vector<Value>> rows, size_t ncols = 0) {
  ResultSet r;
  size_t n = rows.empty() ? ncols : rows[0].size();
  for (size_t i = 0; i < n; ++i) r.columns.push_back(std::to_string(i));  // names play no part in matching
  r.rows = std::move(rows);
  return r;
}

}  // namespace

// Expected values follow the official definitions: test-suite-sql-eval `result_eq(gold, pred, order_matters)`
// (bags of rows equal under one permutation of the predicted columns; lists when order matters; both empty →
// equal; Python equality, so 1 == 1.0 and None == None) and BIRD's `set(pred) == set(gold)`.
TEST_CASE("comparators agree with the official rules on hand-made pairs", "[sqlexec]") {
  struct Pair {
    const char* what;
    ResultSet pred, gold;
    bool order_matters;
    bool spider, bird;
  };
  std::vector<Pair> pairs = {
      {"same rows, other order", rs({{I(1)}, {I(2)}}), rs({{I(2)}, {I(1)}}), false, true, true},
      {"other order when order matters", rs({{I(1)}, {I(2)}}), rs({{I(2)}, {I(1)}}), true, false, true},
      {"same order when order matters", rs({{I(1)}, {I(2)}}), rs({{I(1)}, {I(2)}}), true, true, true},
      {"duplicate counts differ", rs({{I(1)}, {I(1)}, {I(2)}}), rs({{I(1)}, {I(2)}, {I(2)}}), false, false, true},
      {"extra duplicate row", rs({{I(1)}, {I(2)}}), rs({{I(1)}, {I(1)}, {I(2)}}), false, false, true},
      {"same duplicates", rs({{I(1)}, {I(2)}, {I(1)}}), rs({{I(1)}, {I(1)}, {I(2)}}), false, true, true},
      {"columns swapped", rs({{S("a"), I(1)}, {S("b"), I(2)}}), rs({{I(1), S("a")}, {I(2), S("b")}}), false, true,
       false},
      {"columns swapped, ordered", rs({{S("a"), I(1)}, {S("b"), I(2)}}), rs({{I(1), S("a")}, {I(2), S("b")}}), true,
       true, false},
      {"columns swapped, rows reversed, ordered", rs({{S("b"), I(2)}, {S("a"), I(1)}}),
       rs({{I(1), S("a")}, {I(2), S("b")}}), true, false, false},
      {"no single column permutation fits every row", rs({{I(1), I(2)}, {I(3), I(4)}}),
       rs({{I(2), I(1)}, {I(3), I(4)}}), false, false, false},
      {"same column values, other pairing", rs({{I(1), I(1)}, {I(2), I(2)}}), rs({{I(1), I(2)}, {I(2), I(1)}}), false,
       false, false},
      {"three columns rotated", rs({{I(3), I(1), I(2)}, {I(6), I(4), I(5)}}), rs({{I(1), I(2), I(3)}, {I(4), I(5), I(6)}}),
       false, true, false},
      {"NULL equals NULL", rs({{N}}), rs({{N}}), false, true, true},
      {"NULL is not 0", rs({{N}}), rs({{I(0)}}), false, false, false},
      {"NULL is not ''", rs({{N}}), rs({{S("")}}), false, false, false},
      {"integer equals real of equal value", rs({{R(1.0)}, {I(2)}}), rs({{I(1)}, {R(2.0)}}), false, true, true},
      {"integer is not a different real", rs({{R(1.5)}}), rs({{I(1)}}), false, false, false},
      {"2^53+1 is not the double 2^53", rs({{I(9007199254740993)}}), rs({{R(9007199254740992.0)}}), false, false,
       false},
      {"text '1' is not integer 1", rs({{S("1")}}), rs({{I(1)}}), false, false, false},
      {"blob is not text", rs({{Value{Blob{"ab"}}}}), rs({{S("ab")}}), false, false, false},
      {"text compares case-sensitively", rs({{S("France")}}), rs({{S("france")}}), false, false, false},
      {"both empty, different widths", rs({}, 2), rs({}, 1), false, true, true},
      {"one empty", rs({}, 1), rs({{I(1)}}), false, false, false},
      {"different widths", rs({{I(1), I(2)}}), rs({{I(1)}}), false, false, false},
      {"duplicate gold columns", rs({{I(1), I(1), I(7)}, {I(2), I(2), I(8)}}),
       rs({{I(7), I(1), I(1)}, {I(8), I(2), I(2)}}), false, true, false},
      {"NULLs in permuted columns", rs({{N, I(1)}, {I(2), N}}), rs({{I(1), N}, {N, I(2)}}), false, true, false},
  };
  for (const auto& p : pairs) {
    INFO(p.what);
    CHECK(spider_match(p.pred, p.gold, p.order_matters) == p.spider);
    CHECK(bird_match(p.pred, p.gold) == p.bird);
  }
}

TEST_CASE("spider_match finds the one column permutation among many", "[sqlexec]") {
  // Eight columns of 0/1 values with equal counts: column multisets cannot tell them apart, only rows can.
  std::vector<std::vector<Value>> gold, pred;
  const std::vector<size_t> perm = {3, 0, 7, 5, 1, 6, 2, 4};
  for (int r = 0; r < 16; ++r) {
    std::vector<Value> g;
    for (int c = 0; c < 8; ++c) g.push_back(I(((r * 37 + c * 11) >> (c % 3)) & 1));
    std::vector<Value> p(8);
    for (size_t c = 0; c < 8; ++c) p[perm[c]] = g[c];
    gold.push_back(g);
    pred.push_back(p);
  }
  CHECK(spider_match(rs(pred), rs(gold), false));
  CHECK(spider_match(rs(pred), rs(gold), true));
  pred[3][0] = I(std::get<int64_t>(pred[3][0]) ^ 1);
  CHECK_FALSE(spider_match(rs(pred), rs(gold), false));
}

TEST_CASE("compare_values is a total order consistent with Python equality", "[sqlexec]") {
  CHECK(compare_values(N, I(-5)) < 0);
  CHECK(compare_values(I(1), R(1.0)) == 0);
  CHECK(compare_values(R(0.5), I(1)) < 0);
  CHECK(compare_values(I(-1), R(-1.5)) > 0);
  CHECK(compare_values(R(-0.0), I(0)) == 0);
  CHECK(compare_values(I(INT64_MAX), R(9223372036854775808.0)) < 0);
  CHECK(compare_values(I(INT64_MIN), R(-9223372036854775808.0)) == 0);
  CHECK(compare_values(I(999), S("1")) < 0);
  CHECK(compare_values(S("b"), Value{Blob{"a"}}) < 0);
}

TEST_CASE("spider order rule and query normalisation follow the official evaluator", "[sqlexec]") {
  CHECK(spider_order_matters("SELECT a FROM t ORDER BY a"));
  CHECK(spider_order_matters("select a from t order by a desc limit 1"));
  CHECK_FALSE(spider_order_matters("SELECT a FROM t GROUP BY a"));
  CHECK(spider_normalize_sql("SELECT DISTINCT a FROM t WHERE b > = 1 AND c ! = 'DISTINCT'") ==
        "SELECT  a FROM t WHERE b >= 1 AND c != 'DISTINCT'");
  CHECK(spider_normalize_sql("SELECT count(distinct a) FROM t", true) == "SELECT count(distinct a) FROM t");
  CHECK(spider_normalize_sql("SELECT count(distinct a) FROM t") == "SELECT count( a) FROM t");
  CHECK(spider_normalize_sql("SELECT distinctive FROM t") == "SELECT distinctive FROM t");
  CHECK(spider_normalize_sql("SELECT YEAR(CURDATE()) - age FROM t") == "SELECT 2020- age FROM t");
  CHECK(parse_metric("bird") == Metric::bird);
  CHECK_THROWS_AS(parse_metric("exact"), t2s::InputError);
}

TEST_CASE("execution_match runs both queries and reports errors by class", "[sqlexec]") {
  t2s::test::TempDir dir("sqlexec");
  std::string path = dir.file("c.sqlite");
  t2s::test::build_concert_db(path);
  uint64_t before = t2s::test::file_hash(path);
  auto db = Database::open(path);
  auto m = execution_match(*db, "SELECT age, name FROM singer", "SELECT name, age FROM singer", Metric::spider);
  CHECK(m.match);
  CHECK_FALSE(m.pred_error);
  CHECK_FALSE(m.gold_error);
  CHECK_FALSE(execution_match(*db, "SELECT age, name FROM singer", "SELECT name, age FROM singer", Metric::bird).match);
  // DISTINCT is dropped by default, as the official evaluator does.
  CHECK(execution_match(*db, "SELECT DISTINCT country FROM singer", "SELECT country FROM singer", Metric::spider).match);
  CHECK_FALSE(execution_match(*db, "SELECT DISTINCT country FROM singer", "SELECT country FROM singer",
                              Metric::spider, true)
                  .match);
  CHECK(execution_match(*db, "SELECT DISTINCT country FROM singer", "SELECT country FROM singer", Metric::bird).match);
  // ORDER BY in the gold makes row order matter.
  CHECK_FALSE(execution_match(*db, "SELECT name FROM singer ORDER BY age DESC", "SELECT name FROM singer ORDER BY age",
                              Metric::spider)
                  .match);
  CHECK(execution_match(*db, "SELECT name FROM singer ORDER BY age DESC", "SELECT name FROM singer", Metric::spider)
            .match);
  auto bad = execution_match(*db, "SELECT nme FROM singer", "SELECT name FROM singer", Metric::spider);
  CHECK_FALSE(bad.match);
  REQUIRE(bad.pred_error);
  CHECK(*bad.pred_error == "no_such_column: no such column: nme");
  auto bad_gold = execution_match(*db, "SELECT name FROM singer", "DELETE FROM singer", Metric::bird);
  CHECK_FALSE(bad_gold.match);
  REQUIRE(bad_gold.gold_error);
  CHECK_THAT(*bad_gold.gold_error, Catch::StartsWith("forbidden: "));
  CHECK(t2s::test::file_hash(path) == before);
}
