#pragma once
//! Replay of recorded call sequences: the paper's hexgen traces (the exact call sequence and token lengths of each
//! query) and t2s's own recorded runs (`recorded.json`: each workflow's exact call DAG with parents, prefix ids,
//! caps and the measured SQL times).
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "agents/responder.hpp"
#include "agents/workflow.hpp"

namespace t2s::agents {

//! One replayed call's service time against the recorded one (recorded runs only).
struct ServiceSample {
  std::string recorded_instance, replayed_instance;  //!< where it ran in the recording and in the replay
  double recorded_s = 0, replayed_s = 0;             //!< start → end, measured and replayed
};

//! Service times collected by the workflows of one factory (shared: workflows may finish on another thread).
struct ServiceLog {
  std::mutex mu;
  std::vector<ServiceSample> samples;  //!< every ok call whose recording had a measured service time
};

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
  //! When set, recorded-run workflows add each replayed call's service time beside the recorded one.
  std::shared_ptr<ServiceLog> service_log;
  //! Recorded runs: true replaces each call's declared prefix by what its instance measurably served from cache
  //! (one prefix id per recorded instance, `cached_tokens` long, else the declared length), so that the
  //! simulator's prefix cache serves about what the engine's block hashing did; false keeps the prefix ids the
  //! scheduler saw.
  bool measured_prefix = false;
};

//! One stage of a trace question: its kind and the recorded (prompt, output) lengths of its calls; recorded runs
//! also give its parents, tool time and the scheduler's view of each call.
struct TraceStage {
  StageKind kind = StageKind::other;
  std::vector<workloads::TraceCall> calls;
  std::vector<uint32_t> parents;  //!< stages it waits for (hexgen traces: the previous one)
  bool tool = false;              //!< a tool stage taking `tool_s` (recorded runs)
  double tool_s = 0;              //!< recorded tool (SQL) time
  bool done = true;               //!< false: cut off by its workflow's end in the recording
  //! Recorded runs: the time between its parents' end (or the arrival) and its release — the agent's own work
  //! (parsing answers, building and counting prompts), replayed as a delay.
  double release_delay_s = 0;
  std::vector<workloads::RecordedCall> recorded;  //!< per call: prefix id, caps, measured service (recorded runs)
};

//! Groups a recorded call sequence into stages: consecutive candidate-generation calls form one parallel stage,
//! consecutive evaluation calls another; every other call is its own sequential stage.
std::vector<TraceStage> group_trace_stages(const std::vector<workloads::TraceCall>& calls, bool tool_picker = true);

//! The stages of a recorded workflow; throws InputError naming the question and stage for an unknown stage kind.
std::vector<TraceStage> recorded_trace_stages(const workloads::Question& question);

//! Responder hint carried by trace calls: the recorded output length.
struct TraceCallMeta final : CallMeta {
  int output_tokens = 0;
};

//! A factory of trace-replay workflows (questions must carry trace_calls or a recorded DAG; others fail with a clear
//! error). A recorded workflow releases each stage when its recorded parents have ended (tool stages wait their
//! recorded time) and ends when every stage that ended in the recording has ended; one that ended early in the
//! recording ends at its deadline, also when its recorded work ends sooner (that work was cut there, a lower bound
//! of what it needed). It reports the recorded answer's checks.
//! Remaining-work estimates use the population of questions seen so far.
std::unique_ptr<WorkflowFactory> make_trace_factory(TraceFactoryOptions options = {});
//! The same, with the population estimate taken over all questions of `workload` from the start (preferred).
std::unique_ptr<WorkflowFactory> make_trace_factory(const workloads::Workload& workload,
                                                    TraceFactoryOptions options = {});
//! The responder that answers trace calls with their recorded output length (and empty text); calls without
//! trace hints get their expected_output_tokens.
std::unique_ptr<Responder> make_trace_responder();

}  // namespace t2s::agents
