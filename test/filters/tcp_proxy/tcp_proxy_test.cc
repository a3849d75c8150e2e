// Unit tests of the `tcp_proxy` filter (filters/tcp_proxy) in one process:
// the client side is an EmbeddedChain, the backend a real socket on
// 127.0.0.1 driven by the same event loop. Covers config errors, both
// directions, half-close, connect failure and timeout, idle timeout (and
// its restart by traffic), closes from either side and backpressure toward a
// slow client.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <algorithm>
#include <string>
#include <vector>

#include "core/sdk/cluster.h"
#include "core/sdk/testing/embedded_chain.h"
#include "test/harness/net.h"

namespace gw {
namespace test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

std::vector<ClusterConfig> clusterOn(uint16_t port,
                                     milliseconds connect_timeout = milliseconds(2000)) {
  ClusterConfig c;
  c.name = "backend";
  c.hosts.push_back(*Address::parse("127.0.0.1:" + std::to_string(port)));
  c.connect_timeout = connect_timeout;
  return {c};
}

// Reads from the backend socket while running the chain's loop (the proxy
// only writes when the loop runs): up to `n` bytes, or until EOF when `n` is
// 0. Returns what arrived; *eof tells whether EOF was seen.
std::string pumpRecv(EmbeddedChain& ec, int fd, size_t n, bool* eof = nullptr,
                     milliseconds timeout = seconds(5)) {
  std::string got;
  if (eof) *eof = false;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  char buf[65536];
  while (std::chrono::steady_clock::now() < deadline && (n == 0 || got.size() < n)) {
    ec.runFor(milliseconds(1));
    ssize_t r =
        ::recv(fd, buf, n == 0 ? sizeof(buf) : std::min(sizeof(buf), n - got.size()), MSG_DONTWAIT);
    if (r > 0) got.append(buf, static_cast<size_t>(r));
    if (r == 0) {
      if (eof) *eof = true;
      break;
    }
  }
  return got;
}

TEST(TcpProxyConfigTest, SchemaAndParseErrors) {
  Dispatcher d("test");
  WorkerServices services;
  auto clusters = clusterOn(1);
  std::string error;
  EXPECT_EQ(buildFilter("tcp_proxy", R"({"cluster": 5})", d, services, clusters, &error), nullptr);
  EXPECT_EQ(error, "/cluster: must be a string that is not empty, got 5");
  EXPECT_EQ(buildFilter("tcp_proxy", R"({})", d, services, clusters, &error), nullptr);
  EXPECT_EQ(error, "/: missing required key \"cluster\"");
  EXPECT_EQ(buildFilter("tcp_proxy", R"({"cluster": "nope"})", d, services, clusters, &error),
            nullptr);
  EXPECT_EQ(error, "/cluster: unknown cluster \"nope\"; defined clusters: backend");
  EXPECT_EQ(buildFilter("tcp_proxy", R"({"cluster": "backend", "idle_timeout": "0s"})", d, services,
                        clusters, &error),
            nullptr);
  EXPECT_EQ(error,
            "/idle_timeout: must be a duration from 1ms to 720h (digits then ms, s, m or h: "
            "\"250ms\", \"30s\", \"5m\"), got \"0s\"");
  // Past parseDuration's 30-day limit: an error, not a crash.
  EXPECT_EQ(buildFilter("tcp_proxy", R"({"cluster": "backend", "idle_timeout": "721h"})", d,
                        services, clusters, &error),
            nullptr);
  EXPECT_EQ(error,
            "/idle_timeout: must be a duration from 1ms to 720h (digits then ms, s, m or h: "
            "\"250ms\", \"30s\", \"5m\"), got \"721h\"");
  EXPECT_EQ(buildFilter("tcp_proxy", R"({"cluster": "backend", "buffer_high_watermark": 100})", d,
                        services, clusters, &error),
            nullptr);
  EXPECT_EQ(error, "/buffer_high_watermark: must be an integer ≥ 1024, got 100");
  auto ok = buildFilter("tcp_proxy", R"({"cluster": "backend", "idle_timeout": "5m"})", d, services,
                        clusters, &error);
  ASSERT_NE(ok, nullptr) << error;
  EXPECT_TRUE(ok->traits.terminal);
  EXPECT_EQ(ok->traits.consumes, Layer::kBytes);
}

TEST(TcpProxyConfigTest, DescribeShowsTheSettingsInForce) {
  Dispatcher d("test");
  WorkerServices services;
  auto clusters = clusterOn(1);
  std::string error;
  auto built = buildFilter("tcp_proxy", R"({"cluster": "backend", "idle_timeout": "90s"})", d,
                           services, clusters, &error);
  ASSERT_NE(built, nullptr) << error;
  rapidjson::Document doc(rapidjson::kObjectType);
  built->config->describe(doc, doc.GetAllocator());
  EXPECT_EQ(doc.MemberCount(), 3u);
  EXPECT_STREQ(doc["cluster"].GetString(), "backend");
  EXPECT_STREQ(doc["idle_timeout"].GetString(), "90s");
  EXPECT_EQ(doc["buffer_high_watermark"].GetUint64(), 64u * 1024) << "the default filled in";
}

class TcpProxyFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    listener_ = listenTcp(0);
    ASSERT_TRUE(listener_.valid());
    port_ = localPort(listener_.get());
  }

  // Builds the chain [tcp_proxy] to 127.0.0.1:`port` and starts it (the
  // proxy begins connecting).
  void start(uint16_t port, const std::string& extra = "", OutputLimits limits = {}) {
    EmbeddedChain::Options options;
    options.limits = limits;
    ec_ = std::make_unique<EmbeddedChain>(options);
    std::string error;
    auto proxy = ec_->registered("tcp_proxy", R"({"cluster": "backend")" + extra + "}",
                                 clusterOn(port, connect_timeout_), &error);
    ASSERT_TRUE(proxy) << error;
    ec_->start({*proxy});
  }
  // Starts against the test's listener and accepts the proxy's connection.
  void startConnected(const std::string& extra = "", OutputLimits limits = {}) {
    start(port_, extra, limits);
    backend_ = acceptTcp(listener_.get(), seconds(5));
    ASSERT_TRUE(backend_.valid());
  }

  UniqueFd listener_;
  uint16_t port_ = 0;
  milliseconds connect_timeout_{2000};
  UniqueFd backend_;
  std::unique_ptr<EmbeddedChain> ec_;
};

