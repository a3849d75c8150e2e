// Integration test of backend pools across SIGHUP reloads (issue 14, defect
// 5), against the real gateway binary and a real backend socket: sessions
// that stay open across many reloads, each reload's new sessions opened on
// the new config generation, must share one set of backend connections, so
// the backend never sees more connections than the cluster's
// max_connections_per_service.
#include <gtest/gtest.h>
#include <signal.h>

#include <chrono>
#include <functional>
#include <thread>
#include <string>
#include <vector>

#include "test/harness/gateway.h"
#include "test/harness/net.h"
#include "test/harness/recording_backend.h"
#include "test/integration/ops_test.h"

namespace gw {
namespace test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

// framing -> upstream on listener "game", one worker (so the worker's share
// of the limit is the whole limit); cluster "game" (route 200:0) at
// 127.0.0.1:`backend_port` with max_connections_per_service `limit`.
// `idle_timeout` differs between generations so every reload changes the
// kept cluster's config.
std::string config(uint16_t backend_port, int limit, int idle_minutes) {
  return R"({"workers": 1, "admin": )" + testAdminJson() +
         R"(, "listeners": [{"name": "game", "address": "127.0.0.1:0", "filters": [
             {"name": "framing", "config": {}},
             {"name": "upstream", "config": {"routes": [{"match": "200:0", "cluster": "game"}]}}]}],
         "clusters": [{"name": "game", "hosts": ["127.0.0.1:)" +
         std::to_string(backend_port) + R"("], "max_connections_per_service": )" +
         std::to_string(limit) + R"(, "idle_timeout": ")" + std::to_string(idle_minutes) +
         R"(m"}]})";
}

// Polls `backend` until `pred` holds or `timeout` passes.
bool pollUntil(RecordingBackend& backend, const std::function<bool()>& pred, milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    backend.poll();
    if (pred()) return true;
    std::this_thread::sleep_for(milliseconds(10));
  }
  backend.poll();
  return pred();
}

TEST(PoolReloadTest, MaxConnectionsPerServiceHoldsAcrossReloads) {
  constexpr int kLimit = 2;
  constexpr int kReloads = 12;
  RecordingBackend backend;
  GatewayProcess gw;
  std::string error;
  ASSERT_TRUE(gw.start(config(backend.port(), kLimit, 5), &error)) << error;
  uint16_t port = gw.listenerPort("game");
  ASSERT_NE(port, 0) << gw.output();

  // One long-lived session per generation; every session sends a frame on
  // its own generation's chain and stays open to the end.
  std::vector<UniqueFd> clients;
  auto openSession = [&](int n) {
    UniqueFd c = connectTcp(port);
    ASSERT_TRUE(c.valid()) << gw.output();
    ASSERT_TRUE(sendAll(c.get(), encodeClientFrame(7, 200 << 8, "gen" + std::to_string(n))));
    clients.push_back(std::move(c));
    size_t want = clients.size();
    ASSERT_TRUE(pollUntil(backend, [&] { return backend.dataSessions().size() >= want; },
                          seconds(5)))
        << "session " << n << " never reached the backend\n" << gw.output();
  };
  openSession(0);
  for (int i = 1; i <= kReloads; ++i) {
    ASSERT_TRUE(writeFile(gw.configPath(), config(backend.port(), kLimit, 5 + i)));
    ASSERT_TRUE(gw.process().signal(SIGHUP));
    ASSERT_TRUE(gw.process().waitForOutput(
        "config reload " + std::to_string(i + 1) + " applied on every worker", seconds(5)))
        << gw.output();
    openSession(i);
  }
  // Let late connects arrive before counting.
  pollUntil(backend, [] { return false; }, milliseconds(300));
  EXPECT_EQ(backend.dataSessions().size(), static_cast<size_t>(kReloads + 1));
  EXPECT_LE(backend.connections(), static_cast<size_t>(kLimit))
      << "backend connections opened across " << kReloads << " reloads with "
      << kReloads + 1 << " live sessions; max_connections_per_service is " << kLimit;
  clients.clear();  // SIGTERM drains: the sessions go first
  EXPECT_EQ(gw.stop(), 0);
}

}  // namespace
}  // namespace test
}  // namespace gw
