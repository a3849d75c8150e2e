// test/integration/dns_test.cc — cluster hosts given by DNS name through the
// real gateway (issue 16, item 1): no outside DNS. A hosts-style file
// (`dns.hosts_file`), and a tiny DNS server started here
// (test/integration/fake_dns.py on 127.0.0.1, `dns.resolv_conf` pointing at
// it) whose answers each test rewrites while the gateway runs. Backends are
// real //tools/backend_sim processes on 127.0.0.1:P and 127.0.0.2:P (one
// name, one port, two addresses), replying with "A:" or "B:" before the
// echoed payload so each reply names the backend that sent it.
#include <gtest/gtest.h>

#include <rapidjson/document.h>
#include <signal.h>

#include <algorithm>
#include <chrono>
#include <memory>
#include <thread>
#include <string>
#include <vector>

#include "core/sdk/error_frame.h"
#include "core/sdk/wire.h"
#include "test/harness/gateway.h"
#include "test/harness/net.h"
#include "test/harness/process.h"
#include "test/harness/runfiles.h"
#include "test/integration/ops_test.h"

namespace gw {
namespace test {
namespace {

using std::chrono::milliseconds;

const uint32_t kGame = wire::ClientHeader::makeServerId(0, 200, 1);  // route 200:0 -> game

// fake_dns.py answering from a JSON file the test rewrites (set()).
class FakeDns {
 public:
  bool start(const std::string& answers_json) {
    answers_ = writeTempFile(answers_json, "dns-answers-", ".json");
    std::string why;
    if (!process_.start({"/usr/bin/python3", runfile("test/integration/fake_dns.py"), answers_},
                        &why)) {
      ADD_FAILURE() << why;
      return false;
    }
    port_ = waitForListeningPort(process_, "fake_dns", milliseconds(10000));
    if (port_ == 0) {
      ADD_FAILURE() << "fake_dns did not start: " << process_.output();
      return false;
    }
    // One try per lookup: a silent server makes a lookup time out after dns.timeout.
    resolv_conf_ = writeTempFile("nameserver 127.0.0.1:" + std::to_string(port_) +
                                     "\noptions attempts:1\n",
                                 "resolv-", ".conf");
    return true;
  }
  void set(const std::string& answers_json) { ASSERT_TRUE(writeFile(answers_, answers_json)); }
  const std::string& resolvConf() const { return resolv_conf_; }
  std::string output() const { return process_.output(); }

