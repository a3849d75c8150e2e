// test/filters/websocket/websocket_test.cc — the `websocket` filter in a chain
// (EmbeddedChain: websocket → framing → FrameRecorder, or websocket → a bytes
// terminal): the handshake, frames in (one byte stream), frames out (one
// binary message per client frame), ping/pong, the close handshake, and
// every bad handshake and frame with its HTTP status or close code and
// metric.
#include <event2/buffer.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "core/sdk/stats.h"
#include "core/sdk/testing/embedded_chain.h"
#include "core/sdk/transport.h"
#include "filters/websocket/websocket.h"
#include "test/filters/websocket/ws_wire.h"
#include "test/harness/net.h"

namespace gw {
namespace {

using std::chrono::milliseconds;
using test::EmbeddedChain;
using test::encodeClientFrame;
using test::FrameRecorder;
using ws_test::binary;
using ws_test::clientFrame;
using ws_test::closePayload;
using ws_test::ServerFrame;
using ws_test::upgradeRequest;

std::string listenerName() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string(info->test_suite_name()) + "." + info->name();
}

uint64_t counter(const std::string& name, const stats::Labels& labels) {
  return stats::StatsRegistry::get().counter(name, "", labels).value();
}

EmbeddedChain::Options options() {
  EmbeddedChain::Options o;
  o.listener = listenerName();
  return o;
}

// websocket (config `ws_json`) → framing (`framing_json`) → FrameRecorder.
struct WsChain {
  explicit WsChain(const std::string& ws_json = "{}", const std::string& framing_json = "{}")
      : ec(options()) {
    std::string error;
    auto ws = ec.registered("websocket", ws_json, {}, &error);
    if (!ws) throw std::runtime_error("websocket config: " + error);
    auto framing = ec.registered("framing", framing_json, {}, &error);
    if (!framing) throw std::runtime_error("framing config: " + error);
    ec.start({*ws, *framing, recorder.element()});
  }
  websocket::WebsocketFilter& ws() { return ec.filter<websocket::WebsocketFilter>(0); }
  // Upgrades; returns the 101 response.
  std::string upgrade(const std::string& request = upgradeRequest()) {
    ec.feed(request);
    return ec.takeOutput();
  }
  // The server frames written since the last take.
  std::vector<ServerFrame> frames() {
    std::vector<ServerFrame> out;
    EXPECT_TRUE(ws_test::parseServerFrames(ec.takeOutput(), &out));
    return out;
  }

