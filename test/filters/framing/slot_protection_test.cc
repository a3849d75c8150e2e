// test/filters/framing/slot_protection_test.cc — the codec's slot protection
// (issue 14, item 3): the first-frame deadline (first_frame_timeout) and the
// minimum-progress rule for dribbled frames (slow_frame_time), each against
// a client that must be closed and a well-behaved one that must not.
#include <gtest/gtest.h>

#include <chrono>
#include <memory>
#include <string>

#include "core/sdk/close_reason.h"
#include "core/sdk/dispatcher.h"
#include "test/filters/framing/codec_chain.h"

namespace gw {
namespace framing_test {
namespace {

std::string why(const EmbeddedChain& ec) {
  return std::string(closeReasonName(ec.closeReason())) + ": " + ec.closeDetail();
}

// Feeds `bytes` one byte every `every`, from now, over and over (a dribbler);
// stops when the connection closes or the object goes away.
class Dribbler {
 public:
  Dribbler(EmbeddedChain& ec, std::string bytes, milliseconds every)
      : ec_(ec), bytes_(std::move(bytes)), every_(every),
        timer_(ec.dispatcher(), [this] { step(); }) {
    timer_.enable(every_);
  }
  size_t fed() const { return fed_; }

 private:
  void step() {
    if (ec_.closed()) return;
    ec_.feed(std::string_view(&bytes_[fed_ % bytes_.size()], 1));
    ++fed_;
    timer_.enable(every_);
  }
  EmbeddedChain& ec_;
  const std::string bytes_;
  const milliseconds every_;
  Timer timer_;
  size_t fed_ = 0;
};

// Feeds a whole zero-length frame (a heartbeat) every `every`.
class Heartbeat {
 public:
  Heartbeat(EmbeddedChain& ec, milliseconds every)
      : ec_(ec), every_(every), timer_(ec.dispatcher(), [this] { beat(); }) {
    timer_.enable(every_);
  }

