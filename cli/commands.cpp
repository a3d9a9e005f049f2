#include "cli/commands.hpp"

namespace t2s::cli {

// One line per subcommand; each add_* lives in cli/cmd_<name>.cpp.
void add_all_commands(CLI::App& app) {
  (void)app;
  add_tune_command(app);
  add_replay_command(app);
  add_compare_command(app);
  add_demo_command(app);
  add_eval_sql_command(app);
  add_schema_command(app);
  add_workload_command(app);
  add_generate_command(app);
  add_cost_model_command(app);
  add_compare_runs_command(app);
  add_engine_serve_command(app);
  add_serve_command(app);
  add_ask_command(app);
  add_train_command(app);
}

}  // namespace t2s::cli
