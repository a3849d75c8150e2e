// Two real gateway processes (replicas "gw-a" and "gw-b") sharing one real
// redis-server, with //tools/backend_sim as the game backend, all on
// 127.0.0.1: a client's session survives its replica being stopped
// (SIGTERM, and separately SIGKILL) by resuming on the other one — same
// session id, and the backend never sees the session close; a duplicate
// login across replicas kicks the older session; a routing-rules update in
// Redis reaches both replicas within the refresh interval; the admin API of
// one replica finds and kicks a session served by the other.
#include <gtest/gtest.h>

#include <thread>

#include "test/filters/session/redis_fixture.h"
#include "test/integration/fleet_test.h"

namespace gw {
namespace test {
namespace {

using namespace std::chrono_literals;

class FleetTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);
    std::string error;
    ASSERT_TRUE(redis_.start(&error)) << error;
    ASSERT_TRUE(sim_.start({"--bind-msg-id", "100"}, &error)) << error;
    options_.redis = redis_.address();
  }
  // Both listen on ports the kernel picks (port 0), read back: a port picked
  // beforehand can be taken by a test running in parallel.
  void startBoth(uint16_t backend_b = 0) {
    std::string error;
    ASSERT_TRUE(startGateway(a_, "gw-a", fleetConfig(0, sim_.port(), options_, backend_b), &error))
        << error;
    ASSERT_TRUE(startGateway(b_, "gw-b", fleetConfig(0, sim_.port(), options_, backend_b), &error))
        << error;
    port_a_ = a_.listenerPort("game");
    port_b_ = b_.listenerPort("game");
    ASSERT_NE(port_a_, 0) << a_.output();
    ASSERT_NE(port_b_, 0) << b_.output();
    // Both replicas' stores are connected (2 workers each).
    for (GatewayProcess* g : {&a_, &b_}) {
      ASSERT_TRUE(waitUntil([&] {
        return gatewayMetric(*g, "game_gateway_session_store_redis_connected").value_or(0) == 2;
      })) << g->output();
    }
  }
  // A client with a resumable session on `port` that has round-tripped once.
  void openSession(GameClient& c, uint16_t port) {
    ASSERT_TRUE(c.connect(port));
    ASSERT_TRUE(c.hello());
    ASSERT_NE(c.id(), 0u);
    ASSERT_TRUE(c.roundTrip("hello"));
  }
  // Resumes `old`'s session on `port` through a new connection.
  void resumeOn(GameClient& next, const GameClient& old, uint16_t port) {
    ASSERT_TRUE(next.connect(port));
    bool refused = true;
    ASSERT_TRUE(next.resume(old.id(), old.token(), &refused));
    EXPECT_FALSE(refused);
    EXPECT_EQ(next.id(), old.id()) << "the session id must survive the move";
    EXPECT_NE(next.token(), old.token()) << "each resume rotates the token";
    EXPECT_TRUE(next.roundTrip("after the move"));
  }

  RedisServer redis_;
  BackendSim sim_;
  FleetOptions options_;
  uint16_t port_a_ = 0, port_b_ = 0;
  GatewayProcess a_, b_;
};

TEST_F(FleetTest, SessionResumesOnTheOtherReplicaAfterSigterm) {
  startBoth();
  GameClient client;
  openSession(client, port_a_);
  std::cout << "session " << client.id() << " created on gw-a\n";
  // A drains: its listener closes, and after drain_timeout (1 s) its
  // remaining connections close.
  ASSERT_TRUE(a_.process().signal(SIGTERM));
  ASSERT_TRUE(client.closedByPeer(5000ms)) << "gw-a did not close the client on drain";
  auto code = a_.process().wait(10s);
  ASSERT_TRUE(code.has_value());
  EXPECT_EQ(*code, 0);
  GameClient again;
  resumeOn(again, client, port_b_);
  std::cout << "session " << again.id() << " resumed on gw-b after gw-a's SIGTERM\n";
  auto stats = sim_.stats();
  EXPECT_EQ(stats["closes"], 0) << "the backend saw the session close";
  EXPECT_EQ(stats["opens"], 2);  // the first open, then open "resume" from gw-b
  std::cout << "backend_sim: opens=" << stats["opens"] << " closes=" << stats["closes"] << "\n";
  // gw-b now owns it.
  HttpResponse r = httpRequest(adminPort(b_), "GET", "/sessions/" + std::to_string(again.id()));
  EXPECT_EQ(r.status, 200);
  EXPECT_NE(r.body.find("\"replica\":\"gw-b\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"local\":true"), std::string::npos) << r.body;
  EXPECT_EQ(gatewayMetric(b_, "game_gateway_sessions_resumed_total{listener=\"game\"}"), 1);
}