TEST_F(TcpProxyFilterTest, BytesFlowBothWaysAndEarlyBytesWaitForTheConnect) {
  startConnected();
  ec_->feed("hello");  // before the loop ran: the connect is still pending
  EXPECT_EQ(ec_->inputLength(), 5u);
  EXPECT_EQ(pumpRecv(*ec_, backend_.get(), 5), "hello");
  EXPECT_EQ(ec_->inputLength(), 0u);

  ec_->feed(" again");
  EXPECT_EQ(pumpRecv(*ec_, backend_.get(), 6), " again");

  ASSERT_TRUE(sendAll(backend_.get(), "world"));
  ASSERT_TRUE(ec_->runUntil([&] { return ec_->outputLength() == 5; }));
  EXPECT_EQ(ec_->takeOutput(), "world");
  EXPECT_FALSE(ec_->closed());
}

TEST_F(TcpProxyFilterTest, HalfCloseEachWayThenClosesWhenBothAreDone) {
  startConnected();
  ec_->feed("last words");
  ec_->feedEof();
  // The backend gets the bytes, then EOF; the client side stays open for
  // the backend's answer.
  bool eof = false;
  EXPECT_EQ(pumpRecv(*ec_, backend_.get(), 0, &eof), "last words");
  EXPECT_TRUE(eof);
  EXPECT_FALSE(ec_->closed());

  ASSERT_TRUE(sendAll(backend_.get(), "reply"));
  ASSERT_EQ(::shutdown(backend_.get(), SHUT_WR), 0);
  ASSERT_TRUE(ec_->runUntil([&] { return ec_->closed(); }));
  EXPECT_EQ(ec_->takeOutput(), "reply");
  EXPECT_EQ(ec_->closeReason(), CloseReason::kLocalClosed);
  EXPECT_EQ(ec_->closeDetail(), "both sides closed");
}

