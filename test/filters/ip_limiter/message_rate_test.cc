// Unit tests of MessageRateTracker over a plain evbuffer standing in for a
// connection's input, with a stand-in codec that (like `framing`) consumes
// only whole frames: counting, close on excess, dropping whole frames even
// when they arrive in pieces, and keeping the stream in sync.
#include "filters/ip_limiter/message_rate.h"

#include <event2/buffer.h>
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/sdk/wire.h"

namespace gw {
namespace ip_limiter {
namespace {

constexpr int64_t kMs = 1000 * 1000;

std::string frame(uint16_t msg_id, const std::string& payload) {
  uint8_t h[8];
  wire::ClientHeader ch;
  ch.length = static_cast<uint16_t>(payload.size());
  ch.msg_id = msg_id;
  ch.server_id = 0x00c80001;
  ch.encode(h);
  return std::string(reinterpret_cast<char*>(h), 8) + payload;
}

class Harness : public MessageRateTracker::DropSink {
 public:
  Harness(double rate, uint32_t burst, MessageRateTracker::Action action)
      : buf_(evbuffer_new()), tracker_(RateSpec::make(rate, burst), action) {
    tracker_.attach(buf_);
  }
  ~Harness() override {
    tracker_.detach();
    evbuffer_free(buf_);
  }
  // One read: append, scan, then let the "codec" take whole frames.
  MessageRateTracker::Result feed(const std::string& bytes, int64_t now) {
    evbuffer_add(buf_, bytes.data(), bytes.size());
    MessageRateTracker::Result r = tracker_.scan(now, this);
    decode();
    return r;
  }
  // Bytes dribbling in `step` at a time (one scan per piece).
  MessageRateTracker::Result feedInPieces(const std::string& bytes, size_t step, int64_t now) {
    MessageRateTracker::Result total;
    for (size_t i = 0; i < bytes.size(); i += step) {
      auto r = feed(bytes.substr(i, step), now);
      total.frames += r.frames;
      total.dropped += r.dropped;
      total.exceeded |= r.exceeded;
    }
    return total;
  }
  void decode() {
    for (;;) {
      size_t len = evbuffer_get_length(buf_);
      if (len < 8) return;
      uint8_t h[8];
      evbuffer_copyout(buf_, h, 8);
      auto ch = wire::ClientHeader::decode(h);
      if (len < 8u + ch.length) return;
      evbuffer_drain(buf_, 8);
      std::string p(ch.length, '\0');
      evbuffer_remove(buf_, &p[0], ch.length);
      decoded.push_back(std::to_string(ch.msg_id) + ":" + p);
    }
  }
  void onFrameDropped(uint16_t msg_id) override { dropped_ids.push_back(msg_id); }

  std::vector<std::string> decoded;
  std::vector<uint16_t> dropped_ids;
  size_t buffered() const { return evbuffer_get_length(buf_); }
  MessageRateTracker& tracker() { return tracker_; }

