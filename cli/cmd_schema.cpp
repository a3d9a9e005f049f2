// `t2s schema`: a database's schema as the prompt text the agents send, with its token estimate.
#include <iostream>
#include <sstream>

#include "cli/commands.hpp"
#include "common/status.hpp"
#include "sqlexec/schema.hpp"
#include "sqlexec/text.hpp"

namespace t2s::cli {

namespace {

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  std::stringstream in(s);
  for (std::string item; std::getline(in, item, ',');)
    if (!item.empty()) out.push_back(item);
  return out;
}

}  // namespace

void add_schema_command(CLI::App& app) {
  struct Options {
    std::string db, tables;
    int samples = 3;
    size_t max_sample_chars = 40;
    bool count = false;
  };
  auto opt = std::make_shared<Options>();
  auto* cmd = app.add_subcommand("schema", "Print a database's schema as prompt text (CREATE TABLE with sample "
                                           "comments) or, with --count, its size in characters and estimated tokens");
  cmd->add_option("--db", opt->db, "SQLite database file (opened read-only)")->required();
  cmd->add_option("--samples", opt->samples, "distinct sample values per column (0: none)")
      ->check(CLI::Range(0, 100))
      ->capture_default_str();
  cmd->add_option("--max-sample-chars", opt->max_sample_chars, "longer sample values are cut")->capture_default_str();
  cmd->add_option("--tables", opt->tables, "comma-separated tables to keep (default: all)");
  cmd->add_flag("--count", opt->count, "print `chars=N tokens_estimate=M` instead of the text");
  cmd->callback([opt] {
    auto db = sqlexec::Database::open(opt->db);
    sqlexec::Schema schema = sqlexec::introspect(*db, opt->samples);
    sqlexec::SchemaPromptOptions po;
    po.tables = split_commas(opt->tables);
    for (const auto& t : po.tables) {
      bool found = false;
      for (const auto& table : schema.tables) found = found || sqlexec::lower_ascii(table.name) == sqlexec::lower_ascii(t);
      if (!found) throw InputError("--tables: database '" + opt->db + "' has no table '" + t + "'");
    }
    po.samples = opt->samples > 0;
    po.max_sample_chars = opt->max_sample_chars;
    std::string text = sqlexec::schema_prompt(schema, po);
    if (opt->count)
      std::cout << "chars=" << text.size() << " tokens_estimate=" << sqlexec::estimate_tokens(text) << "\n";
    else
      std::cout << text;
  });
}

}  // namespace t2s::cli
