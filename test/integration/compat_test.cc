// test/integration/compat_test.cc — a cluster's `compat` mode through the
// real gateway, checked byte for byte at a raw socket backend (issue 16,
// item 3): what the Go gateway's TCP mode sent.
//
// RecordingBackend keeps every byte each backend connection received.
// Checked: data frames only (opcode 1, never session open/close), the
// 33-byte extended gate header carrying the session's trace id and span id
// (the trace id also in the access log), routing per_connection sticking to
// the cluster of the first frame (per_frame routing each frame), one backend
// connection per session (N clients, N connections; the backend closing one
// ends that session only; the client leaving closes its connection), the
// max_connections_per_service cap refusing the next session (error frame
// upstream_overflow, counted), and backend frames of any opcode and session
// id reaching the session of their connection, as Go forwarded them.
#include <gtest/gtest.h>

#include <chrono>
#include <optional>
#include <string>
#include <vector>

#include "core/sdk/error_frame.h"
#include "core/sdk/wire.h"
#include "test/harness/gateway.h"
#include "test/harness/net.h"
#include "test/harness/recording_backend.h"
#include "test/integration/ops_test.h"

namespace gw {
namespace test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

const uint32_t kGame = wire::ClientHeader::makeServerId(0, 200, 1);     // 200:0 -> game
const uint32_t kAccount = wire::ClientHeader::makeServerId(0, 10, 1);   // 10:0 -> account

std::string le(uint64_t v, int bytes) {
  std::string out;
  for (int i = 0; i < bytes; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
  return out;
}

uint64_t readLe(const std::string& s, size_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<uint8_t>(s[at + static_cast<size_t>(i)]);
  return v;
}

std::string hexOf(const std::string& bytes) {
  static const char* d = "0123456789abcdef";
  std::string out;
  for (unsigned char c : bytes) {
    out.push_back(d[c >> 4]);
    out.push_back(d[c & 15]);
  }
  return out;
}

// The Go gateway's data frame with the extended gate header, written out by
// hand: server header (length = 33 + payload, type, server_id 0, object_id =
// session), opcode 1, session_id, trace id, span id, payload.
std::string goTracedFrame(uint16_t msg_id, uint64_t session, const std::string& trace,
                          const std::string& span, const std::string& payload) {
  return le(33 + payload.size(), 4) + le(msg_id, 4) + le(0, 4) + le(session, 8) + "\x01" +
         le(session, 8) + trace + span + payload;
}

// The Go gateway's plain data frame (9-byte gate header).
std::string goFrame(uint16_t msg_id, uint64_t session, const std::string& payload) {
  return le(9 + payload.size(), 4) + le(msg_id, 4) + le(0, 4) + le(session, 8) + "\x01" +
         le(session, 8) + payload;
}

// Polls both backends until `a` has received `na` frames and `b` `nb`
// (waitUntil's 5 s).
bool framesArrive(RecordingBackend& a, size_t na, RecordingBackend& b, size_t nb) {
  return waitUntil([&] {
    a.poll();
    b.poll();
    return a.frames.size() == na && b.frames.size() == nb;
  });
}

std::string listenerJson(const std::string& routes) {
  return R"("listeners": [{"name": "game", "address": "127.0.0.1:0",
      "filters": [{"name": "framing", "config": {}},
                  {"name": "upstream", "config": {"routes": [)" +
         routes + "]}}]}]";
}

class CompatTest : public ::testing::Test {
 protected:
  void start(const std::string& rest) {
    std::string err;
    ASSERT_TRUE(gw_.start(R"({"workers": 1, "drain_timeout": "1s", "admin": )" + testAdminJson() +
                              ", " + rest + "}",
                          &err))
        << err;
    port_ = gw_.listenerPort("game");
    ASSERT_NE(port_, 0);
  }
  UniqueFd client() {
    UniqueFd c = connectTcp(port_);
    EXPECT_TRUE(c.valid());
    return c;
  }
  std::optional<double> metric(const std::string& series) {
    return metricValue(httpRequest(adminPort(gw_), "GET", "/metrics").body, series);
  }

  GatewayProcess gw_;
  uint16_t port_ = 0;
};

TEST_F(CompatTest, GoTcpModeBytesWithTraceContextOnAConnectionOfItsOwn) {
  RecordingBackend backend;
  std::string log_path = ::testing::TempDir() + "/compat_access.log";
  ::unlink(log_path.c_str());
  start(R"("access_log": {"enabled": true, "path": ")" + log_path + R"("}, )" +
        listenerJson(R"({"match": "200:0", "cluster": "game"})") +
        R"(, "clusters": [{"name": "game", "hosts": [")" + backend.address() +
        R"("], "compat": {"trace_propagation": true}}])");
  UniqueFd c = client();
  ASSERT_TRUE(sendAll(c.get(), encodeClientFrame(7, kGame, "hello")));
  ASSERT_TRUE(sendAll(c.get(), encodeClientFrame(8, kGame, "world!")));
  const size_t want = (53 + 5) + (53 + 6);
  ASSERT_TRUE(waitUntil([&] {
    backend.poll();
    return backend.connections() == 1 && backend.raw(0).size() >= want;
  })) << gw_.output();
  const std::string raw = backend.raw(0);
  ASSERT_EQ(raw.size(), want) << "nothing but the two data frames (no session open)";
  uint64_t session = readLe(raw, 12, 8);
  ASSERT_NE(session, 0u);
  std::string trace = raw.substr(29, 16);
  std::string span = raw.substr(45, 8);
  EXPECT_NE(trace, std::string(16, '\0'));
  EXPECT_NE(span, std::string(8, '\0'));
  // Byte for byte what the Go gateway sent: the same trace id and span id
  // on every frame of the session.
  EXPECT_EQ(raw, goTracedFrame(7, session, trace, span, "hello") +
                     goTracedFrame(8, session, trace, span, "world!"));

  // Backend -> client: Go read a 9-byte gate header and ignored its opcode
  // and session id; so does a compat cluster.
  backend.sendTo(0, le(9 + 4, 4) + le(321, 4) + le(0, 4) + le(0, 8) + std::string(1, '\0') + le(0, 8) + "pong");
  ClientFrame r;
  ASSERT_TRUE(recvClientFrame(c.get(), milliseconds(3000), &r)) << gw_.output();
  EXPECT_EQ(r.header.msg_id, 321);
  EXPECT_EQ(r.header.server_id, 0u);
  EXPECT_EQ(r.payload, "pong");

  // The client leaves: its backend connection closes, with no session close.
  c.reset();
  ASSERT_TRUE(waitUntil([&] {
    backend.poll();
    return backend.closedByGateway(0);
  })) << gw_.output();
  EXPECT_EQ(backend.raw(0).size(), want);
  for (const auto& f : backend.frames) EXPECT_EQ(f.header.opcode, 1) << "opcode 1 only";

  // The access log names the same trace id.
  ASSERT_EQ(gw_.stop(), 0);
  std::string log = readFile(log_path);
  EXPECT_NE(log.find("\"session_id\":\"" + std::to_string(session) + "\",\"trace_id\":\"" +
                     hexOf(trace) + "\""),
            std::string::npos)
      << log;
}

TEST_F(CompatTest, OneBackendConnectionPerSessionEndingTogether) {
  RecordingBackend backend;
  start(listenerJson(R"({"match": "200:0", "cluster": "game"})") +
        R"(, "clusters": [{"name": "game", "hosts": [")" + backend.address() +
        R"("], "max_connections_per_service": 3, "compat": {}}])");
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 3; ++i) {
    clients.push_back(client());
    ASSERT_TRUE(sendAll(clients.back().get(), encodeClientFrame(1, kGame, "p" + std::to_string(i))));
  }
  ASSERT_TRUE(waitUntil([&] {
    backend.poll();
    if (backend.connections() != 3) return false;
    for (size_t k = 0; k < 3; ++k)
      if (backend.raw(k).size() < 29 + 2) return false;
    return true;
  })) << gw_.output();
  // Connection k carries exactly one frame of one session, without a
  // session open in front: which client's it is, its payload says.
  std::vector<int> owner(3);
  std::vector<uint64_t> session(3);
  for (size_t k = 0; k < 3; ++k) {
    const std::string& raw = backend.raw(k);
    session[k] = readLe(raw, 12, 8);
    owner[k] = raw[30] - '0';
    EXPECT_EQ(raw, goFrame(1, session[k], "p" + std::to_string(owner[k])));
  }
  EXPECT_NE(session[0], session[1]);
  EXPECT_NE(session[1], session[2]);

  // A fourth session: the host's 3 connections are taken (one worker):
  // refused with upstream_overflow, counted.
  UniqueFd fourth = client();
  ASSERT_TRUE(sendAll(fourth.get(), encodeClientFrame(9, kGame, "p3")));
  ClientFrame r;
  ASSERT_TRUE(recvClientFrame(fourth.get(), milliseconds(3000), &r)) << gw_.output();
  EXPECT_EQ(r.header.msg_id, kErrorMsgId);
  ASSERT_GE(r.payload.size(), 4u);
  EXPECT_EQ(readLe(r.payload, 0, 2), static_cast<uint64_t>(ErrorCode::kUpstreamOverflow));
  EXPECT_EQ(metric("game_gateway_upstream_session_connections_refused_total{cluster=\"game\"}"), 1.0);
  backend.poll();
  EXPECT_EQ(backend.connections(), 3u);

  // The backend closes connection 0: its session ends (the client is
  // closed); the others carry on.
  backend.close(0);
  EXPECT_TRUE(waitClosed(clients[static_cast<size_t>(owner[0])].get(), milliseconds(3000)))
      << gw_.output();
  backend.sendTo(1, goFrame(5, session[1], "still here"));
  ASSERT_TRUE(recvClientFrame(clients[static_cast<size_t>(owner[1])].get(), milliseconds(3000), &r));
  EXPECT_EQ(r.payload, "still here");

  // A client leaves: its connection closes, the third stays open.
  clients[static_cast<size_t>(owner[2])].reset();
  ASSERT_TRUE(waitUntil([&] {
    backend.poll();
    return backend.closedByGateway(2);
  })) << gw_.output();
  backend.poll();
  EXPECT_FALSE(backend.closedByGateway(1));
  for (const auto& f : backend.frames) EXPECT_EQ(f.header.opcode, 1) << "opcode 1 only";
  EXPECT_EQ(gw_.stop(), 0);
}

