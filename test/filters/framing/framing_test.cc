// test/filters/framing/framing_test.cc — unit tests of the `framing` codec,
// driven through a real FilterChain over a detached Connection
// (EmbeddedChain: [optional filters] -> framing -> FrameRecorder): decoding,
// limits, EOF, timeouts, backpressure, the write path, metrics and config.
#include <event2/buffer.h>
#include <gtest/gtest.h>

#include <chrono>
#include <string>
#include <vector>

#include "core/sdk/dispatcher.h"
#include "core/sdk/stats.h"
#include "core/sdk/testing/embedded_chain.h"
#include "filters/framing/framing.h"
#include "test/filters/framing/codec_chain.h"
#include "test/harness/net.h"

namespace gw {
namespace framing_test {
namespace {

using std::chrono::milliseconds;
using std::chrono::steady_clock;
using test::EmbeddedChain;
using test::encodeClientFrame;
using test::FrameRecorder;

// ---- read path ------------------------------------------------------------

TEST(FramingDecode, OneFrame) {
  CodecChain h("{}");
  h.ec.feed(encodeClientFrame(7, kServerId, "hello"));
  ASSERT_EQ(h.recorder.frames.size(), 1u);
  EXPECT_EQ(h.recorder.frames[0].header.length, 5);
  EXPECT_EQ(h.recorder.frames[0].header.msg_id, 7);
  EXPECT_EQ(h.recorder.frames[0].header.server_id, kServerId);
  EXPECT_EQ(h.recorder.frames[0].payload, "hello");
  EXPECT_EQ(h.ec.inputLength(), 0u) << "the chain must drop a payload nobody consumed";
  EXPECT_FALSE(h.ec.closed());
}

TEST(FramingDecode, SplitByteByByte) {
  CodecChain h("{}");
  std::string a = encodeClientFrame(1, kServerId, "first");
  std::string b = encodeClientFrame(2, 0, payloadOf(300));
  for (size_t i = 0; i + 1 < a.size(); ++i) {
    h.ec.feed(a.substr(i, 1));
    ASSERT_TRUE(h.recorder.frames.empty()) << "frame passed on after " << i + 1 << " bytes";
  }
  h.ec.feed(a.substr(a.size() - 1));
  ASSERT_EQ(h.recorder.frames.size(), 1u);
  feedByteByByte(h.ec, b);
  ASSERT_EQ(h.recorder.frames.size(), 2u);
  EXPECT_EQ(h.recorder.frames[0].payload, "first");
  EXPECT_EQ(h.recorder.frames[1].header.msg_id, 2);
  EXPECT_EQ(h.recorder.frames[1].payload, payloadOf(300));
  EXPECT_EQ(h.ec.inputLength(), 0u);
}

TEST(FramingDecode, SplitAcrossFrameBoundaries) {
  CodecChain h("{}");
  std::string all;
  for (int i = 0; i < 10; ++i) all += encodeClientFrame(static_cast<uint16_t>(i), 0, payloadOf(i * 7));
  // Reads of 13 bytes: boundaries fall inside headers and payloads.
  for (size_t off = 0; off < all.size(); off += 13) h.ec.feed(all.substr(off, 13));
  ASSERT_EQ(h.recorder.frames.size(), 10u);
  for (int i = 0; i < 10; ++i) {
    EXPECT_EQ(h.recorder.frames[i].header.msg_id, i);
    EXPECT_EQ(h.recorder.frames[i].payload, payloadOf(i * 7));
  }
}

// EmbeddedChain::feedSteady (the benchmarks' feed): each call delivers one
// whole frame and leaves the next one's head buffered.
TEST(FramingDecode, FeedSteadyDeliversOneFramePerCall) {
  CodecChain h("{}");
  std::string f = encodeClientFrame(7, kServerId, "steady");
  for (int i = 1; i <= 3; ++i) {
    h.ec.feedSteady(f);
    ASSERT_EQ(h.recorder.frames.size(), static_cast<size_t>(i));
    EXPECT_EQ(h.recorder.frames.back().payload, "steady");
    EXPECT_EQ(evbuffer_get_length(h.ec.connection().input()), 4u) << "the next frame's head";
  }
}

// The header is read in place when the first chain holds all 8 bytes, and
// copied out when it spans chains.
TEST(FramingDecode, HeaderSpanningChains) {
  CodecChain h("{}");
  std::string a = encodeClientFrame(0x1234, kServerId, "hello");
  std::string b = encodeClientFrame(0x5678, 0, "world!");
  h.ec.feedChains({a.substr(0, 1), a.substr(1, 2), a.substr(3, 4), a.substr(7, 3),
                a.substr(10) + b.substr(0, 5), b.substr(5)});
  int chains = evbuffer_peek(h.ec.connection().input(), -1, nullptr, nullptr, 0);
  EXPECT_EQ(chains, 0) << "all decoded";
  ASSERT_EQ(h.recorder.frames.size(), 2u);
  EXPECT_EQ(h.recorder.frames[0].header.msg_id, 0x1234);
  EXPECT_EQ(h.recorder.frames[0].header.server_id, kServerId);
  EXPECT_EQ(h.recorder.frames[0].payload, "hello");
  EXPECT_EQ(h.recorder.frames[1].header.msg_id, 0x5678);
  EXPECT_EQ(h.recorder.frames[1].payload, "world!");
}

// The header sits in the first chain but the payload runs on into later
// chains: the buffer's length, not the first chain's, decides whether the
// frame is complete (both when it is and when it is not yet).
TEST(FramingDecode, PayloadSpanningChains) {
  CodecChain h("{}");
  std::string a = encodeClientFrame(3, kServerId, payloadOf(20));   // 28 bytes
  std::string b = encodeClientFrame(4, 0, payloadOf(30, 'k'));      // 38 bytes
  // [a's header + 2] [10 of a] [a's last 8 + b's header + 4] [20 of b]: b lacks 6.
  h.ec.feedChains({a.substr(0, 10), a.substr(10, 10), a.substr(20) + b.substr(0, 12),
                b.substr(12, 20)});
  ASSERT_EQ(h.recorder.frames.size(), 1u);
  EXPECT_EQ(h.recorder.frames[0].header.msg_id, 3);
  EXPECT_EQ(h.recorder.frames[0].header.server_id, kServerId);
  EXPECT_EQ(h.recorder.frames[0].payload, payloadOf(20));
  EXPECT_EQ(h.ec.inputLength(), 32u);
  h.ec.feedChains({b.substr(32)});
  ASSERT_EQ(h.recorder.frames.size(), 2u);
  EXPECT_EQ(h.recorder.frames[1].header.msg_id, 4);
  EXPECT_EQ(h.recorder.frames[1].payload, payloadOf(30, 'k'));
  EXPECT_EQ(h.ec.inputLength(), 0u);
  EXPECT_FALSE(h.ec.closed());
}

TEST(FramingDecode, ManyFramesInOneRead) {
  CodecChain h("{}");
  std::string all;
  for (int i = 0; i < 500; ++i)
    all += encodeClientFrame(static_cast<uint16_t>(i), static_cast<uint32_t>(i), payloadOf(i % 40));
  h.ec.feed(all);
  ASSERT_EQ(h.recorder.frames.size(), 500u);
  for (int i = 0; i < 500; ++i) {
    EXPECT_EQ(h.recorder.frames[i].header.msg_id, i);
    EXPECT_EQ(h.recorder.frames[i].header.server_id, static_cast<uint32_t>(i));
    EXPECT_EQ(h.recorder.frames[i].payload, payloadOf(i % 40));
  }
  EXPECT_EQ(h.ec.inputLength(), 0u);
}

TEST(FramingDecode, CompleteFramesPassedPartialKept) {
  CodecChain h("{}");
  std::string b = encodeClientFrame(2, 0, "second");
  h.ec.feed(encodeClientFrame(1, 0, "first") + b.substr(0, 10));
  ASSERT_EQ(h.recorder.frames.size(), 1u);
  EXPECT_EQ(h.ec.inputLength(), 10u);
  h.ec.feed(b.substr(10));
  ASSERT_EQ(h.recorder.frames.size(), 2u);
  EXPECT_EQ(h.recorder.frames[1].payload, "second");
}

TEST(FramingDecode, ZeroLengthPayload) {
  CodecChain h("{}");
  h.ec.feed(encodeClientFrame(9, kServerId, "") + encodeClientFrame(10, 0, "x") + encodeClientFrame(11, 0, ""));
  ASSERT_EQ(h.recorder.frames.size(), 3u);
  EXPECT_EQ(h.recorder.frames[0].header.length, 0);
  EXPECT_EQ(h.recorder.frames[0].header.msg_id, 9);
  EXPECT_EQ(h.recorder.frames[0].payload, "");
  EXPECT_EQ(h.recorder.frames[1].payload, "x");
  EXPECT_EQ(h.recorder.frames[2].header.msg_id, 11);
  EXPECT_FALSE(h.ec.closed());
}

// Every field little-endian, bytes chosen so any swap or shift shows.
TEST(FramingDecode, FieldsAreLittleEndian) {
  CodecChain h("{}");
  const uint8_t raw[] = {0x03, 0x00,               // length 3
                         0x34, 0x12,               // msg_id 0x1234
                         0x01, 0xC8, 0x03, 0x80,   // server_id 0x8003C801
                         'a',  'b',  'c'};
  h.ec.feed(std::string(reinterpret_cast<const char*>(raw), sizeof(raw)));
  ASSERT_EQ(h.recorder.frames.size(), 1u);
  const wire::ClientHeader& hd = h.recorder.frames[0].header;
  EXPECT_EQ(hd.length, 3);
  EXPECT_EQ(hd.msg_id, 0x1234);
  EXPECT_EQ(hd.server_id, 0x8003C801u);
  EXPECT_TRUE(hd.compressed());
  EXPECT_EQ(hd.worldId(), 3);
  EXPECT_EQ(hd.serverType(), 200);
  EXPECT_EQ(hd.instId(), 1);
  EXPECT_EQ(h.recorder.frames[0].payload, "abc");
}

TEST(FramingDecode, LengthHighByte) {
  CodecChain h("{}");
  std::string header("\x2C\x01\x00\x00\x00\x00\x00\x00", 8);  // length 0x012C = 300
  h.ec.feed(header + payloadOf(299));
  EXPECT_TRUE(h.recorder.frames.empty());
  h.ec.feed("z");
  ASSERT_EQ(h.recorder.frames.size(), 1u);
  EXPECT_EQ(h.recorder.frames[0].header.length, 300);
}

// ---- max_frame_bytes ------------------------------------------------------

TEST(FramingLimits, ExactlyMaxSizeAccepted) {
  CodecChain h(R"({"max_frame_bytes": 4096})");
  h.ec.feed(encodeClientFrame(1, 0, payloadOf(4096)));
  ASSERT_EQ(h.recorder.frames.size(), 1u);
  EXPECT_EQ(h.recorder.frames[0].payload.size(), 4096u);
  EXPECT_FALSE(h.ec.closed());
}

TEST(FramingLimits, FormatMaximumAcceptedByDefault) {
  CodecChain h("{}");
  std::string f = encodeClientFrame(1, 0, payloadOf(65535));
  h.ec.feed(f.substr(0, 40000));
  h.ec.feed(f.substr(40000));
  ASSERT_EQ(h.recorder.frames.size(), 1u);
  EXPECT_EQ(h.recorder.frames[0].payload, payloadOf(65535));
  EXPECT_FALSE(h.ec.closed());
}

TEST(FramingLimits, OversizeClosesWithFrameTooLarge) {
  std::string listener = listenerName();
  CodecChain h(R"({"max_frame_bytes": 4096})", listener);
  // Frames before the bad one in the same read are still passed on; the
  // close happens as soon as the bad header is there (its payload never came).
  std::string bad = encodeClientFrame(7, 0, payloadOf(4097)).substr(0, 8);
  h.ec.feed(encodeClientFrame(1, 0, "ok") + bad + encodeClientFrame(2, 0, "never"));
  ASSERT_EQ(h.recorder.frames.size(), 1u);
  EXPECT_EQ(h.recorder.frames[0].payload, "ok");
  ASSERT_TRUE(h.ec.closed());
  EXPECT_EQ(h.ec.closeReason(), CloseReason::kFrameTooLarge);
  EXPECT_EQ(h.ec.closeDetail(), "frame length 4097 exceeds max_frame_bytes 4096 (msg_id 7)");
  EXPECT_EQ(counterValue("game_gateway_framing_errors_total",
                         {{"listener", listener}, {"reason", "frame_too_large"}}),
            1u);
}

TEST(FramingLimits, OversizeHeaderAloneIsEnough) {
  CodecChain h(R"({"max_frame_bytes": 1})");
  feedByteByByte(h.ec, std::string("\x02\x00\x05\x00\x00\x00\x00", 7));
  EXPECT_FALSE(h.ec.closed());
  h.ec.feed(std::string("\x00", 1));
  ASSERT_TRUE(h.ec.closed());
  EXPECT_EQ(h.ec.closeReason(), CloseReason::kFrameTooLarge);
  EXPECT_EQ(h.ec.closeDetail(), "frame length 2 exceeds max_frame_bytes 1 (msg_id 5)");
}

// ---- end of stream --------------------------------------------------------

TEST(FramingEof, CleanEofClosesRemoteClosedAfterFrames) {
  CodecChain h("{}");
  h.ec.feed(encodeClientFrame(1, 0, "a") + encodeClientFrame(2, 0, "b"), /*end_stream=*/true);
  EXPECT_EQ(h.recorder.frames.size(), 2u);
  ASSERT_TRUE(h.ec.closed());
  EXPECT_EQ(h.ec.closeReason(), CloseReason::kRemoteClosed);
}

TEST(FramingEof, TruncatedHeader) {
  std::string listener = listenerName();
  CodecChain h("{}", listener);
  h.ec.feed(encodeClientFrame(1, 0, "abc").substr(0, 5));
  EXPECT_FALSE(h.ec.closed());
  h.ec.feed("", /*end_stream=*/true);
  ASSERT_TRUE(h.ec.closed());
  EXPECT_EQ(h.ec.closeReason(), CloseReason::kMalformedFrame);
  EXPECT_EQ(h.ec.closeDetail(), "connection closed mid-frame: 5 of 8 header bytes");
  EXPECT_EQ(counterValue("game_gateway_framing_errors_total",
                         {{"listener", listener}, {"reason", "malformed_frame"}}),
            1u);
}

TEST(FramingEof, TruncatedPayload) {
  CodecChain h("{}");
  std::string f = encodeClientFrame(7, 0, payloadOf(100));
  h.ec.feed(encodeClientFrame(1, 0, "whole") + f.substr(0, 18), /*end_stream=*/true);
  ASSERT_EQ(h.recorder.frames.size(), 1u);
  ASSERT_TRUE(h.ec.closed());
  EXPECT_EQ(h.ec.closeReason(), CloseReason::kMalformedFrame);
  EXPECT_EQ(h.ec.closeDetail(), "connection closed mid-frame: 10 of 100 payload bytes (msg_id 7)");
}

TEST(FramingEof, EofWaitsWhilePausedThenFinishes) {
  CodecChain h("{}");
  h.recorder.on_frame = [](Frame&, FilterCallbacks& cb) {
    if (cb.readDisabled()) return;
    cb.readDisable(true);
  };
  h.ec.feed(encodeClientFrame(1, 0, "a") + encodeClientFrame(2, 0, "b"), /*end_stream=*/true);
  EXPECT_EQ(h.recorder.frames.size(), 1u);
  EXPECT_FALSE(h.ec.closed()) << "complete frames are still waiting: EOF must not close yet";
  h.recorder.on_frame = nullptr;
  h.ec.connection().readDisable(false);
  h.ec.runFor(milliseconds(200));  // the connection re-delivers the buffered bytes
  EXPECT_EQ(h.recorder.frames.size(), 2u);
  ASSERT_TRUE(h.ec.closed());
  EXPECT_EQ(h.ec.closeReason(), CloseReason::kRemoteClosed);
}

// ---- backpressure ---------------------------------------------------------

TEST(FramingBackpressure, ReadDisableStopsDecoding) {
  CodecChain h("{}");
  h.recorder.on_frame = [](Frame& f, FilterCallbacks& cb) {
    if (f.header.msg_id == 2) cb.readDisable(true);
  };
  std::string all;
  for (uint16_t i = 1; i <= 5; ++i) all += encodeClientFrame(i, 0, payloadOf(i));
  h.ec.feed(all);
  ASSERT_EQ(h.recorder.frames.size(), 2u) << "decoding must stop right after the pausing frame";
  EXPECT_EQ(h.ec.inputLength(), 3 * 8u + 3 + 4 + 5);
  // More bytes while paused: nothing is decoded.
  h.ec.feed(encodeClientFrame(6, 0, "six"));
  EXPECT_EQ(h.recorder.frames.size(), 2u);
  EXPECT_FALSE(h.ec.closed());
  // Resume: the connection re-delivers from the first filter on a later turn.
  h.ec.connection().readDisable(false);
  h.ec.runFor(milliseconds(100));
  ASSERT_EQ(h.recorder.frames.size(), 6u);
  for (uint16_t i = 0; i < 6; ++i) EXPECT_EQ(h.recorder.frames[i].header.msg_id, i + 1);
  EXPECT_EQ(h.recorder.frames[5].payload, "six");
  EXPECT_EQ(h.ec.inputLength(), 0u);
}

TEST(FramingBackpressure, CloseDuringFrameStopsDecoding) {
  std::string listener = listenerName();
  CodecChain h("{}", listener);
  h.recorder.on_frame = [](Frame&, FilterCallbacks& cb) {
    cb.close(CloseReason::kKicked, "test kick", Connection::CloseMode::kAbort);
  };
  h.ec.feed(encodeClientFrame(1, 0, "a") + encodeClientFrame(2, 0, "b") + encodeClientFrame(3, 0, "c"));
  EXPECT_EQ(h.recorder.frames.size(), 1u);
  ASSERT_TRUE(h.ec.closed());
  EXPECT_EQ(h.ec.closeReason(), CloseReason::kKicked);
  EXPECT_EQ(h.ec.inputLength(), 2 * 9u) << "frames after the close must not be decoded";
  EXPECT_EQ(counterValue("game_gateway_frames_total",
                         {{"listener", listener}, {"direction", "in"}}),
            1u);
}

// ---- timeouts -------------------------------------------------------------

TEST(FramingTimeout, ReadTimeoutOnStalledHeader) {
  std::string listener = listenerName();
  CodecChain h(R"({"read_timeout": "50ms", "idle_timeout": "0s"})", listener);
  auto start = steady_clock::now();
  h.ec.feed(std::string("\x05\x00\x07", 3));
  ASSERT_TRUE(h.ec.runUntilClosed(milliseconds(2000)));
  EXPECT_EQ(h.ec.closeReason(), CloseReason::kReadTimeout);
  EXPECT_EQ(h.ec.closeDetail(), "frame not completed within read_timeout 50ms: 3 of 8 header bytes");
  long took = elapsedMs(start, h.ec.closeTime());
  EXPECT_GE(took, 40);  // coarse clock: a tick (<= 4 ms) early at most
  EXPECT_LT(took, 1000);
  EXPECT_EQ(counterValue("game_gateway_framing_errors_total",
                         {{"listener", listener}, {"reason", "read_timeout"}}),
            1u);
}

TEST(FramingTimeout, ReadTimeoutOnStalledPayload) {
  CodecChain h(R"({"read_timeout": "50ms", "idle_timeout": "0s"})");
  h.ec.feed(encodeClientFrame(7, 0, payloadOf(10)).substr(0, 10));
  ASSERT_TRUE(h.ec.runUntilClosed(milliseconds(2000)));
  EXPECT_EQ(h.ec.closeReason(), CloseReason::kReadTimeout);
  EXPECT_EQ(h.ec.closeDetail(),
            "frame not completed within read_timeout 50ms: 2 of 10 payload bytes (msg_id 7)");
}

TEST(FramingTimeout, FrameCompletingInTimeIsFine) {
  CodecChain h(R"({"read_timeout": "200ms", "idle_timeout": "0s"})");
  std::string f = encodeClientFrame(7, 0, "payload");
  h.ec.feed(f.substr(0, 4));
  Timer rest(h.ec.dispatcher(), [&] { h.ec.feed(f.substr(4)); });
  rest.enable(milliseconds(30));
  h.ec.runFor(milliseconds(150));
  EXPECT_FALSE(h.ec.closed()) << closeReasonName(h.ec.closeReason()) << ": " << h.ec.closeDetail();
  ASSERT_EQ(h.recorder.frames.size(), 1u);
  EXPECT_EQ(h.recorder.frames[0].payload, "payload");
}

// The read timeout runs per frame, from the frame's first byte: a client that
// keeps completing frames but stalls on one is closed ~read_timeout after that
// frame started, not after the first.
TEST(FramingTimeout, ReadTimeoutIsPerFrame) {
  CodecChain h(R"({"read_timeout": "120ms", "idle_timeout": "0s"})");
  std::string f = encodeClientFrame(1, 0, "abcd");
  // Every 30 ms: finish the frame in progress and start the next one. After
  // the 4th, the 5th stalls; 4 x 30 ms is well past one read_timeout.
  int beats = 0;
  std::unique_ptr<Timer> tick;
  steady_clock::time_point last_start = steady_clock::now();
  h.ec.feed(f.substr(0, 5));
  tick = std::make_unique<Timer>(h.ec.dispatcher(), [&] {
    if (++beats <= 4) {
      h.ec.feed(f.substr(5) + f.substr(0, 5));
      last_start = steady_clock::now();
      tick->enable(milliseconds(30));
    }
  });
  tick->enable(milliseconds(30));
  ASSERT_TRUE(h.ec.runUntilClosed(milliseconds(2000)));
  EXPECT_EQ(h.ec.closeReason(), CloseReason::kReadTimeout);
  EXPECT_EQ(h.recorder.frames.size(), 4u);
  long took = elapsedMs(last_start, h.ec.closeTime());
  EXPECT_GE(took, 110);
  EXPECT_LT(took, 1000);
}

TEST(FramingTimeout, IdleTimeoutWithoutFrames) {
  std::string listener = listenerName();
  CodecChain h(R"({"idle_timeout": "100ms"})", listener);
  auto start = steady_clock::now();
  ASSERT_TRUE(h.ec.runUntilClosed(milliseconds(2000)));
  EXPECT_EQ(h.ec.closeReason(), CloseReason::kIdleTimeout);
  EXPECT_EQ(h.ec.closeDetail(), "no frame within idle_timeout 100ms");
  long took = elapsedMs(start, h.ec.closeTime());
  EXPECT_GE(took, 90);
  EXPECT_LT(took, 1500);
  EXPECT_EQ(counterValue("game_gateway_framing_errors_total",
                         {{"listener", listener}, {"reason", "idle_timeout"}}),
            1u);
}

TEST(FramingTimeout, HeartbeatsKeepConnectionAlive) {
  CodecChain h(R"({"idle_timeout": "150ms"})");
  int beats = 0;
  steady_clock::time_point last_beat;
  std::unique_ptr<Timer> tick;
  tick = std::make_unique<Timer>(h.ec.dispatcher(), [&] {
    h.ec.feed(encodeClientFrame(1, 0, ""));  // heartbeat
    last_beat = steady_clock::now();
    if (++beats < 10) tick->enable(milliseconds(30));
  });
  tick->enable(milliseconds(30));
  ASSERT_TRUE(h.ec.runUntilClosed(milliseconds(2000)));
  EXPECT_EQ(beats, 10) << "closed before the heartbeats stopped";
  EXPECT_EQ(h.recorder.frames.size(), 10u);
  EXPECT_EQ(h.ec.closeReason(), CloseReason::kIdleTimeout);
  long took = elapsedMs(last_beat, h.ec.closeTime());
  EXPECT_GE(took, 140) << "idle must count from the last frame";
  EXPECT_LT(took, 1500);
}

TEST(FramingTimeout, IdleTimeoutZeroDisables) {
  CodecChain h(R"({"idle_timeout": "0s"})");
  h.ec.runFor(milliseconds(150));
  EXPECT_FALSE(h.ec.closed());
}

TEST(FramingTimeout, PausedReadingCountsTowardNeitherTimeout) {
  CodecChain h(R"({"idle_timeout": "60ms", "read_timeout": "60ms"})");
  h.ec.feed(std::string("\x05\x00", 2));  // a frame starts
  h.ec.connection().readDisable(true);           // then something pauses reading
  h.ec.runFor(milliseconds(250));
  EXPECT_FALSE(h.ec.closed()) << closeReasonName(h.ec.closeReason()) << ": " << h.ec.closeDetail();
  auto resumed = steady_clock::now();
  h.ec.connection().readDisable(false);
  ASSERT_TRUE(h.ec.runUntilClosed(milliseconds(2000)));
  EXPECT_EQ(h.ec.closeReason(), CloseReason::kReadTimeout);
  // After the resume the client still gets a whole read_timeout.
  EXPECT_GE(elapsedMs(resumed, h.ec.closeTime()), 55);
}

TEST(FramingTimeout, PausedIdleConnectionGetsFullIdleTimeoutAfterResume) {
  CodecChain h(R"({"idle_timeout": "60ms"})");
  h.ec.connection().readDisable(true);
  h.ec.runFor(milliseconds(250));
  EXPECT_FALSE(h.ec.closed()) << closeReasonName(h.ec.closeReason()) << ": " << h.ec.closeDetail();
  auto resumed = steady_clock::now();
  h.ec.connection().readDisable(false);
  ASSERT_TRUE(h.ec.runUntilClosed(milliseconds(2000)));
  EXPECT_EQ(h.ec.closeReason(), CloseReason::kIdleTimeout);
  EXPECT_GE(elapsedMs(resumed, h.ec.closeTime()), 55);
}

// ---- write path -----------------------------------------------------------

TEST(FramingEncode, SendFrameEncodesHeader) {
  CodecChain h("{}");
  h.recorder.callbacks->sendFrame(0x0102, 0, "hello");
  EXPECT_EQ(h.ec.takeOutput(), std::string("\x05\x00\x02\x01\x00\x00\x00\x00hello", 13));
}

TEST(FramingEncode, WriteFrameMovesExactlyThePayload) {
  std::string listener = listenerName();
  CodecChain h("{}", listener);
  evbuffer* src = evbuffer_new();
  evbuffer_add(src, "payloadTAIL", 11);
  wire::ClientHeader hd;
  hd.length = 7;
  hd.msg_id = 0xBEEF;
  hd.server_id = 0x8003C801;
  Frame f(hd, src);
  h.recorder.callbacks->writeFrame(f);
  EXPECT_TRUE(f.consumed());
  EXPECT_EQ(h.ec.takeOutput(), std::string("\x07\x00\xEF\xBE\x01\xC8\x03\x80payload", 15));
  ASSERT_EQ(evbuffer_get_length(src), 4u) << "bytes after the payload must stay in the source";
  char tail[4];
  evbuffer_remove(src, tail, 4);
  EXPECT_EQ(std::string(tail, 4), "TAIL");
  evbuffer_free(src);
  EXPECT_EQ(counterValue("game_gateway_frames_total",
                         {{"listener", listener}, {"direction", "out"}}),
            1u);
  EXPECT_EQ(counterValue("game_gateway_frame_bytes_total",
                         {{"listener", listener}, {"direction", "out"}}),
            15u);
}

TEST(FramingEncode, ZeroLengthFrame) {
  CodecChain h("{}");
  h.recorder.callbacks->sendFrame(0xFFFF, 0, "");
  EXPECT_EQ(h.ec.takeOutput(), std::string("\x00\x00\xFF\xFF\x00\x00\x00\x00", 8));
}

TEST(FramingEncode, EchoRoundTrip) {
  CodecChain h("{}");
  h.recorder.on_frame = [](Frame& f, FilterCallbacks& cb) { cb.writeFrame(f); };
  std::string all;
  for (int i = 0; i < 50; ++i)
    all += encodeClientFrame(static_cast<uint16_t>(i), kServerId, payloadOf(i * 3));
  for (size_t off = 0; off < all.size(); off += 100) h.ec.feed(all.substr(off, 100));
  EXPECT_EQ(h.recorder.frames.size(), 50u);
  EXPECT_EQ(h.ec.takeOutput(), all);
  EXPECT_EQ(h.ec.inputLength(), 0u);
}

TEST(FramingEncode, LargeFrameFromBackendBuffer) {
  CodecChain h("{}");
  std::string payload = payloadOf(65535);
  evbuffer* src = evbuffer_new();
  evbuffer_add(src, payload.data(), payload.size());
  wire::ClientHeader hd;
  hd.length = 65535;
  hd.msg_id = 3;
  Frame f(hd, src);
  h.recorder.callbacks->writeFrame(f);
  EXPECT_EQ(evbuffer_get_length(src), 0u);
  EXPECT_EQ(h.ec.takeOutput(), encodeClientFrame(3, 0, payload));
  evbuffer_free(src);
}

TEST(FramingEncode, ShortPayloadIsRefused) {
  CodecChain h("{}");
  evbuffer* src = evbuffer_new();
  evbuffer_add(src, "abc", 3);
  wire::ClientHeader hd;
  hd.length = 10;
  Frame f(hd, src);
  h.recorder.callbacks->writeFrame(f);
  EXPECT_EQ(h.ec.takeOutput(), "") << "a header promising missing bytes would desync the client";
  ASSERT_TRUE(h.ec.closed());
  EXPECT_EQ(h.ec.closeReason(), CloseReason::kFilterError);
  evbuffer_free(src);
}

// A bytes-layer filter below the codec that observes writes (so the chain
// stages bytes instead of writing straight to the socket buffer).
class ObservingBytesFilter : public Filter {
 public:
  explicit ObservingBytesFilter(std::string* seen) : seen_(seen) {}
  FilterStatus onWriteData(evbuffer* data, bool) override {
    std::string s(evbuffer_get_length(data), '\0');
    evbuffer_copyout(data, &s[0], s.size());
    *seen_ += s;
    return FilterStatus::kContinue;
  }

