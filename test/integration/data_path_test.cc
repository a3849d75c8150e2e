// Integration tests of the game data path — framing → upstream — through the
// real gateway binary, with real backend_sim processes (or a scripted
// backend socket driven by the test) on free 127.0.0.1 ports: round trips
// for 1, 100 and 1000 clients, the backend connection cap, routing and its
// fallback, no route, pushes and kicks reaching exactly their session, and a
// backend killed and restarted.
#include <gtest/gtest.h>
#include <sys/resource.h>

#include <chrono>
#include <csignal>
#include <map>
#include <regex>
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

uint32_t sid(uint16_t world, uint8_t type) { return wire::ClientHeader::makeServerId(world, type, 0); }

// A backend_sim process on a free port.
struct BackendSim {
  Process process;
  uint16_t port = 0;

  // On `use_port`, or, if it is 0, on a port the kernel picks (read back
  // from its "listening on" line: a port picked beforehand can be taken by
  // a test running in parallel before backend_sim binds it).
  bool start(std::vector<std::string> extra = {}, uint16_t use_port = 0) {
    std::vector<std::string> argv = {runfile("tools/backend_sim/backend_sim"), "--address",
                                     "127.0.0.1:" + std::to_string(use_port)};
    argv.insert(argv.end(), extra.begin(), extra.end());
    std::string error;
    if (!process.start(argv, &error)) {
      ADD_FAILURE() << error;
      return false;
    }
    port = waitForListeningPort(process, "backend_sim", seconds(10));
    return port != 0;
  }
  // The value of `key` in the newest stats line (printed on SIGUSR1).
  long stat(const std::string& key) {
    size_t before = process.output().size();
    process.signal(SIGUSR1);
    for (int i = 0; i < 100; ++i) {
      std::string out = process.output();
      size_t at = out.find("backend_sim stats:", before);
      if (at != std::string::npos && out.find('\n', at) != std::string::npos) {
        std::smatch m;
        std::string line = out.substr(at, out.find('\n', at) - at);
        if (std::regex_search(line, m, std::regex(key + "=([0-9]+)"))) return std::stol(m[1]);
        return -1;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
    return -1;
  }
};

std::string gatewayConfig(uint16_t port, const std::string& clusters, const std::string& routes,
                          int workers = 2) {
  return R"({"workers": )" + std::to_string(workers) + R"(, "drain_timeout": "1s",
    "admin": {"address": "127.0.0.1:0"},
    "listeners": [{"name": "game", "address": "127.0.0.1:)" + std::to_string(port) + R"(",
      "filters": [{"name": "framing", "config": {"max_frame_bytes": 4096}},
                  {"name": "upstream", "config": {"routes": )" + routes + R"(}}]}],
    "clusters": )" + clusters + "}";
}

std::string cluster(const std::string& name, uint16_t port, int per_service = 4) {
  return R"({"name": ")" + name + R"(", "hosts": ["127.0.0.1:)" + std::to_string(port) +
         R"("], "connect_timeout": "1s", "reconnect_backoff_base": "50ms",
         "reconnect_backoff_max": "200ms", "max_connections_per_service": )" +
         std::to_string(per_service) + "}";
}

class DataPathTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // 1000 clients: raise the fd limit for this process and its children.
    rlimit rl;
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }

  void startGateway(const std::string& config) {
    std::string error;
    ASSERT_TRUE(gateway_.start(config, &error)) << error;
    port_ = gateway_.listenerPort("game");
    ASSERT_NE(port_, 0);
  }

  // Round trip of one frame on `fd`: expects the echo of the same msg_id and
  // payload with server_id 0.
  void expectEcho(int fd, uint16_t msg_id, uint32_t server_id, const std::string& payload,
                  const std::string& reply_prefix = "") {
    ASSERT_TRUE(sendAll(fd, encodeClientFrame(msg_id, server_id, payload)));
    ClientFrame f;
    ASSERT_TRUE(recvClientFrame(fd, milliseconds(5000), &f)) << "no reply to " << payload;
    EXPECT_EQ(f.header.msg_id, msg_id);
    EXPECT_EQ(f.header.server_id, 0u);
    EXPECT_EQ(f.payload, reply_prefix + payload);
  }

  GatewayProcess gateway_;
  uint16_t port_ = 0;
};

// Round trips for N concurrent clients, each with its own payload, and the
// backend sees no more than max_connections_per_service connections.
void roundTrips(DataPathTest* t, int clients, GatewayProcess& gw, uint16_t port, BackendSim& sim,
                int max_backend_connections) {
  std::vector<UniqueFd> fds;
  for (int i = 0; i < clients; ++i) {
    fds.push_back(connectTcp(port, milliseconds(5000)));
    ASSERT_TRUE(fds.back().valid()) << "connect #" << i;
  }
  for (int round = 0; round < 2; ++round) {
    for (int i = 0; i < clients; ++i) {
      std::string payload = "client " + std::to_string(i) + " round " + std::to_string(round);
      ASSERT_TRUE(sendAll(fds[i].get(), encodeClientFrame(static_cast<uint16_t>(i % 60000 + 1),
                                                          sid(0, 200), payload)));
    }
    for (int i = 0; i < clients; ++i) {
      ClientFrame f;
      ASSERT_TRUE(recvClientFrame(fds[i].get(), milliseconds(10000), &f)) << "client " << i;
      EXPECT_EQ(f.header.msg_id, i % 60000 + 1);
      EXPECT_EQ(f.header.server_id, 0u);
      EXPECT_EQ(f.payload, "client " + std::to_string(i) + " round " + std::to_string(round));
    }
  }
  long accepted = sim.stat("accepted");
  EXPECT_GE(accepted, 1);
  EXPECT_LE(accepted, max_backend_connections);
  (void)t;
  (void)gw;
}

