// Integration test of fair sharing of a backend connection (issue 14, item
// 4) on the real gateway binary: four flooding clients and one well-behaved
// client (a frame every 10 ms) share the one backend connection of a
// one-worker gateway (max_connections_per_service 1) whose
// max_backend_output_bytes is small. Two scenarios: the backend reads slower
// than the flood, and the backend stops reading for the whole flood
// (stalled). In both, the well-behaved client gets no error frame, the
// flooders get kUpstreamOverflow error frames, and no frame is lost
// silently: per client, frames sent = frames the backend got + error frames.
//
// The clients connect from different loopback addresses (127.0.0.1 for the
// well-behaved client, 127.0.0.2 and .3 for two flooders each), so the
// per-client-IP share is exercised as in production.
#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "core/sdk/error_frame.h"
#include "test/harness/gateway.h"
#include "test/harness/net.h"
#include "test/integration/ops_test.h"

namespace gw {
namespace test {
namespace {

using Clock = std::chrono::steady_clock;
using std::chrono::milliseconds;

constexpr uint16_t kWellBehavedMsgId = 1;
constexpr uint16_t kFirstFlooderMsgId = 2;
constexpr int kFlooders = 4;
constexpr auto kScenarioTime = milliseconds(1500);
const uint32_t kServerId = wire::ClientHeader::makeServerId(0, 200, 0);

// A connection to 127.0.0.1:`port` from `source` (a loopback address), or an
// invalid fd.
UniqueFd connectFrom(const char* source, uint16_t port) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM, 0));
  if (!fd.valid()) return fd;
  sockaddr_in src{};
  src.sin_family = AF_INET;
  inet_pton(AF_INET, source, &src.sin_addr);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0) return UniqueFd();
  sockaddr_in dst{};
  dst.sin_family = AF_INET;
  dst.sin_port = htons(port);
  inet_pton(AF_INET, "127.0.0.1", &dst.sin_addr);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&dst), sizeof(dst)) != 0) return UniqueFd();
  int one = 1;
  setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  return fd;
}

// The backend: accepts the gateway's one connection and counts data frames
// by type (= the client's msg_id). While `stalled` it reads nothing; while
// `slow` it reads 8 KiB per millisecond at most (slower than the flood).
class CountingBackend {
 public:
  CountingBackend() : listen_(::socket(AF_INET, SOCK_STREAM, 0)) {
    // A small receive buffer (inherited by the accepted socket), so that a
    // stall reaches the gateway's output buffer quickly.
    int rcvbuf = 64 * 1024;
    setsockopt(listen_.get(), SOL_SOCKET, SO_RCVBUF, &rcvbuf, sizeof(rcvbuf));
    sockaddr_in a{};
    a.sin_family = AF_INET;
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    ::bind(listen_.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a));
    ::listen(listen_.get(), 8);
    port_ = localPort(listen_.get());
    thread_ = std::thread([this] { run(); });
  }
  ~CountingBackend() {
    stop_ = true;
    thread_.join();
  }
  uint16_t port() const { return port_; }
  uint64_t data(uint16_t type) const { return counts_.at(type).load(); }
  int connections() const { return connections_.load(); }

  std::atomic<bool> stalled{false};
  std::atomic<bool> slow{false};

 private:
  void run() {
    std::vector<UniqueFd> conns;
    std::string pending;
    while (!stop_) {
      UniqueFd c = acceptTcp(listen_.get(), milliseconds(conns.empty() ? 20 : 0));
      if (c.valid()) {
        setNonBlocking(c.get(), true);
        conns.push_back(std::move(c));
        ++connections_;
      }
      if (conns.empty() || stalled) {
        std::this_thread::sleep_for(milliseconds(2));
        continue;
      }
      char buf[8192];
      ssize_t n = ::recv(conns.front().get(), buf, sizeof(buf), 0);
      if (n > 0) {
        pending.append(buf, static_cast<size_t>(n));
        std::vector<ServerFrame> frames;
        pending.erase(0, decodeServerFrames(pending, &frames));
        for (const auto& f : frames) {
          if (f.header.opcode == static_cast<uint8_t>(wire::Opcode::kData) &&
              f.header.type >= 0 && static_cast<size_t>(f.header.type) < counts_.size())
            ++counts_[static_cast<size_t>(f.header.type)];
        }
      }
      if (n <= 0 || slow) std::this_thread::sleep_for(milliseconds(1));
    }
  }

  UniqueFd listen_;
  uint16_t port_ = 0;
  std::atomic<bool> stop_{false};
  std::atomic<int> connections_{0};
  std::array<std::atomic<uint64_t>, 16> counts_{};
  std::thread thread_;
};

