#pragma once
//! Waiting for SIGINT/SIGTERM in long-running commands (`t2s serve`, `t2s engine-serve`).

namespace t2s::server {

//! Blocks SIGINT and SIGTERM in the constructing thread (and so in every thread it starts afterwards); wait()
//! then receives them synchronously. The previous mask is restored on destruction.
class ShutdownSignals {
 public:
  ShutdownSignals();
  ~ShutdownSignals();
  ShutdownSignals(const ShutdownSignals&) = delete;
  ShutdownSignals& operator=(const ShutdownSignals&) = delete;
  //! Waits for a signal or `max_seconds` (<= 0: no limit); returns the signal number, or 0 on timeout.
  int wait(double max_seconds) const;

 private:
  unsigned char old_mask_[128];  // sigset_t storage, kept opaque to avoid <signal.h> in the header
};

}  // namespace t2s::server
