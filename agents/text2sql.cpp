#include "agents/text2sql.hpp"

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <map>
#include <mutex>

#include "agents/stage_model.hpp"
#include "agents/staged_workflow.hpp"
#include "common/status.hpp"
#include "sqlexec/extract.hpp"
#include "workloads/loaders.hpp"

namespace t2s::agents {

namespace {

// What the workflows of one factory share: options, the backend and per-database prompt text.
struct AgentContext {
  AgentOptions opt;
  std::shared_ptr<ExecutionBackend> backend;
  std::mutex mu;
  struct DbText {
    std::string full_schema;
    std::shared_ptr<const std::vector<std::string>> columns;
  };
  std::map<std::string, DbText> db_text;
  std::vector<workloads::Question> example_pool;  // few-shot candidates (copies), in a fixed spread order
  std::map<std::string, std::string> examples_by_db;      // rendered examples excluding that database

  // Up to few_shot_examples pairs from databases other than `db_id` (the same text for every question of it).
  std::string examples_for(const std::string& db_id) {
    if (opt.few_shot_examples <= 0) return {};
    std::lock_guard<std::mutex> lock(mu);
    auto it = examples_by_db.find(db_id);
    if (it != examples_by_db.end()) return it->second;
    std::string text;
    int n = 0;
    for (const auto& q : example_pool) {
      if (n >= opt.few_shot_examples) break;
      if (q.db_id == db_id || q.gold_sql.empty()) continue;
      text += "Question: " + q.question + "\n```sql\n" + q.gold_sql + "\n```\n";
      ++n;
    }
    return examples_by_db.emplace(db_id, std::move(text)).first->second;
  }

  int tokens(std::string_view s) const { return opt.count_tokens ? opt.count_tokens(s) : sqlexec::estimate_tokens(s); }

  DbText text_of(const std::string& db_id) {
    std::lock_guard<std::mutex> lock(mu);
    auto it = db_text.find(db_id);
    if (it != db_text.end()) return it->second;
    const auto& schema = backend->schema(db_id);
    sqlexec::SchemaPromptOptions so;
    so.samples = opt.schema_samples > 0;
    DbText t;
    t.full_schema = sqlexec::schema_prompt(schema, so);
    auto cols = std::make_shared<std::vector<std::string>>();
    for (const auto& tab : schema.tables)
      for (const auto& c : tab.columns) cols->push_back(c.name);
    t.columns = std::move(cols);
    return db_text.emplace(db_id, std::move(t)).first->second;
  }
};

// Where the workflow is in its plan, for the remaining-work estimate.
enum class Pos { pick_kw, kw, pick_val, val, pick_col, col, pick_cand, cand, exec, revise, pick_ut, ut, pick_eval, eval,
                 pick_sel, end };

class Text2SqlWorkflow final : public StagedWorkflow {
 public:
  Text2SqlWorkflow(const workloads::Question& q, const workloads::Arrival& a, AgentEnv& env,
                   WorkflowFactory::Done done, WorkflowObserver* obs, std::shared_ptr<AgentContext> ctx)
      : StagedWorkflow(q, a, env, std::move(done), obs), ctx_(std::move(ctx)), opt_(ctx_->opt) {}

 protected:
  void begin() override {
    auto text = ctx_->text_of(question().db_id);
    full_schema_ = text.full_schema;
    linked_schema_ = full_schema_;
    columns_ = text.columns;
    examples_ = ctx_->examples_for(question().db_id);
    estimate_prompts();
    if (opt_.keyword_extraction) {
      picker("extract_keywords", Pos::pick_kw, {}, [this](std::vector<uint32_t> p) { keywords(std::move(p)); });
    } else {
      columns_stage({}, {});
    }
  }

  RemainingWork remaining_after(StageKind, uint32_t) const override { return remaining_from(pos_); }

  bool on_deadline_passed() override {
    if (!opt_.end_at_deadline) return false;
    for (const auto& c : cands_)
      if (c.executed && c.exec.ok()) {
        select(true);
        return true;
      }
    return false;
  }

