// Integration tests of the `tls` filter through the real gateway binary on
// 127.0.0.1, with certificates made by the test (never committed):
//   - tls -> framing -> session -> upstream -> backend_sim: sessions and echoes
//     over TLS 1.3 from several clients at once;
//   - tls -> tcp_proxy -> echo_server with `openssl s_client` (protocol,
//     cipher, verification, a round trip);
//   - a client that trusts another CA rejects the certificate (peer_alert);
//   - handshake timeout: a client that sends nothing, one that sends half a
//     ClientHello;
//   - plain bytes to the TLS-only port (not_tls), other connections unaffected;
//   - SIGHUP with a new certificate on disk: new connections get it, an
//     existing connection keeps working;
//   - a key readable by everyone: the gateway refuses to start, naming the
//     file and the JSON pointer;
//   - the gateway closing (the upstream behind tcp_proxy went away) sends
//     close_notify: the client sees a clean TLS end, not a truncation.
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "test/filters/tls/tls_test_support.h"
#include "test/harness/gateway.h"
#include "test/harness/net.h"
#include "test/integration/fleet_test.h"
#include "test/integration/ops_test.h"

namespace gw {
namespace test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::string tlsJson(const TestCert& c, const std::string& extra = "") {
  return R"({"name": "tls", "config": {"cert_chain_file": ")" + c.cert_file +
         R"(", "private_key_file": ")" + c.key_file + "\"" + extra + "}}";
}

// fleetConfig() with tls in front of framing.
std::string tlsFleetConfig(uint16_t backend_port, const TestCert& c, const std::string& extra = "") {
  std::string cfg = fleetConfig(0, backend_port, FleetOptions{});
  const std::string at = R"([{"name": "framing")";
  size_t pos = cfg.find(at);
  EXPECT_NE(pos, std::string::npos);
  cfg.insert(pos + 1, tlsJson(c, extra) + ", ");
  return cfg;
}

// tls -> tcp_proxy to an echo server, listener "raw".
std::string tlsProxyConfig(uint16_t echo_port, const TestCert& c, const std::string& extra = "") {
  return R"({"workers": 2, "admin": )" + testAdminJson() + R"(,
    "listeners": [{"name": "raw", "address": "127.0.0.1:0",
      "filters": [)" + tlsJson(c, extra) + R"(, {"name": "tcp_proxy", "config": {"cluster": "echo"}}]}],
    "clusters": [{"name": "echo", "hosts": ["127.0.0.1:)" + std::to_string(echo_port) + R"("]}]})";
}

// The session protocol of fleet_test.h's GameClient, over TLS.
class TlsGameClient {
 public:
  explicit TlsGameClient(const std::string& ca) : tls_(TlsClientOptions{ca}) {}
  bool connect(uint16_t port) { return tls_.connect(port); }
  bool send(uint16_t msg_id, const std::string& payload, uint32_t server_id = kGameServerId) {
    return tls_.sendAll(encodeClientFrame(msg_id, server_id, payload));
  }
  std::optional<ClientFrame> recv(milliseconds timeout = milliseconds(3000)) {
    std::string head, payload;
    if (!tls_.recvExact(wire::kClientHeaderSize, timeout, &head)) return std::nullopt;
    ClientFrame f;
    f.header = wire::ClientHeader::decode(reinterpret_cast<const uint8_t*>(head.data()));
    if (f.header.length > 0 && !tls_.recvExact(f.header.length, timeout, &payload)) return std::nullopt;
    f.payload = payload;
    return f;
  }
  bool hello() {
    if (!send(kResumeMsgId, std::string(24, '\0'), 0)) return false;
    auto f = recv();
    return f && f->header.msg_id == kEstablishedMsgId;
  }
  bool roundTrip(const std::string& payload, uint16_t msg_id = 7) {
    if (!send(msg_id, payload)) return false;
    auto f = recv();
    return f && f->header.msg_id == msg_id && f->payload == payload;
  }
  SocketTlsClient& tls() { return tls_; }

 private:
  SocketTlsClient tls_;
};

class TlsIntegrationTest : public ::testing::Test {
 protected:
  void SetUp() override { cert_ = makeTestCert(dir_.path(), "server", "gateway-one"); }
  std::string metrics() {
    uint16_t admin = adminPort(gateway_);
    return httpRequest(admin, "GET", "/metrics").body;
  }
  double metric(const std::string& series) { return metricValue(metrics(), series).value_or(-1); }
  void startProxy(const std::string& extra = "") {
    std::string err;
    ASSERT_TRUE(echo_.start(0, &err)) << err;
    ASSERT_TRUE(gateway_.start(tlsProxyConfig(echo_.port(), cert_, extra), &err)) << err;
    port_ = gateway_.listenerPort("raw");
    ASSERT_NE(port_, 0u);
  }

  TempDir dir_;
  TestCert cert_;
  EchoServerProcess echo_;
  GatewayProcess gateway_;
  uint16_t port_ = 0;
};

