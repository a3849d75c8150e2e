// Unit tests of the `ip_limiter` filter in real FilterChains over detached
// connections (fd -1): connection limits on connect (nothing reaches later
// filters of a refused connection), release on close, trusted ranges, IPv6
// prefixes, the PROXY protocol (v1, v2, malformed, untrusted peer, timeout),
// the message rate (close and drop + error frame), the sweep, metrics and
// config validation. Time is a fake clock.
#include "filters/ip_limiter/ip_limiter.h"

#include <event2/buffer.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>

#include <cstdio>
#include <memory>
#include <string>
#include <vector>

#include "core/sdk/schema_check.h"
#include "core/sdk/connection.h"
#include "core/sdk/dispatcher.h"
#include "core/sdk/error_frame.h"
#include "core/sdk/filter_chain.h"
#include "core/sdk/wire.h"
#include "filters/ip_limiter/ip_limiter_schema.h"

namespace gw {
namespace ip_limiter {
namespace {

constexpr int64_t kMs = 1000 * 1000;
constexpr int64_t kSec = 1000 * kMs;

int64_t g_now = 1000 * kSec;
int64_t fakeClock() { return g_now; }

std::string frame(uint16_t msg_id, const std::string& payload) {
  uint8_t h[8];
  wire::ClientHeader ch;
  ch.length = static_cast<uint16_t>(payload.size());
  ch.msg_id = msg_id;
  ch.encode(h);
  return std::string(reinterpret_cast<char*>(h), 8) + payload;
}

// Parses `json` as the loader would: schema first, then parseConfig().
// Returns nullptr with *error = "<pointer>: <message>" on failure.
std::shared_ptr<IpLimiterConfig> makeConfig(const std::string& json, std::string* error) {
  rapidjson::Document d;
  d.Parse(json.c_str());
  if (d.HasParseError()) {
    *error = "bad JSON in test";
    return nullptr;
  }
  if (auto e = config::checkSchema(kIpLimiterSchema, d, "")) {
    *error = *e;
    return nullptr;
  }
  std::vector<ClusterConfig> clusters;
  ParseContext ctx(clusters, "test");
  auto cfg = parseConfig(d, ctx);
  if (!ctx.errors().empty()) {
    *error = ctx.errors()[0].pointer + ": " + ctx.errors()[0].message;
    return nullptr;
  }
  if (cfg == nullptr) *error = "parseConfig returned null without an error";
  return cfg;
}

// What the terminal test filter saw on one connection.
struct SinkState {
  int new_connections = 0;
  std::string raw;                  // bytes mode: everything received
  std::vector<std::string> frames;  // frames mode: "msg_id:payload"
};

// A terminal that stands in for `framing` + the rest: in frames mode it
// consumes whole frames only (leaving partial ones buffered, as a codec
// does); in bytes mode it takes everything.
class SinkFilter : public Filter {
 public:
  SinkFilter(SinkState* state, bool frames) : state_(state), frames_(frames) {}
  FilterStatus onNewConnection() override {
    ++state_->new_connections;
    return FilterStatus::kContinue;
  }
  FilterStatus onData(evbuffer* buf, bool) override {
    if (!frames_) {
      size_t n = evbuffer_get_length(buf);
      std::string s(n, '\0');
      evbuffer_remove(buf, &s[0], n);
      state_->raw += s;
      return FilterStatus::kStopIteration;
    }
    for (;;) {
      size_t len = evbuffer_get_length(buf);
      if (len < 8) break;
      uint8_t h[8];
      evbuffer_copyout(buf, h, 8);
      auto ch = wire::ClientHeader::decode(h);
      if (len < 8u + ch.length) break;
      evbuffer_drain(buf, 8);
      std::string p(ch.length, '\0');
      evbuffer_remove(buf, &p[0], ch.length);
      state_->frames.push_back(std::to_string(ch.msg_id) + ":" + p);
    }
    return FilterStatus::kStopIteration;
  }

 private:
  SinkState* state_;
  bool frames_;
};

class SinkFactory : public FilterFactory {
 public:
  std::unique_ptr<Filter> createFilter() override {
    return std::make_unique<SinkFilter>(next, frames);
  }
  SinkState* next = nullptr;
  bool frames = true;
};

// One client connection through [ip_limiter, sink].
struct TestConn {
  SinkState sink;
  std::unique_ptr<FilterChain> chain;
  bool closed = false;
  CloseReason reason = CloseReason::kCount;
  std::string detail;

