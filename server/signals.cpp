#include "server/signals.hpp"

#include <signal.h>

#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>

namespace t2s::server {

static_assert(sizeof(sigset_t) <= 128, "sigset_t larger than the storage reserved for it");

namespace {
sigset_t shutdown_set() {
  sigset_t s;
  sigemptyset(&s);
  sigaddset(&s, SIGINT);
  sigaddset(&s, SIGTERM);
  return s;
}
}  // namespace

ShutdownSignals::ShutdownSignals() {
  sigset_t s = shutdown_set();
  sigset_t old;
  pthread_sigmask(SIG_BLOCK, &s, &old);
  std::memcpy(old_mask_, &old, sizeof old);
}

ShutdownSignals::~ShutdownSignals() {
  sigset_t old;
  std::memcpy(&old, old_mask_, sizeof old);
  pthread_sigmask(SIG_SETMASK, &old, nullptr);
}

int ShutdownSignals::wait(double max_seconds) const {
  sigset_t s = shutdown_set();
  for (;;) {
    int sig;
    if (max_seconds <= 0) {
      if (sigwait(&s, &sig) == 0) return sig;
      continue;
    }
    timespec ts;
    ts.tv_sec = static_cast<time_t>(std::floor(max_seconds));
    ts.tv_nsec = static_cast<long>((max_seconds - std::floor(max_seconds)) * 1e9);
    sig = sigtimedwait(&s, nullptr, &ts);
    if (sig > 0) return sig;
    if (errno == EAGAIN) return 0;
    // EINTR: another signal interrupted the wait; keep waiting (the limit restarts, which is acceptable here).
  }
}

}  // namespace t2s::server
