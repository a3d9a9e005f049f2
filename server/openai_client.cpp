#include "server/openai_client.hpp"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cctype>
#include <chrono>
#include <thread>

namespace t2s::server {

void SseParser::feed(std::string_view piece, const std::function<void(std::string_view)>& on_data) {
  buffer_.append(piece);
  size_t start = 0;
  for (;;) {
    auto nl = buffer_.find('\n', start);
    if (nl == std::string::npos) break;
    std::string_view line(buffer_.data() + start, nl - start);
    start = nl + 1;
    if (!line.empty() && line.back() == '\r') line.remove_suffix(1);
    if (line.empty()) {  // end of one event
      if (!data_.empty()) on_data(data_);
      data_.clear();
      continue;
    }
    if (line.rfind("data:", 0) == 0) {
      auto v = line.substr(5);
      if (!v.empty() && v.front() == ' ') v.remove_prefix(1);
      if (!data_.empty()) data_ += '\n';
      data_.append(v);
    }
    // Comments (":"), "event:", "id:" and "retry:" lines carry nothing we use.
  }
  buffer_.erase(0, start);
}

bool says_prompt_too_long(std::string_view body) {
  std::string b(body.substr(0, 4096));
  for (auto& c : b) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  for (const char* needle : {"context length", "context_length", "maximum context", "context window",
                             "exceeds the available context", "prompt is too long", "too many tokens"})
    if (b.find(needle) != std::string::npos) return true;
  return false;
}

std::string completion_request_json(const CompletionRequest& q) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  auto str = [&](const std::string& s) { w.String(s.data(), static_cast<rapidjson::SizeType>(s.size())); };
  w.StartObject();
  if (!q.model.empty()) {
    w.Key("model");
    str(q.model);
  }
  if (q.chat) {
    w.Key("messages");
    w.StartArray();
    w.StartObject();
    w.Key("role");
    w.String("user");
    w.Key("content");
    str(q.prompt);
    w.EndObject();
    w.EndArray();
  } else {
    w.Key("prompt");
    str(q.prompt);
  }
  w.Key("max_tokens");
  w.Int(q.max_tokens);
  w.Key("temperature");
  w.Double(q.temperature);
  if (q.temperature > 0) {
    w.Key("seed");
    w.Uint64(q.seed);
  }
  if (!q.stop.empty()) {
    w.Key("stop");
    w.StartArray();
    for (const auto& s : q.stop) str(s);
    w.EndArray();
  }
  w.Key("stream");
  w.Bool(q.stream);
  if (q.stream) {
    w.Key("stream_options");
    w.StartObject();
    w.Key("include_usage");
    w.Bool(true);
    w.EndObject();
  }
  w.EndObject();
  return sb.GetString();
}

namespace {

// Applies one response object (a streamed chunk or the whole non-streamed body) to `r`.
void apply_chunk(const rapidjson::Value& d, bool chat, CompletionResult& r, std::string& delta) {
  if (!d.IsObject()) return;
  if (auto c = d.FindMember("choices"); c != d.MemberEnd() && c->value.IsArray() && !c->value.Empty()) {
    const auto& ch = c->value[0];
    const rapidjson::Value* text = nullptr;
    if (chat) {
      for (const char* k : {"delta", "message"})
        if (auto m = ch.FindMember(k); m != ch.MemberEnd() && m->value.IsObject())
          if (auto t = m->value.FindMember("content"); t != m->value.MemberEnd() && t->value.IsString())
            text = &t->value;
    } else if (auto t = ch.FindMember("text"); t != ch.MemberEnd() && t->value.IsString()) {
      text = &t->value;
    }
    if (text) delta.assign(text->GetString(), text->GetStringLength());
    if (auto f = ch.FindMember("finish_reason"); f != ch.MemberEnd() && f->value.IsString())
      r.finish_reason = f->value.GetString();
  }
  if (auto u = d.FindMember("usage"); u != d.MemberEnd() && u->value.IsObject()) {
    const auto& uv = u->value;
    if (auto p = uv.FindMember("prompt_tokens"); p != uv.MemberEnd() && p->value.IsInt())
      r.prompt_tokens = p->value.GetInt();
    if (auto p = uv.FindMember("completion_tokens"); p != uv.MemberEnd() && p->value.IsInt()) {
      r.completion_tokens = p->value.GetInt();
      r.usage_reported = true;
    }
    if (auto det = uv.FindMember("prompt_tokens_details"); det != uv.MemberEnd() && det->value.IsObject())
      if (auto ct = det->value.FindMember("cached_tokens"); ct != det->value.MemberEnd() && ct->value.IsInt())
        r.cached_tokens = ct->value.GetInt();
  }
}

}  // namespace

OpenAiClient::OpenAiClient(const std::string& base_url, OpenAiOptions options)
    : base_url_(base_url), url_(parse_url(base_url)), opt_(options),
      http_(std::make_unique<HttpClient>(url_.host, url_.port, options.http)) {}

OpenAiClient::~OpenAiClient() = default;

