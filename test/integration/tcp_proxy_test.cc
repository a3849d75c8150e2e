// Integration tests of the `tcp_proxy` filter through the real gateway
// binary, with the real echo server (or a raw socket made here) as the
// backend, on free 127.0.0.1 ports: round trips, 1 MiB each way, half-close,
// a backend that is down, memory bounds against a slow backend and a slow
// client, and a second gateway on a taken port.
#include <gtest/gtest.h>
#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <fstream>
#include <random>
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
using std::chrono::seconds;
using Clock = std::chrono::steady_clock;

constexpr size_t kMiB = 1024 * 1024;

// A gateway config with one tcp_proxy listener "raw" on `port` (0: one the
// kernel picks) forwarding to 127.0.0.1:`backend_port`.
std::string proxyConfig(uint16_t port, uint16_t backend_port, int workers = 2) {
  return R"({"workers": )" + std::to_string(workers) + R"(, "admin": {"address": "127.0.0.1:0"},
    "listeners": [{"name": "raw", "address": "127.0.0.1:)" +
         std::to_string(port) + R"(",
      "filters": [{"name": "tcp_proxy",
                   "config": {"cluster": "echo", "buffer_high_watermark": 65536}}]}],
    "clusters": [{"name": "echo", "hosts": ["127.0.0.1:)" +
         std::to_string(backend_port) + R"("], "connect_timeout": "2s"}]})";
}

