// Integration tests of the `ip_limiter` filter through the real gateway
// binary (2 workers, ip_limiter then tcp_proxy to the real echo server) on
// 127.0.0.1, with clients bound to chosen 127.x.y.z source addresses:
//   - the 11th connection from one IP is refused while the 10 stay served;
//   - a connection burst above the rate is refused, then allowed after refill;
//   - PROXY protocol v1/v2 from a trusted balancer: limits on the real client;
//   - a flood of 20,000 connection attempts from distinct loopback addresses
//     keeps the IP table within max_tracked_ips (admin /metrics), logs the
//     table-full line, and the gateway keeps serving its existing clients
//     with bounded memory.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <chrono>
#include <cstring>
#include <fstream>
#include <functional>
#include <iterator>
#include <string>
#include <thread>
#include <vector>

#include "test/harness/gateway.h"
#include "test/harness/net.h"
#include "test/harness/process.h"

namespace gw {
namespace test {
namespace {

using std::chrono::milliseconds;
using Clock = std::chrono::steady_clock;

// Under ASan the gateway keeps freed memory in quarantine (hundreds of MiB):
// its RSS says nothing about the gateway's own bounds then.
#if defined(__SANITIZE_ADDRESS__)
constexpr bool kRssIsMeaningful = false;
#else
constexpr bool kRssIsMeaningful = true;
#endif

// A gateway with listener "game" = ip_limiter(`limiter_json`) + tcp_proxy to
// the echo server, and the admin API, both on ports the kernel picks.
std::string gatewayConfig(uint16_t echo_port, const std::string& limiter_json,
                          const std::string& access_log = "") {
  std::string log = access_log.empty()
                        ? ""
                        : R"("access_log": {"path": ")" + access_log + R"("}, )";
  return R"({"workers": 2, )" + log + R"("admin": {"address": "127.0.0.1:0"},
    "listeners": [{"name": "game", "address": "127.0.0.1:0",
      "filters": [{"name": "ip_limiter", "config": )" +
         limiter_json + R"(},
                  {"name": "tcp_proxy", "config": {"cluster": "echo"}}]}],
    "clusters": [{"name": "echo", "hosts": ["127.0.0.1:)" +
         std::to_string(echo_port) + R"("], "connect_timeout": "2s"}]})";
}

// The IPv4 address a.b.c.d in network order.
in_addr_t ip(int a, int b, int c, int d) {
  return htonl((static_cast<uint32_t>(a) << 24) | (b << 16) | (c << 8) | d);
}

// A non-blocking socket bound to `src` (network order) connecting to
// 127.0.0.1:`port`; the connect may still be in progress. -1 on failure.
int startConnect(in_addr_t src, uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in local{};
  local.sin_family = AF_INET;
  local.sin_addr.s_addr = src;
  sockaddr_in remote{};
  remote.sin_family = AF_INET;
  remote.sin_addr.s_addr = ip(127, 0, 0, 1);
  remote.sin_port = htons(port);
  if (::bind(fd, reinterpret_cast<sockaddr*>(&local), sizeof(local)) != 0 ||
      (::connect(fd, reinterpret_cast<sockaddr*>(&remote), sizeof(remote)) != 0 &&
       errno != EINPROGRESS)) {
    ::close(fd);
    return -1;
  }
  return fd;
}

// Waits until every socket in `fds` finished connecting (or failed), up to
// `timeout`. Returns how many connected.
size_t awaitConnected(const std::vector<int>& fds, milliseconds timeout) {
  std::vector<pollfd> pending;
  for (int fd : fds) pending.push_back({fd, POLLOUT, 0});
  size_t connected = 0;
  auto deadline = Clock::now() + timeout;
  while (!pending.empty() && Clock::now() < deadline) {
    ::poll(pending.data(), pending.size(), 50);
    std::vector<pollfd> still;
    for (auto& p : pending) {
      if (p.revents == 0) {
        still.push_back({p.fd, POLLOUT, 0});
        continue;
      }
      int err = 0;
      socklen_t len = sizeof(err);
      ::getsockopt(p.fd, SOL_SOCKET, SO_ERROR, &err, &len);
      if (err == 0) ++connected;
    }
    pending.swap(still);
  }
  return connected;
}

// A blocking connection from `src` to 127.0.0.1:`port`.
UniqueFd connectFrom(in_addr_t src, uint16_t port) {
  UniqueFd fd(startConnect(src, port));
  if (!fd.valid()) return fd;
  if (awaitConnected({fd.get()}, milliseconds(2000)) != 1) return UniqueFd();
  setNonBlocking(fd.get(), false);
  return fd;
}

// Sends `msg` and expects it echoed back within `timeout`.
bool roundTrip(int fd, const std::string& msg, milliseconds timeout = milliseconds(2000)) {
  if (!sendAll(fd, msg)) return false;
  std::string got;
  return recvExact(fd, msg.size(), timeout, &got) && got == msg;
}

// GET http://127.0.0.1:`port``path` (HTTP/1.0); returns the body ("" on failure).
std::string httpGet(uint16_t port, const std::string& path) {
  UniqueFd fd = connectTcp(port);
  if (!fd.valid()) return "";
  if (!sendAll(fd.get(), "GET " + path + " HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n")) return "";
  std::string resp;
  recvUntilEof(fd.get(), milliseconds(5000), &resp);
  size_t body = resp.find("\r\n\r\n");
  return body == std::string::npos ? "" : resp.substr(body + 4);
}

// The value of the sample `name{labels}` in Prometheus text, or -1.
double metric(const std::string& text, const std::string& sample) {
  size_t at = 0;
  while ((at = text.find(sample, at)) != std::string::npos) {
    if (at == 0 || text[at - 1] == '\n') {
      size_t sp = at + sample.size();
      if (sp < text.size() && text[sp] == ' ') return std::stod(text.substr(sp + 1));
    }
    at += sample.size();
  }
  return -1;
}

// A PROXY protocol v2 header (PROXY, TCP over IPv6) carrying source
// 2001:db8:`net`:`subnet`::`host` (port 40000) to [2001:db8::1]:443.
std::string proxyV2Ipv6(uint16_t net, uint16_t subnet, uint16_t host) {
  std::string h("\r\n\r\n\0\r\nQUIT\n\x21\x21\x00\x24", 16);
  uint8_t src[16] = {0x20, 0x01, 0x0d, 0xb8};
  src[4] = static_cast<uint8_t>(net >> 8);
  src[5] = static_cast<uint8_t>(net);
  src[6] = static_cast<uint8_t>(subnet >> 8);
  src[7] = static_cast<uint8_t>(subnet);
  src[14] = static_cast<uint8_t>(host >> 8);
  src[15] = static_cast<uint8_t>(host);
  uint8_t dst[16] = {0x20, 0x01, 0x0d, 0xb8};
  dst[15] = 1;
  h.append(reinterpret_cast<char*>(src), 16);
  h.append(reinterpret_cast<char*>(dst), 16);
  h += std::string("\x9c\x40\x01\xbb", 4);
  return h;
}

class IpLimiterIntegrationTest : public ::testing::Test {
 protected:
  void start(const std::string& limiter_json, const std::string& access_log = "") {
    std::string err;
    // Every server binds a port the kernel picks and the test reads it
    // back: a port picked beforehand (freePort()) can be taken by a test
    // running in parallel before the server binds it.
    ASSERT_TRUE(echo_.start(0, &err)) << err;
    ASSERT_TRUE(gateway_.start(gatewayConfig(echo_.port(), limiter_json, access_log), &err))
        << err;
    port_ = gateway_.listenerPort("game");
    admin_port_ = gateway_.adminPort();
    ASSERT_NE(port_, 0) << gateway_.output();
    ASSERT_NE(admin_port_, 0) << gateway_.output();
  }
  void TearDown() override {
    if (gateway_.pid() > 0) {
      auto code = gateway_.stop();
      EXPECT_EQ(code, std::optional<int>(0)) << gateway_.output();
    }
  }
  double metricNow(const std::string& sample) {
    return metric(httpGet(admin_port_, "/metrics"), sample);
  }
  // Reads /metrics every `every` until done(previous text, latest text)
  // holds or `timeout` passes; returns the latest text either way (a wait,
  // not a check: the test's own assertions judge what it returns).
  std::string pollMetrics(
      milliseconds timeout, milliseconds every,
      const std::function<bool(const std::string&, const std::string&)>& done) {
    std::string prev;
    std::string m = httpGet(admin_port_, "/metrics");
    for (auto deadline = Clock::now() + timeout; !done(prev, m) && Clock::now() < deadline;) {
      std::this_thread::sleep_for(every);
      prev = std::move(m);
      m = httpGet(admin_port_, "/metrics");
    }
    return m;
  }
  static double accepted(const std::string& m) {
    return metric(m, R"(game_gateway_connections_total{listener="game"})");
  }

