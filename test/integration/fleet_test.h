// test/integration/fleet_test.h — a fleet of real gateways for the session
// integration tests (fleet_test.cc, session_*_test.cc).
//
// Defines BackendSim (//tools/backend_sim as a child process, with its
// SIGUSR1 stats line parsed), GameClient (a blocking game client that
// speaks the session control frames of docs/protocol.md), fleetConfig() (a
// gateway config: framing -> session -> upstream, optionally with the Redis
// store and routes_from_redis) and startGateway() (a GatewayProcess with its
// own replica name, $GATEWAY_NODE_NAME). Header-only.
#pragma once

#include <signal.h>
#include <stdlib.h>

#include <gtest/gtest.h>

#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/sdk/wire.h"
#include "test/harness/gateway.h"
#include "test/harness/net.h"
#include "test/harness/process.h"
#include "test/harness/runfiles.h"
#include "test/integration/ops_test.h"

namespace gw {
namespace test {

constexpr uint16_t kResumeMsgId = 0xFFFD;
constexpr uint16_t kEstablishedMsgId = 0xFFFE;
constexpr uint16_t kLeaveMsgId = 0xFFFC;
constexpr uint32_t kGameServerId = 200 << 8;  // server_type 200, world 0

// //tools/backend_sim on a free port.
class BackendSim {
 public:
  // Starts it with `args` (e.g. {"--bind-msg-id", "100"}) on a port the
  // kernel picks (read back from its "listening on" line: a port picked
  // beforehand can be taken by a test running in parallel before
  // backend_sim binds it). False on failure.
  bool start(const std::vector<std::string>& args = {}, std::string* error = nullptr) {
    std::vector<std::string> argv = {runfile("tools/backend_sim/backend_sim"), "--address",
                                     "127.0.0.1:0"};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string why;
    if (!process_.start(argv, &why)) {
      if (error) *error = why;
      return false;
    }
    port_ = waitForListeningPort(process_, "backend_sim", Millis(10000));
    if (port_ == 0) {
      if (error) *error = "backend_sim did not start:\n" + process_.output();
      return false;
    }
    return true;
  }
  uint16_t port() const { return port_; }
  // Asks for a stats line (SIGUSR1) and returns its key=value fields.
  std::map<std::string, long long> stats() {
    size_t before = countLines();
    process_.signal(SIGUSR1);
    waitUntil([&] { return countLines() > before; }, Millis(3000));
    std::string out = process_.output();
    size_t at = out.rfind("backend_sim stats: ");
    std::map<std::string, long long> m;
    if (at == std::string::npos) return m;
    std::string line = out.substr(at, out.find('\n', at) - at);
    size_t pos = 0;
    while ((pos = line.find('=', pos)) != std::string::npos) {
      size_t k = line.rfind(' ', pos);
      std::string key = line.substr(k + 1, pos - k - 1);
      size_t end = line.find(' ', pos);
      std::string value = line.substr(pos + 1, end == std::string::npos ? end : end - pos - 1);
      char* e = nullptr;
      long long v = std::strtoll(value.c_str(), &e, 10);
      if (e != value.c_str()) m[key] = v;
      pos = pos + 1;
    }
    return m;
  }
  Process& process() { return process_; }

 private:
  size_t countLines() const {
    std::string out = process_.output();
    size_t n = 0, at = 0;
    while ((at = out.find("backend_sim stats: ", at)) != std::string::npos) {
      ++n;
      ++at;
    }
    return n;
  }
  Process process_;
  uint16_t port_ = 0;
};

// A game client on a blocking socket.
class GameClient {
 public:
  // Connects to the gateway on `port`. False if it cannot.
  bool connect(uint16_t port) {
    fd_ = connectTcp(port, Millis(3000));
    return fd_.valid();
  }
  bool valid() const { return fd_.valid(); }
  int fd() const { return fd_.get(); }
  void close() { fd_.reset(); }

