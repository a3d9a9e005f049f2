#include <catch2/catch.hpp>

#include <cmath>
#include <iconv.h>
#include <sstream>

#include "common/json.hpp"
#include "common/json_writer.hpp"
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

TEST_CASE("json numbers: a long mantissa or an extreme exponent is refused before RapidJSON; doubles round-trip",
          "[common]") {
  // fuzz_cluster_file's input: RapidJSON's full-precision parser read past diyfp.h's table on it (UBSan); such
  // numbers are refused, naming where, before RapidJSON sees them.
  const std::string digits = "44444402444400444040044.444" + std::string(200, '0') + "5e-440";
  CHECK_THROWS_WITH(json::parse("[" + digits + "]", "f.json"),
                    Catch::Contains("f.json: the number at offset 1 has 227 digits (at most 25 are read)"));
  CHECK_THROWS_WITH(json::parse(R"({"a": "1e-999", "b": 1e-301})", "g.json"),
                    Catch::Contains("g.json: the number at offset 21 has an exponent beyond +-300"));
  CHECK(json::parse(R"({"s": "-12345678901234567890123456789e-999", "n": -1.5e-300})", "ok")["n"].GetDouble() ==
        -1.5e-300);  // digits inside strings are text
  // Numbers t2s writes (json::write_number) read back to the same double or within a few ULP.
  for (double v : {0.1, 1.0 / 3.0, 2.718281828459045, 6.02214076e23, 1e-300, 123456.789, 5.32, 0.942}) {
    rapidjson::StringBuffer b;
    rapidjson::Writer<rapidjson::StringBuffer> w(b);
    json::write_number(w, v);
    auto back = json::parse(std::string("[") + b.GetString() + "]", "round trip");
    CHECK(back[0].GetDouble() == Approx(v).epsilon(1e-15));
  }
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

namespace {
// Whether glibc's iconv (an independent decoder) accepts `s` as UTF-8.
bool iconv_accepts_utf8(const std::string& s) {
  iconv_t cd = iconv_open("UTF-32LE", "UTF-8");
  REQUIRE(cd != reinterpret_cast<iconv_t>(-1));
  std::string in = s;
  std::string out(4 * s.size() + 8, '\0');
  char* ip = in.data();
  char* op = out.data();
  size_t il = in.size(), ol = out.size();
  size_t rc = iconv(cd, &ip, &il, &op, &ol);
  iconv_close(cd);
  return rc != static_cast<size_t>(-1) && il == 0;
}
bool well_formed(const std::string& s) {
  for (size_t i = 0; i < s.size();) {
    size_t n = t2s::utf8_sequence_length(std::string_view(s).substr(i));
    if (n == 0) return false;
    i += n;
  }
  return true;
}
}  // namespace

TEST_CASE("JSON text for clients is well-formed UTF-8: invalid bytes become U+FFFD, valid text is unchanged",
          "[common]") {
  for (const char* ok : {"plain", "caf\xC3\xA9", "\xE2\x82\xAC", "\xF0\x9F\x98\x80", "\xEF\xBF\xBF", "\xF4\x8F\xBF\xBF"})
    CHECK(t2s::valid_utf8(ok) == ok);
  CHECK(t2s::valid_utf8("a\xFF" "b") == "a\xEF\xBF\xBD" "b");
  CHECK(t2s::valid_utf8("\xC0\xAF") == "\xEF\xBF\xBD\xEF\xBF\xBD");          // overlong '/'
  CHECK(t2s::valid_utf8("\xED\xA0\x80") == "\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD");  // surrogate
  CHECK(t2s::valid_utf8("\xF4\x90\x80\x80").size() == 12);                  // past U+10FFFF
  CHECK(t2s::valid_utf8("x\xE2\x82") == "x\xEF\xBF\xBD\xEF\xBF\xBD");       // cut short
  // Against glibc's decoder on random bytes biased to the multi-byte ranges.
  t2s::Rng rng(5);
  for (int k = 0; k < 20000; ++k) {
    std::string s(1 + rng.uniform_int(0, 6), '\0');
    for (auto& c : s) c = static_cast<char>(rng.uniform() < 0.3 ? rng.uniform_int(0, 127) : rng.uniform_int(128, 255));
    INFO(k);
    CHECK(well_formed(s) == iconv_accepts_utf8(s));
    const std::string fixed = t2s::valid_utf8(s);
    CHECK(iconv_accepts_utf8(fixed));
    if (well_formed(s)) CHECK(fixed == s);
  }
  rapidjson::StringBuffer sb;
  t2s::JsonWriter w(sb);
  t2s::write_json_text(w, "SELECT \xFF");
  CHECK(std::string(sb.GetString()) == "\"SELECT \xEF\xBF\xBD\"");
}
