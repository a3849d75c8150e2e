// The idle sweep through the real gateway (memory store, a single replica):
// with cleanup_interval 200 ms and idle_timeout 1 s, an idle client is
// closed with reason session_idle and its backend hears the session close,
// while a client that keeps talking stays connected; many clients of all
// workers get distinct session ids.
#include <gtest/gtest.h>

#include <set>
#include <thread>

#include "test/integration/fleet_test.h"

namespace gw {
namespace test {
namespace {

using namespace std::chrono_literals;

TEST(SessionSweepTest, IdleSessionsAreClosedWithAReason) {
  signal(SIGPIPE, SIG_IGN);
  BackendSim sim;
  std::string error;
  ASSERT_TRUE(sim.start({}, &error)) << error;
  FleetOptions o;
  o.window = "";  // no resume: a single gateway, the Go gateway's behaviour
  o.cleanup_interval = "200ms";
  o.idle_timeout = "1s";
  GatewayProcess gw;
  ASSERT_TRUE(startGateway(gw, "gw-solo", fleetConfig(0, sim.port(), o), &error)) << error;
  uint16_t port = gw.listenerPort("game");
  ASSERT_NE(port, 0) << gw.output();

  GameClient idle, busy;
  ASSERT_TRUE(idle.connect(port) && idle.roundTrip("x"));
  ASSERT_TRUE(busy.connect(port) && busy.roundTrip("x"));
  auto start = std::chrono::steady_clock::now();
  bool idle_closed = false;
  while (std::chrono::steady_clock::now() - start < 4s) {
    ASSERT_TRUE(busy.roundTrip("keepalive")) << "the active client was closed";
    if (waitClosed(idle.fd(), 200ms)) {
      idle_closed = true;
      break;
    }
  }
  ASSERT_TRUE(idle_closed) << gw.output();
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, 700ms);
  std::cout << "idle session closed after "
            << std::chrono::duration_cast<std::chrono::milliseconds>(waited).count() << " ms\n";
  // Keep the busy one going past another sweep.
  for (int i = 0; i < 8; ++i) {
    ASSERT_TRUE(busy.roundTrip("keepalive"));
    std::this_thread::sleep_for(150ms);
  }
  // idle_closed_total is counted before the close; the close reason (worker's
  // onChainClosed) and sessions_active (the session filter's onClose) only
  // after the socket is closed, on the worker's thread: wait for them rather
  // than rely on the keepalive loop above taking long enough.
  const std::string closes_series =
      "game_gateway_connection_closes_total{listener=\"game\",reason=\"session_idle\"}";
  const std::string active_series = "game_gateway_sessions_active{listener=\"game\"}";
  EXPECT_TRUE(waitUntil([&] { return gatewayMetric(gw, closes_series).value_or(0) >= 1; }));
  EXPECT_TRUE(waitUntil([&] { return gatewayMetric(gw, active_series).value_or(0) <= 1; }));
  EXPECT_EQ(gatewayMetric(gw, "game_gateway_sessions_idle_closed_total{listener=\"game\"}"), 1);
  EXPECT_EQ(gatewayMetric(gw, closes_series), 1);
  EXPECT_EQ(gatewayMetric(gw, active_series), 1);
  EXPECT_TRUE(waitUntil([&] { return sim.stats()["closes"] == 1; }));  // backends are told
}

TEST(SessionSweepTest, ClientsOfAllWorkersGetDistinctIds) {
  signal(SIGPIPE, SIG_IGN);
  BackendSim sim;
  std::string error;
  ASSERT_TRUE(sim.start({}, &error)) << error;
  FleetOptions o;
  o.workers = 2;
  GatewayProcess gw;
  ASSERT_TRUE(startGateway(gw, "gw-ids", fleetConfig(0, sim.port(), o), &error)) << error;
  uint16_t port = gw.listenerPort("game");
  ASSERT_NE(port, 0) << gw.output();
  // 4 threads x 50 clients connect at once; the kernel spreads them over
  // both workers.
  std::mutex mu;
  std::set<uint64_t> ids;
  int failures = 0;
  std::vector<std::thread> ts;
  for (int t = 0; t < 4; ++t) {
    ts.emplace_back([&] {
      std::vector<GameClient> clients(50);
      for (auto& c : clients) {
        bool ok = c.connect(port) && c.hello();
        std::lock_guard<std::mutex> lock(mu);
        if (ok) {
          ids.insert(c.id());
        } else {
          ++failures;
        }
      }
    });
  }
  for (auto& t : ts) t.join();
  EXPECT_EQ(failures, 0);
  EXPECT_EQ(ids.size(), 200u);
  EXPECT_EQ(gatewayMetric(gw, "game_gateway_sessions_created_total{listener=\"game\"}"), 200);
}

}  // namespace
}  // namespace test
}  // namespace gw