  // Waits (up to 5 s) until the gateway has accepted `n` connections on
  // "game" in all and only the 5 steady clients are still open. On timeout
  // it returns all the same: a handshake the kernel completed for the client
  // but never queued for accept is possible.
  void waitBatchClosed(int n) {
    pollMetrics(milliseconds(5000), milliseconds(10), [n](const std::string&, const std::string& m) {
      return accepted(m) >= n &&
             metric(m, R"(game_gateway_connections_active{listener="game"})") <= 5;
    });
  }

  // Waits (up to 20 s) until the gateway has accepted `n` connections on
  // "game" in all and two /metrics reads 50 ms apart agree on the IP table
  // and the refusals (the worker counts a connection just before ip_limiter
  // decides on it). Returns the last /metrics text.
  std::string waitAllAccepted(int n) {
    auto decided = [](const std::string& m) {
      return std::make_pair(
          metric(m, R"(game_gateway_ip_table_entries{listener="game"})"),
          metric(m, R"(game_gateway_rate_limit_rejected_total{listener="game",reason="global"})"));
    };
    return pollMetrics(milliseconds(20000), milliseconds(50),
                       [&](const std::string& prev, const std::string& m) {
                         return !prev.empty() && accepted(prev) >= n && decided(prev) == decided(m);
                       });
  }