TEST_F(TlsIntegrationTest, SessionsAndEchoesThroughBackendSim) {
  BackendSim sim;
  std::string err;
  ASSERT_TRUE(sim.start({}, &err)) << err;
  ASSERT_TRUE(gateway_.start(tlsFleetConfig(sim.port(), cert_), &err)) << err;
  uint16_t port = gateway_.listenerPort("game");
  std::vector<std::unique_ptr<TlsGameClient>> clients;
  for (int i = 0; i < 8; ++i) {
    clients.push_back(std::make_unique<TlsGameClient>(cert_.cert_file));
    ASSERT_TRUE(clients.back()->connect(port)) << clients.back()->tls().error();
    EXPECT_EQ(clients.back()->tls().version(), "TLSv1.3");
    EXPECT_EQ(clients.back()->tls().peerCn(), "gateway-one");
    ASSERT_TRUE(clients.back()->hello()) << gateway_.output();
  }
  for (int round = 0; round < 20; ++round)
    for (auto& c : clients)
      ASSERT_TRUE(c->roundTrip("payload " + std::to_string(round) + std::string(40, 'p')));
  // A message larger than one TLS record each way.
  ASSERT_TRUE(clients[0]->roundTrip(std::string(40000, 'L')));
  EXPECT_EQ(metric(R"(game_gateway_tls_handshakes_total{listener="game",version="TLSv1.3"})"), 8.0);
}

TEST_F(TlsIntegrationTest, OpensslSClientRoundTrip) {
  startProxy(R"(, "ciphersuites": "TLS_AES_128_GCM_SHA256")");
  std::string out;
  auto code = runCommand(
      {"/bin/sh", "-c",
       "(printf 'hello over tls\\n'; sleep 1) | openssl s_client -connect 127.0.0.1:" +
           std::to_string(port_) + " -servername localhost -verify_hostname localhost -CAfile " +
           cert_.cert_file + " -verify_return_error -brief 2>&1"},
      &out, seconds(20));
  ASSERT_TRUE(code.has_value()) << out;
  EXPECT_NE(out.find("Protocol version: TLSv1.3"), std::string::npos) << out;
  EXPECT_NE(out.find("Ciphersuite: TLS_AES_128_GCM_SHA256"), std::string::npos) << out;
  EXPECT_NE(out.find("Verification: OK"), std::string::npos) << out;
  EXPECT_NE(out.find("hello over tls"), std::string::npos) << out;

  // TLS 1.2 too.
  code = runCommand({"/bin/sh", "-c",
                     "(printf 'twelve\\n'; sleep 1) | openssl s_client -tls1_2 -connect 127.0.0.1:" +
                         std::to_string(port_) + " -CAfile " + cert_.cert_file +
                         " -verify_return_error -brief 2>&1"},
                    &out, seconds(20));
  EXPECT_NE(out.find("Protocol version: TLSv1.2"), std::string::npos) << out;
  EXPECT_NE(out.find("twelve"), std::string::npos) << out;
}

TEST_F(TlsIntegrationTest, ClientTrustingAnotherCaRejectsTheCertificate) {
  startProxy();
  TestCert other = makeTestCert(dir_.path(), "other-ca", "someone-else");
  SocketTlsClient wrong(TlsClientOptions{other.cert_file});
  EXPECT_FALSE(wrong.connect(port_));
  EXPECT_NE(wrong.error().find("certificate verify failed"), std::string::npos) << wrong.error();
  std::string out;
  auto code = runCommand({"/bin/sh", "-c",
                          "openssl s_client -connect 127.0.0.1:" + std::to_string(port_) +
                              " -CAfile " + other.cert_file + " -verify_return_error -brief "
                              "</dev/null 2>&1"},
                         &out, seconds(20));
  ASSERT_TRUE(code.has_value());
  EXPECT_NE(*code, 0) << out;
  EXPECT_TRUE(waitUntil([&] {
    return metric(R"(game_gateway_tls_handshake_failures_total{listener="raw",reason="peer_alert"})") == 2.0;
  })) << metrics();
  // The right CA works on the same port.
  SocketTlsClient right(TlsClientOptions{cert_.cert_file});
  ASSERT_TRUE(right.connect(port_)) << right.error();
}

TEST_F(TlsIntegrationTest, HandshakeTimeout) {
  startProxy(R"(, "handshake_timeout": "300ms")");
  SocketTlsClient good(TlsClientOptions{cert_.cert_file});
  ASSERT_TRUE(good.connect(port_)) << good.error();

  auto start = std::chrono::steady_clock::now();
  UniqueFd silent = connectTcp(port_);
  ASSERT_TRUE(silent.valid());
  // Half a ClientHello.
  MemoryTlsClient hello_maker;
  hello_maker.handshake();
  std::string hello = hello_maker.takeOutgoing();
  UniqueFd half = connectTcp(port_);
  ASSERT_TRUE(sendAll(half.get(), hello.substr(0, hello.size() / 2)));
  EXPECT_TRUE(waitClosed(silent.get(), seconds(3)));
  EXPECT_TRUE(waitClosed(half.get(), seconds(3)));
  auto took = std::chrono::steady_clock::now() - start;
  EXPECT_GE(took, milliseconds(250));
  EXPECT_LT(took, seconds(3));
  EXPECT_EQ(metric(R"(game_gateway_tls_handshake_failures_total{listener="raw",reason="timeout"})"), 2.0);
  EXPECT_EQ(metric(R"(game_gateway_connection_closes_total{listener="raw",reason="tls_handshake_timeout"})"),
            2.0)
      << metrics();
  // The established connection is not subject to it.
  ASSERT_TRUE(good.sendAll("still here"));
  std::string got;
  ASSERT_TRUE(good.recvExact(10, seconds(3), &got)) << good.error();
  EXPECT_EQ(got, "still here");
}