  FrameRecorder recorder;  // outlives the chain
  EmbeddedChain ec;
};

uint64_t closeCodes(const char* direction, const char* code) {
  return counter("game_gateway_websocket_close_codes_total",
                 {{"listener", listenerName()}, {"direction", direction}, {"code", code}});
}

// ---- handshake and frames in ------------------------------------------------

TEST(WebsocketChain, HandshakeThenClientFramesAsOneStream) {
  WsChain c;
  std::string response = c.upgrade();
  EXPECT_EQ(response,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n\r\n");
  EXPECT_EQ(c.ws().mode(), websocket::WebsocketFilter::Mode::kOpen);
  // One message holding two client frames.
  c.ec.feed(binary(encodeClientFrame(1, 7, "first") + encodeClientFrame(2, 7, "second")));
  ASSERT_EQ(c.recorder.frames.size(), 2u);
  EXPECT_EQ(c.recorder.frames[0].header.msg_id, 1);
  EXPECT_EQ(c.recorder.frames[0].payload, "first");
  EXPECT_EQ(c.recorder.frames[1].payload, "second");
  // One client frame spanning two messages (and two reads).
  std::string f = encodeClientFrame(3, 7, "spanning payload");
  c.ec.feed(binary(f.substr(0, 5)));
  EXPECT_EQ(c.recorder.frames.size(), 2u);
  // The partial frame waits, unmasked in place, at the front of the input
  // (the message header was dropped).
  EXPECT_EQ(c.ws().buffered(), 5u);
  EXPECT_EQ(c.ec.inputLength(), 5u);
  c.ec.feed(binary(f.substr(5)));
  ASSERT_EQ(c.recorder.frames.size(), 3u);
  EXPECT_EQ(c.recorder.frames[2].payload, "spanning payload");
  EXPECT_EQ(c.ws().buffered(), 0u);
  const std::string l = listenerName();
  EXPECT_EQ(counter("game_gateway_websocket_handshakes_total", {{"listener", l}, {"transport", "ws"}}), 1u);
  EXPECT_EQ(counter("game_gateway_websocket_messages_total", {{"listener", l}, {"direction", "in"}}), 3u);
  EXPECT_EQ(counter("game_gateway_websocket_frames_total",
                    {{"listener", l}, {"direction", "in"}, {"opcode", "data"}}),
            3u);
  EXPECT_FALSE(c.ec.closed());
}

TEST(WebsocketChain, PipelinedFramesByteByByte) {
  WsChain c;
  std::string all = upgradeRequest() +
                    clientFrame(websocket::kBinary, encodeClientFrame(9, 1, "ab"), false) +
                    clientFrame(websocket::kPing, "p") +
                    clientFrame(websocket::kContinuation, encodeClientFrame(10, 1, "cd"));
  for (char ch : all) c.ec.feed(std::string_view(&ch, 1));
  ASSERT_EQ(c.recorder.frames.size(), 2u);
  EXPECT_EQ(c.recorder.frames[0].payload, "ab");
  EXPECT_EQ(c.recorder.frames[1].payload, "cd");
  std::string out = c.ec.takeOutput();
  std::string_view rest;
  ws_test::httpHead(out, &rest);
  std::vector<ServerFrame> frames;
  ASSERT_TRUE(ws_test::parseServerFrames(rest, &frames));
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, websocket::kPong);
  EXPECT_EQ(frames[0].payload, "p");
}

TEST(WebsocketChain, FramesChainsSpanningInput) {
  WsChain c;
  c.upgrade();
  std::string m = binary(encodeClientFrame(4, 0, std::string(300, 'z')));
  c.ec.feedChains({m.substr(0, 3), m.substr(3, 100), m.substr(103)});
  ASSERT_EQ(c.recorder.frames.size(), 1u);
  EXPECT_EQ(c.recorder.frames[0].payload, std::string(300, 'z'));
}

// In-place decoding (new bytes in one chain) and decoding into the filter's
// buffer (bytes spanning chains) alternate as reads come: every split of a
// stream of messages (frames spanning messages, several frames per message,
// fragments, pings between) must give the same frames and pongs.
TEST(WebsocketChain, InPlaceAndCopiedDecodingGiveTheSameStream) {
  std::string stream;
  std::vector<std::string> payloads;
  for (int i = 0; i < 40; ++i) {
    payloads.push_back(std::string(static_cast<size_t>(i * 7 % 90), static_cast<char>('a' + i % 26)));
  }
  std::string frames;
  for (size_t i = 0; i < payloads.size(); ++i) {
    frames += encodeClientFrame(static_cast<uint16_t>(i + 1), 7, payloads[i]);
  }
  // Cut the client-frame stream into messages of varying sizes, some
  // fragmented, with a ping after every third.
  size_t pos = 0;
  int k = 0;
  int pings = 0;
  while (pos < frames.size()) {
    const size_t n = std::min(frames.size() - pos, static_cast<size_t>(1 + (k * 37) % 150));
    const std::string part = frames.substr(pos, n);
    if (k % 4 == 1 && n > 2) {
      stream += clientFrame(websocket::kBinary, part.substr(0, n / 2), false);
      stream += clientFrame(websocket::kContinuation, part.substr(n / 2));
    } else {
      stream += binary(part);
    }
    if (k % 3 == 2) {
      stream += clientFrame(websocket::kPing, "p" + std::to_string(k));
      ++pings;
    }
    pos += n;
    ++k;
  }
  for (size_t seed = 1; seed <= 12; ++seed) {
    WsChain c;
    c.upgrade();
    size_t at = 0;
    size_t step = 0;
    while (at < stream.size()) {
      const size_t n = std::min(stream.size() - at, 1 + (seed * 131 + step * 29) % (20 * seed));
      const std::string piece = stream.substr(at, n);
      if (step % 3 == seed % 3 && n >= 2) {
        c.ec.feedChains({piece.substr(0, n / 2), piece.substr(n / 2)});  // spans two chains
      } else {
        c.ec.feed(piece);
      }
      at += n;
      ++step;
    }
    ASSERT_EQ(c.recorder.frames.size(), payloads.size()) << "seed " << seed;
    for (size_t i = 0; i < payloads.size(); ++i) {
      EXPECT_EQ(c.recorder.frames[i].header.msg_id, i + 1) << "seed " << seed;
      EXPECT_EQ(c.recorder.frames[i].payload, payloads[i]) << "seed " << seed << " frame " << i;
    }
    std::vector<ServerFrame> out = c.frames();
    ASSERT_EQ(out.size(), static_cast<size_t>(pings)) << "seed " << seed;
    for (const ServerFrame& f : out) EXPECT_EQ(f.opcode, websocket::kPong);
    EXPECT_EQ(c.ws().buffered(), 0u);
    EXPECT_EQ(c.ec.inputLength(), 0u);
    EXPECT_FALSE(c.ec.closed());
  }
}

// Bytes decoded in place before a close frame in the same read still reach
// framing; the bytes after it are dropped.
TEST(WebsocketChain, InPlaceBytesBeforeACloseGoOn) {
  WsChain c;
  c.upgrade();
  c.ec.feed(binary(encodeClientFrame(5, 1, "kept")) + clientFrame(websocket::kClose, closePayload(1000)) +
            binary(encodeClientFrame(6, 1, "dropped")));
  ASSERT_EQ(c.recorder.frames.size(), 1u);
  EXPECT_EQ(c.recorder.frames[0].payload, "kept");
  EXPECT_TRUE(c.ec.closed());
}

// ---- frames out -------------------------------------------------------------

TEST(WebsocketChain, EachFrameToTheClientIsOneBinaryMessage) {
  WsChain c;
  c.recorder.on_frame = [](Frame& f, FilterCallbacks& cb) {
    std::string payload(f.payloadLength(), '\0');
    evbuffer_remove(f.source(), &payload[0], payload.size());
    f.markConsumed();
    cb.sendFrame(static_cast<uint16_t>(f.header.msg_id + 100), f.header.server_id, payload);
  };
  c.upgrade();
  c.ec.feed(binary(encodeClientFrame(1, 5, "one") + encodeClientFrame(2, 5, std::string(200, 'x'))));
  std::vector<ServerFrame> frames = c.frames();
  ASSERT_EQ(frames.size(), 2u);
  for (const auto& f : frames) {
    EXPECT_TRUE(f.fin);
    EXPECT_EQ(f.opcode, websocket::kBinary);
    EXPECT_FALSE(f.masked);
  }
  EXPECT_EQ(frames[0].payload, encodeClientFrame(101, 5, "one"));
  EXPECT_EQ(frames[1].payload, encodeClientFrame(102, 5, std::string(200, 'x')));
  // A frame with no payload, and the largest one (a 64-bit message length).
  c.recorder.callbacks->sendFrame(7, 0, "");
  c.recorder.callbacks->sendFrame(8, 0, std::string(65535, 'L'));
  frames = c.frames();
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].payload, encodeClientFrame(7, 0, ""));
  EXPECT_EQ(frames[1].payload, encodeClientFrame(8, 0, std::string(65535, 'L')));
  EXPECT_EQ(counter("game_gateway_websocket_messages_total",
                    {{"listener", listenerName()}, {"direction", "out"}}),
            4u);
}