TEST_F(CompatTest, PerConnectionRoutingSticksToTheFirstFramesCluster) {
  RecordingBackend game, account;
  start(listenerJson(R"({"match": "200:0", "cluster": "game"}, {"match": "10:0", "cluster": "account"})") +
        R"(, "clusters": [{"name": "game", "hosts": [")" + game.address() +
        R"("], "compat": {}}, {"name": "account", "hosts": [")" + account.address() +
        R"("], "compat": {}}])");
  // First frame to game: the account frame after it goes to game too (Go).
  UniqueFd a = client();
  ASSERT_TRUE(sendAll(a.get(), encodeClientFrame(1, kGame, "first")));
  ASSERT_TRUE(sendAll(a.get(), encodeClientFrame(2, kAccount, "second")));
  // First frame to account: the game frame after it stays on account.
  UniqueFd b = client();
  ASSERT_TRUE(sendAll(b.get(), encodeClientFrame(3, kAccount, "first")));
  ASSERT_TRUE(sendAll(b.get(), encodeClientFrame(4, kGame, "second")));
  ASSERT_TRUE(framesArrive(game, 2, account, 2)) << gw_.output();
  ASSERT_EQ(game.connections(), 1u);
  ASSERT_EQ(account.connections(), 1u);
  uint64_t sa = readLe(game.raw(0), 12, 8);
  uint64_t sb = readLe(account.raw(0), 12, 8);
  EXPECT_EQ(game.raw(0), goFrame(1, sa, "first") + goFrame(2, sa, "second"));
  EXPECT_EQ(account.raw(0), goFrame(3, sb, "first") + goFrame(4, sb, "second"));
  EXPECT_EQ(gw_.stop(), 0);
}

