#pragma once
//! Registration of every `t2s` subcommand; each lives in its own cli/cmd_<name>.cpp.
#include <CLI/CLI.hpp>

namespace t2s::cli {

//! Adds every subcommand to `app`.
void add_all_commands(CLI::App& app);
//! `t2s eval-sql` (cli/cmd_eval_sql.cpp).
void add_eval_sql_command(CLI::App& app);
//! `t2s schema` (cli/cmd_schema.cpp).
void add_schema_command(CLI::App& app);
//! `t2s workload` (cli/cmd_workload.cpp).
void add_workload_command(CLI::App& app);
//! `t2s generate`: raw text generation with the embedded engine.
void add_generate_command(CLI::App& app);
//! `t2s eval-sql` (cli/cmd_eval_sql.cpp).
//! `t2s engine-serve` (cli/cmd_engine_serve.cpp).
void add_engine_serve_command(CLI::App& app);
//! `t2s schema` (cli/cmd_schema.cpp).
//! `t2s workload` (cli/cmd_workload.cpp).

//! `t2s tune` (cli/cmd_tune.cpp).
void add_tune_command(CLI::App& app);

//! `t2s replay` (cli/cmd_replay.cpp).
void add_replay_command(CLI::App& app);
//! `t2s compare` (cli/cmd_compare.cpp).
void add_compare_command(CLI::App& app);
//! `t2s demo` (cli/cmd_demo.cpp).
void add_demo_command(CLI::App& app);
//! `t2s cost-model` (cli/cmd_cost_model.cpp).
void add_cost_model_command(CLI::App& app);
//! `t2s compare-runs` (cli/cmd_compare_runs.cpp).
void add_compare_runs_command(CLI::App& app);
//! `t2s serve` (cli/cmd_serve.cpp).
void add_serve_command(CLI::App& app);
//! `t2s ask` (cli/cmd_ask.cpp).
void add_ask_command(CLI::App& app);
//! `t2s train` (cli/cmd_train.cpp).
void add_train_command(CLI::App& app);

}  // namespace t2s::cli