 private:
  std::string* seen_;
};

class ObservingBytesFactory : public FilterFactory {
 public:
  std::unique_ptr<Filter> createFilter() override {
    return std::make_unique<ObservingBytesFilter>(&seen);
  }
  static FilterTraits traits() {
    FilterTraits t;
    t.observes_writes = true;
    return t;
  }
  std::string seen;
};

TEST(FramingEncode, ThroughObservingBytesFilter) {
  ObservingBytesFactory observer;
  CodecChain h("{}", "test", {{&observer, ObservingBytesFactory::traits()}});
  h.ec.feed(encodeClientFrame(4, 0, "in"));
  ASSERT_EQ(h.recorder.frames.size(), 1u);
  h.recorder.callbacks->sendFrame(0x0102, 0, "hello");
  std::string want("\x05\x00\x02\x01\x00\x00\x00\x00hello", 13);
  EXPECT_EQ(h.ec.takeOutput(), want);
  EXPECT_EQ(observer.seen, want);
}

// ---- metrics --------------------------------------------------------------

TEST(FramingMetrics, CountsFramesAndBytesIn) {
  std::string listener = listenerName();
  CodecChain h("{}", listener);
  h.ec.feed(encodeClientFrame(1, 0, "abc") + encodeClientFrame(2, 0, "") + encodeClientFrame(3, 0, "x").substr(0, 4));
  h.ec.feed(encodeClientFrame(3, 0, "x").substr(4));
  EXPECT_EQ(counterValue("game_gateway_frames_total",
                         {{"listener", listener}, {"direction", "in"}}),
            3u);
  EXPECT_EQ(counterValue("game_gateway_frame_bytes_total",
                         {{"listener", listener}, {"direction", "in"}}),
            8u + 3 + 8 + 8 + 1);
  EXPECT_NE(stats::StatsRegistry::get().serialize().find(
                "game_gateway_frames_total{listener=\"" + listener + "\",direction=\"in\"} 3"),
            std::string::npos);
}

// ---- config ---------------------------------------------------------------

TEST(FramingConfig, Defaults) {
  auto cfg = parseFramingConfig("{}");
  EXPECT_EQ(cfg->max_frame_bytes, 65535u);
  EXPECT_EQ(cfg->read_timeout, milliseconds(30000));
  EXPECT_EQ(cfg->idle_timeout, milliseconds(300000));
}

TEST(FramingConfig, AllFields) {
  auto cfg = parseFramingConfig(
      R"({"max_frame_bytes": 1024, "read_timeout": "2s", "idle_timeout": "1h"})");
  EXPECT_EQ(cfg->max_frame_bytes, 1024u);
  EXPECT_EQ(cfg->read_timeout, milliseconds(2000));
  EXPECT_EQ(cfg->idle_timeout, milliseconds(3600 * 1000));
}

// The per-connection state stays within one cache line (framing.h).
// 72 bytes: glibc serves requests of 57..72 bytes from the same 80-byte chunk.
TEST(FramingFilterState, FitsIn72Bytes) { EXPECT_LE(sizeof(framing::FramingFilter), 72u); }

TEST(FramingConfig, Traits) {
  const FilterConfigFactory* f = FilterRegistry::get().find("framing");
  ASSERT_NE(f, nullptr);
  EXPECT_EQ(f->traits().consumes, Layer::kBytes);
  EXPECT_EQ(f->traits().produces, Layer::kFrames);
  EXPECT_FALSE(f->traits().terminal);
  EXPECT_FALSE(f->traits().observes_writes);
}

// Each bad config is refused with the JSON pointer of the bad field.
TEST(FramingConfig, Rejected) {
  struct Case {
    const char* json;
    const char* pointer;
  };
  const Case cases[] = {
      {R"({"max_frame_bytes": 0})", "/max_frame_bytes"},
      {R"({"max_frame_bytes": 65536})", "/max_frame_bytes"},
      {R"({"max_frame_bytes": "big"})", "/max_frame_bytes"},
      {R"({"read_timeout": "30"})", "/read_timeout"},
      {R"({"read_timeout": "0s"})", "/read_timeout"},
      {R"({"read_timeout": "31d"})", "/read_timeout"},
      {R"({"idle_timeout": 5})", "/idle_timeout"},
      {R"({"idle_timeout": "9999h"})", "/idle_timeout"},
      {R"({"max_frame_size": 10})", "/max_frame_size"},
  };
  for (const Case& c : cases) {
    try {
      parseFramingConfig(c.json);
      ADD_FAILURE() << "accepted " << c.json;
    } catch (const std::runtime_error& e) {
      std::string msg = e.what();
      EXPECT_EQ(msg.rfind(std::string(c.pointer) + ":", 0), 0u)
          << c.json << " -> " << msg;
    }
  }
}

// A duration the schema's pattern allows but over the 30-day limit is a
// clean error naming the field; the limit itself is accepted.
TEST(FramingConfig, DurationOverTheLimitIsAnError) {
  for (const char* key : {"read_timeout", "idle_timeout"}) {
    try {
      parseFramingConfig(std::string(R"({")") + key + R"(": "721h"})");
      ADD_FAILURE() << key << " 721h accepted";
    } catch (const std::runtime_error& e) {
      EXPECT_EQ(std::string(e.what()),
                std::string("/") + key + ": must be a duration from " +
                    (std::string(key) == "read_timeout" ? "1ms" : "0ms") +
                    " to 720h (digits then ms, s, m or h: \"250ms\", \"30s\", \"5m\"), got "
                    "\"721h\"");
    }
    EXPECT_NO_THROW(parseFramingConfig(std::string(R"({")") + key + R"(": "720h"})"));
  }
}

TEST(FramingConfig, DescribeShowsTheSettingsInForce) {
  rapidjson::Document doc(rapidjson::kObjectType);
  parseFramingConfig(R"({"read_timeout": "1500ms"})")->describe(doc, doc.GetAllocator());
  EXPECT_EQ(doc.MemberCount(), 5u);
  EXPECT_EQ(doc["max_frame_bytes"].GetUint64(), 65535u);
  EXPECT_STREQ(doc["read_timeout"].GetString(), "1500ms");
  EXPECT_STREQ(doc["idle_timeout"].GetString(), "5m");
  rapidjson::Document off(rapidjson::kObjectType);
  parseFramingConfig(R"({"idle_timeout": "0s"})")->describe(off, off.GetAllocator());
  EXPECT_STREQ(off["idle_timeout"].GetString(), "0ms") << "0: idle timeout off";
}

}  // namespace
}  // namespace framing_test
}  // namespace gw