TEST_F(TlsIntegrationTest, GatewayCloseSendsCloseNotify) {
  startProxy();
  SocketTlsClient client(TlsClientOptions{cert_.cert_file});
  ASSERT_TRUE(client.connect(port_)) << client.error();
  ASSERT_TRUE(client.sendAll("ping"));
  std::string got;
  ASSERT_TRUE(client.recvExact(4, seconds(3), &got)) << client.error();
  echo_.stop();  // tcp_proxy's upstream closes: the gateway closes the client (kFlush)
  ASSERT_TRUE(client.waitClosed(seconds(5)));
  EXPECT_TRUE(client.closedCleanly()) << "EOF without close_notify";
  EXPECT_EQ(metric(R"(game_gateway_tls_close_notify_sent_total{listener="raw"})"), 1.0)
      << metrics();
}

TEST_F(TlsIntegrationTest, PlainBytesToATlsPort) {
  startProxy();
  SocketTlsClient good(TlsClientOptions{cert_.cert_file});
  ASSERT_TRUE(good.connect(port_)) << good.error();
  for (const std::string& junk : {encodeClientFrame(7, 0, "raw game frame"),
                                  std::string("GET / HTTP/1.1\r\nHost: localhost\r\n\r\n"),
                                  std::string(300, '\x16')}) {
    UniqueFd plain = connectTcp(port_);
    ASSERT_TRUE(sendAll(plain.get(), junk));
    EXPECT_TRUE(waitClosed(plain.get(), seconds(3)));
  }
  EXPECT_GE(metric(R"(game_gateway_tls_handshake_failures_total{listener="raw",reason="not_tls"})"), 2.0)
      << metrics();
  EXPECT_EQ(metric(R"(game_gateway_connection_closes_total{listener="raw",reason="tls_handshake_failed"})"),
            3.0)
      << metrics();
  ASSERT_TRUE(good.sendAll("unaffected"));
  std::string got;
  ASSERT_TRUE(good.recvExact(10, seconds(3), &got)) << good.error();
  EXPECT_EQ(got, "unaffected");
}

TEST_F(TlsIntegrationTest, ReloadWithANewCertificate) {
  startProxy();
  SocketTlsClient old_conn(TlsClientOptions{cert_.cert_file});
  ASSERT_TRUE(old_conn.connect(port_)) << old_conn.error();
  EXPECT_EQ(old_conn.peerCn(), "gateway-one");
  const std::string old_ca = dir_.file("old-ca.crt");
  ASSERT_TRUE(writeFile(old_ca, readFile(cert_.cert_file)));

  // A new certificate and key at the same paths, then SIGHUP.
  TestCert next = makeTestCert(dir_.path(), "server", "gateway-two");
  ASSERT_TRUE(gateway_.process().signal(SIGHUP));
  ASSERT_TRUE(gateway_.process().waitForOutput("config reload 2 applied on every worker", seconds(10)))
      << gateway_.output();

  SocketTlsClient new_conn(TlsClientOptions{next.cert_file});
  ASSERT_TRUE(new_conn.connect(port_)) << new_conn.error();
  EXPECT_EQ(new_conn.peerCn(), "gateway-two");
  // The old CA no longer verifies new connections...
  SocketTlsClient stale(TlsClientOptions{old_ca});
  EXPECT_FALSE(stale.connect(port_));
  // ...and the connection made before the reload keeps working.
  std::string got;
  ASSERT_TRUE(old_conn.sendAll("old one"));
  ASSERT_TRUE(old_conn.recvExact(7, seconds(3), &got)) << old_conn.error();
  EXPECT_EQ(got, "old one");
  ASSERT_TRUE(new_conn.sendAll("new one"));
  ASSERT_TRUE(new_conn.recvExact(7, seconds(3), &got)) << new_conn.error();
  EXPECT_EQ(got, "new one");
}

TEST_F(TlsIntegrationTest, KeyReadableByEveryoneStopsTheStart) {
  ASSERT_EQ(::chmod(cert_.key_file.c_str(), 0644), 0);
  std::string err;
  ASSERT_TRUE(echo_.start(0, &err)) << err;
  EXPECT_FALSE(gateway_.start(tlsProxyConfig(echo_.port(), cert_), &err, seconds(5)));
  EXPECT_NE(err.find("/listeners/0/filters/0/config/private_key_file"), std::string::npos) << err;
  EXPECT_NE(err.find(cert_.key_file), std::string::npos) << err;
  EXPECT_NE(err.find("readable or writable by everyone"), std::string::npos) << err;
}

}  // namespace
}  // namespace test
}  // namespace gw
