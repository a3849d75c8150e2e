// Integration tests of ip_limiter's shedding at max_connections through the
// real gateway binary (ip_limiter → framing → upstream to a real
// backend_sim) on 127.0.0.1:
//   - the gateway full of silent sockets (no complete first frame) still
//     lets a new player in: the oldest silent socket is shed with error
//     frame code 8 (`overloaded`) and closed, the player's frame is
//     answered, an established player is never shed, and the shed is
//     counted (game_gateway_ip_limiter_shed_total);
//   - with `"at_max_connections": "refuse"` the new player is refused as
//     before (the documented alternative).
#include <gtest/gtest.h>

#include <chrono>
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

uint32_t gameServer() { return wire::ClientHeader::makeServerId(0, 200, 0); }

// One worker: shedding is per worker (the worker accepting the new player
// sheds its own oldest silent socket), so one worker makes the victim known.
std::string gatewayConfig(uint16_t backend_port, const std::string& limiter_json) {
  return R"({"workers": 1, "drain_timeout": "1s", "admin": {"address": "127.0.0.1:0"},
    "listeners": [{"name": "game", "address": "127.0.0.1:0",
      "filters": [{"name": "ip_limiter", "config": )" +
         limiter_json + R"(},
                  {"name": "framing", "config": {"first_frame_timeout": "1m"}},
                  {"name": "upstream", "config": {"routes": [{"match": "200:0", "cluster": "game"}]}}]}],
    "clusters": [{"name": "game", "hosts": ["127.0.0.1:)" +
         std::to_string(backend_port) + R"("], "connect_timeout": "1s"}]})";
}

// GET /metrics from the admin API ("" on failure).
std::string metrics(uint16_t admin_port) {
  UniqueFd fd = connectTcp(admin_port);
  if (!fd.valid()) return "";
  if (!sendAll(fd.get(), "GET /metrics HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")) return "";
  std::string resp;
  recvUntilEof(fd.get(), milliseconds(5000), &resp);
  return resp;
}

// The value of `series` (name and labels exactly) in Prometheus text, or -1.
double metric(const std::string& text, const std::string& series) {
  size_t at = text.find("\n" + series + " ");
  if (at == std::string::npos) return -1;
  return std::stod(text.substr(at + series.size() + 2));
}

class ShedIntegrationTest : public ::testing::Test {
 protected:
  void start(const std::string& limiter_json) {
    std::vector<std::string> argv = {runfile("tools/backend_sim/backend_sim"), "--address",
                                     "127.0.0.1:0", "--quiet"};
    std::string err;
    ASSERT_TRUE(backend_.start(argv, &err)) << err;
    uint16_t backend_port = waitForListeningPort(backend_, "backend_sim", seconds(10));
    ASSERT_NE(backend_port, 0);
    ASSERT_TRUE(gateway_.start(gatewayConfig(backend_port, limiter_json), &err)) << err;
    port_ = gateway_.listenerPort("game");
    admin_port_ = gateway_.adminPort();
    ASSERT_NE(port_, 0) << gateway_.output();
    ASSERT_NE(admin_port_, 0) << gateway_.output();
  }
  void TearDown() override {
    if (gateway_.pid() > 0) EXPECT_EQ(gateway_.stop(), std::optional<int>(0)) << gateway_.output();
  }

  // A new connection that sends one frame and gets its echo: a player.
  UniqueFd player(const std::string& payload) {
    UniqueFd fd = connectTcp(port_);
    EXPECT_TRUE(fd.valid());
    if (!fd.valid()) return fd;
    EXPECT_TRUE(roundTrip(fd.get(), payload));
    return fd;
  }
  bool roundTrip(int fd, const std::string& payload) {
    if (!sendAll(fd, encodeClientFrame(7, gameServer(), payload))) return false;
    ClientFrame f;
    return recvClientFrame(fd, milliseconds(5000), &f) && f.header.msg_id == 7 &&
           f.payload == payload;
  }
  // Waits (up to 5 s) until the gateway holds `n` open connections on "game".
  bool waitActive(double n) {
    for (auto deadline = Clock::now() + seconds(5); Clock::now() < deadline;) {
      if (metric(metrics(admin_port_), R"(game_gateway_connections_active{listener="game"})") == n)
        return true;
      std::this_thread::sleep_for(milliseconds(20));
    }
    return false;
  }

  Process backend_;
  GatewayProcess gateway_;
  uint16_t port_ = 0;
  uint16_t admin_port_ = 0;
};

