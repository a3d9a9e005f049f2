#include <catch2/catch.hpp>

#include <algorithm>
#include <random>

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

namespace {

// An independent, brute-force reading of the official rules, for differential testing.
// Python equality on SQLite values: None == None; int and float compare exactly (long double holds both
// an int64 and a double exactly); str with str, bytes with bytes.
bool py_equal(const Value& a, const Value& b) {
  auto num = [](const Value& v, long double& out) {
    if (const auto* i = std::get_if<int64_t>(&v)) out = static_cast<long double>(*i);
    else if (const auto* d = std::get_if<double>(&v)) out = *d;
    else return false;
    return true;
  };
  long double x, y;
  if (num(a, x) && num(b, y)) return x == y;
  if (a.index() != b.index()) return false;
  return a == b;
}

bool rows_py_equal(const std::vector<Value>& a, const std::vector<Value>& b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i)
    if (!py_equal(a[i], b[i])) return false;
  return true;
}

bool bag_equal(const std::vector<std::vector<Value>>& a, const std::vector<std::vector<Value>>& b) {
  if (a.size() != b.size()) return false;
  std::vector<bool> used(b.size(), false);
  for (const auto& r : a) {
    bool found = false;
    for (size_t j = 0; j < b.size() && !found; ++j)
      if (!used[j] && rows_py_equal(r, b[j])) used[j] = found = true;
    if (!found) return false;
  }
  return true;
}

bool set_contains_all(const std::vector<std::vector<Value>>& a, const std::vector<std::vector<Value>>& b) {
  for (const auto& r : a)
    if (std::none_of(b.begin(), b.end(), [&](const auto& s) { return rows_py_equal(r, s); })) return false;
  return true;
}

bool brute_spider(const ResultSet& pred, const ResultSet& gold, bool order_matters) {
  if (pred.rows.empty() && gold.rows.empty()) return true;
  if (pred.rows.size() != gold.rows.size()) return false;
  size_t n = gold.rows[0].size();
  if (pred.rows[0].size() != n) return false;
  std::vector<size_t> perm(n);
  for (size_t i = 0; i < n; ++i) perm[i] = i;
  do {
    std::vector<std::vector<Value>> permuted;
    for (const auto& r : pred.rows) {
      std::vector<Value> p;
      for (size_t i : perm) p.push_back(r[i]);
      permuted.push_back(p);
    }
    bool eq = order_matters ? std::equal(permuted.begin(), permuted.end(), gold.rows.begin(), gold.rows.end(),
                                         rows_py_equal)
                            : bag_equal(permuted, gold.rows);
    if (eq) return true;
  } while (std::next_permutation(perm.begin(), perm.end()));
  return false;
}

}  // namespace

TEST_CASE("comparators agree with a brute-force reading of the rules on random results", "[sqlexec]") {
  std::mt19937 rng(20261128);
  const std::vector<Value> pool = {N, I(0), I(1), R(1.0), I(2), R(2.5), S("a"), S("b"), Value{Blob{"a"}}};
  auto pick = [&](size_t n) { return std::uniform_int_distribution<size_t>(0, n - 1)(rng); };
  int spider_true = 0, bird_true = 0;
  for (int iter = 0; iter < 3000; ++iter) {
    size_t ncols = 1 + pick(4), nrows = pick(5);
    ResultSet gold = rs({}, ncols), pred;
    for (size_t r = 0; r < nrows; ++r) {
      std::vector<Value> row;
      for (size_t c = 0; c < ncols; ++c) row.push_back(pool[pick(4) == 0 ? pick(pool.size()) : pick(3)]);
      gold.rows.push_back(row);
    }
    // The prediction: gold with permuted columns and shuffled rows, then sometimes damaged.
    std::vector<size_t> perm(ncols);
    for (size_t i = 0; i < ncols; ++i) perm[i] = i;
    std::shuffle(perm.begin(), perm.end(), rng);
    for (const auto& r : gold.rows) {
      std::vector<Value> p(ncols);
      for (size_t c = 0; c < ncols; ++c) p[perm[c]] = r[c];
      pred.rows.push_back(p);
    }
    if (pick(2)) std::shuffle(pred.rows.begin(), pred.rows.end(), rng);
    switch (pick(5)) {
      case 0:
        if (!pred.rows.empty()) pred.rows[pick(pred.rows.size())][pick(ncols)] = pool[pick(pool.size())];
        break;
      case 1:
        if (!pred.rows.empty()) pred.rows.push_back(pred.rows[pick(pred.rows.size())]);
        break;
      case 2:
        if (!pred.rows.empty()) pred.rows.pop_back();
        break;
      default: break;
    }
    bool order = pick(3) == 0;
    bool expected_spider = brute_spider(pred, gold, order);
    bool expected_bird = set_contains_all(pred.rows, gold.rows) && set_contains_all(gold.rows, pred.rows);
    INFO("iteration " << iter);
    REQUIRE(spider_match(pred, gold, order) == expected_spider);
    REQUIRE(bird_match(pred, gold) == expected_bird);
    spider_true += expected_spider;
    bird_true += expected_bird;
  }
  // Both outcomes must be well represented for the comparison to mean something.
  CHECK(spider_true > 600);
  CHECK(spider_true < 2400);
  CHECK(bird_true > 300);
}

TEST_CASE("to_json writes the eval-sql contract object", "[sqlexec]") {
  CHECK(to_json(MatchOutcome{true, std::nullopt, std::nullopt}) ==
        R"({"match":true,"pred_error":null,"gold_error":null})");
  CHECK(to_json(MatchOutcome{false, std::string("syntax: near \"x\": syntax error"), std::nullopt}) ==
        R"({"match":false,"pred_error":"syntax: near \"x\": syntax error","gold_error":null})");
}
