// Integration tests of the `breaker` filter: the real gateway binary
// (framing -> breaker -> upstream, 2 workers) in front of real backend_sim
// processes on free 127.0.0.1 ports, started and killed by the test.
//   - a killed backend: clients get error frames within the connect timeout,
//     the breaker opens, the other cluster is unaffected; restarted: the
//     breaker goes half-open on time, probes pass, it closes, traffic resumes;
//   - a request/response backend that accepts but never answers trips it;
//   - one bad host of two is ejected while the other serves.
// Each test prints the gateway's breaker log lines (state changes with
// timestamps) and the client-side timeline, for the record.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <cstdio>
#include <iostream>
#include <map>
#include <memory>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "core/sdk/error_frame.h"
#include "core/sdk/wire.h"
#include "test/harness/gateway.h"
#include "test/harness/net.h"
#include "test/harness/process.h"
#include "test/harness/runfiles.h"

namespace gw {
namespace test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

const uint32_t kGame = wire::ClientHeader::makeServerId(0, 200, 1);  // route 200:0 -> game
const uint32_t kLogin = wire::ClientHeader::makeServerId(0, 10, 1);  // route 10:0 -> login

// A backend_sim child on 127.0.0.1:port.
class BackendSim {
 public:
  // On `port`, or on a port the kernel picks if it is 0 (read back into
  // port()): a port picked beforehand (freePort()) can be taken by a test
  // running in parallel before backend_sim binds it.
  bool start(uint16_t port = 0, const std::vector<std::string>& extra = {}) {
    proc_ = std::make_unique<Process>();
    std::vector<std::string> argv = {runfile("tools/backend_sim/backend_sim"), "--address",
                                     "127.0.0.1:" + std::to_string(port), "--quiet"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    std::string err;
    if (!proc_->start(argv, &err)) {
      ADD_FAILURE() << err;
      return false;
    }
    if ((port_ = waitForListeningPort(*proc_, "backend_sim", seconds(5))) == 0) {
      ADD_FAILURE() << "backend_sim did not start: " << proc_->output();
      return false;
    }
    return true;
  }
  void kill() {
    proc_->signal(SIGKILL);
    proc_->wait(seconds(5));
  }
  uint16_t port() const { return port_; }

 private:
  std::unique_ptr<Process> proc_;
  uint16_t port_ = 0;
};

// HTTP GET on the admin port; returns the body ("" on failure).
std::string httpGet(uint16_t port, const std::string& path) {
  UniqueFd fd = connectTcp(port, milliseconds(1000));
  if (!fd.valid()) return "";
  if (!sendAll(fd.get(), "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")) return "";
  std::string resp;
  recvUntilEof(fd.get(), milliseconds(2000), &resp);
  size_t body = resp.find("\r\n\r\n");
  return body == std::string::npos ? "" : resp.substr(body + 4);
}

// The value of the first sample of `metric` whose labels contain every
// `key="value"` in `labels`; -1 if there is none.
double metricValue(const std::string& text, const std::string& metric,
                   const std::vector<std::string>& labels) {
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (line.compare(0, metric.size() + 1, metric + "{") != 0) continue;
    bool all = true;
    for (const auto& l : labels) all = all && line.find(l) != std::string::npos;
    if (!all) continue;
    size_t sp = line.rfind(' ');
    return std::stod(line.substr(sp + 1));
  }
  return -1;
}

std::string ms(Clock::duration d) {
  return std::to_string(std::chrono::duration_cast<milliseconds>(d).count()) + "ms";
}

// A game client: one connection, one session.
struct Client {
  explicit Client(uint16_t port) : fd(connectTcp(port)) {}
  bool send(uint16_t msg_id, uint32_t server_id, const std::string& payload) {
    return sendAll(fd.get(), encodeClientFrame(msg_id, server_id, payload));
  }
  // Sends and waits for the next frame back.
  bool roundTrip(uint16_t msg_id, uint32_t server_id, const std::string& payload,
                 ClientFrame* reply, milliseconds timeout = milliseconds(2000)) {
    return send(msg_id, server_id, payload) && recvClientFrame(fd.get(), timeout, reply);
  }
  UniqueFd fd;
};

uint16_t errorCode(const ClientFrame& f) {
  if (f.header.msg_id != kErrorMsgId || f.payload.size() < 4) return 0;
  return wire::getU16(reinterpret_cast<const uint8_t*>(f.payload.data()));
}

// The gateway's listener and admin API bind ports the kernel picks; start()
// reads them back.
struct Gateway {
  uint16_t port = 0;
  uint16_t admin = 0;
  GatewayProcess proc;
  Clock::time_point started;