  IpLimiterFilter& limiter() { return static_cast<IpLimiterFilter&>(chain->filter(0)); }
  void feed(const std::string& bytes) {
    if (closed) return;
    evbuffer_add(chain->connection().input(), bytes.data(), bytes.size());
    chain->deliverInput(false);
  }
  void feedEof() {
    if (!closed) chain->deliverInput(true);
  }
  std::string takeOutput() {
    evbuffer* out = chain->connection().output();
    std::string s(evbuffer_get_length(out), '\0');
    evbuffer_remove(out, &s[0], s.size());
    return s;
  }
  void close() {
    if (!closed) chain->connection().close(CloseReason::kRemoteClosed, "test closed it");
  }
};

class IpLimiterFilterTest : public ::testing::Test {
 protected:
  void SetUp() override {
    g_now = 1000 * kSec;
    global_before_ = GlobalConnectionCount::process().connections();
  }
  void TearDown() override {
    for (auto& c : conns_) c->close();
    conns_.clear();
    // Every admitted connection was released.
    EXPECT_EQ(GlobalConnectionCount::process().connections(), global_before_);
  }

  void build(const std::string& json) {
    std::string err;
    cfg_ = makeConfig(json, &err);
    ASSERT_NE(cfg_, nullptr) << err;
    cfg_->clock = &fakeClock;
    factory_ = std::make_unique<IpLimiterFactory>(cfg_, worker_);
  }

  TestConn& open(const std::string& peer, bool frames = true) {
    auto c = std::make_unique<TestConn>();
    sink_factory_.next = &c->sink;
    sink_factory_.frames = frames;
    auto addr = Address::parse(peer);
    EXPECT_TRUE(addr) << peer;
    auto conn = std::make_unique<Connection>(dispatcher_, -1, *addr, false);
    FilterTraits limiter_traits;  // bytes in, bytes out
    FilterTraits sink_traits;
    sink_traits.terminal = true;
    std::vector<ChainElement> elements = {{factory_.get(), limiter_traits},
                                          {&sink_factory_, sink_traits}};
    TestConn* raw = c.get();
    c->chain =
        std::make_unique<FilterChain>(std::move(conn), elements, OutputLimits{},
                                      [raw](FilterChain&, CloseReason r, std::string_view d) {
                                        raw->closed = true;
                                        raw->reason = r;
                                        raw->detail = std::string(d);
                                      });
    c->chain->start();
    conns_.push_back(std::move(c));
    return *raw;
  }

  uint64_t rejected(RejectReason r) { return cfg_->stats->rejected(r).value(); }

  void runFor(std::chrono::milliseconds d) {
    Timer stop(dispatcher_, [this] { dispatcher_.exit(); });
    stop.enable(d);
    dispatcher_.run();
  }