 private:
  struct Candidate {
    std::string sql;
    bool has_sql = false, executed = false, settled = false;
    ExecOutcome exec;
    int rounds = 0;
    uint32_t last_stage = 0;
    double score = 0;
  };

  // ---- calls ----
  std::shared_ptr<Text2SqlCallMeta> meta(StageKind kind) const {
    auto m = std::make_shared<Text2SqlCallMeta>();
    m->question_id = question().id;
    m->kind = kind;
    m->columns = columns_;
    return m;
  }

  // The query of a model's answer: the SQL it contains, else (a small or untuned model wrote none) the whole
  // answer, so that SQLite's error about it drives the revise loop instead of the candidate being dropped.
  static std::optional<std::string> answer_sql(const std::string& text) {
    if (auto sql = sqlexec::extract_sql(text)) return sql;
    const auto b = text.find_first_not_of(" \t\r\n");
    if (b == std::string::npos) return std::nullopt;
    return text.substr(b, text.find_last_not_of(" \t\r\n") - b + 1);
  }

  // Tokens as the serving instances count them when they say (their real tokenizer), else the agent's estimate.
  int serving_tokens(std::string_view text) const {
    int n = env().llm().count_tokens(text);
    return n >= 0 ? n : ctx_->tokens(text);
  }

  // Fits a prompt into `budget` serving tokens, deterministically, giving up first what matters least: the
  // few-shot examples, the schema's sample values, schema lines from the end, and at last the start of the text
  // (the question and the answer instruction are at its end).
  PromptParts fit_prompt(PromptParts p, int budget) const {
    auto fits = [&](const PromptParts& q) { return serving_tokens(q.text()) <= budget; };
    if (fits(p)) return p;
    if (!examples_.empty()) {
      const std::string block = "Solved questions from other databases:\n" + examples_ + "\n";
      if (auto at = p.body.find(block); at != std::string::npos) p.body.erase(at, block.size());
      if (fits(p)) return p;
    }
    for (const std::string* schema : {&linked_schema_, &full_schema_}) {
      const auto at = schema->empty() ? std::string::npos : p.prefix.find(*schema);
      if (at == std::string::npos) continue;
      std::vector<std::string> lines;  // the schema's lines without their " -- e.g. …" sample values
      for (size_t pos = 0; pos < schema->size();) {
        size_t nl = schema->find('\n', pos);
        std::string line = schema->substr(pos, nl == std::string::npos ? std::string::npos : nl - pos);
        if (auto e = line.find(" -- e.g. "); e != std::string::npos) line.erase(e);
        lines.push_back(std::move(line));
        pos = nl == std::string::npos ? schema->size() : nl + 1;
      }
      auto with_lines = [&](size_t k) {
        std::string text;
        for (size_t i = 0; i < k; ++i) text += lines[i] + "\n";
        PromptParts q = p;
        q.prefix = p.prefix.substr(0, at) + text + p.prefix.substr(at + schema->size());
        return q;
      };
      if (fits(with_lines(lines.size()))) return with_lines(lines.size());
      size_t lo = 0, hi = lines.size();  // the most lines that fit: fits(lo) or lo == 0, !fits(hi)
      while (hi - lo > 1) {
        size_t mid = (lo + hi) / 2;
        (fits(with_lines(mid)) ? lo : hi) = mid;
      }
      p = with_lines(lo);
      if (fits(p)) return p;
      break;
    }
    // Keep the longest tail that fits, starting at a line (else a character) boundary.
    const std::string text = p.text();
    auto tail_fits = [&](size_t from) { return serving_tokens(std::string_view(text).substr(from)) <= budget; };
    size_t lo = 0, hi = text.size();  // !tail_fits(lo) (checked above), tail_fits(hi)
    while (hi - lo > 1) {
      size_t mid = (lo + hi) / 2;
      (tail_fits(mid) ? hi : lo) = mid;
    }
    size_t from = hi;
    if (auto nl = text.find('\n', from > 0 ? from - 1 : 0); nl != std::string::npos && nl + 1 < text.size())
      from = nl + 1;
    while (from < text.size() && (static_cast<unsigned char>(text[from]) & 0xC0) == 0x80) ++from;  // UTF-8 lead
    return {"", text.substr(from)};
  }

