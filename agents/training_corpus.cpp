#include "agents/training_corpus.hpp"

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

}  // namespace

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