int OpenAiClient::context_window(const std::string& model) {
  auto h = http_->request("GET", url_.base_path + "/models");
  if (!h.ok || h.status != 200) return 0;
  rapidjson::Document d;
  d.Parse(h.body.data(), h.body.size());
  if (d.HasParseError() || !d.IsObject()) return 0;
  auto data = d.FindMember("data");
  if (data == d.MemberEnd() || !data->value.IsArray()) return 0;
  auto window = [](const rapidjson::Value& m) {
    for (const char* key : {"max_model_len", "context_length", "context_window", "n_ctx"})
      if (auto f = m.FindMember(key); f != m.MemberEnd() && f->value.IsInt() && f->value.GetInt() > 0)
        return f->value.GetInt();
    return 0;
  };
  const rapidjson::Value* chosen = nullptr;
  for (const auto& m : data->value.GetArray()) {
    if (!m.IsObject()) continue;
    auto id = m.FindMember("id");
    bool match = id != m.MemberEnd() && id->value.IsString() && model == id->value.GetString();
    if (match || (!chosen && model.empty())) chosen = &m;
    if (match) break;
  }
  if (!chosen && !data->value.GetArray().Empty() && data->value.GetArray()[0].IsObject())
    chosen = &data->value.GetArray()[0];
  return chosen ? window(*chosen) : 0;
}

void OpenAiClient::cancel() {
  cancelled_ = true;
  http_->cancel();
}

CompletionResult OpenAiClient::complete(const CompletionRequest& q,
                                        const std::function<void(std::string_view)>& on_delta) {
  using clock = std::chrono::steady_clock;
  auto t0 = clock::now();
  cancelled_ = false;
  CompletionResult r;
  const std::string target = url_.base_path + (q.chat ? "/chat/completions" : "/completions");
  const std::string body = completion_request_json(q);
  double backoff = opt_.retry_backoff_s;
  for (int attempt = 0; attempt <= opt_.max_retries; ++attempt) {
    r = CompletionResult{};
    r.attempts = attempt + 1;
    auto ta = clock::now();
    SseParser sse;
    bool bad_chunk = false;
    auto on_data = [&](std::string_view data) {
      if (data == "[DONE]") return;
      rapidjson::Document d;
      d.Parse(data.data(), data.size());
      if (d.HasParseError()) {
        bad_chunk = true;
        return;
      }
      if (auto e = d.FindMember("error"); e != d.MemberEnd()) {
        r.error = "server error in stream";
        bad_chunk = true;
        return;
      }
      std::string delta;
      apply_chunk(d, q.chat, r, delta);
      if (!delta.empty()) {
        if (r.first_token_s < 0) r.first_token_s = std::chrono::duration<double>(clock::now() - ta).count();
        r.deltas++;
        r.text += delta;
        if (on_delta) on_delta(delta);
      }
    };
    int events = 0;
    auto count_events = [&](std::string_view data) {
      events++;
      on_data(data);
    };
    auto h = http_->request("POST", target, body, "application/json", [&](std::string_view piece) {
      if (!q.stream) return true;
      sse.feed(piece, count_events);
      return !bad_chunk && !cancelled_.load();
    });
    r.status = h.status;
    if (h.cancelled || cancelled_.load()) {
      r.cancelled = true;
      r.error = "cancelled";
      break;
    }
    if (h.ok && h.status == 200) {
      if (q.stream) sse.feed("\n\n", count_events);  // a final event without its blank line
      if (events == 0) {  // not streamed (or the server ignored "stream"): one JSON object
        rapidjson::Document d;
        d.Parse(h.body.data(), h.body.size());
        if (d.HasParseError()) {
          r.error = "response is not JSON";
          bad_chunk = true;
        } else {
          std::string text;
          apply_chunk(d, q.chat, r, text);
          r.text = text;
          if (!text.empty()) {
            r.deltas = 1;
            r.first_token_s = std::chrono::duration<double>(clock::now() - ta).count();
            if (on_delta) on_delta(text);
          }
        }
      }
      if (!bad_chunk) {
        if (!r.usage_reported) r.completion_tokens = r.deltas;
        r.ok = true;
        break;
      }
      r.error = "malformed response: " + (r.error.empty() ? std::string("bad JSON chunk") : r.error);
      r.retryable = true;  // another instance may answer properly; this server will not improve on retry
      break;
    }
    // Failed attempt.
    if (bad_chunk) {  // the reader stopped at a chunk that is not the protocol
      r.error = "malformed response: " + (r.error.empty() ? std::string("bad JSON chunk") : r.error);
      r.retryable = true;  // another instance may answer properly; this server will not improve on retry
      break;
    }
    if (h.ok) {
      r.error = "HTTP " + std::to_string(h.status) + ": " + h.body.substr(0, 300);
      r.retryable = h.status == 429 || h.status >= 500;
      // A prompt longer than the context fails the same everywhere: never retried as transient.
      r.prompt_too_long = h.status >= 400 && h.status < 500 && says_prompt_too_long(h.body);
      if (r.prompt_too_long) r.retryable = false;
    } else {
      r.error = h.error;
      r.retryable = true;
    }
    if (!r.retryable || r.deltas > 0) break;  // never repeat a call whose tokens were already delivered
    if (attempt < opt_.max_retries) {
      std::this_thread::sleep_for(std::chrono::duration<double>(backoff));
      backoff *= 2;
      if (cancelled_.load()) {
        r.cancelled = true;
        r.error = "cancelled";
        break;
      }
    }
  }
  r.total_s = std::chrono::duration<double>(clock::now() - t0).count();
  return r;
}

}  // namespace t2s::server
