#include "test/harness/gateway.h"

#include <signal.h>
#include <unistd.h>

#include <thread>

#include "test/harness/runfiles.h"

namespace gw {
namespace test {

GatewayProcess::~GatewayProcess() {
  if (!config_path_.empty()) ::unlink(config_path_.c_str());
}

std::string GatewayProcess::binary() { return runfile("core/gateway"); }

bool GatewayProcess::start(const std::string& config_json, std::string* error,
                           std::chrono::milliseconds timeout,
                           const std::vector<std::string>& extra_args) {
  auto fail = [&](const std::string& why) {
    if (error) *error = why;
    return false;
  };
  config_path_ = writeTempFile(config_json, "gateway-", ".json");
  if (config_path_.empty()) return fail("cannot write the config to " + tempDir());
  std::vector<std::string> argv = {binary(), "--config", config_path_};
  argv.insert(argv.end(), extra_args.begin(), extra_args.end());
  std::string why;
  if (!process_.start(argv, &why))
    return fail(why + " (does the test list //core:gateway in its data?)");
  if (!process_.waitForOutput("listening on", timeout)) {
    auto code = process_.wait(std::chrono::milliseconds(0));
    std::string what =
        code ? "exited with " + std::to_string(*code) : "did not start listening in time";
    return fail("gateway " + what + "; output:\n" + process_.output());
  }
  return true;
}

std::optional<int> GatewayProcess::stop(std::chrono::milliseconds timeout) {
  process_.signal(SIGTERM);
  return process_.wait(timeout);
}

uint16_t GatewayProcess::listenerPort(const std::string& name) const {
  return listeningPort(process_.output(), "listener '" + name + "'");
}

uint16_t GatewayProcess::adminPort(std::chrono::milliseconds timeout) {
  return waitForListeningPort(process_, "admin", timeout);
}

uint16_t waitForListeningPort(Process& process, const std::string& what,
                              std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  if (!process.waitForOutput(what + " listening on ", timeout)) return 0;
  // The line is written at once, but may reach the output in two reads.
  uint16_t port = 0;
  while ((port = listeningPort(process.output(), what)) == 0 &&
         std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(5));
  return port;
}

uint16_t listeningPort(const std::string& out, const std::string& what) {
  std::string needle = what + " listening on ";
  size_t at = out.find(needle);
  if (at == std::string::npos) return 0;
  size_t addr_end = out.find_first_of(" \r\n", at + needle.size());
  if (addr_end == std::string::npos) return 0;  // the line is not complete yet
  std::string addr = out.substr(at + needle.size(), addr_end - at - needle.size());
  size_t colon = addr.rfind(':');
  if (colon == std::string::npos || colon + 1 == addr.size()) return 0;
  unsigned port = 0;
  for (char c : addr.substr(colon + 1)) {
    if (c < '0' || c > '9') return 0;
    port = port * 10 + static_cast<unsigned>(c - '0');
  }
  return port <= 65535 ? static_cast<uint16_t>(port) : 0;
}

bool EchoServerProcess::start(uint16_t port, std::string* error,
                              std::chrono::milliseconds timeout) {
  auto fail = [&](const std::string& why) {
    if (error) *error = why;
    return false;
  };
  port_ = port;
  std::string why;
  std::vector<std::string> argv = {runfile("tools/echo_server/echo_server"), "--address",
                                   "127.0.0.1:" + std::to_string(port)};
  if (!process_.start(argv, &why))
    return fail(why + " (does the test list //tools/echo_server in its data?)");
  port_ = waitForListeningPort(process_, "echo_server", timeout);
  if (port_ == 0) return fail("echo_server did not start; output:\n" + process_.output());
  return true;
}

std::optional<int> EchoServerProcess::stop(std::chrono::milliseconds timeout) {
  process_.signal(SIGTERM);
  return process_.wait(timeout);
}

}  // namespace test
}  // namespace gw
