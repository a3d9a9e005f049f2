#include "agents/training_corpus.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>

#include "agents/oracle.hpp"
#include "agents/sim_env.hpp"
#include "agents/stage_model.hpp"
#include "agents/text2sql.hpp"
#include "common/json.hpp"
#include "common/rng.hpp"
#include "common/status.hpp"
#include "workloads/synthetic.hpp"

namespace t2s::agents {

namespace {

// Answers the agent's calls: records the never-erring oracle's answer as the teacher's, and hands the agent a
// mutation of the gold query instead for some candidates, so that the agent executes it and revises.
class TeacherResponder final : public Responder {
 public:
  TeacherResponder(const workloads::Workload& w, const CorpusOptions& opt, uint64_t synth_seed,
                   std::vector<CorpusExample>& out)
      : opt_(opt), synth_seed_(synth_seed), out_(out) {
    OracleOptions oo;
    oo.seed = synth_seed;
    oo.error_scale = 0;
    oracle_ = make_oracle_responder(w, oo);
    for (const auto& q : w.questions) questions_.emplace(q.id, &q);
  }
  std::string name() const override { return "teacher"; }

  Response respond(const LlmCall& call) override {
    Response teacher = oracle_->respond(call);
    const auto* m = dynamic_cast<const Text2SqlCallMeta*>(call.meta.get());
    if (!m) throw std::logic_error("training corpus: a call without Text-to-SQL metadata");
    const workloads::Question& q = *questions_.at(m->question_id);
    const std::string stage(stage_kind_name(call.kind));
    const uint64_t h = opt_.seed ^ stable_hash(std::to_string(synth_seed_) + "/" + q.id + "/" + stage + "/" +
                                               std::to_string(m->candidate) + "/" + std::to_string(m->round) + "/" +
                                               std::to_string(m->test) + "/" + std::to_string(calls_++));
    Rng rng(h);
    auto keep = opt_.keep.find(stage);
    if (rng.uniform() < (keep == opt_.keep.end() ? 1.0 : keep->second)) {
      CorpusExample e;
      e.stage = stage;
      e.question_id = q.id;
      e.seed = synth_seed_;
      e.db_id = q.db_id;
      e.prompt = call.prompt;
      e.answer = teacher.text;
      e.gold_sql = q.gold_sql;
      if (call.kind == StageKind::revise) e.error = m->previous_error;
      out_.push_back(std::move(e));
    }
    if (call.kind == StageKind::candidate_generation && rng.bernoulli(opt_.wrong_candidates)) {
      const std::vector<std::string> none;
      auto wrong = wrong_variant(q.gold_sql, OracleOptions{}.mutation_weights, m->columns ? *m->columns : none, rng);
      teacher.text = "Let me work through the question step by step and write the final query.\n```sql\n" +
                     wrong.first + "\n```";
    }
    return teacher;
  }
  //! Resets the per-question call counter (keeps draws independent of earlier questions' call counts).
  void next_question() { calls_ = 0; }