  Dispatcher dispatcher_{"test"};
  WorkerServices services_;
  std::vector<ClusterConfig> no_clusters_;
  WorkerContext worker_{dispatcher_, 0, 1, no_clusters_, "test", services_};
  std::shared_ptr<IpLimiterConfig> cfg_;
  std::unique_ptr<IpLimiterFactory> factory_;
  SinkFactory sink_factory_;
  std::vector<std::unique_ptr<TestConn>> conns_;
  int64_t global_before_ = 0;
};

// ---- connection limits -------------------------------------------------------

TEST_F(IpLimiterFilterTest, EleventhConnectionFromOneIpIsRefusedBeforeAnythingRuns) {
  build(R"({})");  // defaults: 10 per IP, 5/s burst 10
  uint64_t before = rejected(RejectReason::kPerIpConnections);
  for (int i = 0; i < 10; ++i) {
    TestConn& c = open("198.51.100.7:" + std::to_string(40000 + i));
    ASSERT_FALSE(c.closed) << i << ": " << c.detail;
    EXPECT_TRUE(c.limiter().admitted());
  }
  TestConn& eleventh = open("198.51.100.7:40010");
  EXPECT_TRUE(eleventh.closed);
  EXPECT_EQ(eleventh.reason, CloseReason::kRateLimited);
  EXPECT_NE(eleventh.detail.find("198.51.100.7"), std::string::npos) << eleventh.detail;
  EXPECT_NE(eleventh.detail.find("max_connections_per_ip"), std::string::npos);
  EXPECT_EQ(eleventh.sink.new_connections, 0);  // later filters never ran
  eleventh.feed("ignored");
  EXPECT_EQ(eleventh.sink.frames.size(), 0u);
  EXPECT_EQ(rejected(RejectReason::kPerIpConnections), before + 1);
  // The ten are served.
  conns_[0]->feed(frame(7, "hello"));
  EXPECT_EQ(conns_[0]->sink.frames, (std::vector<std::string>{"7:hello"}));
  // Another address is not affected.
  EXPECT_FALSE(open("198.51.100.8:1").closed);
  // One of the ten leaves: a new one from the address gets in (after a token).
  conns_[3]->close();
  g_now += 200 * kMs;
  EXPECT_FALSE(open("198.51.100.7:40011").closed);
}

TEST_F(IpLimiterFilterTest, ConnectionBurstAboveRateIsRefusedThenAllowedAfterRefill) {
  build(R"({"max_connections_per_ip": 100, "connection_rate_limit": 5, "connection_burst": 5})");
  uint64_t before = rejected(RejectReason::kPerIpRate);
  for (int i = 0; i < 5; ++i) ASSERT_FALSE(open("203.0.113.1:1").closed) << i;
  TestConn& sixth = open("203.0.113.1:1");
  EXPECT_TRUE(sixth.closed);
  EXPECT_EQ(sixth.reason, CloseReason::kRateLimited);
  EXPECT_NE(sixth.detail.find("connection_rate_limit"), std::string::npos) << sixth.detail;
  EXPECT_EQ(rejected(RejectReason::kPerIpRate), before + 1);
  g_now += 200 * kMs;  // one token
  EXPECT_FALSE(open("203.0.113.1:1").closed);
  EXPECT_TRUE(open("203.0.113.1:1").closed);
  g_now += 1000 * kMs;  // five tokens
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(open("203.0.113.1:1").closed) << i;
  EXPECT_TRUE(open("203.0.113.1:1").closed);
  EXPECT_EQ(rejected(RejectReason::kPerIpRate), before + 3);
}

TEST_F(IpLimiterFilterTest, GlobalCapAcrossAddresses) {
  int64_t base = GlobalConnectionCount::process().value();
  build(R"({"max_connections": )" + std::to_string(base + 3) + "}");
  uint64_t before = rejected(RejectReason::kGlobal);
  EXPECT_FALSE(open("192.0.2.1:1").closed);
  EXPECT_FALSE(open("192.0.2.2:1").closed);
  EXPECT_FALSE(open("192.0.2.3:1").closed);
  TestConn& fourth = open("192.0.2.4:1");
  EXPECT_TRUE(fourth.closed);
  EXPECT_NE(fourth.detail.find("max_connections (" + std::to_string(base + 3) + ")"),
            std::string::npos)
      << fourth.detail;
  EXPECT_EQ(rejected(RejectReason::kGlobal), before + 1);
  conns_[1]->close();
  EXPECT_FALSE(open("192.0.2.4:1").closed);
}

TEST_F(IpLimiterFilterTest, SecondListenerSharesTheGlobalCount) {
  int64_t base = GlobalConnectionCount::process().value();
  build(R"({"max_connections": )" + std::to_string(base + 2) + "}");
  // A second listener's config: its own table, the same process-wide count.
  std::string err;
  auto other = makeConfig(R"({"max_connections": 100000})", &err);
  ASSERT_NE(other, nullptr) << err;
  IpLimiter::Ticket t;
  ASSERT_EQ(other->limiter->admit(IpKey::fromV4(0x01020304), g_now, &t), RejectReason::kNone);
  EXPECT_FALSE(open("192.0.2.1:1").closed);
  EXPECT_TRUE(open("192.0.2.2:1").closed);  // base + 2 reached with the other listener's one
  other->limiter->release(t, g_now);
  EXPECT_FALSE(open("192.0.2.2:1").closed);
}

TEST_F(IpLimiterFilterTest, ReleasedOnCloseAndEntriesSweptAfterTtl) {
  build(R"({"max_connections_per_ip": 2, "entry_ttl": "1s"})");
  TestConn& a = open("192.0.2.1:1");
  TestConn& b = open("192.0.2.1:2");
  EXPECT_TRUE(open("192.0.2.1:3").closed);
  IpTable& table = cfg_->limiter->table();
  EXPECT_EQ(table.find(IpKey::fromV4(0xc0000201), g_now)->connections, 2u);
  int64_t gauge_before = cfg_->stats->table_entries->value();
  a.close();
  b.close();
  EXPECT_EQ(table.find(IpKey::fromV4(0xc0000201), g_now)->connections, 0u);
  g_now += 500 * kMs;
  EXPECT_EQ(factory_->sweep(), 0u);  // idle for 0.5 s of the 1 s ttl
  g_now += 600 * kMs;
  // A second worker's factory: the first to ask in an interval sweeps.
  IpLimiterFactory other_worker(cfg_, worker_);
  EXPECT_EQ(other_worker.sweep(), 1u);
  EXPECT_EQ(factory_->sweep(), 0u);  // swept less than an interval ago
  EXPECT_EQ(table.size(), 0u);
  EXPECT_EQ(cfg_->stats->table_entries->value(), gauge_before - 1);
}

TEST_F(IpLimiterFilterTest, TrustedCidrsAreExempt) {
  build(R"({"max_connections_per_ip": 1, "trusted_cidrs": ["10.0.0.0/8", "2001:db8:ffff::/48"]})");
  for (int i = 0; i < 5; ++i) EXPECT_FALSE(open("10.1.2.3:1").closed) << i;
  for (int i = 0; i < 3; ++i) EXPECT_FALSE(open("[2001:db8:ffff:1::9]:1").closed) << i;
  EXPECT_FALSE(open("11.1.2.3:1").closed);
  EXPECT_TRUE(open("11.1.2.3:1").closed);
  EXPECT_EQ(cfg_->limiter->table().size(), 1u);  // trusted ones are not tracked
}

TEST_F(IpLimiterFilterTest, Ipv6ClientsAreLimitedPerPrefix) {
  build(R"({"max_connections_per_ip": 2})");
  EXPECT_FALSE(open("[2001:db8:1:2::1]:1").closed);
  EXPECT_FALSE(open("[2001:db8:1:2:aaaa::1]:1").closed);
  TestConn& third = open("[2001:db8:1:2:ffff:ffff:ffff:fffe]:1");
  EXPECT_TRUE(third.closed);
  EXPECT_NE(third.detail.find("2001:db8:1:2::/64"), std::string::npos) << third.detail;
  EXPECT_FALSE(open("[2001:db8:1:3::1]:1").closed);  // the next /64
  // An IPv4 client on a dual-stack socket counts as that IPv4 address.
  EXPECT_FALSE(open("[::ffff:192.0.2.9]:1").closed);
  EXPECT_FALSE(open("192.0.2.9:1").closed);
  EXPECT_TRUE(open("[::ffff:192.0.2.9]:2").closed);
}

TEST_F(IpLimiterFilterTest, Ipv6PrefixLengthIsConfigurable) {
  build(R"({"max_connections_per_ip": 1, "ipv6_prefix_length": 48})");
  EXPECT_FALSE(open("[2001:db8:1:2::1]:1").closed);
  EXPECT_TRUE(open("[2001:db8:1:3::1]:1").closed);  // same /48
  EXPECT_FALSE(open("[2001:db8:2::1]:1").closed);
}

// ---- PROXY protocol ----------------------------------------------------------

constexpr const char* kProxyConfig =
    R"({"max_connections_per_ip": 1,
        "proxy_protocol": {"enabled": true, "trusted_sources": ["10.9.0.0/16"],
                           "header_timeout": "50ms"}})";

TEST_F(IpLimiterFilterTest, ProxyV1HeaderIsStrippedAndTheRealClientLimited) {
  build(kProxyConfig);
  TestConn& a = open("10.9.0.5:50000");  // the load balancer
  EXPECT_FALSE(a.closed);
  EXPECT_FALSE(a.limiter().admitted());  // waits for the header
  a.feed("PROXY TCP4 198.51.100.20 10.9.0.1 ");
  EXPECT_TRUE(a.sink.frames.empty());
  a.feed("61000 8080\r\n" + frame(1, "hi"));
  ASSERT_FALSE(a.closed) << a.detail;
  EXPECT_TRUE(a.limiter().admitted());
  EXPECT_EQ(a.limiter().clientAddress(), "198.51.100.20");
  EXPECT_EQ(a.sink.frames, (std::vector<std::string>{"1:hi"}));
  // Same client through the same balancer: over its limit of 1.
  TestConn& b = open("10.9.0.5:50001");
  b.feed("PROXY TCP4 198.51.100.20 10.9.0.1 61001 8080\r\n");
  EXPECT_TRUE(b.closed);
  EXPECT_EQ(b.reason, CloseReason::kRateLimited);
  // Another client through it is fine: the balancer's address is not limited.
  TestConn& c = open("10.9.0.5:50002");
  c.feed("PROXY TCP4 198.51.100.21 10.9.0.1 61002 8080\r\n");
  EXPECT_FALSE(c.closed) << c.detail;
}

TEST_F(IpLimiterFilterTest, ProxyV2HeaderByteByByte) {
  build(kProxyConfig);
  std::string h("\r\n\r\n\0\r\nQUIT\n", 12);
  h += std::string("\x21\x11\x00\x13", 4);                                   // PROXY TCP4, len 19
  h += std::string("\xcb\x00\x71\x05\x0a\x09\x00\x01\xea\x60\x1f\x90", 12);  // 203.0.113.5
  h += std::string(
      "\x04\x00\x04"
      "abcd",
      7);  // a TLV
  std::string bytes = h + frame(2, "payload");
  TestConn& a = open("10.9.1.1:50000");
  for (char ch : bytes) a.feed(std::string(1, ch));
  ASSERT_FALSE(a.closed) << a.detail;
  EXPECT_EQ(a.limiter().clientAddress(), "203.0.113.5");
  EXPECT_EQ(a.sink.frames, (std::vector<std::string>{"2:payload"}));
}

TEST_F(IpLimiterFilterTest, ProxyLocalCommandUsesTheConnectionAddress) {
  build(kProxyConfig);
  std::string local("\r\n\r\n\0\r\nQUIT\n\x20\x00\x00\x00", 16);
  TestConn& a = open("10.9.1.1:50000");
  a.feed(local + frame(3, "hc"));
  ASSERT_FALSE(a.closed) << a.detail;
  EXPECT_EQ(a.limiter().clientAddress(), "10.9.1.1");
  EXPECT_EQ(a.sink.frames, (std::vector<std::string>{"3:hc"}));
}

TEST_F(IpLimiterFilterTest, MalformedProxyHeaderClosesAndCounts) {
  build(kProxyConfig);
  uint64_t before = cfg_->stats->proxy_errors->value();
  TestConn& a = open("10.9.0.5:50000");
  a.feed("PROXY TCP4 999.1.1.1 10.9.0.1 1 2\r\n" + frame(1, "x"));
  EXPECT_TRUE(a.closed);
  EXPECT_EQ(a.reason, CloseReason::kMalformedFrame);
  EXPECT_NE(a.detail.find("bad PROXY protocol header: v1: bad TCP4 source address"),
            std::string::npos)
      << a.detail;
  EXPECT_TRUE(a.sink.frames.empty());
  TestConn& b = open("10.9.0.5:50001");
  b.feed(frame(1, "no header at all"));
  EXPECT_TRUE(b.closed);
  EXPECT_EQ(b.reason, CloseReason::kMalformedFrame);
  TestConn& c = open("10.9.0.5:50002");
  c.feed("PROXY TCP4 1.2.3.4");
  c.feedEof();
  EXPECT_TRUE(c.closed);
  EXPECT_NE(c.detail.find("ended inside it"), std::string::npos) << c.detail;
  EXPECT_EQ(cfg_->stats->proxy_errors->value(), before + 3);
  // A bare connect-and-close (TCP health check) is not an error.
  TestConn& d = open("10.9.0.5:50003");
  d.feedEof();
  EXPECT_TRUE(d.closed);
  EXPECT_EQ(d.reason, CloseReason::kRemoteClosed);
  EXPECT_EQ(cfg_->stats->proxy_errors->value(), before + 3);
}

TEST_F(IpLimiterFilterTest, ProxyHeaderFromAnUntrustedPeerIsPlainData) {
  build(kProxyConfig);
  TestConn& a = open("192.0.2.50:50000", /*frames=*/false);
  EXPECT_TRUE(a.limiter().admitted());  // limited at once, on its own address
  a.feed("PROXY TCP4 198.51.100.20 10.9.0.1 61000 8080\r\n");
  EXPECT_FALSE(a.closed);
  EXPECT_EQ(a.sink.raw, "PROXY TCP4 198.51.100.20 10.9.0.1 61000 8080\r\n");
  EXPECT_EQ(a.limiter().clientAddress(), "192.0.2.50");
}

TEST_F(IpLimiterFilterTest, ProxyHeaderTimeout) {
  build(kProxyConfig);
  uint64_t before = cfg_->stats->proxy_errors->value();
  TestConn& a = open("10.9.0.5:50000");
  a.feed("PROXY TCP4");
  runFor(std::chrono::milliseconds(200));
  EXPECT_TRUE(a.closed);
  EXPECT_EQ(a.reason, CloseReason::kReadTimeout);
  EXPECT_NE(a.detail.find("no PROXY protocol header within 50ms"), std::string::npos);
  EXPECT_EQ(cfg_->stats->proxy_errors->value(), before + 1);
}

// ---- message rate --------------------------------------------------------------

TEST_F(IpLimiterFilterTest, MessageRateCloseAction) {
  build(R"({"message_rate_limit": 10, "message_burst": 3})");
  uint64_t before = rejected(RejectReason::kMessageRate);
  TestConn& a = open("192.0.2.1:1");
  a.feed(frame(1, "a") + frame(2, "b") + frame(3, "c"));
  EXPECT_EQ(a.sink.frames.size(), 3u);
  g_now += 100 * kMs;
  a.feed(frame(4, "d"));  // the refilled token
  EXPECT_FALSE(a.closed);
  a.feed(frame(5, "e"));
  EXPECT_TRUE(a.closed);
  EXPECT_EQ(a.reason, CloseReason::kRateLimited);
  EXPECT_NE(a.detail.find("message_rate_limit"), std::string::npos) << a.detail;
  EXPECT_EQ(a.sink.frames.size(), 4u);
  EXPECT_EQ(rejected(RejectReason::kMessageRate), before + 1);
}

TEST_F(IpLimiterFilterTest, MessageRateDropActionAnswersWithErrorFrames) {
  build(R"({"message_rate_limit": 10, "message_burst": 2, "message_rate_action": "drop"})");
  uint64_t before = rejected(RejectReason::kMessageRate);
  TestConn& a = open("192.0.2.1:1");
  a.feed(frame(1, "one") + frame(2, "two") + frame(3, "three") + frame(4, "four"));
  EXPECT_FALSE(a.closed);
  EXPECT_EQ(a.sink.frames, (std::vector<std::string>{"1:one", "2:two"}));
  std::string out = a.takeOutput();
  std::string expect;
  for (uint16_t id : {3, 4}) {
    std::string payload = errorFramePayload(ErrorCode::kRateLimited, id);
    uint8_t h[8];
    wire::ClientHeader ch;
    ch.length = static_cast<uint16_t>(payload.size());
    ch.msg_id = kErrorMsgId;
    ch.server_id = 0;
    ch.encode(h);
    expect += std::string(reinterpret_cast<char*>(h), 8) + payload;
  }
  EXPECT_EQ(out, expect);
  EXPECT_EQ(rejected(RejectReason::kMessageRate), before + 2);
  // A dropped frame arriving in pieces is cut out as it arrives.
  std::string big = frame(5, std::string(3000, 'x'));
  for (size_t i = 0; i < big.size(); i += 700) a.feed(big.substr(i, 700));
  EXPECT_EQ(a.sink.frames.size(), 2u);
  EXPECT_EQ(evbuffer_get_length(a.chain->connection().input()), 0u);
  g_now += 100 * kMs;
  a.feed(frame(6, "six"));
  EXPECT_EQ(a.sink.frames.back(), "6:six");
  EXPECT_FALSE(a.closed);
}

TEST_F(IpLimiterFilterTest, MessageRateCountsFramesAfterTheProxyHeader) {
  build(R"({"message_rate_limit": 1, "message_burst": 2,
            "proxy_protocol": {"enabled": true, "trusted_sources": ["10.9.0.0/16"]}})");
  TestConn& a = open("10.9.0.5:50000");
  a.feed("PROXY TCP4 198.51.100.20 10.9.0.1 61000 8080\r\n" + frame(1, "a") + frame(2, "b"));
  ASSERT_FALSE(a.closed) << a.detail;
  EXPECT_EQ(a.sink.frames.size(), 2u);
  a.feed(frame(3, "c"));
  EXPECT_TRUE(a.closed);
}