TEST_F(CompatTest, PerFrameRoutingOnSharedConnections) {
  RecordingBackend game, account;
  start(listenerJson(R"({"match": "200:0", "cluster": "game"}, {"match": "10:0", "cluster": "account"})") +
        R"(, "clusters": [{"name": "game", "hosts": [")" + game.address() +
        R"("], "max_connections_per_service": 1,
        "compat": {"routing": "per_frame", "connection_per_session": false}},
        {"name": "account", "hosts": [")" + account.address() + R"("]}])");
  UniqueFd a = client();
  UniqueFd b = client();
  ASSERT_TRUE(sendAll(a.get(), encodeClientFrame(1, kGame, "a1")));
  ASSERT_TRUE(sendAll(a.get(), encodeClientFrame(2, kAccount, "a2")));
  ASSERT_TRUE(framesArrive(game, 1, account, 2)) << gw_.output();
  ASSERT_TRUE(sendAll(b.get(), encodeClientFrame(3, kGame, "b1")));
  ASSERT_TRUE(waitUntil([&] {
    game.poll();
    return game.frames.size() == 2;
  })) << gw_.output();
  // Both sessions share game's one connection, data frames only; account
  // (no compat) still gets this gateway's session open before the data.
  ASSERT_EQ(game.connections(), 1u);
  uint64_t sa = readLe(game.raw(0), 12, 8);
  uint64_t sb = readLe(game.raw(0), 29 + 2 + 12, 8);
  EXPECT_NE(sa, sb);
  EXPECT_EQ(game.raw(0), goFrame(1, sa, "a1") + goFrame(3, sb, "b1"));
  EXPECT_EQ(account.frames[0].header.opcode, static_cast<uint8_t>(wire::Opcode::kSessionOpen));
  EXPECT_EQ(account.frames[1].header.opcode, static_cast<uint8_t>(wire::Opcode::kData));
  EXPECT_EQ(account.frames[1].payload, "a2");
  // Backend frames route by session id on a shared connection.
  game.sendTo(0, goFrame(6, sb, "to b"));
  ClientFrame r;
  ASSERT_TRUE(recvClientFrame(b.get(), milliseconds(3000), &r));
  EXPECT_EQ(r.payload, "to b");
  // A leaving client: no session close on the compat connection.
  a.reset();
  ASSERT_TRUE(waitUntil([&] {
    account.poll();
    return !account.of(wire::Opcode::kSessionClose, sa).empty();
  })) << gw_.output();
  game.poll();
  EXPECT_EQ(game.raw(0).size(), 2 * (29 + 2u));
  EXPECT_FALSE(game.closedByGateway(0));
  EXPECT_EQ(gw_.stop(), 0);
}

}  // namespace
}  // namespace test
}  // namespace gw