// An observing bytes filter before websocket (tls, for wss) gets each frame
// to the client as one write: the message header, the client frame's header
// and its payload together (framing writes them as one gather write and
// websocket only prefixes it).
class WriteLog : public Filter {
 public:
  explicit WriteLog(std::vector<std::string>* writes) : writes_(writes) {}
  FilterStatus onWriteData(evbuffer* data, bool) override {
    std::string w(evbuffer_get_length(data), '\0');
    evbuffer_copyout(data, &w[0], w.size());
    writes_->push_back(w);
    return FilterStatus::kContinue;
  }

 private:
  std::vector<std::string>* writes_;
};

TEST(WebsocketChain, UnderATransformerEachFrameIsOneWrite) {
  std::vector<std::string> writes;
  test::FunctionFilterFactory below([&] { return std::make_unique<WriteLog>(&writes); });
  FrameRecorder recorder;
  EmbeddedChain ec(options());
  auto ws = ec.registered("websocket", "{}");
  auto framing = ec.registered("framing", "{}");
  ASSERT_TRUE(ws && framing);
  FilterTraits observer;
  observer.observes_writes = true;
  ec.start({{&below, observer}, *ws, *framing, recorder.element()});
  ec.feed(upgradeRequest());
  ASSERT_EQ(writes.size(), 1u);  // the 101
  writes.clear();
  recorder.callbacks->sendFrame(3, 0, std::string(64, 'p'));
  recorder.callbacks->sendFrame(4, 0, std::string(300, 'q'));
  ASSERT_EQ(writes.size(), 2u);
  std::vector<ServerFrame> frames;
  for (const std::string& w : writes) {
    std::vector<ServerFrame> one;
    ASSERT_TRUE(ws_test::parseServerFrames(w, &one));
    ASSERT_EQ(one.size(), 1u);
    frames.push_back(one[0]);
  }
  EXPECT_EQ(frames[0].payload, encodeClientFrame(3, 0, std::string(64, 'p')));
  EXPECT_EQ(frames[1].payload, encodeClientFrame(4, 0, std::string(300, 'q')));
  ec.takeOutput();
}

