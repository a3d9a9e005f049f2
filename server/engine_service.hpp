#pragma once
//! `t2s engine-serve`: the embedded engine behind an OpenAI-compatible API (`/v1/completions`,
//! `/v1/chat/completions`, SSE streaming, usage counts), with continuous batching across HTTP requests, so that it
//! can serve as a remote instance of another t2s.
#include <cstdint>
#include <memory>
#include <string>

#include "common/log.hpp"
#include "server/http_server.hpp"

namespace t2s::server {

//! Options of the engine service.
struct EngineServiceOptions {
  std::string model_file;          //!< llama2.c checkpoint or GGUF file
  std::string tokenizer_file;      //!< llama2.c tokenizer ("" = tokenizer.bin beside the model, or the GGUF's own)
  std::string model_name;          //!< name reported in responses ("" = the model file's stem)
  int threads = 1;                 //!< CPU threads of the backend
  double kv_mb = 64;               //!< KV pool (MiB)
  int max_batch_tokens = 256;      //!< token budget per iteration
  int max_sequences = 32;          //!< calls batched at once (more wait in order)
  int default_max_tokens = 256;    //!< when a request gives no max_tokens
  size_t max_pending = 1024;       //!< requests waiting or running beyond which new ones get 503
  size_t max_prompt_bytes = 256 << 10;  //!< longer prompts (chat: all message contents) get 413 before tokenizing
};

//! Serves the engine's OpenAI-compatible endpoints on an HttpServer.
class EngineService {
 public:
  //! Loads the model; throws InputError when it cannot.
  EngineService(EngineServiceOptions options, Logger* log = nullptr);
  ~EngineService();
  EngineService(const EngineService&) = delete;
  EngineService& operator=(const EngineService&) = delete;
  //! Registers `/v1/completions`, `/v1/chat/completions`, `/v1/models`, `/healthz` and `/metrics` on `server`.
  void attach(HttpServer& server);
  //! The model name reported in responses.
  const std::string& model_name() const;
  //! Stops the runner; requests still open end with an error (call before the server is destroyed).
  void stop();

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

}  // namespace t2s::server