// One client: sends frames of its msg_id until `until` (a flooder as fast as
// the socket takes them, 1000-byte payloads; the well-behaved client one
// 32-byte frame every 10 ms), then keeps reading error frames until `stop`.
struct Client {
  UniqueFd fd;
  uint16_t msg_id = 0;
  bool flood = false;
  std::atomic<uint64_t> sent{0};     // whole frames handed to the socket
  std::atomic<uint64_t> refused{0};  // error frames kUpstreamOverflow
  std::atomic<uint64_t> other{0};    // any other frame received
  std::atomic<bool> done_sending{false};
  std::thread thread;

  void run(Clock::time_point until, const std::atomic<bool>& stop) {
    setNonBlocking(fd.get(), true);
    const std::string frame =
        encodeClientFrame(msg_id, kServerId, std::string(flood ? 1000 : 32, 'x'));
    std::string out;
    size_t out_off = 0;
    std::string in;
    uint64_t queued = 0;
    auto next_tick = Clock::now();
    while (!stop) {
      auto now = Clock::now();
      bool sending = now < until;
      if (sending) {
        if (flood && out.size() - out_off < 16 * frame.size()) {
          out.erase(0, out_off);
          out_off = 0;
          for (int i = 0; i < 32; ++i) out += frame;
          queued += 32;
        } else if (!flood && now >= next_tick) {
          out += frame;
          ++queued;
          next_tick += milliseconds(10);
        }
      } else if (out_off == out.size() && !done_sending) {
        sent = queued;
        done_sending = true;
      }
      pollfd p{fd.get(), static_cast<short>(POLLIN | (out_off < out.size() ? POLLOUT : 0)), 0};
      ::poll(&p, 1, 2);
      if (out_off < out.size() && (p.revents & POLLOUT)) {
        ssize_t n = ::send(fd.get(), out.data() + out_off, out.size() - out_off, MSG_NOSIGNAL);
        if (n > 0) out_off += static_cast<size_t>(n);
      }
      if (p.revents & POLLIN) {
        char buf[16384];
        ssize_t n;
        while ((n = ::recv(fd.get(), buf, sizeof(buf), 0)) > 0) in.append(buf, static_cast<size_t>(n));
        std::vector<ClientFrame> frames;
        in.erase(0, decodeClientFrames(in, &frames));
        for (const auto& f : frames) {
          if (f.header.msg_id == kErrorMsgId && f.payload.size() >= 4 &&
              wire::getU16(reinterpret_cast<const uint8_t*>(f.payload.data())) ==
                  static_cast<uint16_t>(ErrorCode::kUpstreamOverflow)) {
            ++refused;
          } else {
            ++other;
          }
        }
      }
    }
  }
};

// The sum of the samples of `family` in the gateway's /metrics whose labels
// contain `label` ("" for all).
uint64_t metricSum(uint16_t admin_port, const std::string& family, const std::string& label) {
  HttpResponse r = httpSend(admin_port, "GET", "/metrics", {"Host: 127.0.0.1"});
  uint64_t sum = 0;
  size_t at = 0;
  while ((at = r.body.find(family + "{", at)) != std::string::npos) {
    size_t eol = r.body.find('\n', at);
    std::string line = r.body.substr(at, eol - at);
    at = eol;
    if (line.find(label) == std::string::npos) continue;
    sum += std::stoull(line.substr(line.rfind(' ') + 1));
  }
  return sum;
}

struct Totals {
  uint64_t sent = 0, delivered = 0, refused = 0, other = 0;
};

class FairShareTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // One worker, one backend connection, a 256 KiB output limit.
    std::string config = R"({"workers": 1, "drain_timeout": "1s", "admin": )" + testAdminJson() +
                         R"(, "listeners": [{"name": "game", "address": "127.0.0.1:0",
        "filters": [{"name": "framing", "config": {"max_frame_bytes": 4096}},
                    {"name": "upstream", "config": {
                       "routes": [{"match": "200:0", "cluster": "game"}],
                       "max_backend_output_bytes": 262144}}]}],
      "clusters": [{"name": "game", "hosts": ["127.0.0.1:)" +
                         std::to_string(backend_.port()) +
                         R"("], "connect_timeout": "1s", "max_connections_per_service": 1}]})";
    std::string error;
    ASSERT_TRUE(gw_.start(config, &error)) << error;
    port_ = gw_.listenerPort("game");
    ASSERT_NE(port_, 0);
  }

  // Runs the clients for kScenarioTime and waits until every frame is
  // accounted for (delivered to the backend or refused). Returns the totals
  // of the well-behaved client and of the flooders.
  void runScenario(const char* name, Totals* good, Totals* bad) {
    // The backend connection first, with the well-behaved client's session.
    auto wb = std::make_unique<Client>();
    wb->fd = connectFrom("127.0.0.1", port_);
    ASSERT_TRUE(wb->fd.valid());
    wb->msg_id = kWellBehavedMsgId;
    std::vector<std::unique_ptr<Client>> clients;
    for (int i = 0; i < kFlooders; ++i) {
      auto c = std::make_unique<Client>();
      c->fd = connectFrom(i < kFlooders / 2 ? "127.0.0.2" : "127.0.0.3", port_);
      ASSERT_TRUE(c->fd.valid()) << "flooder " << i;
      c->msg_id = static_cast<uint16_t>(kFirstFlooderMsgId + i);
      c->flood = true;
      clients.push_back(std::move(c));
    }
    clients.push_back(std::move(wb));
    std::atomic<bool> stop{false};
    auto until = Clock::now() + kScenarioTime;
    for (auto& c : clients) c->thread = std::thread([&c, until, &stop] { c->run(until, stop); });
    // Every frame reaches the backend or is refused (the backend reads at
    // full speed once the clients stopped sending).
    std::this_thread::sleep_for(kScenarioTime);
    backend_.stalled = false;
    backend_.slow = false;
    bool accounted = waitUntil(
        [&] {
          for (auto& c : clients) {
            if (!c->done_sending) return false;
            if (backend_.data(c->msg_id) + c->refused != c->sent) return false;
          }
          return true;
        },
        milliseconds(15000));
    stop = true;
    for (auto& c : clients) c->thread.join();
    for (auto& c : clients) {
      Totals& t = c->flood ? *bad : *good;
      t.sent += c->sent;
      t.delivered += backend_.data(c->msg_id);
      t.refused += c->refused;
      t.other += c->other;
    }
    std::printf("%s: well-behaved sent %llu delivered %llu refused %llu; flooders sent %llu "
                "delivered %llu refused %llu\n",
                name, static_cast<unsigned long long>(good->sent),
                static_cast<unsigned long long>(good->delivered),
                static_cast<unsigned long long>(good->refused),
                static_cast<unsigned long long>(bad->sent),
                static_cast<unsigned long long>(bad->delivered),
                static_cast<unsigned long long>(bad->refused));
    EXPECT_TRUE(accounted) << "frames lost silently (sent != delivered + refused)";
    // Every refusal is counted by reason.
    uint16_t admin = adminPort(gw_);
    ASSERT_NE(admin, 0);
    const std::string family = "game_gateway_upstream_output_refused_total";
    EXPECT_EQ(metricSum(admin, family, ""), good->refused + bad->refused);
    uint64_t by_session = metricSum(admin, family, "reason=\"session_share\"");
    uint64_t by_ip = metricSum(admin, family, "reason=\"ip_share\"");
    uint64_t by_cap = metricSum(admin, family, "reason=\"hard_cap\"");
    std::printf("%s: refused by reason: session_share %llu ip_share %llu hard_cap %llu\n", name,
                static_cast<unsigned long long>(by_session), static_cast<unsigned long long>(by_ip),
                static_cast<unsigned long long>(by_cap));
    EXPECT_GT(by_session + by_ip, 0u);
    EXPECT_EQ(backend_.connections(), 1);
  }

  CountingBackend backend_;
  GatewayProcess gw_;
  uint16_t port_ = 0;
};

TEST_F(FairShareTest, FloodingClientsAreRefusedAloneWhenTheBackendIsSlow) {
  backend_.slow = true;
  Totals good, bad;
  runScenario("flood", &good, &bad);
  EXPECT_GT(good.sent, 100u);
  EXPECT_EQ(good.refused, 0u) << "the well-behaved client was refused frames";
  EXPECT_EQ(good.delivered, good.sent);
  EXPECT_EQ(good.other, 0u);
  EXPECT_GT(bad.refused, 0u) << "the flood never reached the output limit";
  EXPECT_EQ(bad.other, 0u);
}

TEST_F(FairShareTest, FloodingClientsAreRefusedAloneWhenTheBackendStalls) {
  backend_.stalled = true;
  Totals good, bad;
  runScenario("stall", &good, &bad);
  EXPECT_GT(good.sent, 100u);
  EXPECT_EQ(good.refused, 0u) << "the well-behaved client was refused frames";
  EXPECT_EQ(good.delivered, good.sent);
  EXPECT_EQ(good.other, 0u);
  EXPECT_GT(bad.refused, 0u);
  EXPECT_EQ(bad.other, 0u);
}

}  // namespace
}  // namespace test
}  // namespace gw
