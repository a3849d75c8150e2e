// Tests of the `session` filter with the memory store, through a real
// FilterChain (framing -> session -> recording terminal): session identity,
// the control frames (docs/protocol.md), resume on another worker, resume
// failures, the leave frame, kicks posted from another thread, the idle
// sweep, and duplicate login with both policies.
#include <gtest/gtest.h>

#include <rapidjson/document.h>

#include <thread>
#include <vector>

#include "core/sdk/error_frame.h"
#include "core/sdk/registry.h"
#include "filters/session/session.h"
#include "test/filters/session/session_rig.h"

namespace gw {
namespace test {
namespace {

using std::chrono::milliseconds;
using session::kEstablishedMsgId;
using session::kLeaveMsgId;
using session::kResumeMsgId;
using session::SessionManager;
using session::SessionView;
using session::SlotState;
using session::Token;

constexpr uint32_t kGame = 200 << 8;  // server_type 200, world 0
const char* kResumable = R"({"resume": {"enabled": true, "window": "60s"}})";

session::SessionManager& manager() { return *SessionManager::process(16); }

// Sends the "start a resumable session" request; returns the id and token.
std::pair<uint64_t, Token> hello(SessionRig& rig) {
  rig.send(kResumeMsgId, controlPayload(0, Token{}));
  auto out = rig.takeFrames();
  uint64_t id = 0;
  Token token{};
  EXPECT_EQ(out.size(), 1u);
  if (!out.empty()) {
    EXPECT_TRUE(parseEstablished(out[0], &id, &token));
  }
  return {id, token};
}

TEST(SessionFilterTest, FirstFrameStartsASessionAndPassesOn) {
  SessionRig rig("{}");
  rig.send(7, "hello", kGame);
  ASSERT_EQ(rig.log().frames.size(), 1u);
  EXPECT_EQ(rig.log().frames[0].payload, "hello");
  ASSERT_NE(rig.log().info, nullptr);
  uint64_t id = rig.log().session_id;
  EXPECT_NE(id, 0u);
  EXPECT_FALSE(rig.log().resumed);
  EXPECT_EQ(rig.takeFrames().size(), 0u);  // nothing written to a client that did not ask
  SessionView v;
  ASSERT_TRUE(manager().get(id, &v));
  EXPECT_EQ(v.state, SlotState::kConnected);
  // Later frames keep the same session.
  rig.send(8, "again", kGame);
  EXPECT_EQ(rig.log().frames.size(), 2u);
  EXPECT_EQ(rig.log().info->id, id);
  // Without resume the session ends with the connection.
  rig.ec.feedEof();
  EXPECT_TRUE(rig.ec.closed());
  EXPECT_FALSE(manager().get(id, &v));
  EXPECT_EQ(rig.log().linger_at_close.count(), 0);
}

TEST(SessionFilterTest, ControlFramesPassThroughWhenResumeIsOff) {
  // Exactly the Go gateway's behaviour: 0xFFFD is just another msg_id.
  SessionRig rig("{}");
  rig.send(kResumeMsgId, controlPayload(0, Token{}));
  ASSERT_EQ(rig.log().frames.size(), 1u);
  EXPECT_EQ(rig.log().frames[0].header.msg_id, kResumeMsgId);
  EXPECT_TRUE(rig.takeFrames().empty());
}

TEST(SessionFilterTest, ClientsThatNeverAskSeeNoControlFrames) {
  SessionRig rig(kResumable);
  rig.send(7, "hello", kGame);
  rig.send(100, "x", kGame);  // an ordinary msg id
  EXPECT_EQ(rig.log().frames.size(), 2u);
  EXPECT_TRUE(rig.takeFrames().empty());
  EXPECT_EQ(rig.log().info->linger.count(), 0);  // no token given: nothing to resume
}

TEST(SessionFilterTest, HelloGetsIdAndToken) {
  SessionRig rig(kResumable);
  auto [id, token] = hello(rig);
  EXPECT_NE(id, 0u);
  EXPECT_NE(token, Token{});
  EXPECT_TRUE(rig.log().frames.empty());  // the request is not forwarded
  rig.send(7, "hello", kGame);
  ASSERT_EQ(rig.log().frames.size(), 1u);
  EXPECT_EQ(rig.log().session_id, id);
  EXPECT_EQ(rig.log().info->linger, milliseconds(60000));
}

TEST(SessionFilterTest, AnnounceAlwaysSendsEstablishedToEveryNewSession) {
  SessionRig rig(R"({"resume": {"enabled": true, "announce": "always"}})");
  rig.send(7, "hello", kGame);
  auto out = rig.takeFrames();
  ASSERT_EQ(out.size(), 1u);
  uint64_t id = 0;
  Token token;
  ASSERT_TRUE(parseEstablished(out[0], &id, &token));
  ASSERT_EQ(rig.log().frames.size(), 1u);  // the data frame went on
  EXPECT_EQ(rig.log().session_id, id);
}

TEST(SessionFilterTest, ResumeOnAnotherWorkerKeepsIdAndAffinity) {
  auto first = std::make_unique<SessionRig>(kResumable, "10.0.0.1:1000");
  auto [id, token] = hello(*first);
  first->send(7, "hello", kGame);
  // What upstream would have reported.
  first->filter().onAffinityChanged("game", "127.0.0.1:9000");
  first->filter().onPlayerBound(4242);
  first->ec.feedEof();  // the client's network dropped
  ASSERT_TRUE(first->ec.closed());
  EXPECT_EQ(first->log().end_at_close, SessionInfo::End::kDefault);
  EXPECT_EQ(first->log().linger_at_close, milliseconds(60000));
  SessionView v;
  ASSERT_TRUE(manager().get(id, &v));
  EXPECT_EQ(v.state, SlotState::kLingering);
  EXPECT_EQ(first->sessions().lingeringCount(), 1u);

  // Another worker (its own WorkerSessions and loop) gets the reconnect.
  SessionRig second(kResumable, "10.0.0.2:2000");
  second.send(kResumeMsgId, controlPayload(id, token));
  auto out = second.takeFrames();
  ASSERT_EQ(out.size(), 1u);
  uint64_t id2 = 0;
  Token token2;
  ASSERT_TRUE(parseEstablished(out[0], &id2, &token2));
  EXPECT_EQ(id2, id);
  EXPECT_NE(token2, token);  // a fresh token for every resume
  second.send(7, "back", kGame);
  ASSERT_EQ(second.log().frames.size(), 1u);
  EXPECT_EQ(second.log().session_id, id);
  EXPECT_TRUE(second.log().resumed);
  EXPECT_EQ(second.log().game_affinity, "127.0.0.1:9000");
  EXPECT_EQ(second.log().info->player_id, 4242u);
  ASSERT_TRUE(manager().get(id, &v));
  EXPECT_EQ(v.state, SlotState::kConnected);
  EXPECT_EQ(v.record->player_id, 4242u);
  EXPECT_EQ(manager().sessionOfPlayer(4242), id);

  // The first worker learns its linger was superseded (posted to its loop).
  first->ec.runFor(milliseconds(20));
  EXPECT_EQ(first->sessions().lingeringCount(), 0u);
  // The old token no longer works: it was rotated.
  SessionRig third(kResumable);
  third.send(kResumeMsgId, controlPayload(id, token));
  out = third.takeFrames();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(errorCode(out[0]), static_cast<uint16_t>(ErrorCode::kResumeFailed));
  uint64_t id3 = 0;
  ASSERT_TRUE(parseEstablished(out[1], &id3, &token2));
  EXPECT_NE(id3, id);  // a new session instead
}

TEST(SessionFilterTest, AffinityIsKeptAsConfigIndexesAndResumedAsNames) {
  ClusterConfig game;
  game.name = "game";
  game.hosts = {*Address::parse("127.0.0.1:9000"), *Address::parse("127.0.0.1:9001")};
  auto first = std::make_unique<SessionRig>(kResumable, "10.0.0.1:1000",
                                            std::vector<ClusterConfig>{game});
  auto [id, token] = hello(*first);
  first->send(7, "hello", kGame);
  first->filter().onAffinityChanged("game", "127.0.0.1:9001");
  SessionView v;
  ASSERT_TRUE(manager().get(id, &v));
  EXPECT_FALSE(v.record->affinity.spilled());  // indexes, no heap
  EXPECT_EQ(first->filter().affinityFor("game"), "127.0.0.1:9001");
  EXPECT_EQ(first->filter().affinityFor("account"), "");
  auto json = manager().describeJson(id);
  ASSERT_TRUE(json.has_value());
  EXPECT_NE(json->find("\"backends\":{\"game\":\"127.0.0.1:9001\"}"), std::string::npos) << *json;
  first->ec.feedEof();
  ASSERT_TRUE(first->ec.closed());

  // Resumed by a connection whose config lists the hosts in another order.
  ClusterConfig game2 = game;
  std::swap(game2.hosts[0], game2.hosts[1]);
  SessionRig second(kResumable, "10.0.0.2:2000", {game2});
  second.send(kResumeMsgId, controlPayload(id, token));
  second.takeFrames();
  second.send(7, "back", kGame);
  EXPECT_TRUE(second.log().resumed);
  EXPECT_EQ(second.log().game_affinity, "127.0.0.1:9001");
  ASSERT_TRUE(manager().get(id, &v));
  EXPECT_FALSE(v.record->affinity.spilled());
}

TEST(SessionFilterTest, WrongTokenGetsAnErrorFrameAndANewSession) {
  SessionRig first(kResumable);
  auto [id, token] = hello(first);
  first.ec.feedEof();
  Token wrong = token;
  wrong[15] ^= 1;
  SessionRig second(kResumable);
  second.send(kResumeMsgId, controlPayload(id, wrong));
  auto out = second.takeFrames();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(errorCode(out[0]), static_cast<uint16_t>(ErrorCode::kResumeFailed));
  EXPECT_EQ(wire::getU16(reinterpret_cast<const uint8_t*>(out[0].payload.data()) + 2),
            kResumeMsgId);
  uint64_t fresh = 0;
  Token t;
  ASSERT_TRUE(parseEstablished(out[1], &fresh, &t));
  EXPECT_NE(fresh, id);
  // The original session still lingers: the right token would still work.
  SessionView v;
  ASSERT_TRUE(manager().get(id, &v));
  EXPECT_EQ(v.state, SlotState::kLingering);
  // An unknown id is refused the same way.
  SessionRig third(kResumable);
  third.send(kResumeMsgId, controlPayload(12345, token));
  out = third.takeFrames();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(errorCode(out[0]), static_cast<uint16_t>(ErrorCode::kResumeFailed));
}

TEST(SessionFilterTest, ExpiredWindowRefusesTheResume) {
  const char* cfg = R"({"resume": {"enabled": true, "window": "1s"}})";
  SessionRig first(cfg);
  auto [id, token] = hello(first);
  first.ec.feedEof();
  // linger_until is in whole seconds: past it within two seconds.
  std::this_thread::sleep_for(milliseconds(2100));
  SessionRig second(cfg);
  second.send(kResumeMsgId, controlPayload(id, token));
  auto out = second.takeFrames();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(errorCode(out[0]), static_cast<uint16_t>(ErrorCode::kResumeFailed));
  uint64_t fresh = 0;
  Token t;
  ASSERT_TRUE(parseEstablished(out[1], &fresh, &t));
  EXPECT_NE(fresh, id);
}

TEST(SessionFilterTest, MalformedResumeRequestStillGetsASession) {
  SessionRig rig(kResumable);
  rig.send(kResumeMsgId, "short");
  auto out = rig.takeFrames();
  ASSERT_EQ(out.size(), 2u);
  EXPECT_EQ(errorCode(out[0]), static_cast<uint16_t>(ErrorCode::kResumeFailed));
  uint64_t id = 0;
  Token t;
  EXPECT_TRUE(parseEstablished(out[1], &id, &t));
}

TEST(SessionFilterTest, LeaveFrameEndsTheSessionAtClose) {
  SessionRig rig(kResumable);
  auto [id, token] = hello(rig);
  rig.send(7, "x", kGame);
  rig.send(kLeaveMsgId, "");
  EXPECT_EQ(rig.log().frames.size(), 1u);  // not forwarded
  rig.ec.feedEof();
  EXPECT_EQ(rig.log().end_at_close, SessionInfo::End::kFinal);
  SessionView v;
  EXPECT_FALSE(manager().get(id, &v));  // nothing to resume
  EXPECT_EQ(rig.sessions().lingeringCount(), 0u);
}

TEST(SessionFilterTest, KickFromAnotherThreadClosesOnTheWorker) {
  SessionRig rig(kResumable);
  auto [id, token] = hello(rig);
  bool found = false;
  std::thread admin([&] { found = manager().kick(id, "operator"); });
  admin.join();
  EXPECT_TRUE(found);
  EXPECT_FALSE(rig.ec.closed());  // posted, not run yet
  ASSERT_TRUE(rig.ec.runUntil([&] { return rig.ec.closed(); }));
  EXPECT_EQ(rig.ec.closeReason(), CloseReason::kKicked);
  EXPECT_EQ(rig.log().end_at_close, SessionInfo::End::kFinal);  // kicked: no linger
  SessionView v;
  EXPECT_FALSE(manager().get(id, &v));
  // A lingering session can be kicked too: it can no longer be resumed.
  SessionRig other(kResumable);
  auto [id2, token2] = hello(other);
  other.ec.feedEof();
  ASSERT_TRUE(manager().get(id2, &v));
  EXPECT_TRUE(manager().kick(id2, "operator"));
  other.ec.runFor(milliseconds(20));
  EXPECT_FALSE(manager().get(id2, &v));
  EXPECT_EQ(other.sessions().lingeringCount(), 0u);
}

TEST(SessionFilterTest, IdleSweepClosesIdleSessionsOnly) {
  const char* cfg = R"({"cleanup_interval": "100ms", "idle_timeout": "1s"})";
  SessionRig idle(cfg);
  SessionRig busy(cfg);
  idle.send(7, "x", kGame);
  busy.send(7, "x", kGame);
  auto start = std::chrono::steady_clock::now();
  while (!idle.ec.closed() && std::chrono::steady_clock::now() - start < std::chrono::seconds(5)) {
    idle.ec.runFor(milliseconds(100));
    busy.ec.runFor(milliseconds(100));
    busy.send(7, "still here", kGame);
  }
  ASSERT_TRUE(idle.ec.closed());
  EXPECT_EQ(idle.ec.closeReason(), CloseReason::kSessionIdle);
  EXPECT_NE(idle.ec.closeDetail().find("idle"), std::string::npos);
  EXPECT_EQ(idle.log().end_at_close, SessionInfo::End::kFinal);
  auto waited = std::chrono::steady_clock::now() - start;
  EXPECT_GE(waited, milliseconds(700));   // not before idle_timeout (less the clock's lag)
  EXPECT_LE(waited, milliseconds(3500));  // 1 s + second granularity + sweep interval
  EXPECT_FALSE(busy.ec.closed());
}

TEST(SessionFilterTest, DuplicateLoginKicksTheOlderSession) {
  SessionRig older("{}");
  SessionRig newer("{}");
  older.send(7, "x", kGame);
  newer.send(7, "x", kGame);
  older.filter().onPlayerBound(777001);
  EXPECT_FALSE(older.ec.closed());
  newer.filter().onPlayerBound(777001);  // the same player logs in again
  EXPECT_FALSE(newer.ec.closed());
  ASSERT_TRUE(older.ec.runUntil([&] { return older.ec.closed(); }));
  EXPECT_EQ(older.ec.closeReason(), CloseReason::kDuplicateLogin);
  EXPECT_EQ(older.log().end_at_close, SessionInfo::End::kFinal);
  EXPECT_FALSE(newer.ec.closed());
  EXPECT_EQ(manager().sessionOfPlayer(777001), newer.log().session_id);
}

TEST(SessionFilterTest, DuplicateLoginCanRefuseTheNewerSession) {
  const char* cfg = R"({"duplicate_login": "refuse_new"})";
  SessionRig older(cfg);
  SessionRig newer(cfg);
  older.send(7, "x", kGame);
  newer.send(7, "x", kGame);
  older.filter().onPlayerBound(777002);
  newer.filter().onPlayerBound(777002);
  ASSERT_TRUE(newer.ec.closed());
  EXPECT_EQ(newer.ec.closeReason(), CloseReason::kDuplicateLogin);
  older.ec.runFor(milliseconds(20));
  EXPECT_FALSE(older.ec.closed());
  EXPECT_EQ(manager().sessionOfPlayer(777002), older.log().session_id);
  // Once the older session ends, the player may log in again.
  older.ec.feedEof();
  SessionRig third(cfg);
  third.send(7, "x", kGame);
  third.filter().onPlayerBound(777002);
  EXPECT_FALSE(third.ec.closed());
}

TEST(SessionFilterTest, ConfigErrorsNameTheField) {
  Dispatcher d("cfg");
  WorkerServices services;
  std::string error;
  EXPECT_EQ(buildFilter("session", R"({"store": "redis"})", d, services, {}, &error), nullptr);
  EXPECT_NE(error.find("/redis/address"), std::string::npos) << error;
  EXPECT_EQ(buildFilter("session", R"({"redis": {"address": "127.0.0.1:6379"}})", d, services, {},
                        &error),
            nullptr);
  EXPECT_NE(error.find("/redis"), std::string::npos) << error;
  EXPECT_EQ(buildFilter("session", R"({"resume": {"window": "0s"}})", d, services, {}, &error),
            nullptr);
  EXPECT_NE(error.find("/resume/window"), std::string::npos) << error;
  EXPECT_EQ(buildFilter("session", R"({"bogus": 1})", d, services, {}, &error), nullptr);
  EXPECT_EQ(buildFilter("session", R"({"store": "redis", "redis": {"address": "nope"}})", d,
                        services, {}, &error),
            nullptr);
  EXPECT_NE(error.find("/redis/address"), std::string::npos) << error;
}

TEST(SessionFilterTest, ExpectedSessionsPresizesWhenAppliedNotWhenParsed) {
  // --check-config and a refused reload only parse: the process-wide table
  // must not change then. The first factory built from the config (a
  // worker's chains) applies it.
  const FilterConfigFactory* type = FilterRegistry::get().find("session");
  ASSERT_NE(type, nullptr);
  rapidjson::Document doc;
  doc.Parse(R"({"expected_sessions": 400000})");
  std::vector<ClusterConfig> clusters;
  ParseContext ctx(clusters, "presize");
  uint64_t growths = SessionManager::tableGrowths();
  auto config = type->parse(doc, ctx);
  ASSERT_NE(config, nullptr);
  EXPECT_EQ(SessionManager::tableGrowths(), growths) << "parsing presized the table";
  Dispatcher d("presize");
  WorkerServices services;
  WorkerContext worker{d, 0, 1, clusters, "presize", services};
  auto factory = type->createFactory(config, worker);
  ASSERT_NE(factory, nullptr);
  uint64_t after_first = SessionManager::tableGrowths();
  EXPECT_GT(after_first, growths) << "applying the config did not presize the table";
  // Once per config, not once per worker.
  WorkerServices services2;
  WorkerContext worker2{d, 1, 2, clusters, "presize", services2};
  auto second = type->createFactory(config, worker2);
  EXPECT_EQ(SessionManager::tableGrowths(), after_first);
}

}  // namespace
}  // namespace test
}  // namespace gw