TEST(IpLimiterErrorFrameTest, MatchesTheCoreErrorFrame) {
  uint8_t buf[kMaxErrorFrameBytes];
  const size_t n = encodeErrorFrame(ErrorCode::kRateLimited, 0x1234, buf);
  ASSERT_EQ(n, 8u + 4 + 12);  // header, code, msg_id, "rate_limited"
  wire::ClientHeader h = wire::ClientHeader::decode(buf);
  EXPECT_EQ(h.msg_id, kErrorMsgId);
  EXPECT_EQ(h.server_id, 0u);
  std::string payload(reinterpret_cast<char*>(buf) + 8, n - 8);
  EXPECT_EQ(h.length, payload.size());
  EXPECT_EQ(payload, errorFramePayload(ErrorCode::kRateLimited, 0x1234));
}

// ---- config --------------------------------------------------------------------

TEST(IpLimiterConfigTest, Defaults) {
  std::string err;
  auto cfg = makeConfig("{}", &err);
  ASSERT_NE(cfg, nullptr) << err;
  EXPECT_EQ(cfg->max_connections_per_ip, 10u);
  EXPECT_EQ(cfg->connection_rate_limit, 5);
  EXPECT_EQ(cfg->connection_burst, 10u);
  EXPECT_EQ(cfg->max_connections, 1000);
  EXPECT_EQ(cfg->message_rate_limit, 0);
  EXPECT_EQ(cfg->ipv6_prefix_length, 64);
  EXPECT_EQ(cfg->ipv4_prefix_length, 32);
  EXPECT_EQ(cfg->ipv6_network_prefix_length, 48);
  EXPECT_EQ(cfg->max_connections_per_network, 100u);
  EXPECT_EQ(cfg->network_connection_rate_limit, 20);
  EXPECT_EQ(cfg->network_connection_burst, 50u);
  EXPECT_TRUE(cfg->limiter->networkLimited());
  EXPECT_EQ(cfg->at_max_connections, IpLimiterConfig::AtMaxConnections::kShed);
  EXPECT_EQ(cfg->max_tracked_ips, 100000u);
  EXPECT_EQ(cfg->entry_ttl, std::chrono::minutes(5));
  EXPECT_EQ(cfg->shards, 16u);
  EXPECT_FALSE(cfg->proxy_protocol.enabled);
  EXPECT_EQ(cfg->limiter->table().capacity(), 100000u);
  EXPECT_EQ(cfg->limiter->table().shardCount(), 16u);
  EXPECT_EQ(cfg->sweepInterval(), std::chrono::seconds(10));
}