  LlmCall make_call(PromptParts p, int max_out, StageKind kind, std::shared_ptr<Text2SqlCallMeta> m) const {
    // A model with a small context (e.g. an embedded 512-token model): keep a quarter of it for the answer and
    // fit the prompt into the rest, so the call runs instead of being refused by the engine.
    if (int window = env().llm().context_tokens(); window > 0) {
      max_out = std::min(max_out, std::max(16, window / 4));
      p = fit_prompt(std::move(p), std::max(1, window - max_out));
    }
    LlmCall c;
    c.prompt = p.text();
    c.prompt_tokens = serving_tokens(c.prompt);
    int prefix = std::min(serving_tokens(p.prefix), c.prompt_tokens);
    if (prefix > 0) {
      c.prefix_id = stable_hash(p.prefix) | 1;  // content-addressed: equal prefixes share an id across workflows
      c.prefix_tokens = prefix;
    }
    c.max_output_tokens = max_out;
    c.expected_output_tokens = static_cast<int>(trace_fitted_lengths(kind).output.mean() + 0.5);
    c.seed = opt_.seed ^ stable_hash(question().id) ^ (static_cast<uint64_t>(stages()) << 32);
    c.meta = std::move(m);
    return c;
  }

  // The question's literal rules and the database's names (built on first use), or null when the guide is off.
  std::shared_ptr<const SqlLiteralRules> literal_rules() {
    if (opt_.literal_guide && !literals_) {
      auto rules =
          question_literal_rules(question().question + (question().evidence.empty() ? "" : "\n" + question().evidence));
      // The whole schema, not the linked part: a column the linking missed is still a valid name.
      for (const auto& t : ctx_->backend->schema(question().db_id).tables) {
        rules.tables.emplace_back(t.name, std::vector<std::string>{});
        for (const auto& c : t.columns) rules.tables.back().second.push_back(c.name);
      }
      rules.first_item = question_answer_functions(question().question, rules.tables);
      literals_ = std::make_shared<const SqlLiteralRules>(std::move(rules));
    }
    return literals_;
  }

  void picker(const std::string& next_tool, Pos pos, std::vector<uint32_t> parents,
              std::function<void(std::vector<uint32_t>)> then) {
    if (!opt_.tool_picker) {
      then(std::move(parents));
      return;
    }
    auto m = meta(StageKind::tool_picker);
    m->next_tool = next_tool;
    pos_ = pos;
    auto call = make_call(tool_picker_prompt(question(), tools_done_), 64, StageKind::tool_picker, m);
    // Pickers run one at a time, so last_picker_ names this stage when its callback fires.
    last_picker_ = release_llm_stage(StageKind::tool_picker, {std::move(call)}, std::move(parents),
                                     [this, next_tool, then](std::vector<LlmResult>) {
                                       tools_done_.push_back(next_tool);
                                       then({last_picker_});
                                     });
  }

  void keywords(std::vector<uint32_t> parents) {
    pos_ = Pos::kw;
    auto call = make_call(keyword_prompt(question()), 256, StageKind::keyword_extraction,
                          meta(StageKind::keyword_extraction));
    uint32_t idx = release_llm_stage(StageKind::keyword_extraction, {std::move(call)}, std::move(parents),
                                     [this](std::vector<LlmResult> r) {
                                       if (r[0].ok) keywords_ = parse_keywords(r[0].text);
                                       picker("retrieve_entity", Pos::pick_val, {kw_stage_},
                                              [this](std::vector<uint32_t> p) { value_matching(std::move(p)); });
                                     });
    kw_stage_ = idx;
  }