  EchoServerProcess echo_;
  GatewayProcess gateway_;
  uint16_t port_ = 0;
  uint16_t admin_port_ = 0;
};

TEST_F(IpLimiterIntegrationTest, EleventhConnectionFromOneIpIsRefusedWhileTenStayServed) {
  start(R"({"max_connections_per_ip": 10, "connection_rate_limit": 100,
            "connection_burst": 100})");
  in_addr_t client = ip(127, 0, 0, 1);
  std::vector<UniqueFd> ten;
  for (int i = 0; i < 10; ++i) {
    ten.push_back(connectFrom(client, port_));
    ASSERT_TRUE(ten.back().valid());
    ASSERT_TRUE(roundTrip(ten.back().get(), "hello " + std::to_string(i))) << i;
  }
  UniqueFd eleventh = connectFrom(client, port_);
  ASSERT_TRUE(eleventh.valid());  // the kernel accepts; the gateway then closes it
  EXPECT_TRUE(waitClosed(eleventh.get(), milliseconds(3000)));
  // The ten are still served (both workers share the table).
  for (int i = 0; i < 10; ++i) EXPECT_TRUE(roundTrip(ten[i].get(), "again " + std::to_string(i)));
  // Another address is unaffected.
  UniqueFd other = connectFrom(ip(127, 0, 0, 2), port_);
  ASSERT_TRUE(other.valid());
  EXPECT_TRUE(roundTrip(other.get(), "other"));
  EXPECT_EQ(
      metricNow(
          R"(game_gateway_rate_limit_rejected_total{listener="game",reason="per_ip_connections"})"),
      1);
  // One of the ten leaves: a new connection from the address is served
  // once the gateway has seen the close.
  ten[0].reset();
  bool served = false;
  for (auto deadline = Clock::now() + milliseconds(5000); !served && Clock::now() < deadline;) {
    UniqueFd again = connectFrom(client, port_);
    served = again.valid() && roundTrip(again.get(), "back", milliseconds(500));
    if (served)
      ten[0] = std::move(again);
    else
      std::this_thread::sleep_for(milliseconds(50));
  }
  EXPECT_TRUE(served);
}

