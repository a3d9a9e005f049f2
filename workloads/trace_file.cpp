#include "workloads/trace_file.hpp"

#include <sstream>
#include <unordered_map>

#include "common/json.hpp"
#include "common/status.hpp"

namespace t2s::workloads {

namespace {

template <typename W>
void key(W& w, const char* k) {
  w.Key(k, static_cast<rapidjson::SizeType>(std::char_traits<char>::length(k)));
}

template <typename W>
void str(W& w, const std::string& s) {
  w.String(s.data(), static_cast<rapidjson::SizeType>(s.size()));
}

}  // namespace

std::string format_workload_trace(const Workload& workload, const std::vector<Arrival>& arrivals) {
  std::string out;
  for (const auto& a : arrivals) {
    if (a.question_index >= workload.questions.size())
      throw std::invalid_argument("format_workload_trace: arrival question index out of range");
    const Question& q = workload.questions[a.question_index];
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> w(sb);
    w.StartObject();
    key(w, "workflow");
    w.Uint64(a.workflow_id);
    key(w, "arrival_s");
    w.Double(a.arrival_s);
    key(w, "deadline_s");
    w.Double(a.deadline_s);
    key(w, "workload");
    str(w, workload.name);
    key(w, "question_id");
    str(w, q.id);
    key(w, "db");
    str(w, q.db_id);
    key(w, "db_path");
    auto db = workload.databases.find(q.db_id);
    str(w, db == workload.databases.end() ? std::string() : db->second.path);
    key(w, "question");
    str(w, q.question);
    key(w, "evidence");
    str(w, q.evidence);
    key(w, "gold_sql");
    str(w, q.gold_sql);
    key(w, "difficulty");
    str(w, std::string(difficulty_name(q.difficulty)));
    if (!q.trace_calls.empty()) {
      key(w, "trace_calls");
      w.StartArray();
      for (const auto& c : q.trace_calls) {
        w.StartArray();
        str(w, c.step);
        w.Int(c.input_tokens);
        w.Int(c.output_tokens);
        w.EndArray();
      }
      w.EndArray();
    }
    w.EndObject();
    out.append(sb.GetString(), sb.GetSize());
    out += '\n';
  }
  return out;
}

void save_workload_trace(const std::string& path, const Workload& workload, const std::vector<Arrival>& arrivals) {
  json::write_file(path, format_workload_trace(workload, arrivals));
}

WorkloadTrace load_workload_trace(const std::string& path) {
  std::istringstream in(json::read_file(path));
  WorkloadTrace t;
  std::unordered_map<std::string, size_t> index_of;
  std::string line;
  size_t lineno = 0;
  while (std::getline(in, line)) {
    ++lineno;
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    std::string where = path + " line " + std::to_string(lineno);
    auto doc = json::parse(line, where);
    Arrival a;
    int64_t wf = json::get_int(doc, "workflow", where);
    if (wf < 0) throw InputError(where + ": workflow must be non-negative");
    a.workflow_id = static_cast<uint64_t>(wf);
    a.arrival_s = json::get_double(doc, "arrival_s", where);
    a.deadline_s = json::get_double(doc, "deadline_s", where);
    std::string name = json::get_string(doc, "workload", where);
    if (t.workload.name.empty()) t.workload.name = name;
    std::string qid = json::get_string(doc, "question_id", where);
    auto it = index_of.find(qid);
    if (it == index_of.end()) {
      Question q;
      q.id = qid;
      q.db_id = json::get_string(doc, "db", where);
      q.question = json::get_string(doc, "question", where);
      q.evidence = json::get_string(doc, "evidence", where);
      q.gold_sql = json::get_string(doc, "gold_sql", where);
      try {
        q.difficulty = parse_difficulty(json::get_string(doc, "difficulty", where));
      } catch (const InputError& e) {
        throw InputError(where + ": " + e.what());
      }
      if (auto tc = doc.FindMember("trace_calls"); tc != doc.MemberEnd()) {
        if (!tc->value.IsArray()) throw InputError(where + ": trace_calls must be an array");
        for (const auto& c : tc->value.GetArray()) {
          if (!c.IsArray() || c.Size() != 3 || !c[0].IsString() || !c[1].IsInt() || !c[2].IsInt())
            throw InputError(where + ": each trace call must be [step, input_tokens, output_tokens]");
          q.trace_calls.push_back(TraceCall{c[0].GetString(), c[1].GetInt(), c[2].GetInt()});
        }
      }
      std::string db_path = json::get_string(doc, "db_path", where);
      if (!q.db_id.empty() && !t.workload.databases.count(q.db_id))
        t.workload.databases[q.db_id] = DatabaseInfo{q.db_id, db_path, db_path, {}, {}};
      it = index_of.emplace(qid, t.workload.questions.size()).first;
      t.workload.questions.push_back(std::move(q));
    }
    a.question_index = it->second;
    t.arrivals.push_back(a);
  }
  if (t.arrivals.empty()) throw InputError(path + ": no workflows");
  std::string missing;
  for (const auto& [id, db] : t.workload.databases)
    if (db.path.empty()) missing += (missing.empty() ? "" : ", ") + id;
  if (!missing.empty() || t.workload.databases.empty()) {
    t.workload.execution_available = false;
    t.workload.execution_note = missing.empty() ? "the trace names no databases"
                                                : "the trace names no database file for: " + missing;
  }
  return t;
}

}  // namespace t2s::workloads