  void value_matching(std::vector<uint32_t> parents) {
    pos_ = Pos::val;
    auto self = std::static_pointer_cast<Text2SqlWorkflow>(shared_from_this());
    auto found = std::make_shared<std::vector<ValueMatch>>();
    uint32_t idx = release_tool_stage(
        StageKind::sql_execution,
        [self, found] { *found = self->ctx_->backend->match_values(self->question().db_id, self->keywords_, 20); },
        std::move(parents),
        [this, found](double) {
          picker("retrieve_context", Pos::pick_col, {val_stage_},
                 [this, found](std::vector<uint32_t> p) { columns_stage(std::move(p), *found); });
        },
        "value matching");
    val_stage_ = idx;
  }

  void columns_stage(std::vector<uint32_t> parents, std::vector<ValueMatch> values) {
    if (!opt_.column_selection) {
      picker("generate_candidate", Pos::pick_cand, std::move(parents),
             [this](std::vector<uint32_t> p) { candidates(std::move(p)); });
      return;
    }
    pos_ = Pos::col;
    auto m = meta(StageKind::column_selection);
    for (const auto& t : ctx_->backend->schema(question().db_id).tables) {
      std::vector<std::string> cols;
      for (const auto& c : t.columns) cols.push_back(c.name);
      m->schema_columns.emplace_back(t.name, std::move(cols));
    }
    auto call = make_call(column_selection_prompt(question(), full_schema_, values), 512, StageKind::column_selection,
                          m);
    col_stage_ = release_llm_stage(
        StageKind::column_selection, {std::move(call)}, std::move(parents), [this](std::vector<LlmResult> r) {
          const auto& schema = ctx_->backend->schema(question().db_id);
          auto sel = r[0].ok ? parse_column_selection(r[0].text, schema) : decltype(parse_column_selection("", schema)){};
          if (!sel.empty()) {
            sqlexec::SchemaPromptOptions so;
            so.samples = opt_.schema_samples > 0;
            for (auto& [t, cols] : sel) {
              so.tables.push_back(t);
              if (!cols.empty()) so.columns[t] = cols;
            }
            linked_schema_ = sqlexec::schema_prompt(schema, so);
            estimate_prompts();
          }
          picker("generate_candidate", Pos::pick_cand, {col_stage_},
                 [this](std::vector<uint32_t> p) { candidates(std::move(p)); });
        });
  }

  void candidates(std::vector<uint32_t> parents) {
    pos_ = Pos::cand;
    const int n = std::max(1, opt_.candidates);
    cands_.assign(static_cast<size_t>(n), Candidate{});
    std::vector<LlmCall> calls;
    for (int i = 0; i < n; ++i) {
      auto m = meta(StageKind::candidate_generation);
      m->candidate = i;
      m->style = i % 3;
      auto c = make_call(candidate_prompt(question(), linked_schema_, i % 3, examples_), 1024,
                         StageKind::candidate_generation, m);
      c.temperature = i == 0 ? 0.0 : opt_.candidate_temperature;
      c.literals = literal_rules();
      calls.push_back(std::move(c));
    }
    cand_stage_ = release_llm_stage(StageKind::candidate_generation, std::move(calls), std::move(parents),
                                    [this](std::vector<LlmResult> r) {
                                      for (size_t i = 0; i < cands_.size(); ++i) {
                                        auto sql = r[i].ok ? answer_sql(r[i].text) : std::nullopt;
                                        cands_[i].last_stage = cand_stage_;
                                        if (sql) {
                                          cands_[i].sql = *sql;
                                          cands_[i].has_sql = true;
                                          if (i == 0) first_sql_ = *sql;
                                        }
                                      }
                                      for (size_t i = 0; i < cands_.size(); ++i) {
                                        if (cands_[i].has_sql)
                                          execute(i);
                                        else
                                          settle(i);
                                      }
                                    });
  }