  bool start(const std::string& clusters_json, const std::string& routes_json,
             const std::string& breaker_json) {
    std::string cfg = R"({"workers": 2, "drain_timeout": "1s", "admin": {"address": "127.0.0.1:0"},
      "listeners": [{"name": "game", "address": "127.0.0.1:0",
        "filters": [{"name": "framing", "config": {}},
                    {"name": "breaker", "config": )" +
                      breaker_json + R"(},
                    {"name": "upstream", "config": {"routes": )" +
                      routes_json + R"(}}]}],
      "clusters": )" + clusters_json +
                      "}";
    std::string err;
    started = Clock::now();
    bool ok = proc.start(cfg, &err);
    EXPECT_TRUE(ok) << err;
    if (!ok) return false;
    port = proc.listenerPort("game");
    admin = proc.adminPort();
    EXPECT_NE(port, 0) << proc.output();
    EXPECT_NE(admin, 0) << proc.output();
    return port != 0 && admin != 0;
  }
  std::string metrics() { return httpGet(admin, "/metrics"); }
  double breakerState(const std::string& cluster, const std::string& host) {
    return metricValue(metrics(), "game_gateway_circuit_breaker_state",
                       {"cluster=\"" + cluster + "\"", "host=\"" + host + "\""});
  }
  bool waitState(const std::string& cluster, const std::string& host, double want,
                 milliseconds timeout) {
    auto deadline = Clock::now() + timeout;
    while (Clock::now() < deadline) {
      if (breakerState(cluster, host) == want) return true;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return false;
  }
  // The gateway's breaker log lines (with their timestamps), for the record.
  void printTranscript(const std::string& title) {
    std::cout << "---- " << title << ": gateway breaker log ----\n";
    std::istringstream in(proc.output());
    std::string line;
    while (std::getline(in, line)) {
      if (line.find("breaker:") != std::string::npos ||
          line.find("backend connection closed") != std::string::npos)
        std::cout << line << "\n";
    }
    std::cout << "---- end ----" << std::endl;
  }
};

std::string hostsJson(const std::vector<uint16_t>& ports) {
  std::string s = "[";
  for (size_t i = 0; i < ports.size(); ++i)
    s += (i ? ", " : "") + std::string("\"127.0.0.1:") + std::to_string(ports[i]) + "\"";
  return s + "]";
}

const char* kPoolTimings =
    R"("connect_timeout": "500ms", "reconnect_backoff_base": "50ms",
       "reconnect_backoff_max": "200ms")";

// Kill the game backend: every frame is answered within the connect
// timeout, first by upstream (upstream_unavailable), then by the breaker
// (circuit_open) once it opened; login keeps working. Restart it: the
// breaker goes half-open after open_duration, probes pass, it closes and
// game traffic resumes.
TEST(BreakerIntegration, KilledBackendOpensRestartedBackendCloses) {
  BackendSim game, login;
  ASSERT_TRUE(game.start());
  ASSERT_TRUE(login.start());
  Gateway gw;
  ASSERT_TRUE(
      gw.start(R"([{"name": "game", "hosts": )" + hostsJson({game.port()}) + ", " + kPoolTimings +
                   R"(}, {"name": "login", "hosts": )" + hostsJson({login.port()}) + ", " +
                   kPoolTimings + "}]",
               R"([{"match": "200:0", "cluster": "game"}, {"match": "10:0", "cluster": "login"}])",
               R"({"reconnect_grace": "0s", "failure_threshold": 3, "open_duration": "1s", "max_open_duration": "4s",
          "half_open_max_probes": 2})"));
  Client c(gw.port);
  ASSERT_TRUE(c.fd.valid());
  ClientFrame r;
  ASSERT_TRUE(c.roundTrip(1, kGame, "hello game", &r));
  EXPECT_EQ(r.header.msg_id, 1);
  EXPECT_EQ(r.payload, "hello game");
  ASSERT_TRUE(c.roundTrip(2, kLogin, "hello login", &r));
  EXPECT_EQ(r.payload, "hello login");
  EXPECT_EQ(gw.breakerState("game", "*"), 0);

  auto t0 = Clock::now();
  game.kill();
  std::cout << "[client +" << ms(Clock::now() - t0) << "] game backend killed (SIGKILL)\n";
  // Keep sending to game; each frame must be answered (never silence)
  // within the connect timeout.
  std::map<uint16_t, int> codes;
  Clock::time_point first_open{};
  for (int i = 0; i < 200 && first_open == Clock::time_point{}; ++i) {
    auto sent = Clock::now();
    ASSERT_TRUE(c.send(static_cast<uint16_t>(100 + i), kGame, "ping"));
    ASSERT_TRUE(recvClientFrame(c.fd.get(), milliseconds(500), &r))
        << "frame " << i << " got no answer within the 500ms connect timeout";
    uint16_t code = errorCode(r);
    ASSERT_NE(code, 0) << "a frame to the dead backend must get an error frame";
    EXPECT_EQ(wire::getU16(reinterpret_cast<const uint8_t*>(r.payload.data()) + 2), 100 + i);
    if (codes[code]++ == 0) {
      std::cout << "[client +" << ms(Clock::now() - t0) << "] first error code " << code << " ("
                << r.payload.substr(4) << "), answered in " << ms(Clock::now() - sent) << "\n";
    }
    if (code == static_cast<uint16_t>(ErrorCode::kCircuitOpen)) first_open = Clock::now();
    std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_NE(first_open, Clock::time_point{}) << "the breaker never opened";
  EXPECT_LT(first_open - t0, seconds(3));
  EXPECT_EQ(gw.breakerState("game", "*"), 1);
  EXPECT_EQ(gw.breakerState("login", "*"), 0);
  // Open: answers are immediate.
  auto sent = Clock::now();
  ASSERT_TRUE(c.roundTrip(300, kGame, "ping", &r));
  EXPECT_EQ(errorCode(r), static_cast<uint16_t>(ErrorCode::kCircuitOpen));
  EXPECT_LT(Clock::now() - sent, milliseconds(100));
  // The other cluster is unaffected, on the same connection.
  ASSERT_TRUE(c.roundTrip(301, kLogin, "still here", &r));
  EXPECT_EQ(r.header.msg_id, 301);
  EXPECT_EQ(r.payload, "still here");

  // Restart the backend. The breaker turns half-open on its own (no
  // traffic needed), then a probe closes it.
  ASSERT_TRUE(game.start(game.port()));
  std::cout << "[client +" << ms(Clock::now() - t0) << "] game backend restarted\n";
  ASSERT_TRUE(gw.waitState("game", "*", 2, seconds(5))) << gw.proc.output();
  std::cout << "[client +" << ms(Clock::now() - t0) << "] metric: game half-open (2)\n";
  bool echoed = false;
  for (int i = 0; i < 50 && !echoed; ++i) {
    ASSERT_TRUE(
        c.roundTrip(static_cast<uint16_t>(400 + i), kGame, "probe", &r, milliseconds(1000)));
    echoed = r.header.msg_id == 400 + i && r.payload == "probe";
    if (!echoed) std::this_thread::sleep_for(milliseconds(50));
  }
  ASSERT_TRUE(echoed) << "game traffic never resumed";
  ASSERT_TRUE(gw.waitState("game", "*", 0, seconds(2)));
  std::cout << "[client +" << ms(Clock::now() - t0) << "] game echoes again; metric: closed (0)\n";
  for (int i = 0; i < 5; ++i) {
    ASSERT_TRUE(c.roundTrip(static_cast<uint16_t>(500 + i), kGame, "after", &r));
    EXPECT_EQ(r.header.msg_id, 500 + i);
  }
  std::string m = gw.metrics();
  EXPECT_GE(metricValue(m, "game_gateway_circuit_breaker_transitions_total",
                        {"cluster=\"game\"", "host=\"*\"", "to=\"open\""}),
            1);
  EXPECT_GE(metricValue(m, "game_gateway_circuit_breaker_rejected_total",
                        {"cluster=\"game\"", "reason=\"open\""}),
            1);
  gw.printTranscript("killed backend, restarted");
  c.fd.reset();
  EXPECT_EQ(gw.proc.stop(), 0);
}

// A request/response cluster whose backend accepts connections and reads
// frames but never answers: reply timeouts open the breaker.
TEST(BreakerIntegration, BackendThatNeverAnswersTripsAnExpectReplyCluster) {
  BackendSim sink;
  ASSERT_TRUE(sink.start(0, {"--mode", "sink"}));
  Gateway gw;
  ASSERT_TRUE(
      gw.start(R"([{"name": "game", "expect_reply": true, "hosts": )" + hostsJson({sink.port()}) +
                   ", " + kPoolTimings + "}]",
               R"([{"match": "200:0", "cluster": "game"}])",
               R"({"failure_threshold": 3, "reply_timeout": "300ms", "open_duration": "10s"})"));
  Client c(gw.port);
  ASSERT_TRUE(c.fd.valid());
  auto t0 = Clock::now();
  ClientFrame r;
  bool opened = false;
  int sent = 0;
  while (!opened && Clock::now() - t0 < seconds(8)) {
    ASSERT_TRUE(c.send(static_cast<uint16_t>(sent++), kGame, "anyone?"));
    if (recvClientFrame(c.fd.get(), milliseconds(100), &r)) {
      ASSERT_EQ(errorCode(r), static_cast<uint16_t>(ErrorCode::kCircuitOpen));
      opened = true;
    }
  }
  ASSERT_TRUE(opened) << gw.proc.output();
  std::cout << "[client +" << ms(Clock::now() - t0) << "] first circuit_open after " << sent
            << " unanswered frames\n";
  EXPECT_GT(Clock::now() - t0, milliseconds(800)) << "3 timeouts of 300ms each";
  std::string m = gw.metrics();
  EXPECT_EQ(
      metricValue(m, "game_gateway_circuit_breaker_state", {"cluster=\"game\"", "host=\"*\""}), 1);
  EXPECT_GE(metricValue(m, "game_gateway_circuit_breaker_failures_total",
                        {"cluster=\"game\"", "kind=\"reply_timeout\""}),
            3);
  // Still connected, still answered at once.
  ASSERT_TRUE(c.roundTrip(999, kGame, "again", &r, milliseconds(200)));
  EXPECT_EQ(errorCode(r), static_cast<uint16_t>(ErrorCode::kCircuitOpen));
  gw.printTranscript("backend never answers (expect_reply)");
  c.fd.reset();
  EXPECT_EQ(gw.proc.stop(), 0);
}

// Two hosts; one dies. Its host breaker opens and it is ejected: the
// sessions that were on it move to the other host, which serves everyone;
// the cluster-level breaker stays closed.
TEST(BreakerIntegration, OneBadHostOfTwoIsEjectedWhileTheOtherServes) {
  BackendSim a, b;
  ASSERT_TRUE(a.start(0, {"--reply-prefix", "A:"}));
  ASSERT_TRUE(b.start(0, {"--reply-prefix", "B:"}));
  Gateway gw;
  ASSERT_TRUE(
      gw.start(R"([{"name": "game", "lb": "round_robin", "hosts": )" +
                   hostsJson({a.port(), b.port()}) + ", " + kPoolTimings + "}]",
               R"([{"match": "200:0", "cluster": "game"}])",
               R"({"reconnect_grace": "0s", "failure_threshold": 3, "open_duration": "5s", "max_ejection_percent": 50})"));
  std::vector<std::unique_ptr<Client>> clients;
  std::map<char, int> served;
  ClientFrame r;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(std::make_unique<Client>(gw.port));
    ASSERT_TRUE(clients.back()->roundTrip(1, kGame, "hi", &r));
    ASSERT_EQ(r.payload.size(), 4u) << r.payload;
    served[r.payload[0]]++;
  }
  EXPECT_GT(served['A'], 0);
  EXPECT_GT(served['B'], 0) << "round robin spreads sessions over both hosts";
  std::string host_b = "127.0.0.1:" + std::to_string(b.port());

  auto t0 = Clock::now();
  b.kill();
  std::cout << "[client +" << ms(Clock::now() - t0) << "] host B killed\n";
  // Every client keeps playing and a new player arrives every round; each
  // frame is answered (a reply or an error frame) until B is ejected. B's
  // failures need attempts on it: the lost connections count as one, and
  // the sessions that were on B move to A at once and stay there, so only
  // new sessions, which round robin offers B again after its reconnect
  // backoff, make the reconnects that fail. Bounded by time, not rounds:
  // under ASan a round takes longer.
  bool ejected = false;
  while (!ejected && Clock::now() - t0 < std::chrono::seconds(10)) {
    clients.push_back(std::make_unique<Client>(gw.port));
    for (auto& c : clients) {
      ASSERT_TRUE(c->roundTrip(2, kGame, "hi", &r, milliseconds(1000)))
          << "no answer within the connect timeout";
    }
    ejected = gw.breakerState("game", host_b) == 1;
    if (!ejected) std::this_thread::sleep_for(milliseconds(20));
  }
  ASSERT_TRUE(ejected) << gw.proc.output();
  std::cout << "[client +" << ms(Clock::now() - t0) << "] metric: host B open\n";
  std::string m = gw.metrics();
  EXPECT_EQ(metricValue(m, "game_gateway_circuit_breaker_ejected_hosts", {"cluster=\"game\""}), 1);
  EXPECT_EQ(
      metricValue(m, "game_gateway_circuit_breaker_state", {"cluster=\"game\"", "host=\"*\""}), 0)
      << "the cluster as a whole keeps serving";
  // Let sessions still in flight to B settle (re-homed on their next frame).
  for (auto& c : clients) c->roundTrip(3, kGame, "hi", &r, milliseconds(1000));
  // Now A serves everyone, with no error frames.
  for (int round = 0; round < 5; ++round) {
    for (auto& c : clients) {
      ASSERT_TRUE(c->roundTrip(4, kGame, "hi", &r, milliseconds(1000)));
      ASSERT_EQ(r.header.msg_id, 4) << "error code " << errorCode(r);
      EXPECT_EQ(r.payload, "A:hi");
    }
  }
  std::cout << "[client +" << ms(Clock::now() - t0) << "] all " << clients.size()
            << " sessions served by A\n";
  gw.printTranscript("one bad host of two");
  clients.clear();
  EXPECT_EQ(gw.proc.stop(), 0);
}

}  // namespace
}  // namespace test
}  // namespace gw