 private:
  evbuffer* buf_;
  MessageRateTracker tracker_;
};

TEST(MessageRateTest, CountsFramesWithinBurst) {
  Harness h(10, 3, MessageRateTracker::Action::kClose);
  auto r = h.feed(frame(1, "a") + frame(2, "") + frame(3, std::string(1000, 'z')), 0);
  EXPECT_EQ(r.frames, 3u);
  EXPECT_FALSE(r.exceeded);
  ASSERT_EQ(h.decoded.size(), 3u);
  EXPECT_EQ(h.decoded[1], "2:");
  EXPECT_EQ(h.tracker().tokens(0), 0);
}

TEST(MessageRateTest, CloseActionStopsAtTheFirstFrameOverTheLimit) {
  Harness h(10, 2, MessageRateTracker::Action::kClose);
  EXPECT_FALSE(h.feed(frame(1, "a") + frame(2, "b"), 0).exceeded);
  auto r = h.feed(frame(3, "c"), 50 * kMs);  // half a token refilled: not enough
  EXPECT_TRUE(r.exceeded);
  // After 100 ms one token is back.
  Harness h2(10, 2, MessageRateTracker::Action::kClose);
  h2.feed(frame(1, "a") + frame(2, "b"), 0);
  EXPECT_FALSE(h2.feed(frame(3, "c"), 100 * kMs).exceeded);
}

TEST(MessageRateTest, DropActionCutsOutWholeFramesAndKeepsTheRest) {
  Harness h(10, 2, MessageRateTracker::Action::kDrop);
  std::string in =
      frame(1, "one") + frame(2, "two") + frame(3, "three") + frame(4, "") + frame(5, "five");
  auto r = h.feed(in, 0);
  EXPECT_EQ(r.frames, 5u);
  EXPECT_EQ(r.dropped, 3u);
  EXPECT_EQ(h.dropped_ids, (std::vector<uint16_t>{3, 4, 5}));
  EXPECT_EQ(h.decoded, (std::vector<std::string>{"1:one", "2:two"}));
  EXPECT_EQ(h.buffered(), 0u);
  // Refilled: the stream is still in sync.
  r = h.feed(frame(6, "six") + frame(7, "seven"), 200 * kMs);
  EXPECT_EQ(r.dropped, 0u);
  EXPECT_EQ(h.decoded.back(), "7:seven");
  EXPECT_EQ(h.decoded.size(), 4u);
}

TEST(MessageRateTest, DropsAFrameInTheMiddleOfABuffer) {
  // The over-limit frame sits between frames still buffered before it (the
  // codec has not run yet) and after it: both neighbours survive intact.
  Harness h(1, 1, MessageRateTracker::Action::kDrop);
  std::string in = frame(1, "keep-me") + frame(2, "drop-me") + frame(3, "drop-me-too");
  auto r = h.feed(in, 0);
  EXPECT_EQ(r.dropped, 2u);
  EXPECT_EQ(h.decoded, (std::vector<std::string>{"1:keep-me"}));
  r = h.feed(frame(4, "later"), 1000 * kMs);
  EXPECT_EQ(r.dropped, 0u);
  EXPECT_EQ(h.decoded.back(), "4:later");
}

TEST(MessageRateTest, DroppedFrameArrivingInPiecesIsCutAsItArrives) {
  Harness h(1, 1, MessageRateTracker::Action::kDrop);
  std::string big(5000, 'B');
  std::string in = frame(1, "first") + frame(2, big) + frame(3, "third");
  // Byte by byte, then in odd-sized pieces: the result is the same.
  for (size_t step : {1, 3, 7, 1000}) {
    Harness hh(1, 1, MessageRateTracker::Action::kDrop);
    auto r = hh.feedInPieces(in, step, 0);
    EXPECT_EQ(r.frames, 3u) << step;
    EXPECT_EQ(r.dropped, 2u) << step;
    EXPECT_EQ(hh.decoded, (std::vector<std::string>{"1:first"})) << step;
    EXPECT_EQ(hh.dropped_ids, (std::vector<uint16_t>{2, 3})) << step;
    EXPECT_EQ(hh.buffered(), 0u) << step;
    auto later = hh.feedInPieces(frame(9, "ok"), step, 1000 * kMs);
    EXPECT_EQ(later.dropped, 0u);
    ASSERT_EQ(hh.decoded.size(), 2u) << step;
    EXPECT_EQ(hh.decoded[1], "9:ok") << step;
  }
}

TEST(MessageRateTest, AllowedFramesSplitAcrossReadsAreCountedOnce) {
  Harness h(1000, 1000, MessageRateTracker::Action::kClose);
  std::string in;
  for (int i = 0; i < 50; ++i) in += frame(static_cast<uint16_t>(i), std::string(i * 3, 'x'));
  auto r = h.feedInPieces(in, 5, 0);
  EXPECT_EQ(r.frames, 50u);
  EXPECT_EQ(h.decoded.size(), 50u);
  EXPECT_EQ(h.tracker().tokens(0), 950);
}

TEST(MessageRateTest, StaysInSyncWhenAConsumerTakesPartialFrames) {
  // A greedy consumer (like tcp_proxy) drains everything, including half a
  // header: the tracker keeps the header bytes it saw and stays in sync.
  evbuffer* buf = evbuffer_new();
  {
    MessageRateTracker t(RateSpec::make(1000, 100), MessageRateTracker::Action::kClose);
    t.attach(buf);
    std::string in = frame(1, "abc") + frame(2, "defg") + frame(3, "");
    uint32_t frames = 0;
    for (size_t i = 0; i < in.size(); i += 3) {
      std::string piece = in.substr(i, 3);
      evbuffer_add(buf, piece.data(), piece.size());
      frames += t.scan(0, nullptr).frames;
      evbuffer_drain(buf, evbuffer_get_length(buf));
    }
    EXPECT_EQ(frames, 3u);
    EXPECT_EQ(t.tokens(0), 97);
  }
  evbuffer_free(buf);
}

TEST(MessageRateTest, RescanWithoutNewBytesCountsNothing) {
  // Redelivery after a pause calls onData again with the same bytes.
  Harness h(10, 5, MessageRateTracker::Action::kClose);
  std::string f = frame(1, "partial-payload");
  h.feed(f.substr(0, 10), 0);
  EXPECT_EQ(h.tracker().tokens(0), 4);
  EXPECT_EQ(h.tracker().scan(0, nullptr).frames, 0u);
  EXPECT_EQ(h.tracker().tokens(0), 4);
}

}  // namespace
}  // namespace ip_limiter
}  // namespace gw