TEST_F(FleetTest, SessionResumesOnTheOtherReplicaAfterSigkill) {
  startBoth();
  GameClient client;
  openSession(client, port_a_);
  ASSERT_TRUE(a_.process().signal(SIGKILL));
  ASSERT_TRUE(client.closedByPeer(5000ms));
  GameClient again;
  resumeOn(again, client, port_b_);
  std::cout << "session " << again.id() << " resumed on gw-b after gw-a's SIGKILL\n";
  auto stats = sim_.stats();
  EXPECT_EQ(stats["closes"], 0) << "the backend saw the session close";
  EXPECT_EQ(stats["opens"], 2);
  std::cout << "backend_sim: opens=" << stats["opens"] << " closes=" << stats["closes"] << "\n";
  // A wrong token is still refused on the surviving replica.
  GameClient thief;
  ASSERT_TRUE(thief.connect(port_b_));
  bool refused = false;
  std::string wrong = again.token();
  wrong[0] ^= 1;
  ASSERT_TRUE(thief.resume(again.id(), wrong, &refused));
  EXPECT_TRUE(refused);
  EXPECT_NE(thief.id(), again.id());
  EXPECT_TRUE(again.roundTrip("still mine"));
}

TEST_F(FleetTest, DuplicateLoginAcrossReplicasKicksTheOlderSession) {
  startBoth();
  std::string player(8, '\0');
  wire::putU64(reinterpret_cast<uint8_t*>(&player[0]), 424242);
  GameClient older, newer;
  openSession(older, port_a_);
  // backend_sim binds the player in the payload of msg 100 (and echoes it).
  ASSERT_TRUE(older.roundTrip(player, "", 100));
  ASSERT_TRUE(waitUntil([&] { return redis_.get("game-gateway:player:424242").has_value(); }));
  openSession(newer, port_b_);
  ASSERT_TRUE(newer.roundTrip(player, "", 100));
  ASSERT_TRUE(older.closedByPeer(5000ms)) << "the older session (on gw-a) was not kicked";
  EXPECT_TRUE(newer.roundTrip("still here"));
  // The client sees EOF as soon as gw-a closes the socket; the close is
  // counted just after, on gw-a's worker thread, and gw-b counts the
  // duplicate when its bind reply arrives: wait for both, then check they
  // are exactly 1.
  const std::string closes_series =
      "game_gateway_connection_closes_total{listener=\"game\",reason=\"duplicate_login\"}";
  const std::string duplicates_series =
      "game_gateway_sessions_duplicate_login_total{listener=\"game\"}";
  EXPECT_TRUE(waitUntil([&] { return gatewayMetric(a_, closes_series).value_or(0) >= 1; }));
  EXPECT_TRUE(waitUntil([&] { return gatewayMetric(b_, duplicates_series).value_or(0) >= 1; }));
  EXPECT_EQ(gatewayMetric(a_, closes_series), 1);
  EXPECT_EQ(gatewayMetric(b_, duplicates_series), 1);
  EXPECT_EQ(redis_.get("game-gateway:player:424242").value_or(""), std::to_string(newer.id()));
  // The kicked session is over: its record leaves Redis and it cannot be
  // resumed. gw-a's worker queues the DEL in the session filter's onClose
  // (after closing the socket) on its own Redis connection; the ghost's
  // resume lookup may go out on the other worker's connection first and,
  // finding the record with the right token, claim it. Wait for the DEL.
  const std::string older_key = "game-gateway:session:" + std::to_string(older.id());
  EXPECT_TRUE(waitUntil([&] { return !redis_.exists(older_key); })) << older_key;
  GameClient ghost;
  ASSERT_TRUE(ghost.connect(port_a_));
  bool refused = false;
  ASSERT_TRUE(ghost.resume(older.id(), older.token(), &refused));
  EXPECT_TRUE(refused);
}