  bool send(uint16_t msg_id, std::string_view payload, uint32_t server_id = kGameServerId) {
    return sendAll(fd_.get(), encodeClientFrame(msg_id, server_id, payload));
  }
  // The next frame, or nullopt (timeout or closed).
  std::optional<ClientFrame> recv(Millis timeout = Millis(3000)) {
    ClientFrame f;
    if (!recvClientFrame(fd_.get(), timeout, &f)) return std::nullopt;
    return f;
  }
  // Sends a data frame and expects the echo (backend_sim echo mode).
  bool roundTrip(const std::string& payload, const std::string& prefix = "",
                 uint16_t msg_id = 7) {
    if (!send(msg_id, payload)) return false;
    auto f = recv();
    return f && f->header.msg_id == msg_id && f->payload == prefix + payload;
  }
  // Starts a resumable session ("resume" with id 0). Sets id and token.
  bool hello() { return resume(0, std::string(16, '\0')); }
  // Resumes session `id` with `token`. Returns true if the gateway answered
  // with "session established" (then id()/token() are the session's); on a
  // refusal it answers an error frame first and a new session (*refused).
  bool resume(uint64_t id, const std::string& token, bool* refused = nullptr) {
    std::string p(8, '\0');
    wire::putU64(reinterpret_cast<uint8_t*>(&p[0]), id);
    p += token;
    if (!send(kResumeMsgId, p, 0)) return false;
    auto f = recv();
    if (refused) *refused = false;
    if (f && f->header.msg_id == 0xFFFF) {
      if (refused) *refused = true;
      f = recv();
    }
    if (!f || f->header.msg_id != kEstablishedMsgId || f->payload.size() != 24) return false;
    id_ = wire::getU64(reinterpret_cast<const uint8_t*>(f->payload.data()));
    token_ = f->payload.substr(8);
    return true;
  }
  // True once the gateway closed this connection (within `timeout`).
  bool closedByPeer(Millis timeout = Millis(5000)) { return waitClosed(fd_.get(), timeout); }
  uint64_t id() const { return id_; }
  const std::string& token() const { return token_; }

 private:
  UniqueFd fd_;
  uint64_t id_ = 0;
  std::string token_;
};

struct FleetOptions {
  std::string redis;              // "" = memory store
  std::string window = "30s";     // resume window ("" = resume off)
  std::string drain_timeout = "1s";
  std::string duplicate_login = "kick_old";
  std::string cleanup_interval = "5m";
  std::string idle_timeout = "30m";
  std::string refresh_interval = "1s";
  std::string routes_key;  // "" = no routes_from_redis
  std::string routes_refresh = "1s";
  // Added to both Redis objects (store and routes_from_redis), e.g.
  // R"(, "password_env": "PW", "db": 3)".
  std::string redis_auth;
  int workers = 2;
};

// framing -> session -> upstream; clusters "game" (and "game_b" if given).
// Static route 200:0 -> game. `listen_port` 0: a port the kernel picks (read
// it with listenerPort("game")).
inline std::string fleetConfig(uint16_t listen_port, uint16_t backend_port,
                               const FleetOptions& o, uint16_t backend_b_port = 0) {
  std::string session = R"({"cleanup_interval": ")" + o.cleanup_interval +
                        R"(", "idle_timeout": ")" + o.idle_timeout + R"(", "duplicate_login": ")" +
                        o.duplicate_login + "\"";
  if (!o.window.empty()) session += R"(, "resume": {"enabled": true, "window": ")" + o.window + "\"}";
  if (!o.redis.empty()) {
    session += R"(, "store": "redis", "redis": {"address": ")" + o.redis +
               R"(", "refresh_interval": ")" + o.refresh_interval + "\"" + o.redis_auth + "}";
  }
  session += "}";
  std::string upstream = R"({"routes": [{"match": "200:0", "cluster": "game"}])";
  if (!o.routes_key.empty()) {
    upstream += R"(, "routes_from_redis": {"address": ")" + o.redis + R"(", "key": ")" +
                o.routes_key + R"(", "refresh_interval": ")" + o.routes_refresh + "\"" +
                o.redis_auth + "}";
  }
  upstream += "}";
  std::string clusters = R"([{"name": "game", "hosts": ["127.0.0.1:)" +
                         std::to_string(backend_port) + R"("]})";
  if (backend_b_port != 0) {
    clusters += R"(, {"name": "game_b", "hosts": ["127.0.0.1:)" + std::to_string(backend_b_port) +
                R"("]})";
  }
  clusters += "]";
  return R"({"workers": )" + std::to_string(o.workers) + R"(, "drain_timeout": ")" +
         o.drain_timeout + R"(", "admin": )" + testAdminJson() + R"(,
    "listeners": [{"name": "game", "address": "127.0.0.1:)" + std::to_string(listen_port) +
         R"(", "filters": [{"name": "framing", "config": {}},
                    {"name": "session", "config": )" + session + R"(},
                    {"name": "upstream", "config": )" + upstream + R"(}]}],
    "clusters": )" + clusters + "}";
}

// Starts a gateway named `replica` ($GATEWAY_NODE_NAME) with `config`.
inline bool startGateway(GatewayProcess& gw, const std::string& replica, const std::string& config,
                         std::string* error) {
  ::setenv("GATEWAY_NODE_NAME", replica.c_str(), 1);
  bool ok = gw.start(config, error);
  ::unsetenv("GATEWAY_NODE_NAME");
  return ok;
}

// GET /metrics from a gateway and the value of `series` (nullopt if absent).
inline std::optional<double> gatewayMetric(GatewayProcess& gw, const std::string& series) {
  uint16_t admin = adminPort(gw);
  if (admin == 0) return std::nullopt;
  HttpResponse r = httpRequest(admin, "GET", "/metrics");
  if (r.status != 200) return std::nullopt;
  return metricValue(r.body, series);
}

}  // namespace test
}  // namespace gw