TEST(WebsocketChain, WritesBeforeTheHandshakeWaitForIt) {
  WsChain c;
  c.recorder.callbacks->sendFrame(42, 0, "early push");
  EXPECT_EQ(c.ec.outputLength(), 0u);
  std::string out = c.ec.takeOutput() + c.upgrade();
  std::string_view rest;
  std::string_view head = ws_test::httpHead(out, &rest);
  EXPECT_EQ(head.rfind("HTTP/1.1 101 ", 0), 0u);
  std::vector<ServerFrame> frames;
  ASSERT_TRUE(ws_test::parseServerFrames(rest, &frames));
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].payload, encodeClientFrame(42, 0, "early push"));
}

// A bytes terminal after websocket that writes what the test tells it to.
class Writer : public Filter {
 public:
  explicit Writer(FilterCallbacks** cb) : cb_(cb) {}
  FilterStatus onNewConnection() override {
    *cb_ = &callbacks();
    return FilterStatus::kContinue;
  }
  FilterStatus onData(evbuffer* data, bool) override {
    evbuffer_drain(data, evbuffer_get_length(data));
    return FilterStatus::kStopIteration;
  }

 private:
  FilterCallbacks** cb_;
};

struct WriterChain {
  explicit WriterChain(const std::string& ws_json = "{}")
      : factory([this] { return std::make_unique<Writer>(&cb); }), ec(options()) {
    std::string error;
    auto ws = ec.registered("websocket", ws_json, {}, &error);
    if (!ws) throw std::runtime_error(error);
    ec.start({*ws, {&factory, FilterTraits::bytesTerminal()}});
    ec.feed(upgradeRequest());
    ec.takeOutput();
  }
  void write(const std::string& s) { cb->writeBytes(s.data(), s.size()); }
  std::vector<ServerFrame> frames() {
    std::vector<ServerFrame> out;
    EXPECT_TRUE(ws_test::parseServerFrames(ec.takeOutput(), &out));
    return out;
  }

  FilterCallbacks* cb = nullptr;
  test::FunctionFilterFactory factory;
  EmbeddedChain ec;
};

TEST(WebsocketWrap, ClientFramesInAnyWritePiecesGetOneMessageEach) {
  WriterChain c;
  const std::string a = encodeClientFrame(1, 0, "aaaa");
  const std::string b = encodeClientFrame(2, 0, "bbbbbbbbbb");
  const std::string d = encodeClientFrame(3, 0, std::string(500, 'd'));
  // Two frames and the first 5 bytes of a third's header in one write; the
  // rest of that header; its payload in two writes.
  c.write(a + b + d.substr(0, 5));
  c.write(d.substr(5, 3));
  c.write(d.substr(8, 100));
  c.write(d.substr(108));
  std::vector<ServerFrame> frames = c.frames();
  ASSERT_EQ(frames.size(), 3u);
  EXPECT_EQ(frames[0].payload, a);
  EXPECT_EQ(frames[1].payload, b);
  EXPECT_EQ(frames[2].payload, d);
}

