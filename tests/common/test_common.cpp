#include <catch2/catch.hpp>

#include <cmath>
#include <sstream>

#include "common/json.hpp"
#include "common/log.hpp"
#include "common/rng.hpp"
#include "common/stats.hpp"
#include "common/status.hpp"
#include "common/trace.hpp"

using namespace t2s;

TEST_CASE("Rng is deterministic per seed and differs across seeds", "[common]") {
  Rng a(42), b(42), c(43);
  for (int i = 0; i < 100; ++i) {
    uint64_t x = a.next_u64();
    REQUIRE(x == b.next_u64());
    (void)c;
  }
  Rng d(42), e(43);
  int same = 0;
  for (int i = 0; i < 100; ++i) same += d.next_u64() == e.next_u64();
  REQUIRE(same == 0);
}

TEST_CASE("Rng distributions have the right moments", "[common]") {
  Rng r(7);
  const int n = 200000;
  std::vector<double> exp_s, gam_s, norm_s;
  for (int i = 0; i < n; ++i) {
    exp_s.push_back(r.exponential(2.0));
    gam_s.push_back(r.gamma(0.25, 4.0));  // mean 1, CV 2
    norm_s.push_back(r.normal(3.0, 2.0));
  }
  CHECK(mean(exp_s) == Approx(0.5).epsilon(0.02));
  CHECK(mean(gam_s) == Approx(1.0).epsilon(0.03));
  CHECK(stddev(gam_s) / mean(gam_s) == Approx(2.0).epsilon(0.05));
  CHECK(mean(norm_s) == Approx(3.0).epsilon(0.01));
  CHECK(stddev(norm_s) == Approx(2.0).epsilon(0.01));
  for (int i = 0; i < 1000; ++i) {
    auto k = r.uniform_int(-3, 5);
    REQUIRE(k >= -3);
    REQUIRE(k <= 5);
  }
}

TEST_CASE("quantile interpolates between order statistics", "[common]") {
  std::vector<double> v{5, 1, 4, 2, 3};
  CHECK(quantile(v, 0.0) == 1);
  CHECK(quantile(v, 0.5) == 3);
  CHECK(quantile(v, 1.0) == 5);
  CHECK(quantile(v, 0.25) == 2);
  CHECK(quantile({1, 2}, 0.5) == Approx(1.5));
  CHECK(std::isnan(quantile({}, 0.5)));
}

TEST_CASE("json errors name the source and the field", "[common]") {
  try {
    json::parse("{\"a\": 1,, }", "questions.json");
    FAIL("no throw");
  } catch (const InputError& e) {
    std::string m = e.what();
    CHECK(m.find("questions.json") != std::string::npos);
    CHECK(m.find("offset") != std::string::npos);
  }
  auto doc = json::parse("{\"a\": 1, \"s\": \"x\"}", "t");
  CHECK(json::get_int(doc, "a", "t") == 1);
  CHECK(json::get_string(doc, "s", "t") == "x");
  CHECK_THROWS_WITH(json::get_string(doc, "zz", "entry 3"), Catch::Contains("entry 3") && Catch::Contains("zz"));
  CHECK_THROWS_WITH(json::get_string(doc, "a", "entry 3"), Catch::Contains("must be a string"));
}

TEST_CASE("Expected holds a value or an error", "[common]") {
  Expected<int> ok(3);
  REQUIRE(ok.ok());
  CHECK(*ok == 3);
  Expected<int> bad(Status::error("boom"));
  REQUIRE_FALSE(bad.ok());
  CHECK(bad.error().message() == "boom");
  CHECK_THROWS_WITH(bad.value(), "boom");
}

TEST_CASE("trace writer emits valid chrome trace JSON", "[common]") {
  TraceWriter t;
  t.process_name(1, "a100-0");
  t.thread_name(1, 2, "slot 2");
  t.complete(1, 2, "candidate_generation", "llm", 1.5, 0.25, {{"workflow", 7}, {"stage", "candidates"}});
  t.instant(1, 2, "deadline", "deadline", 3.0);
  t.counter(1, "queue", 2.0, "depth", 4);
  auto doc = json::parse(t.to_json(), "trace");
  const auto& ev = doc["traceEvents"];
  REQUIRE(ev.IsArray());
  REQUIRE(ev.Size() == 5);
  bool found = false;
  for (const auto& e : ev.GetArray()) {
    if (std::string(e["ph"].GetString()) == "X") {
      found = true;
      CHECK(e["ts"].GetDouble() == Approx(1.5e6));
      CHECK(e["dur"].GetDouble() == Approx(0.25e6));
      CHECK(e["args"]["workflow"].GetDouble() == 7);
    }
  }
  CHECK(found);
}

TEST_CASE("logger is quiet below its level and writes logfmt", "[common]") {
  std::ostringstream out;
  Logger log(LogLevel::warn, &out);
  log.info("hidden", {{"k", 1}});
  CHECK(out.str().empty());
  log.warn("slow call", {{"instance", "a100-0"}, {"ms", 12.5}});
  CHECK(out.str().find("event=\"slow call\"") != std::string::npos);
  CHECK(out.str().find("instance=a100-0") != std::string::npos);
  CHECK_THROWS_AS(parse_log_level("loud"), InputError);
}
