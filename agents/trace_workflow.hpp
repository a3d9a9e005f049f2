#pragma once
//! Replay of the paper's hexgen traces: the exact call sequence and token lengths of each recorded query.
#include <memory>
#include <vector>

#include "agents/responder.hpp"
#include "agents/workflow.hpp"

namespace t2s::agents {

//! How trace questions become workflows.
struct TraceFactoryOptions {
  //! Keep the agentic tool-picker calls ("Information Retriever", "unit_tester"); false drops them.
  bool tool_picker = true;
  //! The traces record lengths only. Calls of the same kind within one question are assumed to share this
  //! fraction of the shortest such prompt as a prefix (instructions, schema, few-shot text); 0 = no sharing.
  double prefix_fraction = 0.9;
  //! true: remaining-work estimates use this question's own recorded future (an oracle view of the future);
  //! false: the population estimate over all trace questions after the same number of stages (the default).
  bool exact_remaining = false;
};

//! One stage of a trace question: its kind and the recorded (prompt, output) lengths of its calls.
struct TraceStage {
  StageKind kind = StageKind::other;
  std::vector<workloads::TraceCall> calls;
};

//! Groups a recorded call sequence into stages: consecutive candidate-generation calls form one parallel stage,
//! consecutive evaluation calls another; every other call is its own sequential stage.
std::vector<TraceStage> group_trace_stages(const std::vector<workloads::TraceCall>& calls, bool tool_picker = true);

//! Responder hint carried by trace calls: the recorded output length.
struct TraceCallMeta final : CallMeta {
  int output_tokens = 0;
};

//! A factory of trace-replay workflows (questions must carry trace_calls; others fail with a clear error).
//! Remaining-work estimates use the population of questions seen so far.
std::unique_ptr<WorkflowFactory> make_trace_factory(TraceFactoryOptions options = {});
//! The same, with the population estimate taken over all questions of `workload` from the start (preferred).
std::unique_ptr<WorkflowFactory> make_trace_factory(const workloads::Workload& workload,
                                                    TraceFactoryOptions options = {});
//! The responder that answers trace calls with their recorded output length (and empty text); calls without
//! trace hints get their expected_output_tokens.
std::unique_ptr<Responder> make_trace_responder();

}  // namespace t2s::agents
