#include "test/harness/process.h"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <fstream>

extern char** environ;

namespace gw {
namespace test {

Process::~Process() {
  if (running()) {
    ::kill(-pid_, SIGKILL);  // the child's whole process group
    int status = 0;
    while (::waitpid(pid_, &status, 0) < 0 && errno == EINTR) {
    }
    exit_code_ = 128 + SIGKILL;
  } else if (pid_ > 0) {
    // Reaped, but something it started may still hold the output pipe.
    std::lock_guard<std::mutex> lock(mu_);
    if (!output_closed_) ::kill(-pid_, SIGKILL);
  }
  if (reader_.joinable()) reader_.join();
}

bool Process::start(const std::vector<std::string>& argv, std::string* error) {
  auto fail = [&](const std::string& why) {
    if (error) *error = why;
    return false;
  };
  if (pid_ > 0) return fail("Process::start called twice");
  if (argv.empty()) return fail("empty argv");
  if (::access(argv[0].c_str(), X_OK) != 0)
    return fail("cannot execute " + argv[0] + ": " + std::strerror(errno));
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) return fail(std::string("pipe: ") + std::strerror(errno));

  posix_spawn_file_actions_t actions;
  posix_spawn_file_actions_init(&actions);
  posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 1);
  posix_spawn_file_actions_adddup2(&actions, fds[1], 2);
  // The child starts with default signal dispositions even if the test
  // ignores SIGPIPE or blocks signals.
  posix_spawnattr_t attr;
  posix_spawnattr_init(&attr);
  sigset_t none, all;
  sigemptyset(&none);
  sigfillset(&all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &all);
  // Its own process group, so signal() and the destructor reach anything
  // it starts too.
  posix_spawnattr_setpgroup(&attr, 0);
  posix_spawnattr_setflags(&attr,
                           POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETPGROUP);

  std::vector<char*> args;
  for (const auto& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  pid_t pid = -1;
  int rc = posix_spawn(&pid, argv[0].c_str(), &actions, &attr, args.data(), environ);
  posix_spawn_file_actions_destroy(&actions);
  posix_spawnattr_destroy(&attr);
  ::close(fds[1]);
  if (rc != 0) {
    ::close(fds[0]);
    return fail("posix_spawn " + argv[0] + ": " + std::strerror(rc));
  }
  pid_ = pid;
  reader_ = std::thread([this, fd = fds[0]] { readLoop(fd); });
  return true;
}

void Process::readLoop(int fd) {
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(fd, buf, sizeof(buf));
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    std::lock_guard<std::mutex> lock(mu_);
    output_.append(buf, static_cast<size_t>(n));
    cv_.notify_all();
  }
  ::close(fd);
  std::lock_guard<std::mutex> lock(mu_);
  output_closed_ = true;
  cv_.notify_all();
}

bool Process::waitForOutput(std::string_view needle, std::chrono::milliseconds timeout) {
  std::unique_lock<std::mutex> lock(mu_);
  return cv_.wait_for(lock, timeout, [&] {
    return output_.find(needle) != std::string::npos || output_closed_;
  }) && output_.find(needle) != std::string::npos;
}

std::string Process::output() const {
  std::lock_guard<std::mutex> lock(mu_);
  return output_;
}

bool Process::signal(int sig) {
  if (!running()) return false;
  return ::kill(-pid_, sig) == 0;
}

std::optional<int> Process::wait(std::chrono::milliseconds timeout) {
  if (pid_ <= 0) return std::nullopt;
  if (exit_code_) return exit_code_;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    int status = 0;
    pid_t r = ::waitpid(pid_, &status, WNOHANG);
    if (r == pid_) {
      exit_code_ = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
      break;
    }
    if (r < 0 && errno != EINTR) return std::nullopt;
    if (std::chrono::steady_clock::now() >= deadline) return std::nullopt;
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  }
  // The pipe closes when the child (and anything it spawned) is gone; give a
  // grandchild holding it a short grace before reporting without the tail.
  {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait_for(lock, std::chrono::seconds(2), [&] { return output_closed_; });
  }
  return exit_code_;
}

size_t residentBytes(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) != 0) continue;
    size_t kb = 0;
    for (char c : line) {
      if (c >= '0' && c <= '9') kb = kb * 10 + static_cast<size_t>(c - '0');
    }
    return kb * 1024;
  }
  return 0;
}

}  // namespace test
}  // namespace gw
