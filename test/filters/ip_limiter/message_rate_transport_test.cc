// test/filters/ip_limiter/message_rate_transport_test.cc — ip_limiter's
// message_rate_limit counts client frames whatever transport wraps them
// (EmbeddedChain: ip_limiter → websocket → framing → FrameRecorder, and
// ip_limiter → framing → FrameRecorder for raw TCP). Over the limit the
// connection is closed (action close) or the frame refused with an error
// frame the client can read — inside a binary message behind websocket.
#include <gtest/gtest.h>

#include <stdexcept>
#include <string>
#include <vector>

#include "core/sdk/error_frame.h"
#include "core/sdk/testing/embedded_chain.h"
#include "test/filters/websocket/ws_wire.h"
#include "test/harness/net.h"

namespace gw {
namespace {

using test::EmbeddedChain;
using test::encodeClientFrame;
using test::FrameRecorder;

std::string listenerName() {
  const auto* info = ::testing::UnitTest::GetInstance()->current_test_info();
  return std::string(info->test_suite_name()) + "." + info->name();
}

// ip_limiter (`limiter_json`) → [websocket] → framing → FrameRecorder.
struct Chain {
  Chain(const std::string& limiter_json, bool websocket) : ec(options()) {
    std::string error;
    auto limiter = ec.registered("ip_limiter", limiter_json, {}, &error);
    if (!limiter) throw std::runtime_error("ip_limiter config: " + error);
    std::vector<ChainElement> elements{*limiter};
    if (websocket) {
      auto ws = ec.registered("websocket", "{}", {}, &error);
      if (!ws) throw std::runtime_error("websocket config: " + error);
      elements.push_back(*ws);
    }
    auto framing = ec.registered("framing", "{}", {}, &error);
    if (!framing) throw std::runtime_error("framing config: " + error);
    elements.push_back(*framing);
    elements.push_back(recorder.element());
    ec.start(elements);
    if (websocket) {
      ec.feed(ws_test::upgradeRequest());
      std::string response = ec.takeOutput();
      if (response.rfind("HTTP/1.1 101", 0) != 0)
        throw std::runtime_error("upgrade refused: " + response);
    }
  }
  static EmbeddedChain::Options options() {
    EmbeddedChain::Options o;
    o.listener = listenerName();
    o.peer = "192.0.2.7:40000";
    return o;
  }

  FrameRecorder recorder;  // outlives the chain
  EmbeddedChain ec;
};

// The gateway's error frame refusing `msg_id` with rate_limited.
std::string rateLimitedFrame(uint16_t msg_id) {
  return encodeClientFrame(kErrorMsgId, 0, errorFramePayload(ErrorCode::kRateLimited, msg_id));
}

std::string frames(uint16_t first, int n, const std::string& payload) {
  std::string out;
  for (int i = 0; i < n; ++i) out += encodeClientFrame(static_cast<uint16_t>(first + i), 0, payload);
  return out;
}

TEST(MessageRateTransport, WebsocketCloseCountsClientFramesNotMessages) {
  Chain c(R"({"message_rate_limit": 1, "message_burst": 3})", /*websocket=*/true);
  // One binary message holding 3 client frames: exactly the burst.
  c.ec.feed(ws_test::binary(frames(1, 3, "abc")));
  EXPECT_EQ(c.recorder.frames.size(), 3u);
  EXPECT_FALSE(c.ec.closed()) << c.ec.closeDetail();
  // The 4th frame, split over two messages, is over the limit.
  std::string f = encodeClientFrame(4, 0, "over");
  c.ec.feed(ws_test::binary(f.substr(0, 3)));
  EXPECT_FALSE(c.ec.closed()) << c.ec.closeDetail();
  c.ec.feed(ws_test::binary(f.substr(3)));
  EXPECT_TRUE(c.ec.closed());
  EXPECT_EQ(c.ec.closeReason(), CloseReason::kRateLimited);
  EXPECT_NE(c.ec.closeDetail().find("message_rate_limit"), std::string::npos)
      << c.ec.closeDetail();
  EXPECT_EQ(c.recorder.frames.size(), 3u);
}

TEST(MessageRateTransport, WebsocketManyFramesPerMessageAreEachCounted) {
  // A client packing 10 frames into one message cannot get past a burst of 5.
  Chain c(R"({"message_rate_limit": 1, "message_burst": 5})", /*websocket=*/true);
  c.ec.feed(ws_test::binary(frames(1, 10, "x")));
  EXPECT_TRUE(c.ec.closed());
  EXPECT_EQ(c.ec.closeReason(), CloseReason::kRateLimited);
  EXPECT_EQ(c.recorder.frames.size(), 5u);
}

TEST(MessageRateTransport, WebsocketDropAnswersInsideBinaryMessages) {
  Chain c(R"({"message_rate_limit": 1, "message_burst": 2, "message_rate_action": "drop"})",
          /*websocket=*/true);
  c.ec.feed(ws_test::binary(frames(1, 4, "data")));
  EXPECT_FALSE(c.ec.closed()) << c.ec.closeDetail();
  ASSERT_EQ(c.recorder.frames.size(), 2u);
  EXPECT_EQ(c.recorder.frames[0].header.msg_id, 1);
  EXPECT_EQ(c.recorder.frames[1].header.msg_id, 2);
  // Each refusal is one binary message holding one error frame.
  std::vector<ws_test::ServerFrame> out;
  ASSERT_TRUE(ws_test::parseServerFrames(c.ec.takeOutput(), &out));
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(out[0].opcode, 0x2);
  EXPECT_EQ(out[0].payload, rateLimitedFrame(3));
  EXPECT_EQ(out[1].payload, rateLimitedFrame(4));
}

TEST(MessageRateTransport, RawTcpThroughTheCodecBehavesTheSame) {
  Chain c(R"({"message_rate_limit": 1, "message_burst": 2, "message_rate_action": "drop"})",
          /*websocket=*/false);
  c.ec.feed(frames(1, 4, "data"));
  EXPECT_FALSE(c.ec.closed()) << c.ec.closeDetail();
  EXPECT_EQ(c.recorder.frames.size(), 2u);
  EXPECT_EQ(c.ec.takeOutput(), rateLimitedFrame(3) + rateLimitedFrame(4));

  Chain d(R"({"message_rate_limit": 1, "message_burst": 3})", /*websocket=*/false);
  d.ec.feed(frames(1, 3, "abc"));
  EXPECT_FALSE(d.ec.closed());
  d.ec.feed(frames(4, 1, "abc"));
  EXPECT_TRUE(d.ec.closed());
  EXPECT_EQ(d.ec.closeReason(), CloseReason::kRateLimited);
  EXPECT_EQ(d.recorder.frames.size(), 3u);
}

}  // namespace
}  // namespace gw
