#pragma once
//! Chat prompt formatting for instruct models (Qwen ChatML, Llama-3), chosen from the GGUF chat template.
#include <string>
#include <vector>

namespace t2s::engine {

//! One chat turn.
struct ChatMessage {
  std::string role;     //!< "system", "user" or "assistant"
  std::string content;  //!< the text
};

//! Prompt layouts we render natively (the Jinja template itself is not executed).
enum class ChatFormat { ChatML, Llama3, Plain };

//! Recognises the layout of a `tokenizer.chat_template`: "<|im_start|>" → ChatML, "<|start_header_id|>" → Llama3,
//! otherwise Plain.
ChatFormat detect_chat_format(const std::string& jinja_template);

//! Renders `messages` (without the BOS token, which the tokenizer adds) and, when `add_generation_prompt`, the
//! header of the assistant's turn. ChatML adds Qwen2.5's default system turn when the template has one and the
//! messages start without a system turn.
std::string apply_chat_template(ChatFormat format, const std::vector<ChatMessage>& messages, bool add_generation_prompt,
                                const std::string& jinja_template = "");

}  // namespace t2s::engine
