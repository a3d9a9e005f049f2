// The `t2s` command line: one binary, one subcommand per job. Exit codes: 0 ok, 2 bad usage/input, 1 internal.
#include <CLI/CLI.hpp>

#include <exception>
#include <iostream>

#include "cli/commands.hpp"
#include "common/status.hpp"

int main(int argc, char** argv) {
  CLI::App app{"t2s: deadline-aware serving of agentic Text-to-SQL"};
  app.require_subcommand(1);
  app.set_version_flag("--version", "t2s 0.1.0");
  t2s::cli::add_all_commands(app);
  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    int rc = app.exit(e);
    return rc == 0 ? 0 : 2;
  } catch (const t2s::InputError& e) {
    std::cerr << "t2s: error: " << e.what() << "\n";
    return 2;
  } catch (const std::exception& e) {
    std::cerr << "t2s: internal error: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
