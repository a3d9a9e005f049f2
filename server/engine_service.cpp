#include "server/engine_service.hpp"

#include <rapidjson/document.h>

#include <atomic>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <map>
#include <mutex>

#include "common/json_writer.hpp"
#include "common/status.hpp"
#include "runtime/executors.hpp"
#include "runtime/metrics.hpp"

namespace t2s::server {

namespace {


HttpResponse openai_error(int status, const std::string& message, const char* type = "invalid_request_error") {
  rapidjson::StringBuffer sb;
  JsonWriter w(sb);
  w.StartObject();
  w.Key("error");
  w.StartObject();
  w.Key("message");
  write_json_string(w, message);
  w.Key("type");
  w.String(type);
  w.EndObject();
  w.EndObject();
  return {status, "application/json", sb.GetString(), {}};
}

// One HTTP request being served.
struct Request {
  std::shared_ptr<HttpReply> reply;
  bool stream = false, chat = false, first_delta = true;
  std::string id, model;
  int64_t created = 0;
  int max_tokens = 0;
  std::string text;  // accumulated (non-streamed responses)
};

}  // namespace

struct EngineService::Impl {
  EngineServiceOptions opt;
  Logger* log = nullptr;
  std::string model_name;
  std::unique_ptr<EngineExecutor> exec;
  std::chrono::steady_clock::time_point t0 = std::chrono::steady_clock::now();
  std::mutex mu;
  std::map<uint64_t, std::shared_ptr<Request>> open;
  uint64_t next_id = 0;
  MetricsRegistry metrics;
  bool stopped = false;

  double now() const { return std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count(); }

  // The fields every OpenAI completion object starts with, streamed chunk or whole response alike.
  static void write_head(JsonWriter& w, const Request& r, bool chunk) {
    w.Key("id");
    write_json_string(w, r.id);
    w.Key("object");
    w.String(!r.chat ? "text_completion" : chunk ? "chat.completion.chunk" : "chat.completion");
    w.Key("created");
    w.Int64(r.created);
    w.Key("model");
    write_json_string(w, r.model);
  }

  // `"choices": [ONE]` with `text` as a chunk's delta or the whole answer; finish = nullptr: not finished yet.
  static void write_choices(JsonWriter& w, const Request& r, bool chunk, const std::string& text, const char* finish) {
    w.Key("choices");
    w.StartArray();
    w.StartObject();
    w.Key("index");
    w.Int(0);
    if (r.chat) {
      w.Key(chunk ? "delta" : "message");
      w.StartObject();
      if (!chunk || r.first_delta) {
        w.Key("role");
        w.String("assistant");
      }
      if (!chunk || !text.empty() || !finish) {
        w.Key("content");
        write_json_string(w, text);
      }
      w.EndObject();
    } else {
      w.Key("text");
      write_json_string(w, text);
    }
    w.Key("finish_reason");
    if (finish)
      w.String(finish);
    else
      w.Null();
    w.EndObject();
    w.EndArray();
  }

  std::string chunk_json(const Request& r, const std::string& delta, const char* finish) {
    rapidjson::StringBuffer sb;
    JsonWriter w(sb);
    w.StartObject();
    write_head(w, r, true);
    write_choices(w, r, true, delta, finish);
    w.EndObject();
    return sb.GetString();
  }

  static void write_usage(JsonWriter& w, const agents::LlmResult& res) {
    w.Key("usage");
    w.StartObject();
    w.Key("prompt_tokens");
    w.Int(res.prompt_tokens);
    w.Key("completion_tokens");
    w.Int(res.output_tokens);
    w.Key("total_tokens");
    w.Int(res.prompt_tokens + res.output_tokens);
    w.Key("prompt_tokens_details");
    w.StartObject();
    w.Key("cached_tokens");
    w.Int(res.cached_tokens);
    w.EndObject();
    w.EndObject();
  }

  void on_token(uint64_t call_id, const std::string& text) {
    std::shared_ptr<Request> r;
    {
      std::lock_guard lk(mu);
      auto it = open.find(call_id);
      if (it == open.end()) return;
      r = it->second;
    }
    if (!r->stream) {
      // Nothing is written until the end: ask the connection whether its client is still there.
      if (r->reply->client_gone()) return exec->cancel(call_id);
      r->text += text;
      return;
    }
    bool alive = r->reply->write("data: " + chunk_json(*r, text, nullptr) + "\n\n");
    r->first_delta = false;
    if (!alive) exec->cancel(call_id);  // the client went away: free its batch slot
  }