TEST(WebsocketWrap, APingWhileAFrameIsHalfWrittenIsAnsweredAfterIt) {
  WriterChain c;
  const std::string f = encodeClientFrame(5, 0, "0123456789");
  c.write(f.substr(0, 12));
  c.ec.feed(clientFrame(websocket::kPing, "now"));
  c.write(f.substr(12));
  std::vector<ServerFrame> frames = c.frames();
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].opcode, websocket::kBinary);
  EXPECT_EQ(frames[0].payload, f);
  EXPECT_EQ(frames[1].opcode, websocket::kPong);
  EXPECT_EQ(frames[1].payload, "now");
}

TEST(WebsocketWrap, OutboundMessagesPerWrite) {
  WriterChain c(R"({"outbound_messages": "write"})");
  c.write("not a client frame");
  c.write("x");
  std::vector<ServerFrame> frames = c.frames();
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].payload, "not a client frame");
  EXPECT_EQ(frames[1].payload, "x");
}

// ---- control frames and the close handshake ---------------------------------

TEST(WebsocketChain, PingIsAnsweredWithPong) {
  WsChain c;
  c.upgrade();
  c.ec.feed(clientFrame(websocket::kPing, "are you there"));
  std::vector<ServerFrame> frames = c.frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, websocket::kPong);
  EXPECT_EQ(frames[0].payload, "are you there");
  c.ec.feed(clientFrame(websocket::kPong, "unsolicited"));
  EXPECT_EQ(c.ec.outputLength(), 0u);
  EXPECT_FALSE(c.ec.closed());
}

TEST(WebsocketChain, CloseIsEchoedAndTheConnectionCloses) {
  WsChain c;
  c.upgrade();
  c.ec.feed(binary(encodeClientFrame(1, 0, "last")) +
            clientFrame(websocket::kClose, closePayload(1001, "tab closed")));
  ASSERT_EQ(c.recorder.frames.size(), 1u);  // what came before the close went on
  std::vector<ServerFrame> frames = c.frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].opcode, websocket::kClose);
  EXPECT_EQ(frames[0].payload, closePayload(1001));
  EXPECT_TRUE(c.ec.closed());
  EXPECT_EQ(c.ec.closeReason(), CloseReason::kRemoteClosed);
  EXPECT_EQ(closeCodes("received", "1001"), 1u);
  EXPECT_EQ(closeCodes("sent", "1001"), 1u);
}

TEST(WebsocketChain, CloseWithoutCodeIsAnsweredWithoutOne) {
  WsChain c;
  c.upgrade();
  c.ec.feed(clientFrame(websocket::kClose, ""));
  std::vector<ServerFrame> frames = c.frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].payload, "");
  EXPECT_EQ(closeCodes("received", "1005"), 1u);
}

TEST(WebsocketChain, CloseDuringAFragmentedMessage) {
  WsChain c;
  c.upgrade();
  c.ec.feed(clientFrame(websocket::kBinary, encodeClientFrame(1, 0, "x").substr(0, 4), false) +
            clientFrame(websocket::kClose, closePayload(1000)));
  std::vector<ServerFrame> frames = c.frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].payload, closePayload(1000));
  EXPECT_TRUE(c.ec.closed());
  EXPECT_NE(c.ec.closeDetail().find("inside a fragmented message"), std::string::npos)
      << c.ec.closeDetail();
}

TEST(WebsocketChain, EofWithoutCloseReachesFraming) {
  WsChain c;
  c.upgrade();
  c.ec.feed(binary(encodeClientFrame(1, 0, "x")), /*end_stream=*/true);
  EXPECT_EQ(c.recorder.frames.size(), 1u);
  EXPECT_TRUE(c.ec.closed());
  EXPECT_EQ(c.ec.closeReason(), CloseReason::kRemoteClosed);
}

// ---- closes by other filters ------------------------------------------------