TEST_F(TcpProxyFilterTest, ConnectRefusedClosesTheClient) {
  listener_.reset();  // nothing listens on port_ any more
  start(port_);
  ec_->feed("lost");
  ASSERT_TRUE(ec_->runUntil([&] { return ec_->closed(); }));
  EXPECT_EQ(ec_->closeReason(), CloseReason::kUpstreamConnectFailed);
  EXPECT_EQ(ec_->closeDetail(),
            "connect 127.0.0.1:" + std::to_string(port_) + ": Connection refused");
  EXPECT_EQ(ec_->closeCount(), 1);
}

TEST_F(TcpProxyFilterTest, ConnectTimeoutClosesTheClient) {
  // A listener whose accept queue is full drops SYNs: a connect to it stays
  // in progress. Backlog 0 holds one connection; `queued` takes it.
  UniqueFd full = listenTcp(0, 0);
  ASSERT_TRUE(full.valid());
  uint16_t port = localPort(full.get());
  UniqueFd queued = connectTcp(port);
  ASSERT_TRUE(queued.valid());
  connect_timeout_ = milliseconds(100);
  start(port);
  ec_->feed("waiting");
  ASSERT_TRUE(ec_->runUntil([&] { return ec_->closed(); }, seconds(3)));
  EXPECT_EQ(ec_->closeReason(), CloseReason::kUpstreamConnectFailed);
  EXPECT_EQ(ec_->closeDetail(),
            "connect 127.0.0.1:" + std::to_string(port) + ": timed out after 100ms");
  EXPECT_EQ(ec_->closeCount(), 1);
}

TEST_F(TcpProxyFilterTest, TrafficRestartsTheIdleTimeout) {
  startConnected(R"(, "idle_timeout": "400ms")");
  // Traffic (alternately each way) every 40 ms for a second and a half:
  // far longer than the idle timeout, never idle for it.
  auto until = std::chrono::steady_clock::now() + milliseconds(1500);
  bool from_client = true;
  while (std::chrono::steady_clock::now() < until) {
    if (from_client) {
      ec_->feed("c");
      EXPECT_EQ(pumpRecv(*ec_, backend_.get(), 1), "c");
    } else {
      ASSERT_TRUE(sendAll(backend_.get(), "b"));
      ASSERT_TRUE(ec_->runUntil([&] { return ec_->outputLength() == 1; }));
      EXPECT_EQ(ec_->takeOutput(), "b");
    }
    from_client = !from_client;
    ASSERT_FALSE(ec_->closed()) << ec_->closeDetail();
    ec_->runFor(milliseconds(40));
  }
  ASSERT_FALSE(ec_->closed()) << ec_->closeDetail();
  // Then silence: closed after the timeout.
  ASSERT_TRUE(ec_->runUntil([&] { return ec_->closed(); }, seconds(3)));
  EXPECT_EQ(ec_->closeReason(), CloseReason::kIdleTimeout);
  EXPECT_EQ(ec_->closeDetail(), "no traffic for 400ms");
}

TEST_F(TcpProxyFilterTest, IdleConnectionIsClosed) {
  startConnected(R"(, "idle_timeout": "50ms")");
  ASSERT_TRUE(ec_->runUntil([&] { return ec_->closed(); }, seconds(3)));
  EXPECT_EQ(ec_->closeReason(), CloseReason::kIdleTimeout);
  EXPECT_EQ(ec_->closeDetail(), "no traffic for 50ms");
  EXPECT_TRUE(waitClosed(backend_.get(), seconds(2)));
}

