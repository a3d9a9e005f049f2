#pragma once
// A child process for tests that need real servers (`t2s engine-serve`, `t2s serve`): started with its stdout on a
// pipe (servers print their URL there), always killed and reaped when the guard dies, also when a check fails, and
// killed by the kernel if the test process itself dies (PR_SET_PDEATHSIG), so no zombie or stray process remains.
#include <cerrno>
#include <csignal>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <chrono>
#include <thread>

#include <fcntl.h>
#include <poll.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

namespace t2s::test {

//! One child process running `argv` (argv[0] is the executable path); SIGKILLed and reaped on destruction.
class ChildProcess {
 public:
  //! Starts the child; throws std::runtime_error when fork or pipe fails (exec failure shows as exit code 127).
  explicit ChildProcess(std::vector<std::string> argv) {
    std::vector<char*> args;
    for (auto& a : argv) args.push_back(a.data());
    args.push_back(nullptr);
    int fds[2];
    if (::pipe2(fds, O_CLOEXEC) != 0) throw std::runtime_error("pipe2 failed");
    pid_t parent = ::getpid();
    pid_ = ::fork();
    if (pid_ < 0) {
      ::close(fds[0]);
      ::close(fds[1]);
      throw std::runtime_error("fork failed");
    }
    if (pid_ == 0) {
      // Only async-signal-safe calls until exec (the parent may have other threads).
      ::prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (::getppid() != parent) ::_exit(126);
      ::dup2(fds[1], 1);  // dup2 clears O_CLOEXEC on the new descriptor
      sigset_t none;
      sigemptyset(&none);
      ::sigprocmask(SIG_SETMASK, &none, nullptr);  // servers block SIGINT/SIGTERM themselves if they want
      ::execv(args[0], args.data());
      ::_exit(127);
    }
    ::close(fds[1]);
    out_ = fds[0];
  }
  ~ChildProcess() {
    kill(SIGKILL);
    wait();
    if (out_ >= 0) ::close(out_);
  }
  ChildProcess(const ChildProcess&) = delete;
  ChildProcess& operator=(const ChildProcess&) = delete;

  //! The child's pid.
  pid_t pid() const { return pid_; }
  //! The next line the child writes on stdout (without '\n'), or nullopt at EOF or after `timeout_s`.
  std::optional<std::string> read_line(double timeout_s) {
    auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(timeout_s);
    for (;;) {
      if (auto nl = buffer_.find('\n'); nl != std::string::npos) {
        std::string line = buffer_.substr(0, nl);
        buffer_.erase(0, nl + 1);
        return line;
      }
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(until - std::chrono::steady_clock::now());
      if (left.count() <= 0) return std::nullopt;
      pollfd p{out_, POLLIN, 0};
      if (::poll(&p, 1, static_cast<int>(left.count())) <= 0) continue;
      char buf[512];
      ssize_t n = ::read(out_, buf, sizeof buf);
      if (n <= 0) return std::nullopt;
      buffer_.append(buf, static_cast<size_t>(n));
    }
  }
  //! Sends `sig` when the child has not been reaped yet.
  void kill(int sig) {
    if (!reaped_) ::kill(pid_, sig);
  }
  //! Reaps the child (blocking) and returns its wait status; later calls return the same status.
  int wait() {
    if (!reaped_) {
      while (::waitpid(pid_, &status_, 0) < 0 && errno == EINTR) {
      }
      reaped_ = true;
    }
    return status_;
  }
  //! True while the child has not exited (reaps it when it has).
  bool running() {
    if (reaped_) return false;
    pid_t r = ::waitpid(pid_, &status_, WNOHANG);
    if (r == pid_) reaped_ = true;
    return !reaped_;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  int status_ = 0;
  bool reaped_ = false;
  std::string buffer_;
};

}  // namespace t2s::test
