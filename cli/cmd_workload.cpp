// `t2s workload`: load (or generate) a workload, print a summary, optionally save a trace of seeded arrivals.
#include <iostream>
#include <map>
#include <optional>

#include "cli/commands.hpp"
#include "cli/sim_flags.hpp"
#include "common/json.hpp"
#include "workloads/arrivals.hpp"
#include "workloads/trace_file.hpp"
#include "workloads/workload.hpp"

namespace t2s::cli {

void add_workload_command(CLI::App& app) {
  struct Options {
    workloads::WorkloadSpec spec;
    std::string save_trace, arrival = "poisson";
    size_t workflows = 0;
    double rate = 1.0;
    std::optional<double> budget_s;
    bool list = false;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand(
      "workload",
      "Load a workload (generating the synthetic set when its cache does not match) and print a JSON summary: "
      "questions per difficulty, databases, whether SQL can be executed");
  cmd->add_option("--workload", opt->spec.kind, "synthetic | spider | bird | hexgen-trace")
      ->check(CLI::IsMember({"synthetic", "spider", "bird", "hexgen-trace"}))
      ->capture_default_str();
  cmd->add_option("--data", opt->spec.data_dir,
                  "dataset folder: spider (dev.json, tables.json, database/), bird (dev.json or "
                  "mini_dev_sqlite.json, dev_tables.json, dev_databases/), hexgen-trace (folder of *.json)");
  cmd->add_option("--questions", opt->spec.questions_file,
                  "question file overriding the folder's (any file in the official dev.json format; one trace file)");
  cmd->add_option("--limit", opt->spec.limit, "keep the first N questions (0 = all)")
      ->check(CLI::Range(size_t(0), kMaxWorkflows))
      ->capture_default_str();
  cmd->add_option("--seed", opt->spec.seed, "seed of the synthetic set and of the arrivals")->capture_default_str();
  cmd->add_option("--cache-dir", opt->spec.cache_dir, "where the synthetic databases are written and reused")
      ->capture_default_str();
  cmd->add_flag("--list", opt->list, "also print one JSON line per question (id, db, difficulty, question, gold SQL)");
  cmd->add_option("--save-trace", opt->save_trace,
                  "write a workload trace (JSON lines, one workflow per line) of seeded arrivals to this file");
  cmd->add_option("--workflows", opt->workflows, "workflows in the saved trace (0 = one per question)")
      ->check(CLI::Range(size_t(0), kMaxWorkflows))
      ->capture_default_str();
  cmd->add_option("--arrival", opt->arrival, "poisson | gamma:CV | trace:FILE")->capture_default_str();
  cmd->add_option("--rate", opt->rate, "arrival rate in workflows per second")->capture_default_str();
  cmd->add_option("--slo-budget", opt->budget_s,
                  "absolute deadline budget in seconds written into the trace (without it deadlines are left open; "
                  "`t2s replay` sets them from the cost model and --slo-scale)");
  cmd->callback([opt] {
    // Parse the arrival process first so a typo fails before a long load.
    std::optional<workloads::ArrivalSpec> arrival;
    if (!opt->save_trace.empty()) arrival = workloads::ArrivalSpec::parse(opt->arrival, opt->rate);
    auto w = workloads::load_workload(opt->spec);
    std::map<workloads::Difficulty, size_t> mix;
    for (const auto& q : w.questions) mix[q.difficulty]++;
    rapidjson::StringBuffer sb;
    rapidjson::Writer<rapidjson::StringBuffer> out(sb);
    out.StartObject();
    out.Key("workload");
    out.String(w.name.c_str());
    out.Key("questions");
    out.Uint64(w.questions.size());
    out.Key("difficulty");
    out.StartObject();
    for (auto d : {workloads::Difficulty::easy, workloads::Difficulty::medium, workloads::Difficulty::hard,
                   workloads::Difficulty::extra}) {
      auto name = workloads::difficulty_name(d);
      out.Key(name.data(), static_cast<rapidjson::SizeType>(name.size()));
      out.Uint64(mix[d]);
    }
    out.EndObject();
    out.Key("databases");
    out.Uint64(w.databases.size());
    out.Key("execution_available");
    out.Bool(w.execution_available);
    out.Key("execution_note");
    out.String(w.execution_note.c_str());
    out.EndObject();
    std::cout << sb.GetString() << "\n";
    if (opt->list) {
      for (const auto& q : w.questions) {
        rapidjson::StringBuffer qb;
        rapidjson::Writer<rapidjson::StringBuffer> qw(qb);
        qw.StartObject();
        for (auto [k, v] : {std::pair<const char*, std::string>{"id", q.id}, {"db", q.db_id},
                            {"difficulty", std::string(workloads::difficulty_name(q.difficulty))},
                            {"question", q.question}, {"gold_sql", q.gold_sql}}) {
          qw.Key(k);
          qw.String(v.c_str(), static_cast<rapidjson::SizeType>(v.size()));
        }
        qw.EndObject();
        std::cout << qb.GetString() << "\n";
      }
    }
    if (!opt->save_trace.empty()) {
      size_t n = opt->workflows ? opt->workflows : w.questions.size();
      auto arrivals = workloads::make_arrivals(*arrival, n, w.questions.size(), opt->spec.seed);
      if (opt->budget_s) {
        workloads::SloSpec slo;
        slo.budget_s = *opt->budget_s;
        workloads::assign_deadlines(arrivals, w, {}, slo);
      }
      workloads::save_workload_trace(opt->save_trace, w, arrivals);
    }
  });
}

}  // namespace t2s::cli