// Another filter (framing, session, ip_limiter, an operator's kick through the
// session) closes an open WebSocket connection: a close frame with the code
// for its reason goes out before the socket closes (browsers would report
// 1006 otherwise), after what was written before it; an abort sends none.
TEST(WebsocketChain, ForeignClosesSendACloseFrameWithTheirCode) {
  struct Case {
    CloseReason reason;
    Connection::CloseMode mode;
    const char* code;  // nullptr: no close frame
  };
  const std::vector<Case> cases = {
      {CloseReason::kKicked, Connection::CloseMode::kFlush, "1008"},
      {CloseReason::kRateLimited, Connection::CloseMode::kFlush, "1008"},
      {CloseReason::kDuplicateLogin, Connection::CloseMode::kFlush, "1008"},
      {CloseReason::kShutdown, Connection::CloseMode::kFlush, "1001"},
      {CloseReason::kSessionIdle, Connection::CloseMode::kFlush, "1001"},
      {CloseReason::kLocalClosed, Connection::CloseMode::kFlush, "1000"},
      {CloseReason::kUpstreamClosed, Connection::CloseMode::kFlush, "1011"},
      {CloseReason::kFilterError, Connection::CloseMode::kFlush, "1011"},
      {CloseReason::kOverloaded, Connection::CloseMode::kFlush, "1013"},
      {CloseReason::kKicked, Connection::CloseMode::kAbort, nullptr},
  };
  for (const Case& k : cases) {
    SCOPED_TRACE(std::string(closeReasonName(k.reason)) +
                 (k.mode == Connection::CloseMode::kAbort ? " (abort)" : ""));
    WsChain c;
    c.upgrade();
    const uint64_t sent_before = k.code == nullptr ? 0 : closeCodes("sent", k.code);
    c.recorder.callbacks->sendFrame(9, 0, "bye");
    c.recorder.callbacks->close(k.reason, "test", k.mode);
    EXPECT_TRUE(c.ec.closed());
    EXPECT_EQ(c.ec.closeReason(), k.reason);
    std::vector<ServerFrame> frames = c.frames();
    if (k.code == nullptr) {
      for (const ServerFrame& f : frames) EXPECT_NE(f.opcode, websocket::kClose);
      continue;
    }
    ASSERT_EQ(frames.size(), 2u);
    EXPECT_EQ(frames[0].opcode, websocket::kBinary);
    EXPECT_EQ(frames[0].payload, encodeClientFrame(9, 0, "bye"));
    EXPECT_EQ(frames[1].opcode, websocket::kClose);
    EXPECT_EQ(frames[1].payload, closePayload(static_cast<uint16_t>(std::stoi(k.code))));
    EXPECT_EQ(closeCodes("sent", k.code), sent_before + 1);
  }
}

// framing refuses an oversized client frame: 1009.
TEST(WebsocketChain, FramingsOversizedFrameClosesWith1009) {
  WsChain c("{}", R"({"max_frame_bytes": 16})");
  c.upgrade();
  c.ec.feed(binary(encodeClientFrame(1, 0, std::string(17, 'x'))));
  EXPECT_TRUE(c.ec.closed());
  EXPECT_EQ(c.ec.closeReason(), CloseReason::kFrameTooLarge);
  std::vector<ServerFrame> frames = c.frames();
  ASSERT_FALSE(frames.empty());
  EXPECT_EQ(frames.back().opcode, websocket::kClose);
  EXPECT_EQ(frames.back().payload, closePayload(1009));
}

// framing's read timeout (a frame stalled mid-way): 1008; the peer's own
// half-close gets no close frame from the server (it is gone).
TEST(WebsocketChain, FramingsReadTimeoutClosesWith1008) {
  WsChain c("{}", R"({"read_timeout": "50ms"})");
  c.upgrade();
  c.ec.feed(binary(encodeClientFrame(6, 0, "0123456789").substr(0, 11)));
  ASSERT_TRUE(c.ec.runUntilClosed(std::chrono::seconds(2)));
  EXPECT_EQ(c.ec.closeReason(), CloseReason::kReadTimeout);
  std::vector<ServerFrame> frames = c.frames();
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].payload, closePayload(1008));
}

// ---- bad frames -------------------------------------------------------------

struct BadFrameCase {
  const char* reason;
  std::string bytes;
  const char* code;
};

