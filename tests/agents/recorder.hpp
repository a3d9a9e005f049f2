#pragma once
//! A workflow observer for tests: records every stage event.
#include <vector>

#include "agents/workflow.hpp"

namespace t2s::agents {

//! Keeps every stage event in order.
struct Recorder : WorkflowObserver {
  std::vector<StageEvent> events;
  void on_stage(const StageEvent& e) override { events.push_back(e); }
  //! The end events of stages of `kind`.
  std::vector<StageEvent> ended(StageKind kind) const {
    std::vector<StageEvent> r;
    for (const auto& e : events)
      if (e.done && e.kind == kind) r.push_back(e);
    return r;
  }
};

}  // namespace t2s::agents