TEST_F(DataPathTest, RoundTripsFor1And100And1000ClientsOverFewBackendConnections) {
  BackendSim sim;
  ASSERT_TRUE(sim.start({"--quiet"}));
  // 2 workers share max_connections_per_service = 2: one backend connection each.
  startGateway(gatewayConfig(0, "[" + cluster("game", sim.port, 2) + "]",
                             R"([{"match": "200:0", "cluster": "game"}])"));
  roundTrips(this, 1, gateway_, port_, sim, 2);
  roundTrips(this, 100, gateway_, port_, sim, 2);
  roundTrips(this, 1000, gateway_, port_, sim, 2);
  EXPECT_EQ(gateway_.stop(), 0);
}

TEST_F(DataPathTest, RoutesByServerTypeAndWorldWithFallbackAndAnswersNoRoute) {
  BackendSim game, account, world7;
  ASSERT_TRUE(game.start({"--reply-prefix", "game:"}));
  ASSERT_TRUE(account.start({"--reply-prefix", "acct:"}));
  ASSERT_TRUE(world7.start({"--reply-prefix", "w7:"}));
  startGateway(gatewayConfig(
      0,
      "[" + cluster("game", game.port) + "," + cluster("account", account.port) + "," +
          cluster("world7", world7.port) + "]",
      R"([{"match": "200:0", "cluster": "game"}, {"match": "10:0", "cluster": "account"},
          {"match": "200:7", "cluster": "world7"}])"));
  UniqueFd c = connectTcp(port_);
  ASSERT_TRUE(c.valid());
  expectEcho(c.get(), 1, sid(0, 200), "to game", "game:");
  expectEcho(c.get(), 2, sid(7, 200), "to world 7", "w7:");
  expectEcho(c.get(), 3, sid(3, 200), "world 3 falls back", "game:");
  expectEcho(c.get(), 4, sid(5, 10), "account world 5 falls back", "acct:");

  // No route: an error frame, and the connection stays usable.
  ASSERT_TRUE(sendAll(c.get(), encodeClientFrame(77, sid(0, 99), "nowhere")));
  ClientFrame err;
  ASSERT_TRUE(recvClientFrame(c.get(), milliseconds(3000), &err));
  EXPECT_EQ(err.header.msg_id, kErrorMsgId);
  EXPECT_EQ(err.header.server_id, 0u);
  EXPECT_EQ(err.payload, errorFramePayload(ErrorCode::kNoRoute, 77));
  expectEcho(c.get(), 5, sid(0, 200), "still served", "game:");
  EXPECT_EQ(gateway_.stop(), 0);
}

