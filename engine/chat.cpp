#include "engine/chat.hpp"

namespace t2s::engine {

ChatFormat detect_chat_format(const std::string& t) {
  if (t.find("<|im_start|>") != std::string::npos) return ChatFormat::ChatML;
  if (t.find("<|start_header_id|>") != std::string::npos) return ChatFormat::Llama3;
  return ChatFormat::Plain;
}

std::string apply_chat_template(ChatFormat format, const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                const std::string& jinja_template) {
  std::string out;
  switch (format) {
    case ChatFormat::ChatML: {
      const std::string qwen_default = "You are Qwen, created by Alibaba Cloud. You are a helpful assistant.";
      if ((messages.empty() || messages.front().role != "system") && jinja_template.find(qwen_default) != std::string::npos)
        out += "<|im_start|>system\n" + qwen_default + "<|im_end|>\n";
      for (const auto& m : messages) out += "<|im_start|>" + m.role + "\n" + m.content + "<|im_end|>\n";
      if (add_generation_prompt) out += "<|im_start|>assistant\n";
      break;
    }
    case ChatFormat::Llama3:
      for (const auto& m : messages)
        out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + m.content + "<|eot_id|>";
      if (add_generation_prompt) out += "<|start_header_id|>assistant<|end_header_id|>\n\n";
      break;
    case ChatFormat::Plain:
      for (const auto& m : messages) out += m.role + ": " + m.content + "\n";
      if (add_generation_prompt) out += "assistant:";
      break;
  }
  return out;
}

}  // namespace t2s::engine