TEST_F(IpLimiterIntegrationTest, ConnectionBurstAboveRateIsRefusedThenAllowedAfterRefill) {
  start(R"({"max_connections_per_ip": 100, "connection_rate_limit": 5, "connection_burst": 5})");
  in_addr_t client = ip(127, 0, 3, 3);
  auto burst = [&](int n, std::vector<UniqueFd>* keep) {
    std::vector<UniqueFd> fds;
    for (int i = 0; i < n; ++i) fds.push_back(connectFrom(client, port_));
    int served = 0;
    for (auto& fd : fds) {
      if (fd.valid() && roundTrip(fd.get(), "x", milliseconds(1500))) {
        ++served;
        keep->push_back(std::move(fd));
      }
    }
    return served;
  };
  // 5 from the burst, plus one token per 200 ms (5/s) between the gateway's
  // first and last admission, which both lie within the burst's `took`; the
  // gateway's coarse clock can read up to a kernel tick (<= 10 ms) more of
  // it. A slow (loaded) gateway spreads its accepts over more of the burst.
  auto most = [](Clock::duration took) {
    auto took_ms = std::chrono::duration_cast<milliseconds>(took).count();
    return 5 + static_cast<int>((took_ms + 10) / 200);
  };
  auto ms = [](Clock::duration d) {
    return std::to_string(std::chrono::duration_cast<milliseconds>(d).count()) + " ms";
  };
  std::vector<UniqueFd> keep;
  auto t0 = Clock::now();
  int first = burst(8, &keep);
  auto took = Clock::now() - t0;
  EXPECT_GE(first, 5);
  EXPECT_LE(first, most(took)) << "the burst took " << ms(took);
  double refused =
      metricNow(R"(game_gateway_rate_limit_rejected_total{listener="game",reason="per_ip_rate"})");
  EXPECT_EQ(refused, 8 - first);
  std::this_thread::sleep_for(milliseconds(1100));  // the bucket is full again
  t0 = Clock::now();
  int second = burst(7, &keep);
  took = Clock::now() - t0;
  EXPECT_GE(second, 5);
  EXPECT_LE(second, most(took)) << "the burst took " << ms(took);
  // The connections kept open are all served.
  for (auto& fd : keep) EXPECT_TRUE(roundTrip(fd.get(), "still here"));
}

TEST_F(IpLimiterIntegrationTest, ProxyProtocolFromTheBalancerLimitsTheRealClient) {
  start(R"({"max_connections_per_ip": 1, "connection_rate_limit": 100,
            "proxy_protocol": {"enabled": true, "trusted_sources": ["127.0.0.1"]}})");
  in_addr_t balancer = ip(127, 0, 0, 1);
  // Client 203.0.113.9 through the balancer: the header is stripped.
  UniqueFd a = connectFrom(balancer, port_);
  ASSERT_TRUE(a.valid());
  ASSERT_TRUE(sendAll(a.get(), "PROXY TCP4 203.0.113.9 127.0.0.1 40001 443\r\n"));
  EXPECT_TRUE(roundTrip(a.get(), "from 203.0.113.9"));
  // The same client again: over its limit of 1, although the balancer's
  // own address has only this one connection.
  UniqueFd b = connectFrom(balancer, port_);
  ASSERT_TRUE(b.valid());
  ASSERT_TRUE(sendAll(b.get(), "PROXY TCP4 203.0.113.9 127.0.0.1 40002 443\r\n"));
  EXPECT_TRUE(waitClosed(b.get(), milliseconds(3000)));
  // Another client through the same balancer (v2 header) is served.
  std::string v2("\r\n\r\n\0\r\nQUIT\n\x21\x11\x00\x0c", 16);
  v2 += std::string("\xc6\x33\x64\x05\x7f\x00\x00\x01\x9c\x41\x01\xbb", 12);  // 198.51.100.5
  UniqueFd c = connectFrom(balancer, port_);
  ASSERT_TRUE(c.valid());
  ASSERT_TRUE(sendAll(c.get(), v2));
  EXPECT_TRUE(roundTrip(c.get(), "from 198.51.100.5"));
  // A malformed header is refused.
  UniqueFd d = connectFrom(balancer, port_);
  ASSERT_TRUE(d.valid());
  ASSERT_TRUE(sendAll(d.get(), "PROXY TCP4 nonsense\r\n"));
  EXPECT_TRUE(waitClosed(d.get(), milliseconds(3000)));
  // From an address that is not a trusted source, a PROXY line is just data.
  UniqueFd e = connectFrom(ip(127, 0, 0, 2), port_);
  ASSERT_TRUE(e.valid());
  EXPECT_TRUE(roundTrip(e.get(), "PROXY TCP4 192.0.2.1 127.0.0.1 1 2\r\n"));
  std::string m = httpGet(admin_port_, "/metrics");
  EXPECT_EQ(metric(m, R"(game_gateway_proxy_protocol_errors_total{listener="game"})"), 1) << m;
  EXPECT_EQ(
      metric(
          m,
          R"(game_gateway_rate_limit_rejected_total{listener="game",reason="per_ip_connections"})"),
      1);
}