TEST(WebsocketChain, EachBadFrameClosesWithItsCodeAndMetric) {
  std::vector<BadFrameCase> cases = {
      {"unmasked", clientFrame(websocket::kBinary, "x", true, 0, false), "1002"},
      {"reserved_bits", clientFrame(websocket::kBinary, "x", true, 2), "1002"},
      {"bad_opcode", clientFrame(5, "x"), "1002"},
      {"control_too_long", clientFrame(websocket::kPing, std::string(126, 'p')), "1002"},
      {"fragmented_control", clientFrame(websocket::kPing, "p", false), "1002"},
      {"bad_continuation", clientFrame(websocket::kContinuation, "x"), "1002"},
      {"text_frame", clientFrame(websocket::kText, "hello"), "1003"},
      {"message_too_large", clientFrame(websocket::kBinary, std::string(65, 'm')), "1009"},
      {"bad_close", clientFrame(websocket::kClose, closePayload(1006)), "1002"},
      {"bad_utf8", clientFrame(websocket::kClose, closePayload(1000, "\xff")), "1007"},
  };
  for (const auto& bad : cases) {
    SCOPED_TRACE(bad.reason);
    const std::string l = listenerName();
    const uint64_t errors_before = counter("game_gateway_websocket_protocol_errors_total",
                                           {{"listener", l}, {"reason", bad.reason}});
    const uint64_t sent_before = closeCodes("sent", bad.code);
    WsChain c(R"({"max_message_bytes": 64})");
    c.upgrade();
    c.ec.feed(bad.bytes);
    std::vector<ServerFrame> frames = c.frames();
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(frames[0].opcode, websocket::kClose);
    uint16_t code = static_cast<uint16_t>(std::stoi(bad.code));
    EXPECT_EQ(frames[0].payload, closePayload(code));
    EXPECT_TRUE(c.ec.closed());
    EXPECT_EQ(c.ec.closeReason(), CloseReason::kMalformedFrame);
    EXPECT_NE(c.ec.closeDetail().find(bad.reason), std::string::npos) << c.ec.closeDetail();
    EXPECT_EQ(counter("game_gateway_websocket_protocol_errors_total",
                      {{"listener", l}, {"reason", bad.reason}}),
              errors_before + 1);
    EXPECT_EQ(closeCodes("sent", bad.code), sent_before + 1);
  }
}

TEST(WebsocketChain, ABadConnectionDoesNotAffectAnother) {
  WsChain good;
  WsChain bad;
  good.upgrade();
  bad.upgrade();
  bad.ec.feed(clientFrame(websocket::kBinary, "x", true, 0, false));
  good.ec.feed(binary(encodeClientFrame(1, 0, "fine")));
  EXPECT_TRUE(bad.ec.closed());
  EXPECT_FALSE(good.ec.closed());
  ASSERT_EQ(good.recorder.frames.size(), 1u);
}

// ---- bad handshakes ---------------------------------------------------------

struct BadHandshake {
  const char* reason;
  std::string request;
  const char* status_line;
  const char* extra_field;  // must appear in the response, or ""
};

TEST(WebsocketChain, EachBadHandshakeGetsItsStatusAndMetric) {
  const std::string ok = upgradeRequest("/ws");
  std::vector<BadHandshake> cases = {
      {"bad_key", "GET /ws HTTP/1.1\r\nHost: h\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                  "Sec-WebSocket-Version: 13\r\n\r\n",
       "HTTP/1.1 400 Bad Request", ""},
      {"bad_version", std::string(ok).replace(ok.find("Version: 13"), 11, "Version: 12"),
       "HTTP/1.1 426 Upgrade Required", "Sec-WebSocket-Version: 13\r\n"},
      {"not_upgrade", "GET /ws HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 426 Upgrade Required",
       "Upgrade: websocket\r\n"},
      {"wrong_path", upgradeRequest("/elsewhere"), "HTTP/1.1 404 Not Found", ""},
      {"forbidden_origin", upgradeRequest("/ws", "Origin: https://evil.example\r\n"),
       "HTTP/1.1 403 Forbidden", ""},
      {"bad_method", "DELETE /ws HTTP/1.1\r\nHost: h\r\n\r\n", "HTTP/1.1 400 Bad Request", ""},
      {"headers_too_large",
       "GET /ws HTTP/1.1\r\nHost: h\r\nX-Big: " + std::string(400, 'b') + "\r\n",
       "HTTP/1.1 431 Request Header Fields Too Large", ""},
  };
  for (const auto& bad : cases) {
    SCOPED_TRACE(bad.reason);
    const std::string l = listenerName();
    const uint64_t before = counter("game_gateway_websocket_handshake_failures_total",
                                    {{"listener", l}, {"reason", bad.reason}});
    WsChain c(R"({"path": "/ws", "allowed_origins": ["https://game.example"],
                  "max_handshake_bytes": 256})");
    std::string out = c.upgrade(bad.request);
    EXPECT_EQ(out.rfind(std::string(bad.status_line) + "\r\n", 0), 0u) << out;
    EXPECT_NE(out.find("Connection: close\r\n"), std::string::npos) << out;
    if (*bad.extra_field != '\0') EXPECT_NE(out.find(bad.extra_field), std::string::npos) << out;
    EXPECT_TRUE(c.ec.closed());
    EXPECT_EQ(c.ec.closeReason(), CloseReason::kFilterError);
    EXPECT_EQ(counter("game_gateway_websocket_handshake_failures_total",
                      {{"listener", l}, {"reason", bad.reason}}),
              before + 1);
    EXPECT_TRUE(c.recorder.frames.empty());
  }
}

