#pragma once
//! A client of OpenAI-compatible servers (`/v1/completions`, `/v1/chat/completions`, SSE streaming): t2s's own
//! `engine-serve`, vLLM, SGLang, llama.cpp server. One keep-alive connection per client object, timeouts, retries
//! of requests that failed before any token arrived.
#include <atomic>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "server/http_client.hpp"

namespace t2s::server {

//! One completion request.
struct CompletionRequest {
  std::string model;                //!< model name sent to the server ("" = omitted)
  std::string prompt;               //!< prompt text (the user message when chat)
  bool chat = false;                //!< use /chat/completions with one user message
  int max_tokens = 256;             //!< generation cap
  double temperature = 0;           //!< 0 = greedy
  uint64_t seed = 0;                //!< sampling seed (sent when temperature > 0)
  std::vector<std::string> stop;    //!< stop strings
  bool stream = true;               //!< request SSE streaming
};

//! How a completion ended.
struct CompletionResult {
  bool ok = false;            //!< a full answer arrived
  bool cancelled = false;     //!< ended by cancel()
  bool retryable = false;     //!< failed in a way another server may not (connection lost, 5xx, 429, timeout, garbage)
  bool prompt_too_long = false;  //!< the server refused the prompt as longer than its context (permanent)
  std::string error;          //!< why it failed
  int status = 0;             //!< last HTTP status
  std::string text;           //!< generated text (partial when failed mid-stream)
  std::string finish_reason;  //!< "stop" | "length" | …
  int prompt_tokens = 0;      //!< usage.prompt_tokens (0 when the server sent none)
  int completion_tokens = 0;  //!< usage.completion_tokens, else the number of streamed deltas
  int cached_tokens = 0;      //!< usage.prompt_tokens_details.cached_tokens
  bool usage_reported = false;  //!< the server sent usage counts
  int attempts = 0;           //!< HTTP attempts made
  int deltas = 0;             //!< streamed text deltas received
  double first_token_s = -1;  //!< seconds from the last attempt's start to its first delta (-1: none)
  double total_s = 0;         //!< seconds of the whole call, retries included
};

//! Options of an OpenAiClient.
struct OpenAiOptions {
  HttpClientOptions http;        //!< connection/idle/request timeouts
  int max_retries = 2;           //!< extra attempts for failures before any token arrived
  double retry_backoff_s = 0.1;  //!< first backoff; doubles per retry
};

//! Incremental parser of a `text/event-stream` body: feeds arbitrary pieces, emits each event's data.
class SseParser {
 public:
  //! Consumes `piece`; calls `on_data` with the joined `data:` lines of every complete event.
  void feed(std::string_view piece, const std::function<void(std::string_view data)>& on_data);

 private:
  std::string buffer_;
  std::string data_;
};

//! True when an error body says the prompt does not fit the model's context (vLLM, llama.cpp, OpenAI wordings).
bool says_prompt_too_long(std::string_view body);

//! The JSON body of `request` (completions or chat form).
std::string completion_request_json(const CompletionRequest& request);

//! A client bound to one server URL (`http://host:port/v1`). Not thread-safe except cancel().
class OpenAiClient {
 public:
  //! Throws InputError for a malformed URL.
  OpenAiClient(const std::string& base_url, OpenAiOptions options = {});
  ~OpenAiClient();
  //! Runs one completion; `on_delta` sees each streamed piece of text.
  CompletionResult complete(const CompletionRequest& request,
                            const std::function<void(std::string_view delta)>& on_delta = {});
  //! The context window the server reports for `model` (or its first model) on GET /models: vLLM's
  //! `max_model_len`, else `context_length`, `context_window` or `n_ctx`; 0 when none is reported or on failure.
  int context_window(const std::string& model);
  //! Aborts the completion in progress (thread-safe).
  void cancel();
  //! The server's base URL.
  const std::string& base_url() const { return base_url_; }

 private:
  std::string base_url_;
  Url url_;
  OpenAiOptions opt_;
  std::unique_ptr<HttpClient> http_;
  std::atomic<bool> cancelled_{false};
};

}  // namespace t2s::server