// Behind a balancer, the client is the PROXY header's source for everything
// after ip_limiter too (Connection::peer(): access log, sessions, upstream's
// per-IP fair share), not the balancer's address.
TEST_F(IpLimiterIntegrationTest, ProxyProtocolSourceIsTheConnectionsPeerForLaterFilters) {
  const char* tmp = std::getenv("TEST_TMPDIR");
  std::string log = std::string(tmp ? tmp : "/tmp") + "/proxy_peer_access.log";
  std::remove(log.c_str());
  start(R"({"proxy_protocol": {"enabled": true, "trusted_sources": ["127.0.0.1"]}})", log);
  {
    UniqueFd a = connectFrom(ip(127, 0, 0, 1), port_);
    ASSERT_TRUE(a.valid());
    ASSERT_TRUE(sendAll(a.get(), "PROXY TCP4 203.0.113.9 127.0.0.1 40001 443\r\n"));
    EXPECT_TRUE(roundTrip(a.get(), "from 203.0.113.9"));
  }
  std::string lines;
  for (int i = 0; i < 50 && lines.find("\"client\"") == std::string::npos; ++i) {
    std::this_thread::sleep_for(milliseconds(100));
    std::ifstream in(log);
    lines.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  EXPECT_NE(lines.find("\"client\":\"203.0.113.9:40001\""), std::string::npos) << lines;
  EXPECT_EQ(lines.find("\"client\":\"127.0.0.1:"), std::string::npos) << lines;
}

TEST_F(IpLimiterIntegrationTest, FloodFromTwentyThousandAddressesStaysBounded) {
  constexpr int kCap = 2000;
  constexpr int kAttempts = 20000;
  constexpr int kHeld = 2500;  // the last ones stay open together: more than the cap
  start(R"({"max_tracked_ips": 2000, "shards": 16, "max_connections": 100000,
            "max_connections_per_ip": 10, "connection_rate_limit": 100})");
  // Existing clients, served before, during and after the flood.
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 5; ++i) {
    clients.push_back(connectFrom(ip(127, 0, 0, 1), port_));
    ASSERT_TRUE(clients.back().valid());
    ASSERT_TRUE(roundTrip(clients.back().get(), "before"));
  }
  size_t rss_before = residentBytes(gateway_.pid());
  std::atomic<bool> flooding{true};
  std::atomic<int> pings{0};
  std::atomic<int> ping_failures{0};
  std::atomic<int64_t> worst_ms{0};
  std::thread pinger([&] {
    int n = 0;
    while (flooding.load()) {
      for (auto& c : clients) {
        auto t = Clock::now();
        if (!roundTrip(c.get(), "ping" + std::to_string(n++), milliseconds(3000))) ++ping_failures;
        int64_t ms = std::chrono::duration_cast<milliseconds>(Clock::now() - t).count();
        if (ms > worst_ms.load()) worst_ms = ms;
        ++pings;
      }
      std::this_thread::sleep_for(milliseconds(20));
    }
  });

  // 127.(1 + i / 62500).(i / 250 % 250 + 1).(i % 250 + 1): 20,000 distinct addresses.
  auto source = [](int i) { return ip(127, 1 + i / 62500, i / 250 % 250 + 1, i % 250 + 1); };
  int connected = 0;
  int i = 0;
  // Connect-and-close in batches of 500. Before the next batch, the gateway
  // must have accepted and closed this one: an entry whose connection it has
  // not seen close yet is live, not evictable, and a slow gateway (CI runs
  // two test binaries at once) would otherwise refuse batch connections as
  // "table full" too, beyond the held ones counted below.
  while (i < kAttempts - kHeld) {
    std::vector<int> fds;
    for (int b = 0; b < 500 && i < kAttempts - kHeld; ++b, ++i) {
      int fd = startConnect(source(i), port_);
      if (fd >= 0) fds.push_back(fd);
    }
    connected += static_cast<int>(awaitConnected(fds, milliseconds(3000)));
    for (int fd : fds) ::close(fd);
    waitBatchClosed(5 + connected);
  }
  // The last 2,500 stay open together.
  std::vector<int> held;
  for (; i < kAttempts; ++i) {
    int fd = startConnect(source(i), port_);
    if (fd >= 0) held.push_back(fd);
  }
  connected += static_cast<int>(awaitConnected(held, milliseconds(5000)));
  EXPECT_GE(connected, kAttempts * 95 / 100);
  // Let the gateway accept and decide on all of them: a fixed 1.5 s was not
  // enough for a loaded gateway, which had then admitted only part of the
  // held connections (too few table entries, none refused yet).
  std::string m = waitAllAccepted(5 + connected);
  double entries = metric(m, R"(game_gateway_ip_table_entries{listener="game"})");
  double evictions = metric(m, R"(game_gateway_ip_table_evictions_total{listener="game"})");
  double refused_global =
      metric(m, R"(game_gateway_rate_limit_rejected_total{listener="game",reason="global"})");
  EXPECT_GT(entries, kCap * 9 / 10) << m;
  EXPECT_LE(entries, kCap);
  EXPECT_GT(evictions, kAttempts / 2);
  // Held connections beyond the cap were refused (the table held only live
  // entries): about kHeld + 1 - kCap of them.
  EXPECT_GT(refused_global, 0);
  EXPECT_LE(refused_global, kHeld);
  size_t rss_peak = residentBytes(gateway_.pid());
  for (int fd : held) ::close(fd);

  // Existing clients kept being served throughout.
  std::this_thread::sleep_for(milliseconds(500));
  flooding = false;
  pinger.join();
  EXPECT_GT(pings.load(), 10);
  EXPECT_EQ(ping_failures.load(), 0);
  EXPECT_LT(worst_ms.load(), 2000);
  std::printf("existing clients during the flood: %d pings, the slowest took %lld ms\n",
              pings.load(), static_cast<long long>(worst_ms.load()));
  for (auto& c : clients) EXPECT_TRUE(roundTrip(c.get(), "after"));

  // The table stays within its cap after the flood, and the gateway logged it.
  std::this_thread::sleep_for(milliseconds(1000));
  m = httpGet(admin_port_, "/metrics");
  EXPECT_LE(metric(m, R"(game_gateway_ip_table_entries{listener="game"})"), kCap);
  EXPECT_GE(metric(m, R"(game_gateway_ip_table_entries{listener="game"})"), 1);
  EXPECT_NE(
      gateway_.output().find(
          "ip_limiter 'game': IP table full (a shard reached its share of max_tracked_ips 2000"),
      std::string::npos)
      << gateway_.output().substr(0, 4000);
  // Memory: the table is preallocated (a few hundred KiB); what grows is
  // connection state, freed again.
  size_t rss_after = residentBytes(gateway_.pid());
  std::printf("gateway RSS: before %zu KiB, at the peak %zu KiB, after %zu KiB\n",
              rss_before / 1024, rss_peak / 1024, rss_after / 1024);
  if (kRssIsMeaningful) {
    EXPECT_LT(rss_peak, rss_before + 96u * 1024 * 1024);
    EXPECT_LT(rss_after, rss_before + 96u * 1024 * 1024);
  }
  // New clients are still admitted after the flood.
  UniqueFd fresh = connectFrom(ip(127, 200, 0, 1), port_);
  ASSERT_TRUE(fresh.valid());
  EXPECT_TRUE(roundTrip(fresh.get(), "fresh"));
}


