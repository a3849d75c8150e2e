// test/filters/detect/detect_test.cc — the `detect` filter: the pure
// classifier (every prefix of every kind of opening), and the filter in a
// chain (detect → websocket → framing → recorder): raw frames, WebSocket,
// plain HTTP (426), TLS ClientHellos on TLS and plain listeners, the
// deadline, max_bytes, and the metrics.
#include <gtest/gtest.h>

#include <memory>
#include <stdexcept>
#include <string>

#include "core/sdk/stats.h"
#include "core/sdk/testing/embedded_chain.h"
#include "core/sdk/transport.h"
#include "filters/detect/classify.h"
#include "filters/detect/detect.h"
#include "test/filters/websocket/ws_wire.h"
#include "test/harness/net.h"

namespace gw {
namespace {

using detect::classify;
using detect::Verdict;
using test::EmbeddedChain;
using test::encodeClientFrame;
using test::FrameRecorder;

// A TLS 1.2 record carrying the start of a ClientHello of `hello_len` bytes.
std::string clientHello(size_t hello_len = 508) {
  std::string r;
  r += "\x16\x03\x01";
  const size_t record = hello_len + 4;
  r += static_cast<char>(record >> 8);
  r += static_cast<char>(record & 0xff);
  r += '\x01';
  r += static_cast<char>(0);
  r += static_cast<char>(hello_len >> 8);
  r += static_cast<char>(hello_len & 0xff);
  r += "\x03\x03";
  r += std::string(hello_len - 2, '\x42');
  return r;
}

const std::string kPlainHttp = "GET /index.html HTTP/1.1\r\nHost: game.example\r\n\r\n";

// ---- classify ---------------------------------------------------------------

TEST(Classify, EveryPrefixOfAnOpeningWaitsThenDecides) {
  struct Case {
    const char* name;
    std::string bytes;
    bool tls;
    Verdict verdict;
  };
  const Case cases[] = {
      {"upgrade", ws_test::upgradeRequest(), false, Verdict::kWebSocket},
      {"plain http", kPlainHttp, false, Verdict::kHttp},
      {"client hello", clientHello(), true, Verdict::kTls},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    // The first byte that decides: after it, the full verdict.
    size_t decided_at = c.bytes.size();
    for (size_t n = 0; n <= c.bytes.size(); ++n) {
      auto v = classify(std::string_view(c.bytes).substr(0, n), c.tls, false).verdict;
      if (v != Verdict::kNeedMore) {
        EXPECT_EQ(v, c.verdict) << "at " << n << " bytes";
        decided_at = std::min(decided_at, n);
      } else {
        EXPECT_LT(n, c.bytes.size());
      }
    }
    EXPECT_LE(decided_at, c.bytes.size());
  }
  // A ClientHello is decided on its first 9 bytes.
  EXPECT_EQ(classify(clientHello().substr(0, 8), true, false).verdict, Verdict::kNeedMore);
  EXPECT_EQ(classify(clientHello().substr(0, 9), true, false).verdict, Verdict::kTls);
}

TEST(Classify, RawFramesAreDecidedOnTheirFirstBytes) {
  // Payload length 8: first byte 0x08, no method starts with it.
  EXPECT_EQ(classify(encodeClientFrame(1, 0, "12345678").substr(0, 1), true, false).verdict,
            Verdict::kTcp);
  // Length 0x4547 ("GE"), msg_id 0x0054 ("T\0"): looks like "GET" until the NUL.
  std::string ge("GET\0", 4);
  EXPECT_EQ(classify(ge.substr(0, 3), false, false).verdict, Verdict::kNeedMore);
  EXPECT_EQ(classify(ge, false, false).verdict, Verdict::kTcp);
  // "GET /" followed by binary.
  EXPECT_EQ(classify(std::string("GET /\x01", 6), false, false).verdict, Verdict::kTcp);
  // Lower-case methods are not HTTP.
  EXPECT_EQ(classify("get / HTTP/1.1\r\n", false, false).verdict, Verdict::kTcp);
  EXPECT_EQ(classify("", false, false).verdict, Verdict::kNeedMore);
  EXPECT_EQ(classify("", false, true).verdict, Verdict::kTcp);
}

TEST(Classify, FinalDecidesPrefixes) {
  EXPECT_EQ(classify("GE", false, true).verdict, Verdict::kTcp);
  EXPECT_EQ(classify("\x16\x03", true, true).verdict, Verdict::kTcp);
  // A complete request line whose head did not end: decided on the fields seen.
  EXPECT_EQ(classify("GET / HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nX: ", false, true).verdict,
            Verdict::kWebSocket);
  EXPECT_EQ(classify("GET / HTTP/1.1\r\nHost: h\r\n", false, true).verdict, Verdict::kHttp);
}

TEST(Classify, TheTlsLookalike) {
  // 16 03 is a raw client frame header of payload length 790.
  std::string raw790 = encodeClientFrame(0x0201, wire::ClientHeader::makeServerId(0, 1, 0),
                                         std::string(790, 'r'));
  ASSERT_EQ(static_cast<uint8_t>(raw790[0]), 0x16);
  ASSERT_EQ(static_cast<uint8_t>(raw790[1]), 0x03);
  // On a listener without TLS it is a raw frame, flagged.
  detect::Classification c = classify(raw790, false, false);
  EXPECT_EQ(c.verdict, Verdict::kTcp);
  EXPECT_TRUE(c.tls_lookalike);
  // On a TLS listener the ClientHello checks tell most such frames apart:
  // here the record length (msg_id's high byte 0x02, server_id's low byte)
  // and the handshake type (server_type 1) pass, the ClientHello length does not.
  c = classify(raw790, true, false);
  EXPECT_EQ(c.verdict, Verdict::kTcp);
  EXPECT_TRUE(c.tls_lookalike);
  // A ClientHello on a plain listener: raw bytes (flagged).
  c = classify(clientHello(), false, false);
  EXPECT_EQ(c.verdict, Verdict::kTcp);
  EXPECT_TRUE(c.tls_lookalike);
  // TLS record versions past 0x04, records over 18432 bytes, other
  // handshake types: not a ClientHello.
  EXPECT_EQ(classify(std::string("\x16\x03\x05\x01\x00\x01\x00\x00\xfc", 9), true, false).verdict,
            Verdict::kTcp);
  EXPECT_EQ(classify(std::string("\x16\x03\x01\x48\x01\x01\x00\x48\x00", 9), true, false).verdict,
            Verdict::kTcp);
  EXPECT_EQ(classify(std::string("\x16\x03\x01\x01\x00\x02\x00\x00\xfc", 9), true, false).verdict,
            Verdict::kTcp);
}

// ---- the filter in a chain --------------------------------------------------

std::string listenerName() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string(info->test_suite_name()) + "." + info->name();
}

uint64_t counter(const std::string& name, const stats::Labels& labels) {
  return stats::StatsRegistry::get().counter(name, "", labels).value();
}

uint64_t byTransport(const char* transport) {
  return counter("game_gateway_connections_by_transport_total",
                 {{"listener", listenerName()}, {"transport", transport}});
}

uint64_t decisions(const char* by) {
  return counter("game_gateway_detect_decisions_total",
                 {{"listener", listenerName()}, {"by", by}});
}

// detect (`detect_json`) → websocket → framing → recorder.
struct DetectChain {
  explicit DetectChain(const std::string& detect_json = "{}") : ec(options()) {
    std::string error;
    auto d = ec.registered("detect", detect_json, {}, &error);
    if (!d) throw std::runtime_error("detect config: " + error);
    auto ws = ec.registered("websocket", "{}", {}, &error);
    auto framing = ec.registered("framing", "{}", {}, &error);
    if (!ws || !framing) throw std::runtime_error(error);
    ec.start({*d, *ws, *framing, recorder.element()});
  }
  static EmbeddedChain::Options options() {
    EmbeddedChain::Options o;
    o.listener = listenerName();
    return o;
  }
  const TransportInfo& transport() { return *ec.chain().slots().get<TransportInfo>(); }

