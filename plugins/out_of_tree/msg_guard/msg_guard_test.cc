// msg_guard/msg_guard_test.cc — msg_guard on the SDK's embedded chain
// (framing -> msg_guard -> a terminal that records frames), and its config
// errors.
#include "msg_guard/msg_guard.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "core/sdk/error_frame.h"
#include "core/sdk/testing/embedded_chain.h"
#include "core/sdk/wire.h"

namespace studio {
namespace {

using gw::test::EmbeddedChain;

// A client frame: 8-byte header, then the payload.
std::string clientFrame(uint16_t msg_id, const std::string& payload) {
  gw::wire::ClientHeader h;
  h.length = static_cast<uint16_t>(payload.size());
  h.msg_id = msg_id;
  std::string out(gw::wire::kClientHeaderSize, '\0');
  h.encode(reinterpret_cast<uint8_t*>(&out[0]));
  return out + payload;
}

// The terminal: records each frame's msg_id and drops its payload.
class Recorder : public gw::Filter {
 public:
  explicit Recorder(std::vector<uint16_t>& seen) : seen_(seen) {}
  gw::FilterStatus onFrame(gw::Frame& frame) override {
    seen_.push_back(frame.header.msg_id);
    frame.discardPayload();
    return gw::FilterStatus::kStopIteration;
  }

 private:
  std::vector<uint16_t>& seen_;
};

struct Chain {
  std::vector<uint16_t> seen;
  gw::test::FunctionFilterFactory terminal{[this] { return std::make_unique<Recorder>(seen); }};
  EmbeddedChain ec;
  std::string error;

  explicit Chain(const std::string& config) {
    auto framing = ec.registered("framing", "{}");
    auto guard = ec.registered("msg_guard", config, {}, &error);
    if (!framing || !guard) return;
    ec.start({*framing, *guard, {&terminal, gw::FilterTraits::framesTerminal()}});
  }
};

TEST(MsgGuard, DeniedFrameGetsNoRouteAndConnectionStaysOpen) {
  Chain c(R"({"deny_msg_ids": [7, 3]})");
  ASSERT_EQ(c.error, "");
  c.ec.feed(clientFrame(7, "nope") + clientFrame(8, "yes"));
  EXPECT_EQ(c.seen, std::vector<uint16_t>{8});
  EXPECT_EQ(c.ec.takeOutput(),
            clientFrame(gw::kErrorMsgId, gw::errorFramePayload(gw::ErrorCode::kNoRoute, 7)));
  EXPECT_FALSE(c.ec.closed());
}

TEST(MsgGuard, ClosesAfterMaxFrames) {
  Chain c(R"({"max_frames_per_connection": 2})");
  ASSERT_EQ(c.error, "");
  c.ec.feed(clientFrame(1, "a") + clientFrame(2, "b"));
  EXPECT_FALSE(c.ec.closed());
  c.ec.feed(clientFrame(3, "c"));
  EXPECT_TRUE(c.ec.closed());
  EXPECT_EQ(c.ec.closeReason(), gw::CloseReason::kFilterError);
  EXPECT_EQ(c.ec.closeDetail(), "msg_guard: more than 2 frames on one connection");
  EXPECT_EQ(c.seen, (std::vector<uint16_t>{1, 2}));
}

TEST(MsgGuard, CountsDenialsInItsMetric) {
  Chain c(R"({"deny_msg_ids": [5]})");
  ASSERT_EQ(c.error, "");
  // The counter is per listener, shared by every config parsed for it.
  auto built = gw::test::buildFilter("msg_guard", R"({"deny_msg_ids": [5]})",
                                     c.ec.dispatcher(), c.ec.services());
  ASSERT_NE(built, nullptr);
  const auto& cfg = static_cast<const MsgGuardConfig&>(*built->config);
  uint64_t before = cfg.denied->value();
  c.ec.feed(clientFrame(5, "") + clientFrame(5, ""));
  EXPECT_EQ(cfg.denied->value(), before + 2);
}

TEST(MsgGuard, DuplicateDeniedIdIsAnErrorAtItsPointer) {
  Chain c(R"({"deny_msg_ids": [4, 9, 4]})");
  EXPECT_NE(c.error.find("/deny_msg_ids/2"), std::string::npos) << c.error;
  EXPECT_NE(c.error.find("msg_id 4 is listed twice"), std::string::npos) << c.error;
}

TEST(MsgGuard, SchemaRefusesUnknownKeysAndOutOfRangeIds) {
  Chain unknown(R"({"deny": [1]})");
  EXPECT_NE(unknown.error, "");
  Chain range(R"({"deny_msg_ids": [65536]})");
  EXPECT_NE(range.error.find("/deny_msg_ids/0"), std::string::npos) << range.error;
}

}  // namespace
}  // namespace studio