  void on_done(uint64_t call_id, const agents::LlmResult& res) {
    std::shared_ptr<Request> r;
    {
      std::lock_guard lk(mu);
      auto it = open.find(call_id);
      if (it == open.end()) return;
      r = it->second;
      open.erase(it);
    }
    metrics.add("t2s_engine_requests_total", {{"outcome", res.ok ? "ok" : (res.cancelled ? "cancelled" : "error")}});
    if (res.ok) {
      metrics.add("t2s_engine_prompt_tokens_total", {}, res.prompt_tokens);
      metrics.add("t2s_engine_completion_tokens_total", {}, res.output_tokens);
      metrics.add("t2s_engine_cached_tokens_total", {}, res.cached_tokens);
      metrics.observe("t2s_engine_request_seconds", {}, res.finished_s - res.started_s);
    }
    const char* finish = res.output_tokens >= r->max_tokens ? "length" : "stop";
    if (r->stream) {
      if (!res.ok) {
        r->reply->write("data: " + openai_error(500, res.error, "engine_error").body + "\n\n");
      } else {
        r->reply->write("data: " + chunk_json(*r, "", finish) + "\n\n");
        rapidjson::StringBuffer sb;
        JsonWriter w(sb);
        w.StartObject();
        write_head(w, *r, true);
        w.Key("choices");
        w.StartArray();
        w.EndArray();
        write_usage(w, res);
        w.EndObject();
        r->reply->write(std::string("data: ") + sb.GetString() + "\n\n");
      }
      r->reply->write("data: [DONE]\n\n");
      r->reply->end();
      return;
    }
    if (!res.ok) {
      r->reply->send(openai_error(res.cancelled ? 503 : 400, res.error, "engine_error"));
      return;
    }
    rapidjson::StringBuffer sb;
    JsonWriter w(sb);
    w.StartObject();
    write_head(w, *r, false);
    write_choices(w, *r, false, res.text, finish);
    write_usage(w, res);
    w.EndObject();
    r->reply->send({200, "application/json", sb.GetString(), {}});
  }

  HttpResponse prompt_too_long(size_t bytes) const {
    return openai_error(413, "prompt is " + std::to_string(bytes) + " bytes, more than the limit of " +
                                 std::to_string(opt.max_prompt_bytes) + " (--max-prompt-bytes)");
  }