  FrameRecorder recorder;
  EmbeddedChain ec;
};

TEST(DetectChain, RawFramesPassAtOnce) {
  {
    DetectChain c;
    EXPECT_FALSE(c.transport().decided);
    c.ec.feed(encodeClientFrame(1, 0, "raw"));
    ASSERT_EQ(c.recorder.frames.size(), 1u);
    EXPECT_TRUE(c.transport().decided);
    EXPECT_EQ(c.transport().name(), "tcp");
    EXPECT_EQ(c.ec.outputLength(), 0u);
    EXPECT_EQ(decisions("bytes"), 1u);
    EXPECT_EQ(byTransport("tcp"), 0u);
    c.ec.connection().close(CloseReason::kRemoteClosed, "test", Connection::CloseMode::kAbort);
  }
  EXPECT_EQ(byTransport("tcp"), 1u);  // counted at close
}

TEST(DetectChain, WebSocketUpgrade) {
  {
    DetectChain c;
    // The request in two reads: detect waits for the head.
    std::string req = ws_test::upgradeRequest();
    c.ec.feed(req.substr(0, 20));
    EXPECT_FALSE(c.transport().decided);
    EXPECT_EQ(c.ec.outputLength(), 0u);
    c.ec.feed(req.substr(20) + ws_test::binary(encodeClientFrame(2, 0, "over ws")));
    EXPECT_EQ(c.transport().name(), "ws");
    EXPECT_EQ(c.ec.takeOutput().rfind("HTTP/1.1 101 Switching Protocols\r\n", 0), 0u);
    ASSERT_EQ(c.recorder.frames.size(), 1u);
    EXPECT_EQ(c.recorder.frames[0].payload, "over ws");
    c.ec.connection().close(CloseReason::kRemoteClosed, "test", Connection::CloseMode::kAbort);
  }
  EXPECT_EQ(byTransport("ws"), 1u);
}

TEST(DetectChain, PlainHttpGets426AndIsClosed) {
  DetectChain c;
  c.ec.feed(kPlainHttp);
  EXPECT_EQ(c.ec.takeOutput(), detect::kUpgradeRequired);
  EXPECT_TRUE(c.ec.closed());
  EXPECT_EQ(c.ec.closeReason(), CloseReason::kFilterError);
  EXPECT_NE(c.ec.closeDetail().find("426"), std::string::npos);
  EXPECT_EQ(counter("game_gateway_detect_http_refused_total", {{"listener", listenerName()}}), 1u);
  EXPECT_EQ(byTransport("http"), 1u);
  EXPECT_TRUE(c.recorder.frames.empty());
}

TEST(DetectChain, ClientHelloOnATlsListener) {
  DetectChain c(R"({"tls": true})");
  c.ec.feed(clientHello().substr(0, 9));
  EXPECT_TRUE(c.transport().decided);
  EXPECT_TRUE(c.transport().tls);
  EXPECT_EQ(counter("game_gateway_detect_tls_lookalikes_total",
                    {{"listener", listenerName()}, {"taken_as", "tls"}}),
            1u);
}

TEST(DetectChain, ClientHelloOnAPlainListenerIsRawBytes) {
  DetectChain c;
  c.ec.feed(clientHello());
  EXPECT_TRUE(c.transport().decided);
  EXPECT_FALSE(c.transport().tls);
  EXPECT_EQ(counter("game_gateway_detect_tls_lookalikes_total",
                    {{"listener", listenerName()}, {"taken_as", "tcp"}}),
            1u);
}

TEST(DetectChain, TooFewBytesAtTheDeadlineAreRawTcp) {
  DetectChain c(R"({"timeout": "50ms"})");
  c.ec.feed("GE");
  EXPECT_FALSE(c.transport().decided);
  ASSERT_TRUE(c.ec.runUntil([&] { return c.transport().decided; }, std::chrono::seconds(2)));
  EXPECT_EQ(c.transport().name(), "tcp");
  EXPECT_EQ(decisions("deadline"), 1u);
  // The waiting bytes went on to framing: with the rest, a frame ("GE" is
  // its length, 17735).
  std::string rest(6, '\0');
  rest += std::string(0x4547, 'p');
  c.ec.feed(rest);
  ASSERT_EQ(c.recorder.frames.size(), 1u);
  EXPECT_EQ(c.recorder.frames[0].payload.size(), 0x4547u);
}

TEST(DetectChain, NoBytesAtTheDeadline) {
  DetectChain c(R"({"timeout": "30ms"})");
  ASSERT_TRUE(c.ec.runUntil([&] { return c.transport().decided; }, std::chrono::seconds(2)));
  EXPECT_EQ(c.transport().name(), "tcp");
  c.ec.feed(encodeClientFrame(3, 0, "late"));
  ASSERT_EQ(c.recorder.frames.size(), 1u);
}

TEST(DetectChain, MaxBytesDecidesALongHead) {
  DetectChain c(R"({"max_bytes": 64})");
  c.ec.feed("GET / HTTP/1.1\r\nHost: h\r\nX-Long: " + std::string(100, 'x'));
  EXPECT_TRUE(c.ec.closed());  // no Upgrade among the fields seen: 426
  EXPECT_EQ(decisions("max_bytes"), 1u);
}

TEST(DetectConfig, Describe) {
  Dispatcher d("config");
  WorkerServices services;
  std::string error;
  EXPECT_EQ(test::buildFilter("detect", R"({"timeout": "2m"})", d, services, {}, &error), nullptr);
  EXPECT_NE(error.find("/timeout"), std::string::npos) << error;
  EXPECT_EQ(test::buildFilter("detect", R"({"max_bytes": 8})", d, services, {}, &error), nullptr);
  EXPECT_EQ(test::buildFilter("detect", R"({"tsl": true})", d, services, {}, &error), nullptr);
  auto built = test::buildFilter("detect", R"({"timeout": "500ms", "max_bytes": 1024, "tls": true})",
                                 d, services, {}, &error);
  ASSERT_NE(built, nullptr) << error;
  const auto& cfg = static_cast<const detect::DetectConfig&>(*built->config);
  EXPECT_EQ(cfg.timeout.count(), 500);
  EXPECT_EQ(cfg.max_bytes, 1024u);
  EXPECT_TRUE(cfg.tls);
}

}  // namespace
}  // namespace gw