TEST_F(ShedIntegrationTest, FullOfSilentSocketsANewPlayerGetsInAndTheOldestSilentOneIsShed) {
  start(R"({"max_connections": 8, "max_connections_per_ip": 100,
            "connection_rate_limit": 1000, "connection_burst": 1000})");
  // One established player, then 7 silent sockets: the gateway is at its cap.
  UniqueFd established = player("first");
  std::vector<UniqueFd> silent;
  for (int i = 0; i < 7; ++i) {
    silent.push_back(connectTcp(port_));
    ASSERT_TRUE(silent.back().valid());
    ASSERT_TRUE(waitActive(2 + i)) << "silent socket " << i << " not counted";
  }

  // A new player: served (the old code refused it at once, reason global).
  UniqueFd newcomer = connectTcp(port_);
  ASSERT_TRUE(newcomer.valid());
  EXPECT_TRUE(roundTrip(newcomer.get(), "let me in")) << gateway_.output();

  // The oldest silent socket got error frame code 8 and was closed.
  ClientFrame f;
  ASSERT_TRUE(recvClientFrame(silent[0].get(), milliseconds(3000), &f));
  EXPECT_EQ(f.header.msg_id, kErrorMsgId);
  EXPECT_EQ(f.header.server_id, 0u);
  EXPECT_EQ(f.payload, errorFramePayload(ErrorCode::kOverloaded, 0));
  EXPECT_TRUE(waitClosed(silent[0].get(), milliseconds(3000)));
  // The other silent sockets are untouched; the established player is kept.
  for (size_t i = 1; i < silent.size(); ++i) {
    std::string got;
    EXPECT_FALSE(recvExact(silent[i].get(), 1, milliseconds(50), &got)) << "silent " << i;
  }
  EXPECT_TRUE(roundTrip(established.get(), "still here"));

  // Another player sheds the next oldest.
  UniqueFd second = connectTcp(port_);
  ASSERT_TRUE(second.valid());
  EXPECT_TRUE(roundTrip(second.get(), "me too"));
  ASSERT_TRUE(recvClientFrame(silent[1].get(), milliseconds(3000), &f));
  EXPECT_EQ(f.payload, errorFramePayload(ErrorCode::kOverloaded, 0));

  std::string m = metrics(admin_port_);
  EXPECT_EQ(metric(m, R"(game_gateway_ip_limiter_shed_total{listener="game"})"), 2) << m;
  EXPECT_EQ(metric(m, R"(game_gateway_connection_closes_total{listener="game",reason="overloaded"})"),
            2)
      << m;
  EXPECT_EQ(metric(m, R"(game_gateway_rate_limit_rejected_total{listener="game",reason="global"})"),
            0);
}

TEST_F(ShedIntegrationTest, FullOfPlayersANewPlayerIsRefused) {
  start(R"({"max_connections": 3, "max_connections_per_ip": 100,
            "connection_rate_limit": 1000, "connection_burst": 1000})");
  std::vector<UniqueFd> players;
  for (int i = 0; i < 3; ++i) players.push_back(player("p" + std::to_string(i)));
  // Nobody to shed: refused, reason global; the players stay served.
  UniqueFd newcomer = connectTcp(port_);
  ASSERT_TRUE(newcomer.valid());
  EXPECT_TRUE(waitClosed(newcomer.get(), milliseconds(3000)));
  for (auto& p : players) EXPECT_TRUE(roundTrip(p.get(), "still here"));
  std::string m = metrics(admin_port_);
  EXPECT_EQ(metric(m, R"(game_gateway_rate_limit_rejected_total{listener="game",reason="global"})"),
            1);
  EXPECT_EQ(metric(m, R"(game_gateway_ip_limiter_shed_total{listener="game"})"), 0);
}

TEST_F(ShedIntegrationTest, RefuseModeKeepsSilentSocketsAndRefusesTheNewPlayer) {
  start(R"({"max_connections": 3, "max_connections_per_ip": 100,
            "connection_rate_limit": 1000, "connection_burst": 1000,
            "at_max_connections": "refuse"})");
  std::vector<UniqueFd> silent;
  for (int i = 0; i < 3; ++i) {
    silent.push_back(connectTcp(port_));
    ASSERT_TRUE(waitActive(1 + i));
  }
  UniqueFd newcomer = connectTcp(port_);
  ASSERT_TRUE(newcomer.valid());
  EXPECT_TRUE(waitClosed(newcomer.get(), milliseconds(3000)));
  std::string got;
  EXPECT_FALSE(recvExact(silent[0].get(), 1, milliseconds(100), &got));
}

}  // namespace
}  // namespace test
}  // namespace gw
