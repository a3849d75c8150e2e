// test/harness/process.h — a child process with its output captured.
//
// Defines Process: starts a program (posix_spawn), collects its stdout and
// stderr through one pipe into a buffer (a reader thread), lets a test wait
// for a line to appear, send signals and collect the exit code. The
// destructor SIGKILLs (with its process group) and reaps a child that is
// still running, so a failed assertion never leaves a gateway behind. Not
// thread-safe except output() and waitForOutput(), which may be called from
// any thread. Also residentBytes(): a process's RSS, for memory bounds.
#pragma once

#include <sys/types.h>

#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace gw {
namespace test {

class Process {
 public:
  Process() = default;
  // Kills (SIGKILL) and reaps the child if it is still running.
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  // Starts argv[0] (a path; PATH is not searched) with arguments argv[1..],
  // the test's environment, in a process group of its own, stdin from
  // /dev/null, stdout and stderr into the output buffer. Returns false with
  // *error set if it cannot be started (e.g. the file does not exist). One
  // start per Process object.
  bool start(const std::vector<std::string>& argv, std::string* error = nullptr);

  // Waits until `needle` appears in the output (searched from the start).
  // Returns true if it did within `timeout`; false on timeout or when the
  // child exited (and its output ended) without printing it.
  bool waitForOutput(std::string_view needle, std::chrono::milliseconds timeout);

  // Everything the child printed so far (stdout and stderr interleaved).
  std::string output() const;

  // Sends `sig` to the child and anything it started (its process group).
  // Returns false if it was never started or has already been reaped.
  bool signal(int sig);

  // Waits up to `timeout` for the child to exit and reaps it. Returns its
  // exit code, or 128 + the signal number if a signal killed it; nullopt if
  // it is still running after `timeout` (or was never started). After a
  // successful wait, output() holds everything the child printed.
  std::optional<int> wait(std::chrono::milliseconds timeout);

  // True from a successful start() until the child has been reaped.
  bool running() const { return pid_ > 0 && !exit_code_; }
  // The child's pid (-1 before start()).
  pid_t pid() const { return pid_; }
  // The exit code once reaped (see wait()).
  std::optional<int> exitCode() const { return exit_code_; }

 private:
  void readLoop(int fd);

  pid_t pid_ = -1;
  std::optional<int> exit_code_;
  std::thread reader_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::string output_;
  bool output_closed_ = false;
};

// The resident set size of process `pid` in bytes (VmRSS from
// /proc/<pid>/status), or 0 if it cannot be read (e.g. the process is gone).
size_t residentBytes(pid_t pid);

}  // namespace test
}  // namespace gw
