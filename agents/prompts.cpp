// Prompt builders and answer parsers of the Text-to-SQL agent (declared in agents/text2sql.hpp).
#include <algorithm>
#include <cctype>

#include "agents/text2sql.hpp"
#include "common/json.hpp"
#include "sqlexec/text.hpp"

namespace t2s::agents {

namespace {

std::string question_block(const workloads::Question& q) {
  std::string s = "Question: " + q.question + "\n";
  if (!q.evidence.empty()) s += "Evidence (hints from the benchmark): " + q.evidence + "\n";
  return s;
}

const char* kStyles[] = {
    "Method: divide and conquer. Break the question into sub-questions, write a SQL fragment for each, then "
    "assemble them into one query and simplify it.\n",
    "Method: query plan. Describe how a database engine would execute the question step by step (which tables "
    "to scan, how to join, filter, group and order), then translate the plan into one query.\n",
    "Method: direct answer with examples. Examples of the expected form:\n"
    "Question: How many heads of the departments are older than 56?\n"
    "```sql\nSELECT count(*) FROM head WHERE age > 56\n```\n"
    "Question: List the name of singers whose citizenship is not France.\n"
    "```sql\nSELECT Name FROM singer WHERE Citizenship != \"France\"\n```\n",
};

// The lower-case runs of letters and digits (and '_' when `underscores`) of `text`, in order.
std::vector<std::string> lower_words(std::string_view text, bool underscores) {
  std::vector<std::string> words;
  std::string w;
  for (char c : text) {
    if (std::isalnum(static_cast<unsigned char>(c)) || (underscores && c == '_')) {
      w += sqlexec::lower_ascii(c);
    } else if (!w.empty()) {
      words.push_back(std::move(w));
      w.clear();
    }
  }
  if (!w.empty()) words.push_back(std::move(w));
  return words;
}

// The question's first line (the evidence follows on later lines), lower case, without leading blanks.
std::string lower_first_line(const std::string& question) {
  std::string q = sqlexec::lower_ascii(std::string_view(question).substr(0, question.find('\n')));
  q.erase(0, q.find_first_not_of(" \t"));
  return q;
}

}  // namespace

std::string sql_prefix(const std::string& schema_text) {
  return "You are an expert SQLite developer. You answer questions about a database by writing one SQLite query.\n"
         "Rules: use only tables and columns of the schema below; quote identifiers that contain spaces with "
         "backticks; return only the columns the question asks for; prefer JOINs on the foreign keys shown; when "
         "the question asks for the highest or lowest value use ORDER BY ... LIMIT 1 unless ties matter.\n"
         "Database schema:\n" +
         schema_text + "\n";
}

PromptParts keyword_prompt(const workloads::Question& q) {
  PromptParts p;
  p.prefix =
      "Objective: analyse the question and hint to find the keywords, keyphrases and named entities that identify "
      "the data needed to answer it (table or column names, values mentioned, numbers, dates).\n"
      "Answer with a Python list of strings and nothing else, e.g. [\"keyword1\", \"key phrase 2\"].\n"
      "Example: Question: What is the annual revenue of Acme Inc. in 2022? -> [\"annual revenue\", \"Acme Inc.\", "
      "\"2022\"]\n\n";
  p.body = question_block(q) + "Keywords:";
  return p;
}

PromptParts column_selection_prompt(const workloads::Question& q, const std::string& full_schema_text,
                                    const std::vector<ValueMatch>& values) {
  PromptParts p;
  p.prefix = "You are a database expert selecting the tables and columns needed to answer a question.\n"
             "Database schema:\n" +
             full_schema_text + "\n";
  p.body = question_block(q);
  if (!values.empty()) {
    p.body += "Values found in the database that match the question:\n";
    for (const auto& v : values) p.body += "- " + v.table + "." + v.column + " = '" + v.value + "'\n";
  }
  p.body +=
      "Select every table and column the query needs (including join keys). Answer with one JSON object mapping "
      "each selected table to its selected columns, e.g. {\"table\": [\"column1\", \"column2\"]}.\n";
  return p;
}

PromptParts candidate_prompt(const workloads::Question& q, const std::string& schema_text, int style,
                             const std::string& examples) {
  PromptParts p;
  p.prefix = sql_prefix(schema_text);
  p.body = std::string(kStyles[static_cast<size_t>(style) % 3]);
  if (!examples.empty()) p.body += "Solved questions from other databases:\n" + examples + "\n";
  p.body += question_block(q) +
           "Think it through, then give the final query in a ```sql code block.\n";
  return p;
}

PromptParts revise_prompt(const workloads::Question& q, const std::string& schema_text, const std::string& sql,
                          const std::string& error) {
  PromptParts p;
  p.prefix = sql_prefix(schema_text);
  p.body = question_block(q) + "This query was written for the question:\n```sql\n" + sql +
           "\n```\nRunning it on SQLite gave: " + error +
           "\nFind the cause (a misspelled or missing column, a wrong table, a syntax slip, a filter that matches "
           "nothing) and give the corrected query in a ```sql code block.\n";
  return p;
}

PromptParts unit_test_prompt(const workloads::Question& q, const std::string& schema_text,
                             const std::vector<std::string>& candidates, int tests) {
  PromptParts p;
  p.prefix = sql_prefix(schema_text);
  p.body = question_block(q) + "Candidate queries:\n";
  for (size_t i = 0; i < candidates.size(); ++i)
    p.body += "Candidate " + std::to_string(i + 1) + ":\n```sql\n" + candidates[i] + "\n```\n";
  p.body += "Write at most " + std::to_string(tests) +
            " unit tests, one per line, numbered 1., 2., ..., that a correct answer must pass and that tell these "
            "candidates apart.\n";
  return p;
}

PromptParts evaluation_prompt(const workloads::Question& q, const std::string& schema_text, const std::string& test,
                              const std::vector<std::string>& candidates, const std::vector<std::string>& previews) {
  PromptParts p;
  p.prefix = sql_prefix(schema_text);
  p.body = question_block(q) + "Unit test: " + test + "\n";
  for (size_t i = 0; i < candidates.size(); ++i) {
    p.body += "Candidate " + std::to_string(i + 1) + ":\n```sql\n" + candidates[i] + "\n```\n";
    if (i < previews.size()) p.body += "Result: " + previews[i] + "\n";
  }
  p.body += "For each candidate answer on its own line 'Candidate N: PASS' or 'Candidate N: FAIL'.\n";
  return p;
}

PromptParts tool_picker_prompt(const workloads::Question& q, const std::vector<std::string>& done_tools) {
  PromptParts p;
  p.prefix =
      "You are the controller of a Text-to-SQL agent. Tools: extract_keywords, retrieve_entity, retrieve_context, "
      "generate_candidate, revise, generate_unit_test, evaluate, select. Pick the next tool given what has been "
      "done. Answer with {\"tool\": NAME}.\n";
  p.body = question_block(q) + "Done so far:";
  for (const auto& t : done_tools) p.body += " " + t;
  p.body += "\nNext tool:";
  return p;
}

// Number words a question may write instead of digits (index = value).
constexpr std::string_view kNumberWords[] = {"zero",     "one",      "two",      "three",   "four",    "five",
                                             "six",      "seven",    "eight",    "nine",    "ten",     "eleven",
                                             "twelve",   "thirteen", "fourteen", "fifteen", "sixteen", "seventeen",
                                             "eighteen", "nineteen", "twenty"};

std::vector<std::string> question_comparisons(const std::string& question) {
  // Comparatives that state one direction; "or" between a number and one adds equality ("5 or more"), "not"/"no"
  // before one adds the other direction ("no more than 5"). Words that state either direction (older: age > or birth
  // year <), an unknown comparative before "than", or "between" leave every comparison open.
  static constexpr std::string_view kGreater[] = {
      "greater",   "more",     "higher", "larger", "bigger",  "longer", "above", "over",     "exceeds", "exceed",
      "exceeding", "exceeded", "after",  "later",  "heavier", "taller", "wider", "costlier", "pricier"};
  static constexpr std::string_view kLess[] = {"less",  "fewer",  "lower",   "smaller", "shorter", "below",
                                               "under", "before", "earlier", "lighter", "cheaper", "narrower"};
  static constexpr std::string_view kEither[] = {"older",  "younger", "newer", "between",
                                                 "within", "outside", "range", "recent"};
  const std::vector<std::string> words = lower_words(question, false);
  auto in = [](const auto& list, const std::string& x) {
    return std::find(std::begin(list), std::end(list), x) != std::end(list);
  };
  bool gt = false, ge = false, lt = false, le = false, any = false, last_up = false;
  auto number = [&](size_t k) {
    return std::isdigit(static_cast<unsigned char>(words[k][0])) || in(kNumberWords, words[k]);
  };
  for (size_t i = 0; i < words.size(); ++i) {
    const std::string prev = i > 0 ? words[i - 1] : "";
    const bool greater = in(kGreater, words[i]), less = in(kLess, words[i]);
    if (greater || less) {
      // "5 or more" (but "after 2013 or before 2008" is two comparisons).
      const bool or_equal = prev == "or" && i > 1 && number(i - 2) && !(i + 1 < words.size() && number(i + 1));
      last_up = greater;
      (last_up ? (or_equal ? ge : gt) : (or_equal ? le : lt)) = true;
      // "no more than 5" is <=, but "not in (… more than 5)" keeps >: a negation allows both.
      if (prev == "not" || prev == "no" || (i > 1 && words[i - 2] == "not")) (greater ? le : ge) = true;
    } else if (prev == "or" && words[i] == "equal") {  // "less than or equal to"
      (last_up ? ge : le) = true;
    } else if (in(kEither, words[i])) {
      any = true;
    } else if (words[i] == "than" && prev != "other" && prev != "rather") {
      // "a higher average delay than": a known comparative a few words back; "wealthier than": unknown.
      bool known = false;
      for (size_t k = i; k-- > 0 && k + 6 > i && !known;) known = in(kGreater, words[k]) || in(kLess, words[k]);
      any = any || !known;
    } else if (prev == "at" && (words[i] == "least" || words[i] == "most")) {
      (words[i] == "least" ? ge : le) = true;
    } else if (words[i] == "since" || words[i] == "starting" || words[i] == "onwards" || words[i] == "onward") {
      ge = true;
    } else if (prev == "up" && words[i] == "to") {
      le = true;
    }
  }
  // Operators written out (BIRD's evidence says "age > 65").
  for (size_t i = 0; i < question.size(); ++i)
    if (question[i] == '<' || question[i] == '>') {
      size_t next = question.find_first_not_of(' ', i + 1);  // "< = 150" too
      const char after = next == std::string::npos ? '\0' : question[next];
      (question[i] == '>' ? (after == '=' ? ge : gt) : (after == '=' ? le : lt)) = true;
      if (question[i] == '<' && after == '>') any = true;
    }
  std::vector<std::string> out;
  if (any || !(gt || ge || lt || le)) return out;
  for (const auto& [on, op] : {std::pair{lt, "<"}, {le, "<="}, {gt, ">"}, {ge, ">="}})
    if (on) out.emplace_back(op);
  return out;
}

bool question_asks_count(const std::string& question,
                         const std::vector<std::pair<std::string, std::vector<std::string>>>& tables) {
  const std::string q = lower_first_line(question);
  static constexpr std::string_view kOpenings[] = {"how many ",
                                                   "count the ",
                                                   "count all ",
                                                   "count how many ",
                                                   "what is the number of ",
                                                   "what are the number of ",
                                                   "what is the total number of ",
                                                   "find the number of ",
                                                   "find the total number of ",
                                                   "return the number of ",
                                                   "return the total number of ",
                                                   "give the number of ",
                                                   "give the total number of ",
                                                   "show the number of ",
                                                   "tell me the number of ",
                                                   "compute the number of "};
  size_t rest = std::string::npos;
  for (std::string_view o : kOpenings)
    if (q.rfind(o, 0) == 0) rest = o.size();
  if (rest == std::string::npos) return false;
  // Counts per group put the group first ("For each rank, how many …": SELECT rank, count(*)).
  for (const auto& x : lower_words(q, true))
    if (x == "per" || x == "each" || x == "every" || x == "by" || x == "respectively") return false;
  // "the number of credits of the course" asks for a column's value, not a count.
  std::string next;
  for (char c : q.substr(rest)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') break;
    next += c;
  }
  for (const auto& [table, columns] : tables)
    for (const auto& c : columns) {
      const std::string col = sqlexec::lower_ascii(c);
      if (!next.empty() && (col == next || col + "s" == next || col == next + "s")) return false;
    }
  return true;
}

std::vector<std::string> question_answer_functions(
    const std::string& question, const std::vector<std::pair<std::string, std::vector<std::string>>>& tables) {
  if (question_asks_count(question, tables)) return {"COUNT", "SUM", "CAST"};
  // "What is the average …", "Compute the minimum …": one aggregate of a column, unless per group or a second
  // question follows ("… and what make is it?", "… ? List their names.").
  const std::string q = lower_first_line(question);
  static constexpr std::string_view kOpenings[] = {"what is the ", "what are the ", "compute the ", "find the ",
                                                   "give the ",    "return the ",   "show the ",    "tell me the "};
  static constexpr std::pair<std::string_view, std::string_view> kWords[] = {
      {"average", "AVG"}, {"mean", "AVG"},    {"minimum", "MIN"}, {"lowest", "MIN"}, {"smallest", "MIN"},
      {"maximum", "MAX"}, {"highest", "MAX"}, {"largest", "MAX"}, {"total", "SUM"}};
  for (std::string_view o : kOpenings) {
    if (q.rfind(o, 0) != 0) continue;
    const std::string_view rest = std::string_view(q).substr(o.size());
    for (const auto& [word, function] : kWords) {
      if (rest.substr(0, word.size()) != word ||
          (rest.size() > word.size() && std::isalpha(static_cast<unsigned char>(rest[word.size()]))))
        continue;
      for (std::string_view stop :
           {" per ", " each ", " every ", " by ", " respectively", " and what", " and which", " and who", " and the ",
            " and list", " and give", " and show", " and return", ". ", "? "})
        if (q.find(stop) != std::string::npos) return {};
      if (function == "SUM") return {"SUM", "COUNT", "CAST"};  // "the total number of …" counts
      if (function == "AVG") return {"AVG", "CAST"};
      return {std::string(function)};
    }
  }
  return {};
}

SqlLiteralRules question_literal_rules(const std::string& question) {
  SqlLiteralRules rules;
  // Words: runs of non-space characters without the punctuation around them ("Newport"? -> Newport).
  auto edge_punct = [](char c) { return std::string_view(",.;:!?\"'()[]").find(c) != std::string_view::npos; };
  std::vector<std::pair<size_t, size_t>> words;
  std::vector<bool> ends_clause;  // the word is followed by , ; : . ? or ! (a value does not run past it)
  for (size_t i = 0; i < question.size();) {
    while (i < question.size() && std::isspace(static_cast<unsigned char>(question[i]))) ++i;
    size_t b = i;
    while (i < question.size() && !std::isspace(static_cast<unsigned char>(question[i]))) ++i;
    size_t e = i, raw_end = i;
    while (b < e && edge_punct(question[b])) ++b;
    while (e > b && edge_punct(question[e - 1])) --e;
    if (b < e) {
      words.emplace_back(b, e);
      ends_clause.push_back(std::string_view(question.data() + e, raw_end - e).find_first_of(",;:.?!") !=
                            std::string_view::npos);
    }
  }
  // Values the question names, in order: what it puts in double quotes, and dates and times (words with a digit and
  // a '-', '/' or ':').
  std::vector<std::pair<size_t, std::string>> named;
  for (size_t open = question.find('"'); open != std::string::npos;) {
    size_t close = question.find('"', open + 1);
    if (close == std::string::npos) break;
    if (close > open + 1) named.emplace_back(open, question.substr(open + 1, close - open - 1));
    open = question.find('"', close + 1);
  }
  for (const auto& [b, e] : words) {
    std::string_view w(question.data() + b, e - b);
    if (std::any_of(w.begin(), w.end(), [](unsigned char c) { return std::isdigit(c); }) &&
        w.find_first_of("-/:") != std::string_view::npos)
      named.emplace_back(b, std::string(w));
  }
  std::sort(named.begin(), named.end());
  for (auto& [pos, v] : named)
    if (std::find(rules.named_values.begin(), rules.named_values.end(), v) == rules.named_values.end())
      rules.named_values.push_back(std::move(v));
  // Other strings: with a value in double quotes, only words with a digit (years); else every run of 1-6 words.
  const bool quoted = question.find('"') != std::string::npos;
  const size_t max_words = quoted ? 1 : 6;
  for (size_t i = 0; i < words.size(); ++i)
    for (size_t j = i; j < std::min(words.size(), i + max_words); ++j) {
      std::string span = question.substr(words[i].first, words[j].second - words[i].first);
      if (!quoted || std::any_of(span.begin(), span.end(), [](unsigned char c) { return std::isdigit(c); }))
        rules.strings.push_back(span);
      if (ends_clause[j]) break;
    }
  for (const auto* set : {&rules.named_values, &rules.strings})
    for (const auto& v : *set) {
      rules.like_patterns.push_back("%" + v);
      rules.like_patterns.push_back(v + "%");
      rules.like_patterns.push_back("%" + v + "%");
    }
  for (const char* f : {"%Y", "%m", "%d", "%Y-%m", "%m-%d", "%Y-%m-%d", "%H", "%M", "%S", "%H:%M", "%w", "%j"})
    rules.formats.emplace_back(f);
  // Numbers: digit runs (with a decimal part) outside double quotes that do not touch a letter, and number words;
  // 1 after LIMIT.
  auto is_alpha = [&](size_t k) { return k < question.size() && std::isalpha(static_cast<unsigned char>(question[k])); };
  bool in_quotes = false;  // digits of a value in double quotes ("100") are that string, not a number
  for (size_t i = 0; i < question.size();) {
    if (question[i] == '"') in_quotes = !in_quotes;
    if (in_quotes || !std::isdigit(static_cast<unsigned char>(question[i]))) {
      ++i;
      continue;
    }
    if (i > 0 && (is_alpha(i - 1) || question[i - 1] == '_')) {  // digits inside a name (B777): no number
      while (i < question.size() && (std::isalnum(static_cast<unsigned char>(question[i])) || question[i] == '_')) ++i;
      continue;
    }
    size_t e = i;
    while (e < question.size() && std::isdigit(static_cast<unsigned char>(question[e]))) ++e;
    if (e + 1 < question.size() && question[e] == '.' && std::isdigit(static_cast<unsigned char>(question[e + 1]))) {
      ++e;
      while (e < question.size() && std::isdigit(static_cast<unsigned char>(question[e]))) ++e;
    }
    if (!is_alpha(e)) rules.numbers.push_back(question.substr(i, e - i));
    i = e;
  }
  for (const auto& [b, e] : words) {
    const std::string w = sqlexec::lower_ascii(std::string_view(question).substr(b, e - b));
    for (size_t k = 0; k < std::size(kNumberWords); ++k)
      if (w == kNumberWords[k]) rules.numbers.push_back(std::to_string(k));
  }
  rules.limit_numbers.emplace_back("1");
  rules.comparisons = question_comparisons(question);
  return rules;
}

std::vector<std::string> parse_keywords(const std::string& text) {
  std::vector<std::string> out;
  size_t lo = text.find('['), hi = text.rfind(']');
  std::string s = lo != std::string::npos && hi != std::string::npos && hi > lo ? text.substr(lo + 1, hi - lo - 1)
                                                                                 : text;
  for (size_t i = 0; i < s.size(); ++i)
    if (s[i] == '"' || s[i] == '\'') {
      size_t j = s.find(s[i], i + 1);
      if (j == std::string::npos) break;
      if (j > i + 1) out.push_back(s.substr(i + 1, j - i - 1));
      i = j;
    }
  if (out.empty()) {  // plain comma- or line-separated answer
    std::string cur;
    for (char c : s + ",") {
      if (c == ',' || c == '\n') {
        while (!cur.empty() && std::isspace(static_cast<unsigned char>(cur.back()))) cur.pop_back();
        size_t b = cur.find_first_not_of(" \t-*");
        if (b != std::string::npos) out.push_back(cur.substr(b));
        cur.clear();
      } else {
        cur += c;
      }
    }
  }
  return out;
}

std::vector<std::pair<std::string, std::vector<std::string>>> parse_column_selection(const std::string& text,
                                                                                   const sqlexec::Schema& schema) {
  std::vector<std::pair<std::string, std::vector<std::string>>> out;
  size_t lo = text.find('{'), hi = text.rfind('}');
  if (lo == std::string::npos || hi == std::string::npos || hi < lo) return out;
  rapidjson::Document doc;
  doc.Parse(text.data() + lo, hi - lo + 1);
  if (doc.HasParseError() || !doc.IsObject()) return out;
  for (const auto& t : schema.tables) {
    for (auto it = doc.MemberBegin(); it != doc.MemberEnd(); ++it) {
      if (sqlexec::lower_ascii(it->name.GetString()) != sqlexec::lower_ascii(t.name)) continue;
      std::vector<std::string> cols;
      if (it->value.IsArray())
        for (const auto& c : t.columns)
          for (const auto& v : it->value.GetArray())
            if (v.IsString() && sqlexec::lower_ascii(v.GetString()) == sqlexec::lower_ascii(c.name)) {
              cols.push_back(c.name);
              break;
            }
      out.emplace_back(t.name, std::move(cols));
      break;
    }
  }
  return out;
}

std::vector<std::string> parse_unit_tests(const std::string& text) {
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= text.size()) {
    size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    size_t i = line.find_first_not_of(" \t");
    if (i != std::string::npos) {
      size_t j = i;
      while (j < line.size() && std::isdigit(static_cast<unsigned char>(line[j]))) ++j;
      bool numbered = j > i && j < line.size() && (line[j] == '.' || line[j] == ')');
      bool bullet = line[i] == '-' || line[i] == '*';
      if (numbered || bullet) {
        size_t b = line.find_first_not_of(" \t", numbered ? j + 1 : i + 1);
        if (b != std::string::npos) out.push_back(line.substr(b));
      }
    }
    start = end + 1;
  }
  return out;
}

std::vector<int> parse_judgement(const std::string& text, size_t candidates) {
  std::vector<int> out(candidates, -1);
  std::string t = sqlexec::lower_ascii(text);
  size_t p = 0;
  while ((p = t.find("candidate", p)) != std::string::npos) {
    p += 9;
    size_t i = t.find_first_not_of(" #", p);
    if (i == std::string::npos || !std::isdigit(static_cast<unsigned char>(t[i]))) continue;
    size_t n = std::stoul(t.substr(i, 3));
    size_t eol = t.find('\n', i);
    std::string rest = t.substr(i, eol == std::string::npos ? std::string::npos : eol - i);
    if (n < 1 || n > candidates) continue;
    if (rest.find("pass") != std::string::npos) out[n - 1] = 1;
    else if (rest.find("fail") != std::string::npos) out[n - 1] = 0;
  }
  return out;
}

}  // namespace t2s::agents
