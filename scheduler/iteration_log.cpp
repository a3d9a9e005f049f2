#include "scheduler/iteration_log.hpp"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cmath>
#include <fstream>

#include "common/json.hpp"

namespace t2s::scheduler {

std::string format_iteration_line(const IterationRecord& r) {
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  const auto& s = r.sample.shape;
  w.StartObject();
  w.Key("instance"), w.String(r.instance.c_str(), static_cast<rapidjson::SizeType>(r.instance.size()));
  w.Key("t_s"), json::write_number(w, r.t_s);
  w.Key("prefill_tokens"), w.Int(s.prefill_tokens);
  w.Key("prefill_attn"), json::write_number(w, s.prefill_attn);
  w.Key("decode_seqs"), w.Int(s.decode_seqs);
  w.Key("decode_context"), w.Int64(s.decode_context);
  w.Key("seconds"), json::write_number(w, r.sample.seconds);
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

std::vector<IterationRecord> load_iteration_log(const std::string& path) {
  std::ifstream in(path);
  if (!in) throw InputError(path + ": cannot open");
  std::vector<IterationRecord> out;
  std::string line;
  for (int n = 1; std::getline(in, line); ++n) {
    if (line.find_first_not_of(" \t\r") == std::string::npos) continue;
    const std::string where = path + ":" + std::to_string(n);
    auto v = json::parse(line, where);
    if (!v.IsObject()) throw InputError(where + ": expected a JSON object");
    json::check_fields(v, {"instance", "t_s", "prefill_tokens", "prefill_attn", "decode_seqs", "decode_context",
                           "seconds"},
                       where);
    IterationRecord r;
    r.instance = json::opt_string(v, "instance", "");
    r.t_s = json::opt_double(v, "t_s", 0);
    auto& s = r.sample.shape;
    s.prefill_tokens = static_cast<int>(json::opt_int_in(v, "prefill_tokens", 0, 0, 1 << 24, where));
    s.prefill_attn = json::opt_double_in(v, "prefill_attn", 0, 0, 1e15, where);
    s.decode_seqs = static_cast<int>(json::opt_int_in(v, "decode_seqs", 0, 0, 1 << 24, where));
    // bench_gpu writes it in %g form (1.2e+06): any number, rounded.
    s.decode_context = std::llround(json::opt_double_in(v, "decode_context", 0, 0, 1e15, where));
    r.sample.seconds = json::get_double(v, "seconds", where);
    if (!std::isfinite(r.sample.seconds) || r.sample.seconds <= 0)
      throw InputError(where + ": field 'seconds' must be a finite number > 0");
    out.push_back(std::move(r));
  }
  return out;
}

Expected<LinearIterationModel> fit_instance_iterations(const std::vector<IterationSample>& samples) {
  auto fit = fit_iteration_model(samples);
  if (!fit.ok()) return fit;
  bool attn = false, prefill = false;
  for (const auto& s : samples) {
    attn = attn || s.shape.prefill_attn > 0;
    prefill = prefill || s.shape.prefill_tokens > 0;
  }
  LinearIterationModel m = *fit;
  if (!attn && prefill) m.c_attn = m.c_ctx;
  return m;
}

std::map<std::string, std::vector<IterationSample>> samples_by_instance(const std::vector<IterationRecord>& records) {
  std::map<std::string, std::vector<IterationSample>> out;
  for (const auto& r : records) out[r.instance].push_back(r.sample);
  return out;
}

}  // namespace t2s::scheduler