// Connects through the balancer 127.0.0.1 with `header` and keeps the
// connection in *keep if the gateway serves it. Returns whether it did.
bool servedThroughBalancer(uint16_t port, const std::string& header, std::vector<UniqueFd>* keep) {
  UniqueFd fd = connectFrom(ip(127, 0, 0, 1), port);
  if (!fd.valid() || !sendAll(fd.get(), header)) return false;
  if (!roundTrip(fd.get(), "hi", milliseconds(1000))) return false;
  keep->push_back(std::move(fd));
  return true;
}

// Churning through the addresses of one IPv6 /64 (PROXY v2 sources, since
// the test machine may lack IPv6) counts as one client: its limit holds.
TEST_F(IpLimiterIntegrationTest, AddressesOfOneIpv6Slash64ShareOneLimitThroughProxyV2) {
  start(R"({"max_connections_per_ip": 3, "connection_rate_limit": 1000,
            "connection_burst": 1000,
            "proxy_protocol": {"enabled": true, "trusted_sources": ["127.0.0.1"]}})");
  std::vector<UniqueFd> keep;
  int served = 0;
  for (uint16_t host = 1; host <= 20; ++host)
    served += servedThroughBalancer(port_, proxyV2Ipv6(1, 2, host), &keep);
  EXPECT_EQ(served, 3);
  std::string m = httpGet(admin_port_, "/metrics");
  EXPECT_EQ(metric(m, R"(game_gateway_ip_table_entries{listener="game"})"), 1) << m;
  EXPECT_EQ(
      metric(m,
             R"(game_gateway_rate_limit_rejected_total{listener="game",reason="per_ip_connections"})"),
      17);
}