  void execute(size_t i) {
    pos_ = Pos::exec;
    auto self = std::static_pointer_cast<Text2SqlWorkflow>(shared_from_this());
    auto out = std::make_shared<ExecOutcome>();
    std::string sql = cands_[i].sql;
    uint32_t idx = release_tool_stage(
        StageKind::sql_execution, [self, out, sql] { *out = self->ctx_->backend->execute(self->question(), sql); },
        {cands_[i].last_stage},
        [this, i, out](double) {
          ++executions_;
          auto& c = cands_[i];
          c.exec = *out;
          c.executed = true;
          std::string problem;
          if (!c.exec.ok())
            problem = c.exec.message.empty() ? std::string(sqlexec::error_class_name(c.exec.error)) : c.exec.message;
          else if (c.exec.empty)
            problem = "the query ran but returned no rows";
          else if (c.exec.all_null)
            problem = "the query ran but every returned value is NULL";
          if (!problem.empty() && c.rounds < opt_.max_revise_rounds)
            revise(i, problem);
          else
            settle(i);
        },
        "candidate " + std::to_string(i + 1));
    cands_[i].last_stage = idx;
  }

  void revise(size_t i, const std::string& problem) {
    pos_ = Pos::revise;
    auto& c = cands_[i];
    auto m = meta(StageKind::revise);
    m->candidate = static_cast<int>(i);
    m->round = c.rounds + 1;
    m->previous_sql = c.sql;
    m->previous_error = problem;
    auto call = make_call(revise_prompt(question(), linked_schema_, c.sql, problem), 1024, StageKind::revise, m);
    call.temperature = opt_.candidate_temperature;
    call.literals = literal_rules();
    c.last_stage = release_llm_stage(
        StageKind::revise, {std::move(call)}, {c.last_stage},
        [this, i](std::vector<LlmResult> r) {
          auto& c = cands_[i];
          ++c.rounds;
          auto sql = r[0].ok ? answer_sql(r[0].text) : std::nullopt;
          // No new query, or the model insists on the same one: its execution result is already known.
          if (!sql || normalize_sql(*sql) == normalize_sql(c.sql)) {
            settle(i);
            return;
          }
          c.sql = *sql;
          execute(i);
        },
        problem);
  }

  void settle(size_t i) {
    cands_[i].settled = true;
    for (const auto& c : cands_)
      if (!c.settled) return;
    std::vector<uint32_t> parents;
    for (const auto& c : cands_) parents.push_back(c.last_stage);
    bool any_sql = std::any_of(cands_.begin(), cands_.end(), [](const Candidate& c) { return c.has_sql; });
    if (!opt_.unit_tests || !any_sql || opt_.max_unit_tests <= 0) {
      select(false);
      return;
    }
    picker("generate_unit_test", Pos::pick_ut, std::move(parents),
           [this](std::vector<uint32_t> p) { unit_tests(std::move(p)); });
  }

  std::vector<std::string> candidate_sqls() const {
    std::vector<std::string> s;
    for (const auto& c : cands_) s.push_back(c.has_sql ? c.sql : "-- no query");
    return s;
  }

  void unit_tests(std::vector<uint32_t> parents) {
    pos_ = Pos::ut;
    auto m = meta(StageKind::unit_test_generation);
    m->tests_wanted = opt_.max_unit_tests;
    m->candidate_sqls = candidate_sqls();
    auto call = make_call(unit_test_prompt(question(), linked_schema_, candidate_sqls(), opt_.max_unit_tests), 512,
                          StageKind::unit_test_generation, m);
    ut_stage_ = release_llm_stage(StageKind::unit_test_generation, {std::move(call)}, std::move(parents),
                                  [this](std::vector<LlmResult> r) {
                                    tests_ = r[0].ok ? parse_unit_tests(r[0].text) : std::vector<std::string>{};
                                    if (tests_.size() > static_cast<size_t>(opt_.max_unit_tests))
                                      tests_.resize(static_cast<size_t>(opt_.max_unit_tests));
                                    if (tests_.empty()) {
                                      select(false);
                                      return;
                                    }
                                    picker("evaluate", Pos::pick_eval, {ut_stage_},
                                           [this](std::vector<uint32_t> p) { evaluation(std::move(p)); });
                                  });
  }

