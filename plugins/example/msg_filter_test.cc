// plugins/example/msg_filter_test.cc — example_msg_filter on the embedded
// chain (core/sdk/testing/embedded_chain.h): the real `framing` codec, then
// the filter, then a terminal that records what reached it. No sockets: the
// test feeds client bytes and reads what the chain wrote back.
//
// Covers: config errors (schema and parser, each with its JSON pointer and
// how to fix it), a refused frame answered with the error frame and its
// payload dropped, an allowed frame passed on untouched, close_after, the
// metric, and describe().
#include "plugins/example/msg_filter.h"

#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <memory>
#include <string>
#include <vector>

#include "core/sdk/error_frame.h"
#include "core/sdk/testing/embedded_chain.h"
#include "core/sdk/wire.h"

namespace example {
namespace {

using gw::test::BuiltFilter;
using gw::test::EmbeddedChain;

// [START test_helpers]
// A client frame as it travels on the wire: 8-byte header, then the payload.
std::string clientFrame(uint16_t msg_id, const std::string& payload) {
  gw::wire::ClientHeader h;
  h.length = static_cast<uint16_t>(payload.size());
  h.msg_id = msg_id;
  std::string out(gw::wire::kClientHeaderSize, '\0');
  h.encode(reinterpret_cast<uint8_t*>(&out[0]));
  return out + payload;
}

// The terminal: takes every frame that reaches it and records it.
class RecordingTerminal : public gw::Filter {
 public:
  explicit RecordingTerminal(std::vector<std::string>* seen) : seen_(seen) {}
  gw::FilterStatus onFrame(gw::Frame& frame) override {
    std::string payload(frame.payloadLength(), '\0');
    frame.peekPayload(&payload[0], payload.size());
    frame.discardPayload();  // consumed: the terminal took it
    seen_->push_back(clientFrame(frame.header.msg_id, payload));
    return gw::FilterStatus::kStopIteration;
  }

 private:
  std::vector<std::string>* seen_;
};

// framing -> example_msg_filter (with `config`) -> RecordingTerminal.
class MsgFilterTest : public ::testing::Test {
 protected:
  void start(const std::string& config) {
    std::string error;
    auto framing = chain_.registered("framing", "{}", {}, &error);
    ASSERT_TRUE(framing) << error;
    auto filter = chain_.registered("example_msg_filter", config, {}, &error);
    ASSERT_TRUE(filter) << error;
    elements_ = {*framing, *filter, {&terminal_, gw::FilterTraits::framesTerminal()}};
    chain_.start(elements_);
  }

