#pragma once
//! Flags shared by `t2s serve` and `t2s ask` (the agent on the real-time runtime).
#include <CLI/CLI.hpp>

#include "server/serve_app.hpp"

namespace t2s::cli {

//! Adds the workload/cluster/policy/runtime flags that fill `c`.
inline void add_serve_config_flags(CLI::App* cmd, server::ServeConfig& c) {
  cmd->add_option("--workload", c.workload, "synthetic | spider | bird (the databases questions may name)")
      ->check(CLI::IsMember({"synthetic", "spider", "bird"}))
      ->capture_default_str();
  cmd->add_option("--data", c.data_dir, "spider/bird dataset folder");
  cmd->add_option("--db-dir", c.db_dir,
                  "serve this folder's SQLite files (flat *.sqlite/*.db or the Spider layout) for free-text "
                  "questions; opened read-only, nothing is ever written there");
  cmd->add_option("--cache-dir", c.cache_dir, "synthetic: t2s's own folder where the benchmark is generated and reused")
      ->capture_default_str();
  cmd->add_option("--responder", c.responder,
                  "who answers when --cluster is not given: model (--cluster local: t2s's bundled model), oracle "
                  "(--cluster hetero-small: the calibrated oracle at modelled speed, benchmark questions only), "
                  "auto (model when the bundled model exists, else oracle)")
      ->check(CLI::IsMember({"auto", "model", "oracle"}))
      ->capture_default_str();
  cmd->add_option("--cluster", c.cluster,
                  "cluster preset (hetero-small, hetero-paper, local) or cluster JSON file; simulated instances "
                  "answer with the oracle at modelled speed, engine/remote instances with their model");
  cmd->add_option("--policy", c.policy, "scheduling policy (default: t2s when built, else least-loaded)");
  cmd->add_option("--deadline-ms", c.deadline_ms, "default deadline of a question")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--speed", c.runtime.responder_speed,
                  "simulated instances run their modelled time divided by this")
      ->check(CLI::PositiveNumber)
      ->capture_default_str();
  cmd->add_option("--oracle-error-scale", c.oracle_error_scale, "0 = the oracle never errs, 1 = calibrated")
      ->check(CLI::NonNegativeNumber)
      ->capture_default_str();
  cmd->add_option("--sql-threads", c.runtime.sql_threads, "SQLite worker threads")
      ->check(CLI::Range(1, 64))
      ->capture_default_str();
  cmd->add_option("--tokenizer", c.runtime.engine_tokenizer,
                  "tokenizer for llama2.c engine instances (default: tokenizer.bin or tok512.bin beside the model)");
  cmd->add_option("--model", c.model,
                  "--cluster local: the local engine instance's model file (default: t2s's bundled "
                  "models/t2s-sql.gguf, else the shared data's llama2c/stories260K.bin)");
  cmd->add_option("--seed", c.seed, "agent and oracle seed")->capture_default_str();
}

}  // namespace t2s::cli