TEST_F(FleetTest, RoutingRulesUpdateReachesBothReplicas) {
  BackendSim sim_b;
  std::string error;
  ASSERT_TRUE(sim_b.start({"--reply-prefix", "b:"}, &error)) << error;
  options_.routes_key = "game-gateway:routing:rules";
  options_.routes_refresh = "1s";
  startBoth(sim_b.port());
  GameClient ca, cb;
  openSession(ca, port_a_);
  openSession(cb, port_b_);
  // The static routes: 200:0 -> game (no prefix).
  EXPECT_TRUE(ca.roundTrip("x"));
  EXPECT_TRUE(cb.roundTrip("x"));
  // An operator changes the fleet's rules (no notice: the poll must find it).
  ASSERT_TRUE(redis_.set(options_.routes_key,
                         R"({"routes": [{"match": "200:0", "cluster": "game_b"}]})"));
  auto changed = std::chrono::steady_clock::now();
  auto routedToB = [&](GameClient& c) {
    if (!c.send(7, "y")) return false;
    auto f = c.recv();
    return f && f->payload == "b:y";
  };
  ASSERT_TRUE(waitUntil([&] { return routedToB(ca); }, 3000ms)) << a_.output();
  ASSERT_TRUE(waitUntil([&] { return routedToB(cb); }, 3000ms)) << b_.output();
  auto took = std::chrono::steady_clock::now() - changed;
  std::cout << "rules update reached both replicas in "
            << std::chrono::duration_cast<std::chrono::milliseconds>(took).count() << " ms\n";
  EXPECT_LT(took, 2500ms);  // within the 1 s interval (plus a round trip or two)
  // A malformed update is refused; the last good rules stay.
  ASSERT_TRUE(redis_.set(options_.routes_key, R"({"routes": [{"match": "200:0", "cluster": "nope"}]})"));
  redis_.publish("game-gateway:routing:updates", "changed");
  ASSERT_TRUE(a_.process().waitForOutput("refused the update", 3000ms)) << a_.output();
  ASSERT_TRUE(b_.process().waitForOutput("refused the update", 3000ms)) << b_.output();
  EXPECT_TRUE(routedToB(ca));
  EXPECT_TRUE(routedToB(cb));
  // A good update with a notice is applied at once, long before the poll.
  redis_.set(options_.routes_key, R"({"routes": [{"match": "200:0", "cluster": "game"}]})");
  redis_.publish("game-gateway:routing:updates", "changed");
  auto routedToA = [&](GameClient& c) {
    if (!c.send(7, "z")) return false;
    auto f = c.recv();
    return f && f->payload == "z";
  };
  EXPECT_TRUE(waitUntil([&] { return routedToA(ca) && routedToA(cb); }, 3000ms));
}

TEST_F(FleetTest, AdminOfOneReplicaSeesAndKicksSessionsOfTheOther) {
  startBoth();
  GameClient client;
  openSession(client, port_b_);
  uint16_t admin_a = adminPort(a_);
  std::string path = "/sessions/" + std::to_string(client.id());
  HttpResponse r;
  ASSERT_TRUE(waitUntil([&] {
    r = httpRequest(admin_a, "GET", path);
    return r.status == 200;
  }));
  EXPECT_NE(r.body.find("\"replica\":\"gw-b\""), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"local\":false"), std::string::npos) << r.body;
  EXPECT_NE(r.body.find("\"game\":\"127.0.0.1:" + std::to_string(sim_.port()) + "\""),
            std::string::npos)
      << r.body;
  EXPECT_NE(r.body.find("\"idle_seconds\""), std::string::npos) << r.body;
  r = adminPost(admin_a, path + "/kick");
  EXPECT_EQ(r.status, 200) << r.body;
  ASSERT_TRUE(client.closedByPeer(5000ms)) << "gw-b did not kick the session";
  EXPECT_EQ(gatewayMetric(b_, "game_gateway_sessions_kicked_total{listener=\"game\"}"), 1);
  // Kicked: it is gone from the fleet, and its backend heard the close.
  EXPECT_TRUE(waitUntil([&] { return httpRequest(admin_a, "GET", path).status == 404; }));
  EXPECT_TRUE(waitUntil([&] { return sim_.stats()["closes"] == 1; }));
}

}  // namespace
}  // namespace test
}  // namespace gw