  std::vector<std::string> reached_;  // frames the terminal got
  std::vector<gw::ChainElement> elements_;
  gw::test::FunctionFilterFactory terminal_{
      [this] { return std::make_unique<RecordingTerminal>(&reached_); }};
  EmbeddedChain chain_;  // after the factories it uses: destroyed first
};
// [END test_helpers]

// The error `config` gets from the schema check or the parser ("" if none).
std::string configError(const std::string& config) {
  gw::Dispatcher dispatcher("test");
  gw::WorkerServices services;
  std::string error;
  auto built = gw::test::buildFilter("example_msg_filter", config, dispatcher, services, {}, &error);
  return built ? "" : error;
}

// [START test_parse]
TEST(MsgFilterConfigTest, ErrorsNameThePointerAndTheFix) {
  EXPECT_EQ(configError(R"({"deny_msg_ids": [666, 7, 666]})"),
            "/deny_msg_ids/2: 666 is already listed as item 0: remove one of them");
  EXPECT_EQ(configError(R"({"deny_msg_ids": [65535]})"),
            "/deny_msg_ids/0: 65535 is the gateway's error frame, which clients never send: "
            "remove it");
  EXPECT_EQ(configError(R"({"close_after": 2000000})"),
            "/close_after: must be an integer from 0 to 1000000, got 2000000");
  // The schema runs first: wrong types and unknown keys never reach parse.
  EXPECT_NE(configError(R"({"deny_msg_ids": ["666"]})").find("/deny_msg_ids/0"),
            std::string::npos);
  EXPECT_NE(configError(R"({"deny_ids": [666]})"), "");
  EXPECT_EQ(configError(R"({"deny_msg_ids": [666], "close_after": 3})"), "");
}
// [END test_parse]

// [START test_refused]
TEST_F(MsgFilterTest, RefusedFrameIsAnsweredWithAnErrorFrame) {
  start(R"({"deny_msg_ids": [666]})");
  gw::stats::Counter& refused = refusedCounter("test", 666);  // listener "test": buildFilter's
  const uint64_t before = refused.value();

  chain_.feed(clientFrame(666, "cheat"));

  EXPECT_EQ(chain_.takeOutput(),
            clientFrame(gw::kErrorMsgId, gw::errorFramePayload(gw::ErrorCode::kNoRoute, 666)));
  EXPECT_TRUE(reached_.empty());           // the terminal never saw it
  EXPECT_EQ(chain_.inputLength(), 0u);     // and its payload was dropped
  EXPECT_FALSE(chain_.closed());           // the connection stays open
  EXPECT_EQ(refused.value(), before + 1);
}
// [END test_refused]

// [START test_passed]
TEST_F(MsgFilterTest, OtherFramesPassUntouched) {
  start(R"({"deny_msg_ids": [666]})");
  chain_.feed(clientFrame(7, "move") + clientFrame(666, "cheat") + clientFrame(8, "jump"));
  EXPECT_EQ(reached_, (std::vector<std::string>{clientFrame(7, "move"), clientFrame(8, "jump")}));
  EXPECT_FALSE(chain_.closed());
}
// [END test_passed]

TEST_F(MsgFilterTest, CloseAfterClosesOnTheNthRefusalOfTheConnection) {
  start(R"({"deny_msg_ids": [666, 667], "close_after": 2})");
  chain_.feed(clientFrame(666, "a"));
  EXPECT_FALSE(chain_.closed());
  chain_.feed(clientFrame(667, "b"));
  ASSERT_TRUE(chain_.closed());
  EXPECT_EQ(chain_.closeReason(), gw::CloseReason::kFilterError);
  EXPECT_EQ(chain_.closeDetail(), "example_msg_filter: 2 refused frames");
  // Both refusals were answered before the close.
  EXPECT_EQ(chain_.takeOutput(),
            clientFrame(gw::kErrorMsgId, gw::errorFramePayload(gw::ErrorCode::kNoRoute, 666)) +
                clientFrame(gw::kErrorMsgId, gw::errorFramePayload(gw::ErrorCode::kNoRoute, 667)));
}

TEST_F(MsgFilterTest, RefusalsAreCountedPerConnection) {
  start(R"({"deny_msg_ids": [666], "close_after": 2})");
  // A second connection made by the same worker's factories.
  EmbeddedChain other;
  other.start(elements_);
  chain_.feed(clientFrame(666, "a"));
  other.feed(clientFrame(666, "a"));
  EXPECT_FALSE(chain_.closed());
  EXPECT_FALSE(other.closed());
  chain_.feed(clientFrame(666, "b"));
  EXPECT_TRUE(chain_.closed());
  EXPECT_FALSE(other.closed());
}

TEST(MsgFilterConfigTest, DescribeShowsTheEffectiveConfig) {
  gw::Dispatcher dispatcher("test");
  gw::WorkerServices services;
  std::string error;
  auto built = gw::test::buildFilter("example_msg_filter", R"({"deny_msg_ids": [9, 3]})",
                                     dispatcher, services, {}, &error);
  ASSERT_TRUE(built) << error;
  rapidjson::Document doc(rapidjson::kObjectType);
  built->config->describe(doc, doc.GetAllocator());
  rapidjson::StringBuffer out;
  rapidjson::Writer<rapidjson::StringBuffer> writer(out);
  doc.Accept(writer);
  EXPECT_STREQ(out.GetString(), R"({"deny_msg_ids":[3,9],"close_after":0})");
}

}  // namespace
}  // namespace example