TEST_F(TcpProxyFilterTest, BackendResetClosesTheClient) {
  startConnected();
  ec_->feed("x");
  EXPECT_EQ(pumpRecv(*ec_, backend_.get(), 1), "x");
  // Linger 0: close() sends a reset instead of a FIN.
  linger lin{1, 0};
  ASSERT_EQ(::setsockopt(backend_.get(), SOL_SOCKET, SO_LINGER, &lin, sizeof(lin)), 0);
  backend_.reset();
  ASSERT_TRUE(ec_->runUntil([&] { return ec_->closed(); }));
  EXPECT_EQ(ec_->closeReason(), CloseReason::kUpstreamClosed);
  EXPECT_EQ(ec_->closeDetail().rfind("upstream: ", 0), 0u) << ec_->closeDetail();
}

TEST_F(TcpProxyFilterTest, BackendFinHalfClosesTheClientAndWaitsForIt) {
  startConnected();
  ASSERT_TRUE(sendAll(backend_.get(), "bye"));
  ASSERT_EQ(::shutdown(backend_.get(), SHUT_WR), 0);
  ASSERT_TRUE(ec_->runUntil([&] { return ec_->outputLength() == 3; }));
  ec_->runFor(milliseconds(20));
  EXPECT_FALSE(ec_->closed());  // the client may still send
  ec_->feed("late");
  EXPECT_EQ(pumpRecv(*ec_, backend_.get(), 4), "late");
  ec_->feedEof();
  ASSERT_TRUE(ec_->runUntil([&] { return ec_->closed(); }));
  EXPECT_EQ(ec_->closeReason(), CloseReason::kLocalClosed);
  EXPECT_EQ(ec_->takeOutput(), "bye");
}

TEST_F(TcpProxyFilterTest, ClientCloseClosesTheBackend) {
  startConnected();
  ASSERT_TRUE(ec_->runUntil([&] { return ec_->connection().readEnabled(); }));
  ec_->connection().close(CloseReason::kRemoteClosed, "client went away");
  EXPECT_TRUE(ec_->closed());
  ec_->runFor(milliseconds(20));
  EXPECT_TRUE(waitClosed(backend_.get(), seconds(2)));
}

TEST_F(TcpProxyFilterTest, SlowClientPausesTheBackendInsteadOfBuffering) {
  OutputLimits limits;
  limits.high_watermark = 64 * 1024;
  limits.low_watermark = 16 * 1024;
  limits.max_bytes = 4 * 1024 * 1024;
  startConnected("", limits);
  ASSERT_TRUE(setNonBlocking(backend_.get(), true));
  const size_t total = 2 * 1024 * 1024;
  std::string data(total, '\0');
  for (size_t i = 0; i < total; ++i) data[i] = static_cast<char>(i % 251);

  size_t sent = 0;
  std::string received;
  size_t max_buffered = 0;
  auto deadline = std::chrono::steady_clock::now() + seconds(15);
  while (received.size() < total && std::chrono::steady_clock::now() < deadline) {
    if (sent < total) {
      ssize_t n = ::send(backend_.get(), data.data() + sent, total - sent, MSG_NOSIGNAL);
      if (n > 0) sent += static_cast<size_t>(n);
    }
    ec_->runFor(milliseconds(2));
    max_buffered = std::max(max_buffered, ec_->outputLength());
    // A slow client: reads only now and then, in small pieces.
    if (ec_->outputLength() > 48 * 1024) received += ec_->takeOutput();
    if (sent == total && ec_->outputLength() > 0) received += ec_->takeOutput();
  }
  ASSERT_EQ(received.size(), total);
  EXPECT_TRUE(received == data);
  EXPECT_FALSE(ec_->closed());
  // The proxy stops reading the backend past the high watermark: at most
  // one more read (16 KiB) lands on top of it.
  EXPECT_LE(max_buffered, limits.high_watermark + 16 * 1024);
}

}  // namespace
}  // namespace test
}  // namespace gw