 private:
  const CorpusOptions& opt_;
  uint64_t synth_seed_;
  std::vector<CorpusExample>& out_;
  std::unique_ptr<Responder> oracle_;
  std::map<std::string, const workloads::Question*> questions_;
  uint64_t calls_ = 0;
};

void check_seeds(const CorpusOptions& opt) {
  if (opt.cache_dir.empty()) throw InputError("training corpus: no cache folder for the synthetic databases");
  if (opt.validation) {
    if (opt.seeds != std::vector<uint64_t>{kValidationSeed})
      throw InputError("training corpus: the validation corpus is seed " + std::to_string(kValidationSeed) + " only");
    return;
  }
  if (opt.seeds.empty()) throw InputError("training corpus: no seeds");
  for (uint64_t s : opt.seeds)
    if (s == kTestSeed || s == kValidationSeed)
      throw InputError("training corpus: seed " + std::to_string(s) +
                       " is held out (42: the evaluation seed, 7: the validation seed)");
}

// A SQLite error message rather than one of the agent's own findings ("the query ran but …").
bool is_sqlite_error(const std::string& e) { return !e.empty() && e.rfind("the query ran", 0) != 0; }

bool is_alnum(char c) { return std::isalnum(static_cast<unsigned char>(c)) != 0; }

// A made-up literal of the same shape as `v`: each run of letters becomes pronounceable letters of about the same
// length with the same case pattern at its start, each digit a random digit (a leading non-zero stays non-zero, so a
// number keeps its magnitude), everything else as it was.
std::string fresh_literal(const std::string& v, Rng& rng) {
  static constexpr std::string_view consonants = "bcdfghjklmnprstvwz", vowels = "aeiou";
  std::string out;
  for (size_t i = 0; i < v.size();) {
    const char c = v[i];
    if (std::isalpha(static_cast<unsigned char>(c))) {
      size_t j = i;
      while (j < v.size() && std::isalpha(static_cast<unsigned char>(v[j]))) ++j;
      const bool all_upper = j - i > 1 && std::all_of(v.begin() + static_cast<long>(i), v.begin() + static_cast<long>(j),
                                                     [](char x) { return std::isupper(static_cast<unsigned char>(x)); });
      const size_t len = std::max<size_t>(1, j - i + static_cast<size_t>(rng.uniform_int(-1, 1)));
      for (size_t k = 0; k < len; ++k) {
        const auto& set = k % 2 == 0 ? consonants : vowels;
        char x = set[static_cast<size_t>(rng.uniform_int(0, static_cast<int64_t>(set.size()) - 1))];
        if (all_upper || (k == 0 && std::isupper(static_cast<unsigned char>(c))))
          x = static_cast<char>(std::toupper(static_cast<unsigned char>(x)));
        out += x;
      }
      i = j;
    } else if (std::isdigit(static_cast<unsigned char>(c))) {
      const bool lead = i == 0 || !std::isdigit(static_cast<unsigned char>(v[i - 1]));
      out += static_cast<char>('0' + (lead && c != '0' ? rng.uniform_int(1, 9) : rng.uniform_int(0, 9)));
      ++i;
    } else {
      out += c;
      ++i;
    }
  }
  return out == v ? out + "x" : out;
}

// Replaces every occurrence of `from` in `s` that is not part of a longer word or number.
void replace_whole(std::string& s, const std::string& from, const std::string& to) {
  if (from.empty()) return;
  std::string out;
  size_t at = 0;
  for (size_t p = s.find(from); p != std::string::npos; p = s.find(from, p + 1)) {
    if (p < at) continue;
    const size_t e = p + from.size();
    const bool left = p == 0 || !is_alnum(s[p - 1]) || !is_alnum(from.front());
    const bool right = e == s.size() || !is_alnum(s[e]) || !is_alnum(from.back());
    // "1.5" must not match inside "21.55": a digit run continues across a decimal point.
    const bool decimal_run = (p >= 2 && s[p - 1] == '.' && std::isdigit(static_cast<unsigned char>(s[p - 2]))) ||
                             (e + 1 < s.size() && s[e] == '.' && std::isdigit(static_cast<unsigned char>(s[e + 1])));
    if (!left || !right || (std::isdigit(static_cast<unsigned char>(from.front())) && decimal_run)) continue;
    out.append(s, at, p - at);
    out += to;
    at = e;
  }
  out.append(s, at, std::string::npos);
  s = std::move(out);
}

std::string lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

std::vector<std::string> question_literals(const std::string& prompt) {
  const auto at = prompt.rfind("\nQuestion: ");
  if (at == std::string::npos) return {};
  const auto begin = at + 11, end = prompt.find('\n', begin);
  const std::string q = prompt.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
  std::vector<std::string> out;
  auto add = [&](std::string v) {
    if (!v.empty() && std::find(out.begin(), out.end(), v) == out.end()) out.push_back(std::move(v));
  };
  std::string rest;  // the question without its quoted values
  for (size_t i = 0; i < q.size(); ++i) {
    if (q[i] != '"') {
      rest += q[i];
      continue;
    }
    const auto close = q.find('"', i + 1);
    if (close == std::string::npos) break;
    add(q.substr(i + 1, close - i - 1));
    rest += ' ';
    i = close;
  }
  for (size_t i = 0; i < rest.size();) {
    if (!std::isdigit(static_cast<unsigned char>(rest[i])) || (i > 0 && is_alnum(rest[i - 1]))) {
      ++i;
      continue;
    }
    size_t j = i;
    while (j < rest.size() && std::isdigit(static_cast<unsigned char>(rest[j]))) ++j;
    if (j + 1 < rest.size() && rest[j] == '.' && std::isdigit(static_cast<unsigned char>(rest[j + 1])))
      for (++j; j < rest.size() && std::isdigit(static_cast<unsigned char>(rest[j]));) ++j;
    if (j - i >= 2 && (j == rest.size() || !std::isalpha(static_cast<unsigned char>(rest[j])))) add(rest.substr(i, j - i));
    i = j;
  }
  return out;
}

std::vector<CorpusExample> vary_literals(const std::vector<CorpusExample>& examples, int copies, uint64_t seed) {
  std::vector<CorpusExample> out;
  for (const auto& e : examples) {
    const auto literals = question_literals(e.prompt);
    if (literals.empty()) continue;
    Rng rng(seed ^ stable_hash(e.question_id + "/" + std::to_string(e.seed) + "/" + e.stage + "/" + e.prompt));
    for (int c = 0; c < copies; ++c) {
      CorpusExample v = e;
      // Each word of a literal gets its own fresh word, and the words are replaced on their own too after the whole
      // literals: the keyword teacher lists "Indie" and "Works" of "Indie Works" separately. Longer literals first,
      // so that "New Salem" is replaced before a literal "Salem" could cut into it.
      auto order = literals;
      std::stable_sort(order.begin(), order.end(), [](const auto& a, const auto& b) { return a.size() > b.size(); });
      std::vector<std::pair<std::string, std::string>> wholes, words;
      for (const auto& lit : order) {
        std::string to;
        std::vector<std::pair<std::string, std::string>> parts;
        for (size_t i = 0; i < lit.size();) {
          size_t j = i;
          if (is_alnum(lit[i])) {
            while (j < lit.size() && is_alnum(lit[j])) ++j;
            const std::string w = lit.substr(i, j - i), fresh = fresh_literal(w, rng);
            to += fresh;
            parts.emplace_back(w, fresh);
          } else {
            to += lit[i];
            j = i + 1;
          }
          i = j;
        }
        wholes.emplace_back(lit, to);
        // Only distinctive words stand alone ("of" or "a" in a value must not be replaced everywhere).
        if (parts.size() > 1)
          for (const auto& [w, fresh] : parts)
            if (w.size() >= 3 && (std::isupper(static_cast<unsigned char>(w[0])) || std::isdigit(static_cast<unsigned char>(w[0]))))
              words.emplace_back(w, fresh);
      }
      for (const auto* pairs : {&wholes, &words})
        for (const auto& [lit, to] : *pairs)
          for (auto* s : {&v.prompt, &v.answer, &v.gold_sql, &v.error}) {
            replace_whole(*s, lit, to);
            // Keyword answers and SQL may spell a value in lower case.
            if (lower(lit) != lit) replace_whole(*s, lower(lit), lower(to));
          }
      out.push_back(std::move(v));
    }
  }
  return out;
}

std::vector<CorpusExample> build_training_corpus(const CorpusOptions& opt, CorpusSummary* summary) {
  check_seeds(opt);
  std::vector<CorpusExample> out;
  CorpusSummary sum;
  for (uint64_t seed : opt.seeds) {
    workloads::SyntheticOptions so;
    so.seed = seed;
    so.questions_per_db = opt.questions_per_db;
    auto w = workloads::generate_synthetic(
        (std::filesystem::path(opt.cache_dir) / ("synthetic-seed-" + std::to_string(seed))).string(), so);
    AgentOptions ao;  // the defaults `t2s replay` runs the agent with
    ao.score_correctness = false;
    ao.count_tokens = opt.count_tokens;
    auto factory = make_text2sql_factory(w, ao);
    TeacherResponder teacher(w, opt, seed, out);
    StandaloneEnvOptions eo;
    eo.context_tokens = opt.context_tokens;
    for (size_t i = 0; i < w.questions.size(); ++i) {
      teacher.next_question();
      StandaloneEnv env(teacher, eo);
      bool ended = false;
      auto wf = factory->make(w.questions[i], {i + 1, i, 0.0, 1e18}, env,
                              [&](const WorkflowOutcome&) { ended = true; }, nullptr);
      wf->start();
      env.run();
      if (!ended) throw std::logic_error("training corpus: a workflow did not end");
      ++sum.questions;
    }
  }
  for (const auto& e : out) {
    ++sum.examples[e.stage];
    sum.chars[e.stage] += e.prompt.size() + e.answer.size();
    if (e.stage == "revise" && is_sqlite_error(e.error)) ++sum.revise_with_error;
  }
  if (summary) *summary = std::move(sum);
  return out;
}

void write_corpus_jsonl(const std::string& path, const std::vector<CorpusExample>& examples) {
  std::string text;
  for (const auto& e : examples) {
    rapidjson::StringBuffer buf;
    rapidjson::Writer<rapidjson::StringBuffer> w(buf);
    w.StartObject();
    auto str = [&](const char* k, const std::string& v) {
      w.Key(k);
      w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
    };
    str("stage", e.stage);
    str("question_id", e.question_id);
    w.Key("seed");
    w.Uint64(e.seed);
    str("db_id", e.db_id);
    str("prompt", e.prompt);
    str("answer", e.answer);
    str("gold_sql", e.gold_sql);
    str("error", e.error);
    w.EndObject();
    text.append(buf.GetString(), buf.GetSize());
    text += '\n';
  }
  json::write_file(path, text);
}

std::vector<CorpusExample> read_corpus_jsonl(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError("cannot read corpus '" + path + "'");
  std::vector<CorpusExample> out;
  std::string line;
  for (size_t n = 1; std::getline(in, line); ++n) {
    if (line.empty()) continue;
    const std::string where = path + ":" + std::to_string(n);
    auto d = json::parse(line, where);
    CorpusExample e;
    e.stage = json::get_string(d, "stage", where);
    e.question_id = json::get_string(d, "question_id", where);
    e.seed = static_cast<uint64_t>(json::get_int(d, "seed", where));
    e.db_id = json::get_string(d, "db_id", where);
    e.prompt = json::get_string(d, "prompt", where);
    e.answer = json::get_string(d, "answer", where);
    e.gold_sql = json::get_string(d, "gold_sql", where);
    e.error = json::opt_string(d, "error", "");
    out.push_back(std::move(e));
  }
  return out;
}

std::string corpus_summary_json(const CorpusSummary& s) {
  rapidjson::StringBuffer buf;
  rapidjson::Writer<rapidjson::StringBuffer> w(buf);
  w.StartObject();
  w.Key("questions");
  w.Uint64(s.questions);
  w.Key("revise_with_sqlite_error");
  w.Uint64(s.revise_with_error);
  for (const auto* part : {&s.examples, &s.chars}) {
    w.Key(part == &s.examples ? "examples" : "chars");
    w.StartObject();
    size_t total = 0;
    for (const auto& [k, v] : *part) {
      w.Key(k.c_str());
      w.Uint64(v);
      total += v;
    }
    w.Key("total");
    w.Uint64(total);
    w.EndObject();
  }
  w.EndObject();
  return std::string(buf.GetString(), buf.GetSize());
}

}  // namespace t2s::agents