  void evaluation(std::vector<uint32_t> parents) {
    pos_ = Pos::eval;
    std::vector<std::string> previews;
    for (const auto& c : cands_) {
      if (!c.executed) {
        previews.push_back("not executed");
        continue;
      }
      if (!c.exec.ok()) {
        previews.push_back("error: " + c.exec.message);
        continue;
      }
      if (c.exec.simulated) {
        previews.push_back("(simulated execution: columns " + std::to_string(c.exec.columns.size()) + ")");
        continue;
      }
      std::string p = std::to_string(c.exec.row_count) + " rows";
      for (size_t r = 0; r < std::min<size_t>(3, c.exec.rows.size()); ++r) {
        p += r ? "; " : ": ";
        for (size_t k = 0; k < c.exec.rows[r].size(); ++k) p += (k ? ", " : "") + c.exec.rows[r][k];
      }
      previews.push_back(p);
    }
    std::vector<LlmCall> calls;
    for (size_t t = 0; t < tests_.size(); ++t) {
      auto m = meta(StageKind::evaluation);
      m->test = static_cast<int>(t);
      m->candidate_sqls = candidate_sqls();
      calls.push_back(make_call(evaluation_prompt(question(), linked_schema_, tests_[t], candidate_sqls(), previews),
                                256, StageKind::evaluation, m));
    }
    eval_stage_ = release_llm_stage(StageKind::evaluation, std::move(calls), std::move(parents),
                                    [this](std::vector<LlmResult> r) {
                                      for (const auto& res : r) {
                                        if (!res.ok) continue;
                                        auto j = parse_judgement(res.text, cands_.size());
                                        for (size_t i = 0; i < j.size(); ++i)
                                          if (j[i] == 1) cands_[i].score += 1;
                                      }
                                      picker("select", Pos::pick_sel, {eval_stage_},
                                             [this](std::vector<uint32_t>) { select(false); });
                                    });
  }

  // Execution-based selection: the largest group of candidates returning the same result; judge scores, then
  // candidate order, break ties.
  void select(bool early) {
    pos_ = Pos::end;
    std::map<std::string, std::pair<int, double>> groups;  // signature → (votes, score)
    for (const auto& c : cands_)
      if (c.executed && c.exec.ok()) {
        auto& g = groups[c.exec.signature];
        g.first += 1;
        g.second += c.score;
      }
    int best = -1;
    std::tuple<int, double> best_key{-1, -1.0};
    for (size_t i = 0; i < cands_.size(); ++i) {
      const auto& c = cands_[i];
      if (!(c.executed && c.exec.ok())) continue;
      auto [votes, score] = groups[c.exec.signature];
      std::tuple<int, double> key{votes, score};
      if (key > best_key) best_key = key, best = static_cast<int>(i);
    }
    WorkflowOutcome o;
    o.ended_early = early;
    o.sql_executions = executions_;
    o.execution_simulated = ctx_->backend->simulated();
    if (best < 0) {
      // Nothing ran: keep the first query written (so the answer is still scored), else fail.
      for (const auto& c : cands_)
        if (c.has_sql) {
          best = static_cast<int>(&c - cands_.data());
          break;
        }
      if (best < 0) {
        fail("no candidate query could be extracted from the model's answers");
        return;
      }
    }
    const auto& c = cands_[static_cast<size_t>(best)];
    o.completed = true;
    o.sql = c.sql;
    o.sql_executed = c.executed && c.exec.ok();
    if (!o.sql_executed)
      o.sql_error = !c.executed ? "the query was never executed"
                    : c.exec.message.empty() ? std::string(sqlexec::error_class_name(c.exec.error))
                                             : c.exec.message;
    o.columns = c.exec.columns;
    o.rows = c.exec.rows;
    o.has_gold = opt_.score_correctness && !question().gold_sql.empty();
    if (!o.has_gold) {
      finish(std::move(o));
      return;
    }
    // Scoring runs the gold query: measurement, not serving (off the runtime's loop, not in the latency).
    auto score = [backend = ctx_->backend, q = question(), sql = c.sql, first = first_sql_](WorkflowOutcome& out) {
      out.correct = backend->correct(q, sql).value_or(false);
      out.first_candidate_correct =
          first == sql ? out.correct : !first.empty() && backend->correct(q, first).value_or(false);
    };
    finish(std::move(o), std::move(score));
  }