TEST(WebsocketChain, HandshakeTimeout) {
  WsChain c(R"({"handshake_timeout": "50ms"})");
  c.ec.feed("GET / HTTP/1.1\r\nHost: h\r\n");
  ASSERT_TRUE(c.ec.runUntilClosed(std::chrono::seconds(2)));
  EXPECT_EQ(c.ec.closeReason(), CloseReason::kReadTimeout);
  EXPECT_NE(c.ec.closeDetail().find("handshake_timeout 50ms"), std::string::npos)
      << c.ec.closeDetail();
  EXPECT_EQ(counter("game_gateway_websocket_handshake_failures_total",
                    {{"listener", listenerName()}, {"reason", "timeout"}}),
            1u);
}

TEST(WebsocketChain, PeerClosesDuringTheHandshake) {
  WsChain c;
  c.ec.feed("GET / HTTP/1.1\r\n", /*end_stream=*/true);
  EXPECT_TRUE(c.ec.closed());
  EXPECT_EQ(counter("game_gateway_websocket_handshake_failures_total",
                    {{"listener", listenerName()}, {"reason", "eof"}}),
            1u);
}

// framing's timeout messages describe the partial frame in the buffer it
// reads behind a transformer (the websocket filter's), not the connection's
// input (which the transformer emptied).
TEST(WebsocketChain, FramingTimeoutDescribesThePartialFrameBehindTheTransformer) {
  WsChain c("{}", R"({"read_timeout": "50ms"})");
  c.upgrade();
  c.ec.feed(binary(encodeClientFrame(6, 0, "0123456789").substr(0, 11)));
  ASSERT_TRUE(c.ec.runUntilClosed(std::chrono::seconds(2)));
  EXPECT_EQ(c.ec.closeReason(), CloseReason::kReadTimeout);
  EXPECT_NE(c.ec.closeDetail().find("3 of 10 payload bytes (msg_id 6)"), std::string::npos)
      << c.ec.closeDetail();
}

// ---- config -----------------------------------------------------------------

TEST(WebsocketConfig, RefusesUnknownKeysAndBadValues) {
  Dispatcher d("config");
  WorkerServices services;
  std::string error;
  EXPECT_EQ(test::buildFilter("websocket", R"({"pathh": "/"})", d, services, {}, &error), nullptr);
  EXPECT_NE(error.find("pathh"), std::string::npos) << error;
  EXPECT_EQ(test::buildFilter("websocket", R"({"path": "ws"})", d, services, {}, &error), nullptr);
  EXPECT_NE(error.find("/path"), std::string::npos) << error;
  EXPECT_EQ(test::buildFilter("websocket", R"({"max_handshake_bytes": 10})", d, services, {}, &error),
            nullptr);
  EXPECT_NE(error.find("/max_handshake_bytes"), std::string::npos) << error;
  EXPECT_EQ(test::buildFilter("websocket", R"({"subprotocol": "a b"})", d, services, {}, &error),
            nullptr);
  auto built = test::buildFilter("websocket",
                                 R"({"path": "/ws", "allowed_origins": ["https://a"],
                                     "subprotocol": "game.v1", "max_message_bytes": 4096,
                                     "handshake_timeout": "3s", "max_handshake_bytes": 4096})",
                                 d, services, {}, &error);
  ASSERT_NE(built, nullptr) << error;
  const auto& cfg = static_cast<const websocket::WebsocketConfig&>(*built->config);
  EXPECT_EQ(cfg.path, "/ws");
  EXPECT_EQ(cfg.max_message_bytes, 4096u);
  EXPECT_EQ(cfg.handshake_timeout, milliseconds(3000));
  EXPECT_TRUE(built->traits.observes_writes);
}

}  // namespace
}  // namespace gw
