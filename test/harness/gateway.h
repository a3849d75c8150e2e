// test/harness/gateway.h — the real gateway and echo server as child processes.
//
// Defines GatewayProcess (writes a JSON config to a temp file, runs the
// //core:gateway binary with --config, waits until it listens, stops it with
// SIGTERM) and EchoServerProcess (runs //tools/echo_server on a port). A
// test using them lists the binaries in its `data`:
//   data = ["//core:gateway", "//tools/echo_server"]
// Both kill their child on destruction if it still runs; the child's output
// stays readable for assertions.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "test/harness/process.h"

namespace gw {
namespace test {

class GatewayProcess {
 public:
  GatewayProcess() = default;
  // Kills the gateway if it still runs and removes the config file.
  ~GatewayProcess();

  // Writes `config_json` to a temp file, starts the gateway with
  // `--config FILE` plus `extra_args`, and waits up to `timeout` for
  // "listening on" in its output. Returns false with *error set (including
  // the gateway's output) if the binary is missing, the gateway exited, or
  // it did not get there in time.
  bool start(const std::string& config_json, std::string* error = nullptr,
             std::chrono::milliseconds timeout = std::chrono::seconds(10),
             const std::vector<std::string>& extra_args = {});

  // Sends SIGTERM and waits up to `timeout` for the exit. Returns the exit
  // code (0 for a clean stop), or nullopt if it did not exit in time (the
  // destructor then SIGKILLs it).
  std::optional<int> stop(std::chrono::milliseconds timeout = std::chrono::seconds(10));

  // The port that listener `name` is bound to, read from its
  // "listener 'NAME' listening on IP:PORT" log line (useful with port 0).
  // Returns 0 if that line is not in the output.
  uint16_t listenerPort(const std::string& name) const;
  // The admin API's port, from its "admin listening on IP:PORT" log line
  // (logged after the listeners': waits up to `timeout` for it). 0 if the
  // line does not come.
  uint16_t adminPort(std::chrono::milliseconds timeout = std::chrono::seconds(5));

  // Everything the gateway printed so far.
  std::string output() const { return process_.output(); }
  Process& process() { return process_; }
  pid_t pid() const { return process_.pid(); }
  const std::string& configPath() const { return config_path_; }

  // The gateway binary's path (runfile "core/gateway").
  static std::string binary();

 private:
  Process process_;
  std::string config_path_;
};

// The port of the first "<what> listening on IP:PORT" line in `output` (a
// server's report of the address it bound, e.g. "echo_server",
// "backend_sim", "listener 'game'"), or 0 if there is none.
uint16_t listeningPort(const std::string& output, const std::string& what);

// Waits up to `timeout` for `process` to print its whole "<what> listening
// on IP:PORT" line and returns the port; 0 if the line does not come (the
// process exited, or it is too slow).
uint16_t waitForListeningPort(Process& process, const std::string& what,
                              std::chrono::milliseconds timeout);

class EchoServerProcess {
 public:
  // Starts //tools/echo_server on 127.0.0.1:`port` and waits up to
  // `timeout` for "echo_server listening on". Port 0 (the default) lets the
  // echo server bind a port the kernel picks, read back into port(): unlike
  // a port picked beforehand with freePort(), nothing else (a test running
  // in parallel) can take it in between. Returns false with *error set if it
  // could not start (port taken, binary missing, ...).
  bool start(uint16_t port = 0, std::string* error = nullptr,
             std::chrono::milliseconds timeout = std::chrono::seconds(10));
  // SIGTERM and wait; returns the exit code or nullopt on timeout.
  std::optional<int> stop(std::chrono::milliseconds timeout = std::chrono::seconds(5));
  uint16_t port() const { return port_; }
  Process& process() { return process_; }

 private:
  Process process_;
  uint16_t port_ = 0;
};

}  // namespace test
}  // namespace gw