 private:
  Process process_;
  std::string answers_;
  std::string resolv_conf_;
  uint16_t port_ = 0;
};

// backend_sim on `ip`:*port (0: any, read back), replies prefixed `prefix`.
bool startBackend(Process& p, const std::string& ip, uint16_t* port, const std::string& prefix) {
  std::string why;
  if (!p.start({runfile("tools/backend_sim/backend_sim"), "--address",
                ip + ":" + std::to_string(*port), "--reply-prefix", prefix, "--quiet"},
               &why)) {
    ADD_FAILURE() << why;
    return false;
  }
  uint16_t got = waitForListeningPort(p, "backend_sim", milliseconds(10000));
  if (got == 0) {
    ADD_FAILURE() << "backend_sim on " << ip << " did not start: " << p.output();
    return false;
  }
  *port = got;
  return true;
}

// backend_sim "A:" on 127.0.0.1:*port and "B:" on 127.0.0.2 at the same port.
bool startBackendPair(Process& a, Process& b, uint16_t* port) {
  *port = 0;
  return startBackend(a, "127.0.0.1", port, "A:") && startBackend(b, "127.0.0.2", port, "B:");
}

// Starts `gw` with `config`; returns its admin port (0, and a test failure,
// when it does not start).
uint16_t startGateway(GatewayProcess& gw, const std::string& config) {
  std::string err;
  if (!gw.start(config, &err)) {
    ADD_FAILURE() << err;
    return 0;
  }
  return adminPort(gw);
}

// The `hosts` array text of one host `name`:`port`.
std::string nameOn(const std::string& name, uint16_t port) {
  return R"([")" + name + ":" + std::to_string(port) + R"("])";
}

// The `dns` object text: `dns`'s resolv.conf, plus members `extra` (", ..." text).
std::string dnsOf(const FakeDns& dns, const std::string& extra = "") {
  return R"({"resolv_conf": ")" + dns.resolvConf() + R"(")" + extra + "}";
}

// A gateway config: one worker (so round robin is deterministic), framing
// -> upstream routing 200:0 to cluster "game" whose hosts are `hosts` (JSON
// array text), `dns` as the top-level dns object.
std::string gatewayConfig(const std::string& hosts, const std::string& dns,
                          const std::string& cluster_extra = "") {
  return R"({"workers": 1, "drain_timeout": "1s", "admin": )" + testAdminJson() +
         R"(, "dns": )" + dns + R"(,
    "listeners": [{"name": "game", "address": "127.0.0.1:0",
      "filters": [{"name": "framing", "config": {}},
                  {"name": "upstream", "config": {"routes": [{"match": "200:0", "cluster": "game"}]}}]}],
    "clusters": [{"name": "game", "hosts": )" +
         hosts + R"(, "dns_refresh_interval": "1s")" + cluster_extra + "}]}";
}

// A client connection to the gateway's listener.
class Client {
 public:
  explicit Client(uint16_t port) : fd_(connectTcp(port)) {}
  // Sends `payload` and returns the reply's payload ("error N" for an error
  // frame with code N, "" for no reply within 3 s).
  std::string ask(const std::string& payload) {
    if (!fd_.valid() || !sendAll(fd_.get(), encodeClientFrame(1, kGame, payload))) return "";
    ClientFrame r;
    if (!recvClientFrame(fd_.get(), milliseconds(3000), &r)) return "";
    if (r.header.msg_id == kErrorMsgId && r.payload.size() >= 2)
      return "error " + std::to_string(wire::getU16(reinterpret_cast<const uint8_t*>(r.payload.data())));
    return r.payload;
  }

 private:
  UniqueFd fd_;
};

// The value of `series` on /metrics (0 when absent).
double metric(uint16_t admin, const std::string& series) {
  return metricValue(httpRequest(admin, "GET", "/metrics").body, series).value_or(0);
}

// The "address" values of cluster "game" on GET /clusters, in order.
std::vector<std::string> gameHosts(uint16_t admin) {
  rapidjson::Document doc;
  std::string why;
  std::vector<std::string> out;
  if (!parseJson(httpRequest(admin, "GET", "/clusters").body, &doc, &why)) return out;
  for (const auto& c : doc["clusters"].GetArray()) {
    if (std::string(c["name"].GetString()) != "game") continue;
    for (const auto& h : c["hosts"].GetArray()) out.push_back(h["address"].GetString());
  }
  return out;
}

// Backends A (127.0.0.1) and B (127.0.0.2) on one port behind the name
// "game.test" of a fake DNS server, and a gateway whose cluster "game" is
// that name (top-level dns: the server, plus `dns_extra` members).
struct TwoBackendsBehindOneName {
  bool start(const std::string& dns_extra = "") {
    if (!startBackendPair(a, b, &port) ||
        !dns.start(R"({"game.test": ["127.0.0.1", "127.0.0.2"]})"))
      return false;
    admin = startGateway(gw, gatewayConfig(nameOn("game.test", port), dnsOf(dns, dns_extra)));
    return admin != 0;
  }
  uint16_t port = 0;
  Process a, b;
  FakeDns dns;
  GatewayProcess gw;
  uint16_t admin = 0;
};

const std::string kUnavailable =
    "error " + std::to_string(static_cast<int>(ErrorCode::kUpstreamUnavailable));

// Two backends behind one name, then the name answers with one: the
// removed backend drains (the session on it keeps working, new sessions go
// to the remaining one).
TEST(DnsHostsTest, TwoBackendsThenOneDrainsTheRemovedOne) {
  TwoBackendsBehindOneName t;
  ASSERT_TRUE(t.start());
  FakeDns& dns = t.dns;
  GatewayProcess& gw = t.gw;
  uint16_t admin = t.admin, port = t.port;
  std::string p = std::to_string(port);
  ASSERT_TRUE(waitUntil([&] { return gameHosts(admin).size() == 2; }))
      << gw.output() << dns.output();
  EXPECT_EQ(gameHosts(admin), (std::vector<std::string>{"127.0.0.1:" + p, "127.0.0.2:" + p}));

  // Round robin on the one worker: the first session on A, the second on B.
  Client on_a(gw.listenerPort("game")), on_b(gw.listenerPort("game"));
  ASSERT_EQ(on_a.ask("1"), "A:1");
  ASSERT_EQ(on_b.ask("2"), "B:2");

  dns.set(R"({"game.test": ["127.0.0.1"]})");
  ASSERT_TRUE(waitUntil([&] { return gameHosts(admin).size() == 1; }, milliseconds(5000)))
      << gw.output();
  EXPECT_EQ(gameHosts(admin), std::vector<std::string>{"127.0.0.1:" + p});
  // The live session on the removed backend finishes there ...
  EXPECT_EQ(on_b.ask("3"), "B:3");
  EXPECT_EQ(on_b.ask("4"), "B:4");
  // ... and every new session goes to the remaining one.
  for (int i = 0; i < 4; ++i) {
    Client fresh(gw.listenerPort("game"));
    EXPECT_EQ(fresh.ask("n" + std::to_string(i)), "A:n" + std::to_string(i));
  }
  EXPECT_EQ(on_a.ask("5"), "A:5");
  EXPECT_GE(metric(admin, R"(game_gateway_dns_resolutions_total{cluster="game",result="ok"})"), 2);
  // The name comes back with both: B takes new sessions again.
  dns.set(R"({"game.test": ["127.0.0.1", "127.0.0.2"]})");
  ASSERT_TRUE(waitUntil([&] { return gameHosts(admin).size() == 2; }, milliseconds(5000)));
  std::vector<std::string> replies;
  for (int i = 0; i < 2; ++i) replies.push_back(Client(gw.listenerPort("game")).ask("m"));
  std::sort(replies.begin(), replies.end());
  EXPECT_EQ(replies, (std::vector<std::string>{"A:m", "B:m"}));
}

// A name from the hosts file resolves without any nameserver answering.
TEST(DnsHostsTest, AHostsFileNameResolves) {
  uint16_t port = 0;
  Process a;
  ASSERT_TRUE(startBackend(a, "127.0.0.1", &port, "A:"));
  FakeDns dns;
  ASSERT_TRUE(dns.start(R"({"_silent": true})"));
  std::string hosts = writeTempFile("# test hosts\n127.0.0.1   game.hosts.test  game-alias\n",
                                    "hosts-", ".txt");
  GatewayProcess gw;
  uint16_t admin = startGateway(gw, gatewayConfig(nameOn("game.hosts.test", port),
                                     dnsOf(dns, R"(, "hosts_file": ")" + hosts + R"(", "timeout": "300ms")")));
  ASSERT_NE(admin, 0);
  ASSERT_TRUE(waitUntil([&] { return gameHosts(admin).size() == 1; })) << gw.output();
  EXPECT_EQ(Client(gw.listenerPort("game")).ask("hi"), "A:hi");
}

// A name that does not resolve: the config loads, the cluster has no host
// (clients get the no-backend error frame), the failures are counted and
// logged (once), and the gateway serves on; once the name resolves, the
// cluster has its host.
TEST(DnsHostsTest, ANameThatDoesNotResolveLeavesTheClusterEmptyUntilItDoes) {
  uint16_t port = 0;
  Process a;
  ASSERT_TRUE(startBackend(a, "127.0.0.1", &port, "A:"));
  FakeDns dns;
  ASSERT_TRUE(dns.start(R"({})"));  // NXDOMAIN for everything
  GatewayProcess gw;
  uint16_t admin = startGateway(gw, gatewayConfig(nameOn("late.test", port),
                                     dnsOf(dns)));
  ASSERT_NE(admin, 0);
  const std::string nx = R"(game_gateway_dns_resolutions_total{cluster="game",result="nxdomain"})";
  ASSERT_TRUE(waitUntil([&] { return metric(admin, nx) >= 2; })) << gw.output();
  EXPECT_TRUE(gameHosts(admin).empty());
  Client c(gw.listenerPort("game"));
  EXPECT_EQ(c.ask("x"), kUnavailable);
  EXPECT_EQ(c.ask("y"), kUnavailable) << "the client stays connected";
  // Logged once per 30 s per name, not once per lookup.
  ASSERT_TRUE(gw.process().waitForOutput("lookup of late.test failed: nxdomain", milliseconds(3000)))
      << gw.output();
  std::string out = gw.output();
  size_t lines = 0;
  for (size_t at = 0; (at = out.find("lookup of late.test failed: nxdomain", at)) != std::string::npos;
       ++at)
    ++lines;
  EXPECT_EQ(lines, 1u) << out;

  dns.set(R"({"late.test": ["127.0.0.1"]})");
  ASSERT_TRUE(waitUntil([&] { return gameHosts(admin).size() == 1; })) << gw.output();
  EXPECT_EQ(c.ask("z"), "A:z");
}

// A nameserver that stops answering: the lookups time out (counted as
// such), and the last good set is kept: sessions old and new are served.
TEST(DnsHostsTest, AResolverThatTimesOutKeepsTheLastGoodSet) {
  TwoBackendsBehindOneName t;
  ASSERT_TRUE(t.start(R"(, "timeout": "300ms")"));
  FakeDns& dns = t.dns;
  GatewayProcess& gw = t.gw;
  uint16_t admin = t.admin;
  ASSERT_TRUE(waitUntil([&] { return gameHosts(admin).size() == 2; })) << gw.output();
  Client old_session(gw.listenerPort("game"));
  ASSERT_EQ(old_session.ask("1"), "A:1");

  dns.set(R"({"_silent": true})");
  const std::string timeouts = R"(game_gateway_dns_resolutions_total{cluster="game",result="timeout"})";
  ASSERT_TRUE(waitUntil([&] { return metric(admin, timeouts) >= 2; }, milliseconds(8000)))
      << gw.output() << dns.output();
  EXPECT_EQ(gameHosts(admin).size(), 2u) << "the last good set is kept";
  EXPECT_EQ(old_session.ask("2"), "A:2");
  EXPECT_EQ(Client(gw.listenerPort("game")).ask("3"), "B:3");
  // (The log line may reach the output just after the metric moved.)
  EXPECT_TRUE(gw.process().waitForOutput("lookup of game.test failed: timeout", milliseconds(3000)))
      << gw.output();
  EXPECT_NE(gw.output().find("keeping its last 2 address(es)"), std::string::npos);
}

// A SERVFAIL is counted as an error, and also keeps the last good set.
TEST(DnsHostsTest, AServfailKeepsTheLastGoodSet) {
  uint16_t port = 0;
  Process a;
  ASSERT_TRUE(startBackend(a, "127.0.0.1", &port, "A:"));
  FakeDns dns;
  ASSERT_TRUE(dns.start(R"({"game.test": ["127.0.0.1"]})"));
  GatewayProcess gw;
  uint16_t admin = startGateway(gw, gatewayConfig(nameOn("game.test", port),
                                     dnsOf(dns)));
  ASSERT_NE(admin, 0);
  ASSERT_TRUE(waitUntil([&] { return gameHosts(admin).size() == 1; })) << gw.output();
  dns.set(R"({"game.test": "SERVFAIL"})");
  const std::string errors = R"(game_gateway_dns_resolutions_total{cluster="game",result="error"})";
  ASSERT_TRUE(waitUntil([&] { return metric(admin, errors) >= 1; })) << gw.output();
  EXPECT_EQ(gameHosts(admin).size(), 1u);
  EXPECT_EQ(Client(gw.listenerPort("game")).ask("x"), "A:x");
}

// A reload that replaces a cluster's names by IP hosts gives the cluster
// back to the config (the DNS source stops owning it), one that brings a
// name back resolves it again, and one that changes the nameservers asks
// the new ones.
TEST(DnsHostsTest, AReloadBetweenNamesAndAddressesSwitchesTheSource) {
  uint16_t port = 0;
  Process a, b;
  ASSERT_TRUE(startBackendPair(a, b, &port));
  FakeDns dns;
  ASSERT_TRUE(dns.start(R"({"game.test": ["127.0.0.1"]})"));
  GatewayProcess gw;
  uint16_t admin = startGateway(gw, gatewayConfig(nameOn("game.test", port), dnsOf(dns)));
  ASSERT_NE(admin, 0);
  std::string p = std::to_string(port);
  ASSERT_TRUE(waitUntil([&] { return gameHosts(admin) == std::vector<std::string>{"127.0.0.1:" + p}; }))
      << gw.output();
  auto reload = [&](const std::string& hosts) {
    ASSERT_TRUE(writeFile(gw.configPath(), gatewayConfig(hosts, dnsOf(dns))));
    ASSERT_TRUE(gw.process().signal(SIGHUP));
  };
  reload(R"(["127.0.0.2:)" + p + R"("])");
  ASSERT_TRUE(waitUntil([&] { return gameHosts(admin) == std::vector<std::string>{"127.0.0.2:" + p}; }))
      << gw.output();
  EXPECT_EQ(Client(gw.listenerPort("game")).ask("x"), "B:x");
  reload(nameOn("game.test", port));
  ASSERT_TRUE(waitUntil([&] { return gameHosts(admin) == std::vector<std::string>{"127.0.0.1:" + p}; }))
      << gw.output();
  EXPECT_EQ(Client(gw.listenerPort("game")).ask("y"), "A:y");
  // Other nameservers (a changed dns.resolv_conf) apply at the reload.
  FakeDns other;
  ASSERT_TRUE(other.start(R"({"game.test": ["127.0.0.2"]})"));
  ASSERT_TRUE(writeFile(gw.configPath(), gatewayConfig(nameOn("game.test", port), dnsOf(other))));
  ASSERT_TRUE(gw.process().signal(SIGHUP));
  ASSERT_TRUE(waitUntil([&] { return gameHosts(admin) == std::vector<std::string>{"127.0.0.2:" + p}; }))
      << gw.output();
  EXPECT_EQ(Client(gw.listenerPort("game")).ask("z"), "B:z");
}

// tcp_proxy clusters take DNS names too: when the name's answer moves to
// another address, new connections follow while the open one stays on the
// old backend.
TEST(DnsHostsTest, TcpProxyFollowsTheName) {
  uint16_t port = 0;
  Process e1, e2;
  for (auto [p, ip] : {std::pair<Process*, const char*>{&e1, "127.0.0.1"}, {&e2, "127.0.0.2"}}) {
    std::string why;
    ASSERT_TRUE(p->start({runfile("tools/echo_server/echo_server"), "--address",
                          std::string(ip) + ":" + std::to_string(port), "--quiet"},
                         &why))
        << why;
    port = waitForListeningPort(*p, "echo_server", milliseconds(10000));
    ASSERT_NE(port, 0) << p->output();
  }
  FakeDns dns;
  ASSERT_TRUE(dns.start(R"({"echo.test": ["127.0.0.1"]})"));
  GatewayProcess gw;
  uint16_t admin = startGateway(gw, R"({"workers": 1, "admin": )" + testAdminJson() + R"(,
      "dns": )" + dnsOf(dns) + R"(,
      "listeners": [{"name": "raw", "address": "127.0.0.1:0",
        "filters": [{"name": "tcp_proxy", "config": {"cluster": "game"}}]}],
      "clusters": [{"name": "game", "hosts": )" + nameOn("echo.test", port) +
                                        R"(, "dns_refresh_interval": "1s"}]})");
  ASSERT_NE(admin, 0);
  ASSERT_TRUE(waitUntil([&] { return gameHosts(admin).size() == 1; })) << gw.output();
  // (Echo servers do not say who they are: killing e1 below tells them apart.)
  UniqueFd first = connectTcp(gw.listenerPort("raw"));
  std::string got;
  ASSERT_TRUE(sendAll(first.get(), "ping"));
  ASSERT_TRUE(recvExact(first.get(), 4, milliseconds(3000), &got));
  EXPECT_EQ(got, "ping");
  dns.set(R"({"echo.test": ["127.0.0.2"]})");
  ASSERT_TRUE(waitUntil([&] {
    auto h = gameHosts(admin);
    return h.size() == 1 && h[0] == "127.0.0.2:" + std::to_string(port);
  })) << gw.output();
  // The open connection stays on 127.0.0.1 (e1) ...
  ASSERT_TRUE(sendAll(first.get(), "more"));
  ASSERT_TRUE(recvExact(first.get(), 4, milliseconds(3000), &got));
  EXPECT_EQ(got, "more");
  // ... and with e1 gone, new connections still work: they go to e2.
  e1.signal(SIGKILL);
  e1.wait(milliseconds(5000));
  UniqueFd second = connectTcp(gw.listenerPort("raw"));
  ASSERT_TRUE(sendAll(second.get(), "pong"));
  ASSERT_TRUE(recvExact(second.get(), 4, milliseconds(3000), &got)) << gw.output();
  EXPECT_EQ(got, "pong");
}

// max_retries through the real gateway: the backend's port refuses, then
// starts listening during the retries; the client's frame is answered and
// the retries are counted with the Go gateway's labels.
TEST(ConnectRetryTest, ABackendThatStartsDuringTheRetriesAnswers) {
  uint16_t port = freePort();
  GatewayProcess gw;
  uint16_t admin = startGateway(gw, gatewayConfig(R"(["127.0.0.1:)" + std::to_string(port) + R"("])",
                                     R"({})", R"(, "max_retries": 6, "retry_delay": "200ms")"));
  ASSERT_NE(admin, 0);
  Client c(gw.listenerPort("game"));
  std::string reply;
  std::thread asker([&] { reply = c.ask("late"); });
  const std::string retries = R"(game_gateway_backend_retries_total{cluster="game",backend="127.0.0.1:)" +
                              std::to_string(port) + R"("})";
  EXPECT_TRUE(waitUntil([&] { return metric(admin, retries) >= 1; })) << gw.output();
  Process a;
  ASSERT_TRUE(startBackend(a, "127.0.0.1", &port, "A:"));
  asker.join();
  EXPECT_EQ(reply, "A:late") << gw.output();
  EXPECT_GE(metric(admin, retries), 1);
  EXPECT_NE(gw.output().find("connected after"), std::string::npos) << gw.output();
}

}  // namespace
}  // namespace test
}  // namespace gw