  void handle(const HttpRequest& req, const std::shared_ptr<HttpReply>& reply, bool chat) {
    rapidjson::Document d;
    d.Parse(req.body.data(), req.body.size());
    if (d.HasParseError() || !d.IsObject()) return reply->send(openai_error(400, "request body is not a JSON object"));
    agents::LlmCall c;
    if (chat) {
      auto m = d.FindMember("messages");
      if (m == d.MemberEnd() || !m->value.IsArray() || m->value.Empty())
        return reply->send(openai_error(400, "'messages' must be a non-empty array"));
      std::vector<std::pair<std::string, std::string>> msgs;
      size_t bytes = 0;
      for (const auto& e : m->value.GetArray()) {
        if (!e.IsObject() || !e.HasMember("role") || !e["role"].IsString() || !e.HasMember("content") ||
            !e["content"].IsString())
          return reply->send(openai_error(400, "each message needs string 'role' and 'content'"));
        bytes += e["content"].GetStringLength() + e["role"].GetStringLength();
        if (bytes > opt.max_prompt_bytes) return reply->send(prompt_too_long(bytes));
        msgs.emplace_back(e["role"].GetString(), e["content"].GetString());
      }
      c.prompt = exec->chat_prompt(msgs);
    } else {
      auto p = d.FindMember("prompt");
      if (p == d.MemberEnd()) return reply->send(openai_error(400, "missing 'prompt'"));
      if (p->value.IsString())
        c.prompt = p->value.GetString();
      else if (p->value.IsArray() && p->value.Size() == 1 && p->value[0].IsString())
        c.prompt = p->value[0].GetString();
      else
        return reply->send(openai_error(400, "'prompt' must be a string (or an array of one string)"));
    }
    // Checked here, on the HTTP thread and before the engine's: the byte cap bounds the tokenizer's time, and a
    // prompt the context cannot hold is refused without reaching the engine.
    if (c.prompt.size() > opt.max_prompt_bytes) return reply->send(prompt_too_long(c.prompt.size()));
    if (int tokens = exec->count_tokens(c.prompt), context = exec->context_tokens(); context > 0 && tokens >= context)
      return reply->send(openai_error(400, "prompt is " + std::to_string(tokens) + " tokens; the model's context is " +
                                               std::to_string(context) + " tokens"));
    c.max_output_tokens = opt.default_max_tokens;
    for (const char* k : {"max_tokens", "max_completion_tokens"})
      if (auto it = d.FindMember(k); it != d.MemberEnd() && !it->value.IsNull()) {
        if (!it->value.IsInt() || it->value.GetInt() < 1)
          return reply->send(openai_error(400, std::string("'") + k + "' must be a positive integer"));
        c.max_output_tokens = it->value.GetInt();
      }
    if (auto it = d.FindMember("temperature"); it != d.MemberEnd() && !it->value.IsNull()) {
      if (!it->value.IsNumber() || it->value.GetDouble() < 0)
        return reply->send(openai_error(400, "'temperature' must be a number >= 0"));
      c.temperature = it->value.GetDouble();
    }
    if (auto it = d.FindMember("seed"); it != d.MemberEnd() && !it->value.IsNull()) {
      if (!it->value.IsUint64()) return reply->send(openai_error(400, "'seed' must be a non-negative integer"));
      c.seed = it->value.GetUint64();
    }
    if (auto it = d.FindMember("stop"); it != d.MemberEnd() && !it->value.IsNull()) {
      if (it->value.IsString()) {
        c.stop.push_back(it->value.GetString());
      } else if (it->value.IsArray()) {
        for (const auto& s : it->value.GetArray()) {
          if (!s.IsString()) return reply->send(openai_error(400, "'stop' entries must be strings"));
          c.stop.push_back(s.GetString());
        }
      } else {
        return reply->send(openai_error(400, "'stop' must be a string or an array of strings"));
      }
    }
    bool stream = false;
    if (auto it = d.FindMember("stream"); it != d.MemberEnd() && it->value.IsBool()) stream = it->value.GetBool();
    auto r = std::make_shared<Request>();
    r->reply = reply;
    r->stream = stream;
    r->chat = chat;
    r->model = model_name;
    r->created = static_cast<int64_t>(std::time(nullptr));
    r->max_tokens = c.max_output_tokens;
    {
      std::lock_guard lk(mu);
      if (stopped) return reply->send(openai_error(503, "server is shutting down", "server_error"));
      if (open.size() >= opt.max_pending)
        return reply->send(openai_error(503, "too many requests in flight", "server_error"));
      c.id = ++next_id;
      r->id = (chat ? "chatcmpl-" : "cmpl-") + std::to_string(c.id);
      open[c.id] = r;
    }
    if (stream) reply->begin_stream(200, "text/event-stream");
    exec->start(c, nullptr, now());
  }
};

EngineService::EngineService(EngineServiceOptions options, Logger* log) : impl_(std::make_shared<Impl>()) {
  auto& m = *impl_;
  m.opt = std::move(options);
  m.log = log;
  m.model_name = m.opt.model_name.empty() ? std::filesystem::path(m.opt.model_file).stem().string() : m.opt.model_name;
  scheduler::InstanceSpec spec;
  spec.name = m.model_name;
  spec.backend = scheduler::Backend::engine;
  spec.model_file = m.opt.model_file;
  spec.device = "cpu";
  spec.threads = m.opt.threads;
  spec.max_running = m.opt.max_sequences;
  ExecutorSink sink;
  Impl* p = &m;
  sink.done = [p](uint64_t id, agents::LlmResult r, bool) { p->on_done(id, r); };
  sink.token = [p](uint64_t id, const std::string& t) { p->on_token(id, t); };
  sink.sample = [p](const scheduler::IterationShape& s, double sec) {
    p->metrics.observe("t2s_engine_iteration_seconds", {}, sec);
    p->metrics.add("t2s_engine_iteration_tokens_total", {}, s.prefill_tokens + s.decode_seqs);
  };
  m.metrics.histogram("t2s_engine_iteration_seconds", "wall time of one batch iteration",
                      {0.001, 0.003, 0.01, 0.03, 0.1, 0.3, 1});
  m.metrics.histogram("t2s_engine_request_seconds", "admission to last token", {0.01, 0.03, 0.1, 0.3, 1, 3, 10, 30});
  m.exec = make_engine_executor(spec, m.opt.tokenizer_file, m.opt.kv_mb, m.opt.max_batch_tokens, std::move(sink),
                                [p] { return p->now(); }, log);
}

EngineService::~EngineService() { stop(); }

void EngineService::stop() {
  {
    std::lock_guard lk(impl_->mu);
    if (impl_->stopped) return;
    impl_->stopped = true;
  }
  impl_->exec->stop();  // open requests end cancelled through on_done
}

const std::string& EngineService::model_name() const { return impl_->model_name; }

void EngineService::attach(HttpServer& server) {
  auto m = impl_;
  server.route("POST", "/v1/completions",
               [m](const HttpRequest& q, std::shared_ptr<HttpReply> r) { m->handle(q, r, false); });
  server.route("POST", "/v1/chat/completions",
               [m](const HttpRequest& q, std::shared_ptr<HttpReply> r) { m->handle(q, r, true); });
  server.route("GET", "/v1/models", [m](const HttpRequest&, std::shared_ptr<HttpReply> r) {
    r->send({200, "application/json",
             R"({"object":"list","data":[{"id":")" + m->model_name + R"(","object":"model","owned_by":"t2s","max_model_len":)" +
                 std::to_string(m->exec->context_tokens()) + "}]}",
             {}});
  });
  server.route("GET", "/healthz", [](const HttpRequest&, std::shared_ptr<HttpReply> r) {
    r->send({200, "text/plain; charset=utf-8", "ok\n", {}});
  });
  server.route("GET", "/metrics", [m](const HttpRequest&, std::shared_ptr<HttpReply> r) {
    {
      std::lock_guard lk(m->mu);
      m->metrics.set("t2s_engine_open_requests", {}, static_cast<double>(m->open.size()));
    }
    r->send({200, "text/plain; version=0.0.4; charset=utf-8", m->metrics.render(), {}});
  });
}

}  // namespace t2s::server