TEST(IpLimiterConfigTest, MessageBurstDefaultsToOneSecondOfRate) {
  std::string err;
  auto cfg = makeConfig(R"({"message_rate_limit": 2.5})", &err);
  ASSERT_NE(cfg, nullptr) << err;
  EXPECT_EQ(cfg->message_burst, 3u);
  EXPECT_EQ(cfg->message_rate.burst(), 3);
}

// The default network prefix (48) turns off quietly when the IPv6 prefix
// is not longer; 0 turns it off explicitly.
TEST(IpLimiterConfigTest, NetworkLimitsOffWhenThePrefixIsNotLonger) {
  std::string err;
  auto a = makeConfig(R"({"ipv6_prefix_length": 48})", &err);
  ASSERT_NE(a, nullptr) << err;
  EXPECT_FALSE(a->limiter->networkLimited());
  auto b = makeConfig(R"({"ipv6_network_prefix_length": 0})", &err);
  ASSERT_NE(b, nullptr) << err;
  EXPECT_FALSE(b->limiter->networkLimited());
}

TEST(IpLimiterConfigTest, ErrorsNameTheJsonPointer) {
  struct Case {
    std::string json;
    std::string expect;  // a fragment of "<pointer>: <message>"
  } cases[] = {
      {R"({"trusted_cidrs": ["10.0.0.0/8", "10.0.0.0/40"]})", "/trusted_cidrs/1: "},
      {R"({"trusted_cidrs": ["10.0.0.0/8", "10.0.0.0/40"]})", "out of range for IPv4"},
      {R"({"trusted_cidrs": ["bogus"]})", "/trusted_cidrs/0: \"bogus\""},
      {R"({"proxy_protocol": {"enabled": true, "trusted_sources": ["fe80::1/10"]}})",
       "/proxy_protocol/trusted_sources/0: \"fe80::1/10\" has host bits set"},
      {R"({"proxy_protocol": {"enabled": true}})",
       "/proxy_protocol: enabled needs trusted_sources"},
      {R"({"max_tracked_ips": 8, "shards": 16})", "/max_tracked_ips: must be at least `shards`"},
      {R"({"entry_ttl": "0s"})", "/entry_ttl: must be a duration from 1ms to 720h"},
      {R"({"proxy_protocol": {"header_timeout": "0s"}})",
       "/proxy_protocol/header_timeout: must be a duration from 1ms to 720h"},
      {R"({"message_burst": 5})", "/message_burst: message_burst has no effect"},
      {R"({"max_conections_per_ip": 5})", "max_conections_per_ip"},  // unknown key (schema)
      {R"({"message_rate_action": "kick"})", "/message_rate_action"},
      {R"({"entry_ttl": "5 minutes"})", "/entry_ttl"},
      {R"({"max_connections_per_ip": 0})", "/max_connections_per_ip"},
      {R"({"ipv6_network_prefix_length": 64})",
       "/ipv6_network_prefix_length: must be shorter than ipv6_prefix_length (64)"},
      {R"({"ipv4_prefix_length": 33})", "/ipv4_prefix_length"},
      {R"({"at_max_connections": "kick"})", "/at_max_connections"},
  };
  for (const auto& c : cases) {
    std::string err;
    auto cfg = makeConfig(c.json, &err);
    EXPECT_EQ(cfg, nullptr) << c.json;
    EXPECT_NE(err.find(c.expect), std::string::npos) << c.json << " -> " << err;
  }
}

