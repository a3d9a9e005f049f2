#pragma once
//! Who writes the answer of a call when no real model serves it (simulation): the oracle or a trace.
#include <string>

#include "agents/llm_call.hpp"

namespace t2s::agents {

//! The text and length of a call's answer.
struct Response {
  std::string text;
  int output_tokens = 0;
};

//! Produces a call's answer at the moment the call is submitted, so the simulator knows its decode length.
class Responder {
 public:
  virtual ~Responder() = default;
  //! Deterministic for a given call (id, meta, seed).
  virtual Response respond(const LlmCall& call) = 0;
  //! "oracle" | "trace" | …
  virtual std::string name() const = 0;
};

}  // namespace t2s::agents