// `n` bytes of a reproducible pseudo-random pattern.
std::string randomBytes(size_t n, uint32_t seed) {
  std::mt19937 rng(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(rng());
  return s;
}

// Byte `i` of an endless stream: lets a receiver check any amount of data
// without keeping a copy.
char patternByte(uint64_t i) { return static_cast<char>((i * 131 + 7) % 251); }

// Sends the pattern stream on a non-blocking `fd` for `duration`, as fast as
// the socket takes it. Returns how many bytes the kernel accepted.
// The most a TCP receive (`tcp_rmem`) or send (`tcp_wmem`) buffer may grow
// to by autotuning on this kernel (the third field), or `fallback`.
uint64_t tcpBufferMax(const char* name, uint64_t fallback) {
  std::ifstream f(std::string("/proc/sys/net/ipv4/") + name);
  uint64_t min = 0, def = 0, max = 0;
  if (f >> min >> def >> max && max > 0) return max;
  return fallback;
}

// What the kernel alone may hold between a pusher and a peer that stopped
// reading, through the gateway: two receive and two send buffers at their
// autotuning maximum (here tcp_rmem allows 32 MB), plus 8 MiB for the
// gateway's bounded user-space buffers. More than this means the gateway
// itself kept taking data.
uint64_t kernelPathBound() {
  return 2 * (tcpBufferMax("tcp_rmem", 6 * kMiB) + tcpBufferMax("tcp_wmem", 4 * kMiB)) + 8 * kMiB;
}

uint64_t pushFor(int fd, Clock::duration duration) {
  EXPECT_TRUE(setNonBlocking(fd, true));
  std::string chunk(64 * 1024, '\0');
  uint64_t sent = 0;
  auto deadline = Clock::now() + duration;
  while (Clock::now() < deadline) {
    for (size_t i = 0; i < chunk.size(); ++i) chunk[i] = patternByte(sent + i);
    ssize_t n = ::send(fd, chunk.data(), chunk.size(), MSG_NOSIGNAL);
    if (n > 0) {
      sent += static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      ADD_FAILURE() << "send: " << std::strerror(errno);
      break;
    }
    pollfd p{fd, POLLOUT, 0};
    ::poll(&p, 1, 10);
  }
  EXPECT_TRUE(setNonBlocking(fd, false));
  return sent;
}

// Reads `n` bytes from `fd` and checks they are the pattern stream's first
// `n` bytes. Returns false (with a test failure) on timeout or mismatch.
bool expectPattern(int fd, uint64_t n, milliseconds timeout) {
  uint64_t got = 0;
  auto deadline = Clock::now() + timeout;
  std::string buf;
  while (got < n) {
    auto left = std::chrono::duration_cast<milliseconds>(deadline - Clock::now());
    if (left.count() <= 0) {
      ADD_FAILURE() << "received " << got << " of " << n << " bytes";
      return false;
    }
    size_t want = static_cast<size_t>(std::min<uint64_t>(n - got, 256 * 1024));
    if (!recvExact(fd, want, left, &buf)) {
      ADD_FAILURE() << "received " << got + buf.size() << " of " << n << " bytes";
      return false;
    }
    for (size_t i = 0; i < buf.size(); ++i) {
      if (buf[i] != patternByte(got + i)) {
        ADD_FAILURE() << "byte " << got + i << " differs";
        return false;
      }
    }
    got += buf.size();
  }
  return true;
}

class TcpProxyTest : public ::testing::Test {
 protected:
  // The servers bind ports the kernel picks (port 0) and the test reads
  // them back: a port picked beforehand with freePort() can be taken by a
  // test running in parallel before the server binds it (CI runs two test
  // binaries at once; under load the server starts late).

  // The echo server on backend_port_, or on a port the kernel picks if it
  // is 0 (then sets it).
  void startEcho() {
    std::string error;
    ASSERT_TRUE(echo_.start(backend_port_, &error)) << error;
    backend_port_ = echo_.port();
  }
  // A listening socket made here as the backend (sets backend_port_).
  UniqueFd listenBackend() {
    UniqueFd listener = listenTcp(0);
    backend_port_ = localPort(listener.get());
    return listener;
  }
  // Listener "raw" on a port the kernel picks: sets port_.
  void startGateway(int workers = 2) {
    std::string error;
    ASSERT_TRUE(gateway_.start(proxyConfig(0, backend_port_, workers), &error)) << error;
    port_ = gateway_.listenerPort("raw");
    ASSERT_NE(port_, 0) << gateway_.output();
  }
  // Stops the gateway and expects a clean exit (0: no crash, no leak under
  // ASan).
  void expectCleanStop() { EXPECT_EQ(gateway_.stop(), 0) << gateway_.output(); }
  UniqueFd connectGateway() {
    UniqueFd fd = connectTcp(port_);
    EXPECT_TRUE(fd.valid()) << "connect to the gateway: " << std::strerror(errno);
    return fd;
  }

  uint16_t port_ = 0;
  uint16_t backend_port_ = 0;
  EchoServerProcess echo_;
  GatewayProcess gateway_;
};

TEST_F(TcpProxyTest, EchoRoundTrips) {
  startEcho();
  startGateway();
  std::vector<UniqueFd> clients;
  for (int i = 0; i < 4; ++i) clients.push_back(connectGateway());
  std::string reply;
  for (int round = 0; round < 50; ++round) {
    for (size_t c = 0; c < clients.size(); ++c) {
      std::string msg = "client " + std::to_string(c) + " round " + std::to_string(round) + " " +
                        std::string(static_cast<size_t>(round * 97 % 4096), 'x');
      ASSERT_TRUE(sendAll(clients[c].get(), msg));
      ASSERT_TRUE(recvExact(clients[c].get(), msg.size(), seconds(5), &reply))
          << "got " << reply.size() << " of " << msg.size();
      ASSERT_EQ(reply, msg);
    }
  }
  clients.clear();
  expectCleanStop();
}

TEST_F(TcpProxyTest, OneMiBEachWayArrivesIntact) {
  startEcho();
  startGateway();
  UniqueFd fd = connectGateway();
  const std::string data = randomBytes(kMiB, 42);
  std::thread sender([&] { EXPECT_TRUE(sendAll(fd.get(), data)); });
  std::string echoed;
  bool ok = recvExact(fd.get(), data.size(), seconds(15), &echoed);
  sender.join();
  ASSERT_TRUE(ok) << "echoed " << echoed.size() << " of " << data.size() << " bytes";
  EXPECT_TRUE(echoed == data) << "the echoed MiB differs from what was sent";
  fd.reset();
  expectCleanStop();
}

TEST_F(TcpProxyTest, HalfCloseDeliversAllEchoedDataThenEof) {
  startEcho();
  startGateway();
  UniqueFd fd = connectGateway();
  const std::string data = randomBytes(256 * 1024, 7);
  ASSERT_TRUE(sendAll(fd.get(), data));
  ASSERT_EQ(::shutdown(fd.get(), SHUT_WR), 0);
  std::string echoed;
  ASSERT_TRUE(recvUntilEof(fd.get(), seconds(10), &echoed))
      << "no EOF after " << echoed.size() << " bytes";
  EXPECT_EQ(echoed.size(), data.size());
  EXPECT_TRUE(echoed == data);
  fd.reset();
  expectCleanStop();
}

TEST_F(TcpProxyTest, BackendDownClosesTheClientPromptlyAndLogsIt) {
  // The backend starts later on this port; until then nothing listens on it.
  backend_port_ = freePort();
  ASSERT_NE(backend_port_, 0);
  startGateway();
  UniqueFd fd = connectGateway();
  auto t0 = Clock::now();
  ASSERT_TRUE(waitClosed(fd.get(), seconds(3)));
  EXPECT_LT(Clock::now() - t0, seconds(1));
  std::string expected =
      "tcp_proxy: cluster 'echo': connect 127.0.0.1:" + std::to_string(backend_port_) +
      ": Connection refused";
  EXPECT_TRUE(gateway_.process().waitForOutput(expected, seconds(3))) << gateway_.output();

  // Once the backend is up, new connections are proxied again.
  startEcho();
  UniqueFd again = connectGateway();
  std::string reply;
  ASSERT_TRUE(sendAll(again.get(), "back"));
  ASSERT_TRUE(recvExact(again.get(), 4, seconds(5), &reply));
  EXPECT_EQ(reply, "back");
  again.reset();
  expectCleanStop();
}

// The backend accepts and never reads: the client's bytes pile up in kernel
// buffers and in the gateway, which must stop reading the client once its
// upstream buffer passes buffer_high_watermark.
TEST_F(TcpProxyTest, SlowBackendBoundsWhatTheClientCanPush) {
  UniqueFd listener = listenBackend();
  ASSERT_TRUE(listener.valid());
  startGateway(1);
  size_t rss_before = residentBytes(gateway_.pid());
  ASSERT_GT(rss_before, 0u);
  UniqueFd client = connectGateway();
  UniqueFd backend = acceptTcp(listener.get(), seconds(5));
  ASSERT_TRUE(backend.valid());

  uint64_t pushed = pushFor(client.get(), seconds(2));
  size_t rss_after = residentBytes(gateway_.pid());
  // Kernel socket buffers on both hops plus the gateway's 64 KiB watermark;
  // without backpressure the gateway would take everything the client
  // offers (hundreds of MiB in 2 s), which the RSS bound below catches.
  EXPECT_GT(pushed, 64u * 1024);
  EXPECT_LT(pushed, kernelPathBound());
  EXPECT_LT(rss_after, rss_before + 32 * kMiB)
      << "gateway RSS grew from " << rss_before << " to " << rss_after;
  RecordProperty("bytes_pushed", std::to_string(pushed));
  RecordProperty("gateway_rss_growth", std::to_string(rss_after - rss_before));

  // Reading resumes the flow: the backend gets every byte, in order.
  EXPECT_TRUE(expectPattern(backend.get(), pushed, seconds(10)));
  client.reset();
  backend.reset();
  expectCleanStop();
}

// The mirror case: the backend pushes and the client never reads. The
// gateway must stop reading the backend once the client's output passes
// its watermark.
TEST_F(TcpProxyTest, SlowClientBoundsWhatTheBackendCanPush) {
  UniqueFd listener = listenBackend();
  ASSERT_TRUE(listener.valid());
  startGateway(1);
  size_t rss_before = residentBytes(gateway_.pid());
  UniqueFd client = connectGateway();
  UniqueFd backend = acceptTcp(listener.get(), seconds(5));
  ASSERT_TRUE(backend.valid());

  uint64_t pushed = pushFor(backend.get(), seconds(2));
  size_t rss_after = residentBytes(gateway_.pid());
  // Without backpressure the client's output would pass max_output_bytes
  // (4 MiB) and the gateway would disconnect it: expectPattern below fails.
  EXPECT_GT(pushed, 64u * 1024);
  EXPECT_LT(pushed, kernelPathBound());
  EXPECT_LT(rss_after, rss_before + 32 * kMiB)
      << "gateway RSS grew from " << rss_before << " to " << rss_after;
  // Nothing was dropped and the client was not disconnected.
  EXPECT_TRUE(expectPattern(client.get(), pushed, seconds(10)));
  client.reset();
  backend.reset();
  expectCleanStop();
}

TEST_F(TcpProxyTest, SecondGatewayOnTheSamePortFailsClearly) {
  startEcho();
  startGateway();
  GatewayProcess second;
  std::string error;
  EXPECT_FALSE(second.start(proxyConfig(port_, backend_port_), &error, seconds(10)));
  EXPECT_EQ(second.process().wait(seconds(5)), 1) << second.output();
  std::string expected = "cannot start: listener 'raw': bind 127.0.0.1:" + std::to_string(port_) +
                         ": Address already in use";
  EXPECT_NE(second.output().find(expected), std::string::npos) << second.output();

  // The first one still serves.
  UniqueFd fd = connectGateway();
  std::string reply;
  ASSERT_TRUE(sendAll(fd.get(), "still here"));
  ASSERT_TRUE(recvExact(fd.get(), 10, seconds(5), &reply));
  EXPECT_EQ(reply, "still here");
  fd.reset();
  expectCleanStop();
}

}  // namespace
}  // namespace test
}  // namespace gw