// Churning through distinct /64s of one /48 cannot fill the IP table: with
// the default network limits (per /48: 100 connections, 20/s, burst 50),
// new /64s are refused once the network's bucket is empty, before they take
// an entry. The old code admitted all 150 and tracked 150 entries.
TEST_F(IpLimiterIntegrationTest, DistinctSlash64sOfOneSlash48CannotFillTheTable) {
  start(R"({"max_connections_per_ip": 3, "connection_rate_limit": 1000,
            "connection_burst": 1000,
            "proxy_protocol": {"enabled": true, "trusted_sources": ["127.0.0.1"]}})");
  std::vector<UniqueFd> keep;
  int served = 0;
  auto t0 = Clock::now();
  for (uint16_t subnet = 1; subnet <= 150; ++subnet)
    served += servedThroughBalancer(port_, proxyV2Ipv6(7, subnet, 1), &keep);
  double secs = std::chrono::duration<double>(Clock::now() - t0).count();
  EXPECT_GE(served, 50);
  EXPECT_LE(served, 50 + 20 * secs + 1) << "in " << secs << " s";
  // Another /48 is unaffected.
  EXPECT_TRUE(servedThroughBalancer(port_, proxyV2Ipv6(8, 1, 1), &keep));
  std::string m = httpGet(admin_port_, "/metrics");
  EXPECT_EQ(metric(m, R"(game_gateway_ip_table_entries{listener="game"})"), served + 1) << m;
  EXPECT_EQ(metric(m, R"(game_gateway_ip_network_table_entries{listener="game"})"), 2) << m;
  EXPECT_EQ(
      metric(m,
             R"(game_gateway_rate_limit_rejected_total{listener="game",reason="per_network_rate"})"),
      150 - served);
}

}  // namespace
}  // namespace test
}  // namespace gw