  // ---- remaining-work model ----
  void estimate_prompts() {
    const auto& q = question();
    tok_picker_ = ctx_->tokens(tool_picker_prompt(q, {"extract_keywords", "retrieve_entity"}).text());
    tok_kw_ = ctx_->tokens(keyword_prompt(q).text());
    tok_col_ = ctx_->tokens(column_selection_prompt(q, full_schema_, {}).text());
    tok_cand_ = ctx_->tokens(candidate_prompt(q, linked_schema_, 0, examples_).text());
    tok_rev_ = tok_cand_ + 120;
    tok_ut_ = tok_cand_ + 150 * std::max(1, opt_.candidates);
    tok_eval_ = tok_ut_;
  }

  // Seconds of one stage of `n` parallel calls: the expected slowest (mean) or its 90th percentile (p90).
  double stage_s(StageKind kind, int prompt, int n, bool p90) const {
    const auto& d = trace_fitted_lengths(kind).output;
    double q = p90 ? std::pow(0.9, 1.0 / n) : static_cast<double>(n) / (n + 1);
    double out = n == 1 && !p90 ? d.mean() : d.quantile(q);
    return env().reference_seconds(prompt, static_cast<int>(out));
  }

  RemainingWork remaining_from(Pos pos) const {
    const int n = std::max(1, opt_.candidates);
    const int tests = 5;  // the traces' typical evaluation fan-out
    const double need = std::clamp(opt_.revise_need_prior, 0.0, 1.0);
    const double fix = std::clamp(opt_.revise_fix_prior, 0.05, 1.0);
    RemainingWork w;
    auto add = [&](Pos p, double mean, double p90) {
      if (p > pos) w.mean_s += mean, w.p90_s += p90;
    };
    auto both = [&](Pos p, StageKind k, int prompt, int fan) {
      add(p, stage_s(k, prompt, fan, false), stage_s(k, prompt, fan, true));
    };
    if (opt_.tool_picker)
      for (Pos p : {Pos::pick_kw, Pos::pick_val, Pos::pick_col, Pos::pick_cand, Pos::pick_ut, Pos::pick_eval,
                    Pos::pick_sel})
        if (opt_.keyword_extraction || (p != Pos::pick_kw && p != Pos::pick_val))
          both(p, StageKind::tool_picker, tok_picker_, 1);
    if (opt_.keyword_extraction) both(Pos::kw, StageKind::keyword_extraction, tok_kw_, 1);
    if (opt_.column_selection) both(Pos::col, StageKind::column_selection, tok_col_, 1);
    both(Pos::cand, StageKind::candidate_generation, tok_cand_, n);
    // Revise rounds on the critical path: some candidate needs one with P = 1-(1-need)^n; each round fixes with
    // P = fix, so rounds are geometric (mean 1/fix, p90 the 90% point). Inside the loop, the rest is (1-fix)/fix.
    double round = stage_s(StageKind::revise, tok_rev_, 1, false);
    double round90 = stage_s(StageKind::revise, tok_rev_, 1, true);
    double p_any = 1 - std::pow(1 - need, n);
    double geo90 = std::min<double>(opt_.max_revise_rounds, std::ceil(std::log(0.1) / std::log(std::max(1e-9, 1 - fix))));
    if (pos < Pos::revise) add(Pos::revise, p_any / fix * round, (p_any > 0.1 ? geo90 : 0) * round90);
    if (pos == Pos::revise || pos == Pos::exec) {
      w.mean_s += (1 - fix) / fix * round;
      w.p90_s += std::max(0.0, geo90 - 1) * round90;
    }
    if (opt_.unit_tests) {
      both(Pos::ut, StageKind::unit_test_generation, tok_ut_, 1);
      both(Pos::eval, StageKind::evaluation, tok_eval_, tests);
    }
    return w;
  }