// The test is the backend: it learns each client's session id from the
// frames the gateway forwards, then pushes to one session and kicks another.
TEST_F(DataPathTest, PushesAndKicksReachExactlyTheirSession) {
  UniqueFd listener = listenTcp(0);
  ASSERT_TRUE(listener.valid());
  uint16_t backend_port = localPort(listener.get());
  startGateway(gatewayConfig(0, "[" + cluster("game", backend_port, 1) + "]",
                             R"([{"match": "200:0", "cluster": "game"}])", /*workers=*/1));
  UniqueFd a = connectTcp(port_);
  UniqueFd b = connectTcp(port_);
  ASSERT_TRUE(a.valid() && b.valid());
  ASSERT_TRUE(sendAll(a.get(), encodeClientFrame(11, sid(0, 200), "from A")));
  UniqueFd backend = acceptTcp(listener.get(), milliseconds(5000));
  ASSERT_TRUE(backend.valid());
  ASSERT_TRUE(sendAll(b.get(), encodeClientFrame(12, sid(0, 200), "from B")));

  // Expect: open(A), data(A), open(B), data(B) on the one backend connection.
  std::map<std::string, uint64_t> session_of;
  std::vector<wire::Opcode> ops;
  while (session_of.size() < 2) {
    ServerFrame f;
    ASSERT_TRUE(recvServerFrame(backend.get(), milliseconds(5000), &f));
    ops.push_back(static_cast<wire::Opcode>(f.header.opcode));
    EXPECT_EQ(f.header.object_id, f.header.session_id);
    EXPECT_EQ(f.header.server_id, 0u);
    if (f.header.opcode == static_cast<uint8_t>(wire::Opcode::kData)) {
      session_of[f.payload] = static_cast<uint64_t>(f.header.session_id);
      EXPECT_EQ(f.header.type, f.payload == "from A" ? 11 : 12);
    }
  }
  ASSERT_EQ(ops.size(), 4u);
  EXPECT_EQ(ops[0], wire::Opcode::kSessionOpen);
  EXPECT_EQ(ops[1], wire::Opcode::kData);
  uint64_t sa = session_of["from A"], sb = session_of["from B"];
  ASSERT_NE(sa, sb);

  // A push for A arrives at A only.
  ASSERT_TRUE(sendAll(backend.get(), encodeServerFrame(wire::Opcode::kData, 9001, sa, "for A")));
  ClientFrame f;
  ASSERT_TRUE(recvClientFrame(a.get(), milliseconds(3000), &f));
  EXPECT_EQ(f.header.msg_id, 9001);
  EXPECT_EQ(f.payload, "for A");
  EXPECT_FALSE(recvClientFrame(b.get(), milliseconds(300), &f)) << "B got A's push";

  // A frame for an unknown session reaches nobody.
  ASSERT_TRUE(sendAll(backend.get(), encodeServerFrame(wire::Opcode::kData, 9002, 424242, "lost")));
  EXPECT_FALSE(recvClientFrame(a.get(), milliseconds(200), &f));
  EXPECT_FALSE(recvClientFrame(b.get(), milliseconds(200), &f));

  // Kick B: B is closed, A keeps working, the backend hears B's close.
  ASSERT_TRUE(sendAll(backend.get(), encodeServerFrame(wire::Opcode::kKick, 0, sb, "")));
  EXPECT_TRUE(waitClosed(b.get(), milliseconds(3000)));
  ASSERT_TRUE(sendAll(a.get(), encodeClientFrame(13, sid(0, 200), "A again")));
  bool saw_close_b = false, saw_a_again = false;
  for (int i = 0; i < 4 && !(saw_close_b && saw_a_again); ++i) {
    ServerFrame s;
    ASSERT_TRUE(recvServerFrame(backend.get(), milliseconds(3000), &s));
    if (s.header.opcode == static_cast<uint8_t>(wire::Opcode::kSessionClose)) {
      EXPECT_EQ(static_cast<uint64_t>(s.header.session_id), sb);
      saw_close_b = true;
    }
    if (s.payload == "A again") saw_a_again = true;
  }
  EXPECT_TRUE(saw_close_b);
  EXPECT_TRUE(saw_a_again);
  EXPECT_EQ(gateway_.stop(), 0);
}

TEST_F(DataPathTest, BackendKilledAndRestartedServesSessionsAgain) {
  BackendSim sim;
  ASSERT_TRUE(sim.start());
  uint16_t backend_port = sim.port;
  startGateway(gatewayConfig(0, "[" + cluster("game", backend_port) + "]",
                             R"([{"match": "200:0", "cluster": "game"}])"));
  UniqueFd c = connectTcp(port_);
  ASSERT_TRUE(c.valid());
  expectEcho(c.get(), 1, sid(0, 200), "before");
  sim.process.signal(SIGKILL);
  sim.process.wait(seconds(5));

  // While the backend is down every frame is answered — with an error frame.
  ASSERT_TRUE(sendAll(c.get(), encodeClientFrame(2, sid(0, 200), "while down")));
  ClientFrame f;
  ASSERT_TRUE(recvClientFrame(c.get(), milliseconds(5000), &f));
  EXPECT_EQ(f.header.msg_id, kErrorMsgId);
  EXPECT_EQ(f.payload, errorFramePayload(ErrorCode::kUpstreamUnavailable, 2));

  BackendSim again;
  ASSERT_TRUE(again.start({}, backend_port));
  bool served = false;
  for (int i = 0; i < 50 && !served; ++i) {
    ASSERT_TRUE(sendAll(c.get(), encodeClientFrame(3, sid(0, 200), "after")));
    ASSERT_TRUE(recvClientFrame(c.get(), milliseconds(5000), &f));
    if (f.header.msg_id == 3) {
      EXPECT_EQ(f.payload, "after");
      served = true;
    } else {
      std::this_thread::sleep_for(milliseconds(100));
    }
  }
  EXPECT_TRUE(served) << gateway_.output();
  EXPECT_EQ(gateway_.stop(), 0);
}

TEST_F(DataPathTest, OversizedFrameClosesOnlyThatClient) {
  BackendSim sim;
  ASSERT_TRUE(sim.start());
  startGateway(gatewayConfig(0, "[" + cluster("game", sim.port) + "]",
                             R"([{"match": "200:0", "cluster": "game"}])"));
  UniqueFd good = connectTcp(port_);
  UniqueFd bad = connectTcp(port_);
  expectEcho(good.get(), 1, sid(0, 200), "hello");
  ASSERT_TRUE(sendAll(bad.get(), encodeClientFrame(2, sid(0, 200), std::string(5000, 'x'))));
  EXPECT_TRUE(waitClosed(bad.get(), milliseconds(3000)));
  expectEcho(good.get(), 3, sid(0, 200), "still fine");
  EXPECT_EQ(gateway_.stop(), 0);
}

}  // namespace
}  // namespace test
}  // namespace gw
