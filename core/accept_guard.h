// core/accept_guard.h — what a listening socket does when accept() fails.
//
// Defines ReserveFd (one spare file descriptor, /dev/null, held so that at
// RLIMIT_NOFILE a listener can still take a pending connection off its
// backlog) and AcceptGuard (pauses one listening socket after an accept
// failure and resumes it after a backoff of 10 ms doubling to 1 s, reset by
// the next successful accept; counts failures in
// game_gateway_accept_errors_total{listener, reason}, shows the pause in
// game_gateway_listener_paused{listener}, and logs at most one line per 10 s
// with the number of failures it did not log). Without it, a level-triggered
// accept event at EMFILE fires again at once, forever: the loop spins and
// the log floods. Both classes are single-threaded: use them on the
// dispatcher's thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <string>

#include "core/sdk/clock.h"
#include "core/sdk/dispatcher.h"
#include "core/sdk/stats.h"

namespace gw {

// Spare file descriptors (/dev/null, close-on-exec), released together.
class ReserveFd {
 public:
  // Opens `count` (at most 4) spare fds (held() is false if that failed).
  explicit ReserveFd(size_t count = 1) : count_(count < 4 ? count : 4) { restore(); }
  ~ReserveFd();
  ReserveFd(const ReserveFd&) = delete;
  ReserveFd& operator=(const ReserveFd&) = delete;

  // Closes the spare fds so the next opens/accepts can have their slots.
  // Returns false if none was held.
  bool release();
  // Opens the missing spare fds. Returns held().
  bool restore();
  // True while every spare fd is open.
  bool held() const;

 private:
  size_t count_;
  int fds_[4] = {-1, -1, -1, -1};
};

// The reason label of an accept errno: "emfile", "enfile" or "other".
const char* acceptErrorReason(int err);

class AcceptGuard {
 public:
  // Limits of the backoff, and of the log.
  static constexpr std::chrono::milliseconds kFirstBackoff{10};
  static constexpr std::chrono::milliseconds kMaxBackoff{1000};
  static constexpr std::chrono::seconds kLogInterval{10};

  // Guards listener `listener` (the metric label and the name in the log)
  // on `dispatcher`. `set_watching(false)` must stop the listening socket's
  // accept event, `set_watching(true)` start it again; `on_resume`, if
  // given, runs just before the listener is watched again (e.g. to restore
  // a ReserveFd).
  AcceptGuard(Dispatcher& dispatcher, std::string listener,
              std::function<void(bool watching)> set_watching,
              std::function<void()> on_resume = nullptr);
  ~AcceptGuard();
  AcceptGuard(const AcceptGuard&) = delete;
  AcceptGuard& operator=(const AcceptGuard&) = delete;

  // An accept failed with `err` (not EAGAIN/EINTR/ECONNABORTED, which are
  // not failures): counts it, logs (rate-limited), stops watching the
  // socket and arms the retry. `detail` is added to the log line.
  void failed(int err, const std::string& detail = "");
  // Counts and logs (rate-limited) a failure the caller handles without a
  // pause (e.g. by lending a reserve fd).
  void counted(int err, const std::string& detail = "");
  // An accept succeeded: the next pause starts from kFirstBackoff again.
  void succeeded() { backoff_ = kFirstBackoff; }
  // Cancels a pending retry without watching the socket again (the
  // listener is being closed).
  void cancel();
  bool paused() const { return paused_; }
  // The pause the next failure will take.
  std::chrono::milliseconds nextBackoff() const { return backoff_; }
  // The counter of shed connections (accepted and closed at once for lack
  // of file descriptors): game_gateway_accept_shed_total{listener}.
  stats::Counter& shed() { return *shed_; }

 private:
  void resume();

  std::string listener_;
  std::function<void(bool)> set_watching_;
  std::function<void()> on_resume_;
  Timer retry_;
  bool paused_ = false;
  std::chrono::milliseconds backoff_ = kFirstBackoff;
  MonoTime last_log_{};
  bool logged_ = false;
  uint64_t unlogged_ = 0;  // failures since the last log line
  stats::Counter* errors_[3];  // emfile, enfile, other
  stats::Counter* shed_;
  stats::Gauge* paused_gauge_;
};

}  // namespace gw