// A duration the schema's pattern allows but that is too long to parse
// ("721h" is over the 30-day limit) is a clean error naming the field (it
// used to dereference an empty optional).
TEST(IpLimiterConfigTest, DurationOverTheLimitIsAnError) {
  std::string err;
  EXPECT_EQ(makeConfig(R"({"entry_ttl": "721h"})", &err), nullptr);
  EXPECT_EQ(err,
            "/entry_ttl: must be a duration from 1ms to 720h (digits then ms, s, m or h: "
            "\"250ms\", \"30s\", \"5m\"), got \"721h\"");
  EXPECT_EQ(makeConfig(R"({"proxy_protocol": {"enabled": true, "trusted_sources": ["10.0.0.0/8"],
                                             "header_timeout": "99999999999h"}})",
                       &err),
            nullptr);
  EXPECT_EQ(err.rfind("/proxy_protocol/header_timeout: must be a duration from 1ms to 720h", 0),
            0u)
      << err;
  EXPECT_NE(makeConfig(R"({"entry_ttl": "720h"})", &err), nullptr) << err;
}

TEST(IpLimiterConfigTest, DescribeShowsTheSettingsInForce) {
  std::string err;
  auto cfg = makeConfig(R"({"max_connections_per_ip": 3, "message_rate_limit": 2.5,
                            "message_rate_action": "drop", "trusted_cidrs": ["10.0.0.0/8"],
                            "entry_ttl": "90s", "shards": 4,
                            "proxy_protocol": {"enabled": true,
                                               "trusted_sources": ["192.168.0.0/16"]}})",
                        &err);
  ASSERT_NE(cfg, nullptr) << err;
  rapidjson::Document d(rapidjson::kObjectType);
  cfg->describe(d, d.GetAllocator());
  EXPECT_EQ(d["max_connections_per_ip"].GetUint(), 3u);
  EXPECT_EQ(d["connection_rate_limit"].GetDouble(), 5.0);
  EXPECT_EQ(d["connection_burst"].GetUint(), 10u);
  EXPECT_EQ(d["max_connections"].GetInt64(), 1000);
  EXPECT_EQ(d["message_rate_limit"].GetDouble(), 2.5);
  EXPECT_EQ(d["message_burst"].GetUint(), 3u) << "the derived burst is the one in force";
  EXPECT_STREQ(d["message_rate_action"].GetString(), "drop");
  EXPECT_EQ(d["ipv6_prefix_length"].GetInt(), 64);
  EXPECT_STREQ(d["at_max_connections"].GetString(), "shed");
  ASSERT_EQ(d["trusted_cidrs"].Size(), 1u);
  EXPECT_STREQ(d["trusted_cidrs"][0].GetString(), "10.0.0.0/8");
  EXPECT_EQ(d["max_tracked_ips"].GetUint64(), 100000u);
  EXPECT_STREQ(d["entry_ttl"].GetString(), "90s");
  EXPECT_EQ(d["shards"].GetUint64(), 4u);
  const rapidjson::Value& pp = d["proxy_protocol"];
  EXPECT_TRUE(pp["enabled"].GetBool());
  ASSERT_EQ(pp["trusted_sources"].Size(), 1u);
  EXPECT_STREQ(pp["trusted_sources"][0].GetString(), "192.168.0.0/16");
  EXPECT_STREQ(pp["header_timeout"].GetString(), "5s");
  EXPECT_FALSE(d.HasMember("listener")) << "describe shows config, not runtime state";
}