  std::shared_ptr<AgentContext> ctx_;
  const AgentOptions& opt_;
  std::string full_schema_, linked_schema_, examples_;
  std::string first_sql_;  // candidate 0's query as first written (greedy), for first-candidate accuracy
  std::shared_ptr<const std::vector<std::string>> columns_;
  std::shared_ptr<const SqlLiteralRules> literals_;
  std::vector<std::string> keywords_, tools_done_, tests_;
  std::vector<Candidate> cands_;
  Pos pos_ = Pos::pick_kw;
  uint32_t last_picker_ = 0, kw_stage_ = 0, val_stage_ = 0, col_stage_ = 0, cand_stage_ = 0, ut_stage_ = 0,
           eval_stage_ = 0;
  int executions_ = 0;
  int tok_picker_ = 0, tok_kw_ = 0, tok_col_ = 0, tok_cand_ = 0, tok_rev_ = 0, tok_ut_ = 0, tok_eval_ = 0;
};

class Text2SqlFactory final : public WorkflowFactory {
 public:
  explicit Text2SqlFactory(std::shared_ptr<AgentContext> ctx) : ctx_(std::move(ctx)) {}
  std::unique_ptr<Workflow> make(const workloads::Question& question, const workloads::Arrival& arrival,
                                 AgentEnv& env, Done done, WorkflowObserver* observer) override {
    return make_workflow_handle(
        std::make_shared<Text2SqlWorkflow>(question, arrival, env, std::move(done), observer, ctx_));
  }

 private:
  std::shared_ptr<AgentContext> ctx_;
};

}  // namespace

std::unique_ptr<WorkflowFactory> make_text2sql_factory(const workloads::Workload& workload, AgentOptions options) {
  if (workload.databases.empty() && !workload.questions.empty() && !workload.questions[0].trace_calls.empty())
    throw InputError("workload '" + workload.name +
                     "' is a recorded call trace without databases: replay it with the trace workflow");
  auto ctx = std::make_shared<AgentContext>();
  ctx->backend = options.backend;
  if (!ctx->backend) {
    bool files = workload.execution_available && !workload.databases.empty();
    for (const auto& [id, info] : workload.databases)
      files = files && !info.path.empty() && std::filesystem::exists(info.path);
    const auto metric = workload.name.rfind("bird", 0) == 0 ? sqlexec::Metric::bird : sqlexec::Metric::spider;
    if (files) {
      ctx->backend = make_sqlite_backend(workload, metric);
    } else {
      std::map<std::string, sqlexec::Schema> schemas;
      for (const auto& [id, info] : workload.databases)
        if (!info.tables.empty()) schemas.emplace(id, schema_from_database_info(info));
      if (!options.tables_json.empty())
        for (const auto& [id, info] : workloads::load_tables_json(options.tables_json))
          schemas.insert_or_assign(id, schema_from_database_info(info));
      if (schemas.empty())
        throw InputError("workload '" + workload.name +
                         "' has neither database files nor known schemas (give AgentOptions::tables_json): " +
                         workload.execution_note);
      ctx->backend = make_simulated_backend(std::move(schemas));
    }
  }
  // A spread of the workload (every k-th question) so examples cover its databases and difficulties.
  if (options.few_shot_examples > 0 && !workload.questions.empty()) {
    size_t step = std::max<size_t>(1, workload.questions.size() / static_cast<size_t>(4 * options.few_shot_examples));
    for (size_t i = 0; i < workload.questions.size(); i += step) ctx->example_pool.push_back(workload.questions[i]);
  }
  ctx->opt = std::move(options);
  ctx->opt.backend = ctx->backend;
  return std::make_unique<Text2SqlFactory>(std::move(ctx));
}

}  // namespace t2s::agents
