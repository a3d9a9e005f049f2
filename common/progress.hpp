#pragma once
//! A progress bar for long jobs, drawn on stderr only when stderr is a terminal.
#include <chrono>
#include <cstdio>
#include <string>

#include <unistd.h>

namespace t2s {

//! Shows `label [#####.....] done/total` on a TTY; silent otherwise (logs stay clean in CI).
class ProgressBar {
 public:
  //! A bar for `total` steps; `force_off` silences it regardless of the terminal.
  ProgressBar(std::string label, size_t total, bool force_off = false)
      : label_(std::move(label)), total_(total), on_(!force_off && isatty(STDERR_FILENO)) {}
  ~ProgressBar() { finish(); }
  ProgressBar(const ProgressBar&) = delete;
  ProgressBar& operator=(const ProgressBar&) = delete;
  //! Advances by `n` steps, redrawing at most ~20 times a second.
  void advance(size_t n = 1) {
    done_ += n;
    if (!on_) return;
    auto now = std::chrono::steady_clock::now();
    if (done_ < total_ && now - last_ < std::chrono::milliseconds(50)) return;
    last_ = now;
    draw();
  }
  //! Text drawn after the counts (e.g. "loss 2.31 | 9.1k tok/s | ETA 3:12"); shown on the next redraw.
  void set_status(std::string status) { status_ = std::move(status); }
  //! Ends the line.
  void finish() {
    if (on_ && !finished_) {
      draw();
      std::fputc('\n', stderr);
    }
    finished_ = true;
  }

 private:
  void draw() {
    const int width = 30;
    int filled = total_ ? static_cast<int>(width * static_cast<double>(done_) / static_cast<double>(total_)) : width;
    if (filled > width) filled = width;
    std::string bar(static_cast<size_t>(filled), '#');
    bar.append(static_cast<size_t>(width - filled), '.');
    std::fprintf(stderr, "\r%s [%s] %zu/%zu%s%s\x1b[K", label_.c_str(), bar.c_str(), done_, total_,
                 status_.empty() ? "" : " ", status_.c_str());
    std::fflush(stderr);
  }
  std::string label_, status_;
  size_t total_, done_ = 0;
  bool on_, finished_ = false;
  std::chrono::steady_clock::time_point last_{};
};

}  // namespace t2s
