// test/filters/session/redis_fixture.h — a real redis-server for tests.
//
// Defines RedisServer: starts /usr/bin/redis-server on a free 127.0.0.1 port
// (no persistence: --save '' --appendonly no), waits until it accepts
// connections, and can kill it (SIGKILL, as a crash), restart it on the
// same port, and run commands synchronously for assertions and setup. It
// can also be started with extra server arguments (--requirepass, --user)
// and then run its commands with credentials. The destructor kills a server
// that still runs. Used by the session store
// tests and the fleet integration tests. Also runUntil()/runFor(): a
// dispatcher's loop driven by a test thread.
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "core/redis/redis_client.h"
#include "test/harness/process.h"

namespace gw {
namespace test {

// Runs `d`'s loop in short slices until pred() (true) or `timeout` (false).
bool runUntil(Dispatcher& d, const std::function<bool()>& pred,
              std::chrono::milliseconds timeout = std::chrono::seconds(5));
// Runs `d`'s loop for `t`.
void runFor(Dispatcher& d, std::chrono::milliseconds t);

class RedisServer {
 public:
  RedisServer() = default;
  ~RedisServer();
  RedisServer(const RedisServer&) = delete;
  RedisServer& operator=(const RedisServer&) = delete;

  // Starts redis-server on `port` (0: a free one) and waits up to `timeout`
  // for it to accept connections. Returns false with *error set (including
  // the server's output) if it did not.
  bool start(std::string* error = nullptr, uint16_t port = 0,
             std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // SIGKILL and reap (a crash). No-op if not running.
  void kill();
  // SIGSTOP / SIGCONT: a server that hangs (connections stay open, nothing
  // is answered) and one that recovers.
  void pause();
  void resume();
  // Starts again on the same port (empty: the data is gone).
  bool restart(std::string* error = nullptr);
  // Extra redis-server arguments for the next start(), e.g.
  // {"--requirepass", "s3cret"}.
  void setServerArgs(std::vector<std::string> args) { server_args_ = std::move(args); }
  // The credentials (and db) of command()'s own connection, from now on.
  void setClientCredentials(redis::Credentials auth);
  bool running() const { return process_ != nullptr && process_->running(); }

  uint16_t port() const { return port_; }
  // "127.0.0.1:PORT"
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // Runs one command; nullptr on failure (server down, timeout).
  redis::BlockingRedis::ReplyPtr command(const std::vector<std::string>& args);
  // Conveniences over command().
  std::optional<std::string> get(const std::string& key);
  bool set(const std::string& key, const std::string& value);
  long long publish(const std::string& channel, const std::string& message);
  bool exists(const std::string& key);
  // HGETALL as pairs (empty if none).
  std::vector<std::pair<std::string, std::string>> hgetall(const std::string& key);
  // PTTL in ms (-2: no key, -1: no TTL).
  long long pttl(const std::string& key);

 private:
  bool startOn(uint16_t port, std::string* error, std::chrono::milliseconds timeout);

  std::unique_ptr<Process> process_;
  std::unique_ptr<redis::BlockingRedis> client_;
  std::vector<std::string> server_args_;
  redis::Credentials client_auth_;
  uint16_t port_ = 0;
};

}  // namespace test
}  // namespace gw