 private:
  void beat() {
    if (ec_.closed()) return;
    ec_.feed(encodeClientFrame(1, 0, ""));
    timer_.enable(every_);
  }
  EmbeddedChain& ec_;
  const milliseconds every_;
  Timer timer_;
};

// ---- first_frame_timeout ---------------------------------------------------

// Today's defect: a silent socket held its slot for the whole idle_timeout.
TEST(FramingFirstFrame, SilentConnectionClosesAtTheDeadline) {
  std::string listener = listenerName();
  CodecChain h(R"({"first_frame_timeout": "100ms"})", listener);  // idle_timeout 5m
  auto start = steady_clock::now();
  ASSERT_TRUE(h.ec.runUntilClosed(milliseconds(2000))) << "a silent connection kept its slot";
  EXPECT_EQ(h.ec.closeReason(), CloseReason::kFirstFrameTimeout) << why(h.ec);
  EXPECT_EQ(h.ec.closeDetail(), "no complete frame within first_frame_timeout 100ms of connect");
  long took = elapsedMs(start, h.ec.closeTime());
  EXPECT_GE(took, 90);
  EXPECT_LT(took, 1500);
  EXPECT_EQ(counterValue("game_gateway_framing_errors_total",
                         {{"listener", listener}, {"reason", "first_frame_timeout"}}),
            1u);
}

TEST(FramingFirstFrame, FrameInTimeKeepsTheConnection) {
  CodecChain h(R"({"first_frame_timeout": "100ms"})");
  Timer first(h.ec.dispatcher(), [&] { h.ec.feed(encodeClientFrame(7, 0, "login")); });
  first.enable(milliseconds(30));
  h.ec.runFor(milliseconds(400));
  EXPECT_FALSE(h.ec.closed()) << why(h.ec);
  ASSERT_EQ(h.recorder.frames.size(), 1u);
  EXPECT_EQ(h.recorder.frames[0].payload, "login");
}

// The deadline covers the whole first frame: starting it in time is not enough.
TEST(FramingFirstFrame, DribbledFirstFrameClosesAtTheDeadline) {
  CodecChain h(R"({"first_frame_timeout": "100ms", "read_timeout": "30s"})");
  auto start = steady_clock::now();
  Dribbler d(h.ec, encodeClientFrame(7, 0, "login"), milliseconds(15));
  ASSERT_TRUE(h.ec.runUntilClosed(milliseconds(2000)));
  EXPECT_EQ(h.ec.closeReason(), CloseReason::kFirstFrameTimeout) << why(h.ec);
  EXPECT_EQ(h.ec.closeDetail().rfind(
                "no complete frame within first_frame_timeout 100ms of connect: ", 0),
            0u)
      << h.ec.closeDetail();
  EXPECT_LT(elapsedMs(start, h.ec.closeTime()), 1000);
  EXPECT_TRUE(h.recorder.frames.empty());
}

// A shorter read_timeout still governs a stalled first frame.
TEST(FramingFirstFrame, ShorterReadTimeoutStillApplies) {
  CodecChain h(R"({"first_frame_timeout": "2s", "read_timeout": "50ms"})");
  auto start = steady_clock::now();
  h.ec.feed(std::string("\x05\x00\x07", 3));
  ASSERT_TRUE(h.ec.runUntilClosed(milliseconds(1500)));
  EXPECT_EQ(h.ec.closeReason(), CloseReason::kReadTimeout) << why(h.ec);
  EXPECT_LT(elapsedMs(start, h.ec.closeTime()), 1000);
}

// A shorter idle_timeout wins over the first-frame deadline.
TEST(FramingFirstFrame, ShorterIdleTimeoutStillApplies) {
  CodecChain h(R"({"first_frame_timeout": "2s", "idle_timeout": "50ms"})");
  ASSERT_TRUE(h.ec.runUntilClosed(milliseconds(1500)));
  EXPECT_EQ(h.ec.closeReason(), CloseReason::kIdleTimeout) << why(h.ec);
}

// After the first frame, idle_timeout (not the deadline) governs.
TEST(FramingFirstFrame, AfterTheFirstFrameIdleTimeoutGoverns) {
  CodecChain h(R"({"first_frame_timeout": "60ms", "idle_timeout": "400ms"})");
  h.ec.feed(encodeClientFrame(7, 0, "login"));
  h.ec.runFor(milliseconds(200));
  EXPECT_FALSE(h.ec.closed()) << why(h.ec);
  ASSERT_TRUE(h.ec.runUntilClosed(milliseconds(2000)));
  EXPECT_EQ(h.ec.closeReason(), CloseReason::kIdleTimeout) << why(h.ec);
}

TEST(FramingFirstFrame, ZeroDisables) {
  CodecChain h(R"({"first_frame_timeout": "0s", "idle_timeout": "0s"})");
  h.ec.runFor(milliseconds(150));
  EXPECT_FALSE(h.ec.closed()) << why(h.ec);
}

// ---- slow_frame_time: minimum progress ------------------------------------

// Today's defect: zero-length frames dribbled a byte at a time each restart
// idle_timeout, so the connection holds its slot forever. Every frame here
// takes 8 x 15 ms = 120 ms > slow_frame_time; the client must be closed
// about idle_timeout after its last prompt frame (the login).
TEST(FramingMinimumProgress, DribbledEmptyFramesAreClosed) {
  std::string listener = listenerName();
  CodecChain h(R"({"idle_timeout": "300ms", "slow_frame_time": "50ms"})", listener);
  h.ec.feed(encodeClientFrame(7, 0, "login"));
  auto login = steady_clock::now();
  Dribbler d(h.ec, encodeClientFrame(1, 0, ""), milliseconds(15));
  ASSERT_TRUE(h.ec.runUntilClosed(milliseconds(3000))) << "the dribbler kept its slot";
  EXPECT_GT(h.recorder.frames.size(), 2u) << "slow frames are still passed on";
  EXPECT_EQ(h.ec.closeReason(), CloseReason::kIdleTimeout) << why(h.ec);
  EXPECT_NE(h.ec.closeDetail().find("slow frame"), std::string::npos) << h.ec.closeDetail();
  long took = elapsedMs(login, h.ec.closeTime());
  EXPECT_GE(took, 290);
  // Bound: idle_timeout after the last prompt frame, plus one slow frame.
  EXPECT_LT(took, 300 + 120 + 500);
  EXPECT_GE(counterValue("game_gateway_framing_slow_frames_total", {{"listener", listener}}), 2u);
}

// Same for dribbled frames with a payload.
TEST(FramingMinimumProgress, DribbledFramesWithPayloadAreClosed) {
  CodecChain h(R"({"idle_timeout": "300ms", "slow_frame_time": "50ms"})");
  h.ec.feed(encodeClientFrame(7, 0, "login"));
  Dribbler d(h.ec, encodeClientFrame(2, 0, "xy"), milliseconds(10));
  ASSERT_TRUE(h.ec.runUntilClosed(milliseconds(3000))) << "the dribbler kept its slot";
  EXPECT_EQ(h.ec.closeReason(), CloseReason::kIdleTimeout) << why(h.ec);
}

// A client sending whole heartbeat frames is never closed, under the same
// settings.
TEST(FramingMinimumProgress, HeartbeatsKeepTheConnection) {
  std::string listener = listenerName();
  CodecChain h(R"({"idle_timeout": "300ms", "slow_frame_time": "50ms"})", listener);
  h.ec.feed(encodeClientFrame(7, 0, "login"));
  Heartbeat beat(h.ec, milliseconds(60));
  h.ec.runFor(milliseconds(1200));
  EXPECT_FALSE(h.ec.closed()) << why(h.ec);
  EXPECT_GE(h.recorder.frames.size(), 10u);
  EXPECT_EQ(counterValue("game_gateway_framing_slow_frames_total", {{"listener", listener}}), 0u);
}

// A frame split over reads that completes within slow_frame_time is activity.
TEST(FramingMinimumProgress, SplitButPromptFramesKeepTheConnection) {
  CodecChain h(R"({"idle_timeout": "300ms", "slow_frame_time": "50ms"})");
  h.ec.feed(encodeClientFrame(7, 0, "login"));
  std::string f = encodeClientFrame(3, 0, payloadOf(100));
  int sent = 0;
  std::unique_ptr<Timer> tick;
  tick = std::make_unique<Timer>(h.ec.dispatcher(), [&] {
    h.ec.feed(f.substr(0, 50));
    h.ec.dispatcher().post([&] { h.ec.feed(f.substr(50)); });
    if (++sent < 15) tick->enable(milliseconds(60));
  });
  tick->enable(milliseconds(60));
  h.ec.runFor(milliseconds(1000));
  EXPECT_FALSE(h.ec.closed()) << why(h.ec);
  EXPECT_EQ(h.recorder.frames.size(), 16u);
}

TEST(FramingMinimumProgress, ZeroDisables) {
  CodecChain h(R"({"idle_timeout": "300ms", "slow_frame_time": "0s"})");
  h.ec.feed(encodeClientFrame(7, 0, "login"));
  Dribbler d(h.ec, encodeClientFrame(1, 0, ""), milliseconds(15));
  h.ec.runFor(milliseconds(900));
  EXPECT_FALSE(h.ec.closed()) << why(h.ec);
}

// ---- config ---------------------------------------------------------------

TEST(FramingSlotConfig, Defaults) {
  auto cfg = parseFramingConfig("{}");
  EXPECT_EQ(cfg->first_frame_timeout, milliseconds(5000));
  EXPECT_EQ(cfg->slow_frame_time, milliseconds(2000));
}

TEST(FramingSlotConfig, Rejected) {
  for (const char* json : {R"({"first_frame_timeout": "5"})", R"({"first_frame_timeout": "721h"})",
                           R"({"slow_frame_time": 2})", R"({"slow_frame_time": "721h"})"}) {
    try {
      parseFramingConfig(json);
      ADD_FAILURE() << "accepted " << json;
    } catch (const std::runtime_error& e) {
      std::string key = std::string(json).substr(2, std::string(json).find('"', 2) - 2);
      EXPECT_EQ(std::string(e.what()).rfind("/" + key + ":", 0), 0u) << json << " -> " << e.what();
    }
  }
}

TEST(FramingSlotConfig, Described) {
  rapidjson::Document doc(rapidjson::kObjectType);
  parseFramingConfig(R"({"first_frame_timeout": "3s", "slow_frame_time": "0s"})")
      ->describe(doc, doc.GetAllocator());
  EXPECT_STREQ(doc["first_frame_timeout"].GetString(), "3s");
  EXPECT_STREQ(doc["slow_frame_time"].GetString(), "0ms");
}

}  // namespace
}  // namespace framing_test
}  // namespace gw