TEST(IpLimiterConfigTest, ReloadWithSameSettingsKeepsTheTable) {
  std::string err;
  auto first =
      makeConfig(R"({"max_connections_per_ip": 3, "trusted_cidrs": ["10.0.0.0/8"]})", &err);
  ASSERT_NE(first, nullptr) << err;
  IpLimiter::Ticket t;
  ASSERT_EQ(first->limiter->admit(IpKey::fromV4(0xc0000201), 1, &t), RejectReason::kNone);
  // The same settings again (a SIGHUP reload of an unchanged file): same table.
  auto again =
      makeConfig(R"({"max_connections_per_ip": 3, "trusted_cidrs": ["10.0.0.0/8"]})", &err);
  ASSERT_NE(again, nullptr) << err;
  EXPECT_EQ(again->limiter, first->limiter);
  EXPECT_EQ(again->limiter->table().find(IpKey::fromV4(0xc0000201), 1)->connections, 1u);
  // Changed settings: a new table for new connections; the old one lives on
  // for the connections that hold it.
  auto changed =
      makeConfig(R"({"max_connections_per_ip": 4, "trusted_cidrs": ["10.0.0.0/8"]})", &err);
  ASSERT_NE(changed, nullptr) << err;
  EXPECT_NE(changed->limiter, first->limiter);
  EXPECT_FALSE(changed->limiter->table().find(IpKey::fromV4(0xc0000201), 1));
  auto trusted_changed =
      makeConfig(R"({"max_connections_per_ip": 4, "trusted_cidrs": ["10.0.0.0/16"]})", &err);
  ASSERT_NE(trusted_changed, nullptr) << err;
  EXPECT_NE(trusted_changed->limiter, changed->limiter);
  first->limiter->release(t, 1);
}

TEST(IpLimiterConfigTest, RegisteredUnderItsJsonName) {
  const FilterConfigFactory* f = FilterRegistry::get().find("ip_limiter");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->traits().consumes, Layer::kBytes);
  EXPECT_EQ(f->traits().produces, Layer::kBytes);
  EXPECT_FALSE(f->traits().terminal);
  EXPECT_EQ(f->schema(), kIpLimiterSchema);
}

// One per client connection: an upper bound, so a regression fails
// (docs/filters/ip_limiter.md, "Memory per connection").
TEST(IpLimiterFilterSizeTest, PerConnectionObject) {
  std::printf("sizeof IpLimiterFilter=%zu\n", sizeof(IpLimiterFilter));
  EXPECT_LE(sizeof(IpLimiterFilter), 104u);
}

}  // namespace
}  // namespace ip_limiter
}  // namespace gw
