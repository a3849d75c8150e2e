// Tests of the Redis session store (filters/session/redis_store.h) and its
// client (redis_client.h) against a real redis-server started on a free
// loopback port. Two "replicas" live in this process: each has its own
// session table, event loop, worker and instance name, and they share only
// Redis — as two gateway processes would.
#include <event2/event.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <memory>
#include <thread>

#include "core/sdk/error_frame.h"
#include "filters/session/redis_store.h"
#include "filters/session/session.h"
#include "test/filters/session/redis_fixture.h"
#include "test/filters/session/session_rig.h"

namespace gw {
namespace test {
namespace {

using namespace std::chrono_literals;
using session::BindResult;
using session::RedisStore;
using session::ResumeResult;
using session::SessionConfig;
using session::SessionManager;
using session::SessionRecord;
using session::SessionView;
using session::SlotState;
using session::Token;

// One gateway replica, reduced to what a RedisStore needs.
class Replica : public session::RedisStoreHost, public session::SessionHome {
 public:
  Replica(const std::string& name, const RedisServer& redis, std::chrono::milliseconds window = 60s,
          session::DuplicateLogin policy = session::DuplicateLogin::kKickOld,
          redis::RedisAuthConfig auth = {})
      : dispatcher_("replica-" + name), manager_(std::make_shared<SessionManager>(4)) {
    cfg_ = std::make_shared<SessionConfig>();
    cfg_->listener = "test";
    cfg_->redis = true;
    cfg_->redis_config.address = *Address::parse(redis.address());
    cfg_->redis_config.refresh_interval = 200ms;
    cfg_->redis_config.command_timeout = 500ms;
    cfg_->redis_config.auth = std::move(auth);
    cfg_->resume = true;
    cfg_->resume_window = window;
    cfg_->duplicate_login = policy;
    cfg_->manager = manager_;
    cfg_->stats = session::statsFor("test");
    store_ = std::make_unique<RedisStore>(dispatcher_, 0, cfg_->redis_config, manager_, *this);
    store_->setInstanceForTest("inst-" + name);
    store_->start();
  }
  ~Replica() override {
    store_.reset();
    records_.clear();
  }

  // The gateway config's clusters (records keep affinity as indexes into
  // their names). Call before creating records.
  void setClusters(const std::vector<ClusterConfig>& clusters) {
    cfg_->affinity_names = session::AffinityNames(clusters);
  }
  // A connected record in this replica's table, announced to the store.
  SessionRecord* create(uint64_t id) {
    auto r = std::make_unique<SessionRecord>();
    r->id = id;
    r->serial = next_serial_++;
    r->home = this;
    r->config = cfg_;
    r->store = store_.get();
    r->created_ms = session::unixMillis();
    r->resumable = true;
    r->token = session::randomToken();
    r->client = *Address::parse("10.0.0.9:999");
    SessionRecord* raw = r.get();
    records_.push_back(std::move(r));
    manager_->add(id, raw, 0);
    store_->created(*raw);
    return raw;
  }
  // A fresh record that wants to resume `id`.
  SessionRecord* candidate(uint64_t id) {
    auto r = std::make_unique<SessionRecord>();
    r->id = id;
    r->serial = next_serial_++;
    r->home = this;
    r->config = cfg_;
    r->store = store_.get();
    r->resumable = true;
    r->token = session::randomToken();
    SessionRecord* raw = r.get();
    records_.push_back(std::move(r));
    return raw;
  }
  // The session ends for good (as a worker does it): out of the table, told
  // to the store, and the record destroyed.
  void end(SessionRecord* r) {
    manager_->remove(r->id, r);
    store_->ended(*r);
    for (size_t i = 0; i < records_.size(); ++i) {
      if (records_[i].get() == r) {
        records_.erase(records_.begin() + static_cast<long>(i));
        break;
      }
    }
  }
  void linger(SessionRecord* r) {
    manager_->locked(r->id, [&](SessionManager::Table& t) {
      t.find(r->id)->setState(SlotState::kLingering);
      r->lingering = true;
      r->linger_until_s = coarseNowSeconds() + 60;
    });
    store_->lingering(*r);
  }
  ResumeResult resume(SessionRecord* cand, const Token& token) {
    std::optional<ResumeResult> out;
    store_->resume(*cand, token, [&](ResumeResult r) { out = std::move(r); });
    EXPECT_TRUE(runUntil(dispatcher_, [&] { return out.has_value(); }));
    return out.value_or(ResumeResult{});
  }
  BindResult bind(SessionRecord* r, uint64_t player) {
    std::optional<BindResult> out;
    store_->bindPlayer(*r, player, [&](BindResult b) { out = b; });
    EXPECT_TRUE(runUntil(dispatcher_, [&] { return out.has_value(); }));
    return out.value_or(BindResult{});
  }
  bool waitUp() { return runUntil(dispatcher_, [&] { return store_->up(); }); }
  void run(std::chrono::milliseconds t) { runFor(dispatcher_, t); }

  // RedisStoreHost
  session::SessionHome& home() override { return *this; }
  void forEachRecord(session::SessionStore*, const std::function<void(SessionRecord&)>& fn) override {
    for (auto& r : records_) fn(*r);
  }
  // SessionHome
  Dispatcher& dispatcher() override { return dispatcher_; }
  void kickLocal(uint64_t id, CloseReason reason, const std::string&) override {
    kicks.emplace_back(id, reason);
  }
  void releaseMoved(uint64_t id, uint64_t serial) override { released.emplace_back(id, serial); }

  RedisStore& store() { return *store_; }
  SessionManager& manager() { return *manager_; }
  std::vector<std::pair<uint64_t, CloseReason>> kicks;
  std::vector<std::pair<uint64_t, uint64_t>> released;

 private:
  Dispatcher dispatcher_;
  std::shared_ptr<SessionManager> manager_;
  std::shared_ptr<SessionConfig> cfg_;
  std::unique_ptr<RedisStore> store_;
  std::vector<std::unique_ptr<SessionRecord>> records_;
  uint64_t next_serial_ = 1;
};

std::string fieldOf(const std::vector<std::pair<std::string, std::string>>& h,
                    const std::string& name) {
  for (const auto& [k, v] : h)
    if (k == name) return v;
  return "";
}

class RedisStoreTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);
    std::string error;
    ASSERT_TRUE(redis_.start(&error)) << error;
  }
  RedisServer redis_;
};

TEST_F(RedisStoreTest, ClientCommandsSubscriptionsAndReconnect) {
  Dispatcher d("client");
  redis::RedisClient::Options o;
  o.address = *Address::parse(redis_.address());
  o.reconnect_min = 50ms;
  redis::RedisClient c(d, o), sub(d, o);
  int ups = 0, downs = 0;
  c.setStateHandler([&](bool up) { (up ? ups : downs)++; });
  std::vector<std::string> messages;
  sub.subscribe("chan", [&](std::string_view, std::string_view m) { messages.emplace_back(m); });
  EXPECT_FALSE(c.command({"PING"}, [](const redisReply*) {}));  // not connected yet
  c.start();
  sub.start();
  ASSERT_TRUE(runUntil(d, [&] { return c.up() && sub.up(); }));
  std::string got;
  ASSERT_TRUE(c.command({"SET", "k", std::string("a\0b", 3)}, [](const redisReply*) {}));
  ASSERT_TRUE(c.command({"GET", "k"}, [&](const redisReply* r) {
    got = std::string(redis::replyString(r).value_or("?"));
  }));
  ASSERT_TRUE(runUntil(d, [&] { return !got.empty(); }));
  EXPECT_EQ(got, std::string("a\0b", 3));  // binary-safe
  runFor(d, 50ms);  // the SUBSCRIBE is registered
  redis_.publish("chan", "hello");
  ASSERT_TRUE(runUntil(d, [&] { return messages.size() == 1; }));
  EXPECT_EQ(messages[0], "hello");

  // The server dies: commands fail, the client notices and reconnects when
  // it is back; the subscription is renewed.
  bool failed = false;
  redis_.kill();
  ASSERT_TRUE(runUntil(d, [&] { return !c.up(); }));
  EXPECT_EQ(downs, 1);
  EXPECT_FALSE(c.command({"GET", "k"}, [&](const redisReply*) { failed = true; }));
  std::string error;
  ASSERT_TRUE(redis_.restart(&error)) << error;
  ASSERT_TRUE(runUntil(d, [&] { return c.up() && sub.up(); }, 10s));
  EXPECT_EQ(ups, 2);
  runFor(d, 50ms);
  redis_.publish("chan", "again");
  ASSERT_TRUE(runUntil(d, [&] { return messages.size() == 2; }));
  EXPECT_EQ(messages[1], "again");
  EXPECT_FALSE(failed);
}

TEST_F(RedisStoreTest, HungServerTimesOutAndReconnects) {
  Dispatcher d("client");
  redis::RedisClient::Options o;
  o.address = *Address::parse(redis_.address());
  o.command_timeout = 300ms;
  o.reconnect_min = 50ms;
  redis::RedisClient c(d, o);
  c.start();
  ASSERT_TRUE(runUntil(d, [&] { return c.up(); }));
  // The server hangs (SIGSTOP): the connection stays open, nothing answers.
  redis_.pause();
  bool answered = false, failed = false;
  auto sent = std::chrono::steady_clock::now();
  ASSERT_TRUE(c.command({"GET", "x"}, [&](const redisReply* r) {
    (r == nullptr ? failed : answered) = true;
  }));
  ASSERT_TRUE(runUntil(d, [&] { return failed || answered; }, 3s));
  EXPECT_TRUE(failed);  // failed by the timeout, not answered
  EXPECT_LT(std::chrono::steady_clock::now() - sent, 1s);
  EXPECT_FALSE(c.up());
  // Reconnects get through TCP (the kernel accepts) but no PONG: not up.
  runFor(d, 800ms);
  EXPECT_FALSE(c.up());
  EXPECT_EQ(c.connects(), 1u);
  EXPECT_FALSE(c.command({"GET", "x"}, [](const redisReply*) {}));
  redis_.resume();
  ASSERT_TRUE(runUntil(d, [&] { return c.up(); }, 10s));  // and back once it answers again
  EXPECT_EQ(c.connects(), 2u);
}

TEST_F(RedisStoreTest, CreatedSessionIsWrittenWithItsTtl) {
  Replica a("a", redis_);
  ASSERT_TRUE(a.waitUp());
  SessionRecord* r = a.create(1001);
  r->affinity.assign(r->affinityNames(), {{"game", "127.0.0.1:9000"}});
  a.store().affinityChanged(*r);
  ASSERT_TRUE(runUntil(a.dispatcher(), [&] { return r->persisted; }));
  a.run(50ms);
  auto h = redis_.hgetall("game-gateway:session:1001");
  EXPECT_EQ(fieldOf(h, "state"), "connected");
  EXPECT_EQ(fieldOf(h, "instance"), "inst-a");
  EXPECT_EQ(fieldOf(h, "owner"), "inst-a-" + std::to_string(r->serial));
  EXPECT_EQ(fieldOf(h, "token"), session::tokenHex(r->token));
  EXPECT_EQ(fieldOf(h, "client"), "10.0.0.9:999");
  EXPECT_EQ(fieldOf(h, "aff:game"), "127.0.0.1:9000");
  EXPECT_EQ(fieldOf(h, "gen"), "0");
  long long ttl = redis_.pttl("game-gateway:session:1001");
  auto expect = static_cast<long long>((30min + 2 * 200ms).count());  // idle_timeout + 2 refreshes
  EXPECT_GT(ttl, expect - 5000);
  EXPECT_LE(ttl, expect);
  // The replica key says this process is alive.
  EXPECT_TRUE(redis_.exists("game-gateway:replica:inst-a"));
}

TEST_F(RedisStoreTest, AffinityTravelsAsNamesAndComesBackAsIndexes) {
  ClusterConfig game;
  game.name = "game";
  game.hosts = {*Address::parse("127.0.0.1:9000"), *Address::parse("127.0.0.1:9001")};
  ClusterConfig account;
  account.name = "account";
  account.hosts = {*Address::parse("10.0.0.1:7000")};
  Replica a("a", redis_), b("b", redis_);
  a.setClusters({game, account});
  b.setClusters({account, game});  // another replica: other indexes
  ASSERT_TRUE(a.waitUp());
  ASSERT_TRUE(b.waitUp());
  SessionRecord* r = a.create(2102);
  r->affinity.set(r->affinityNames(), "game", "127.0.0.1:9001");
  r->affinity.set(r->affinityNames(), "account", "10.0.0.1:7000");
  EXPECT_FALSE(r->affinity.spilled());
  a.store().affinityChanged(*r);
  a.linger(r);
  a.run(50ms);
  auto h = redis_.hgetall("game-gateway:session:2102");
  EXPECT_EQ(fieldOf(h, "aff:game"), "127.0.0.1:9001");
  EXPECT_EQ(fieldOf(h, "aff:account"), "10.0.0.1:7000");

  SessionRecord* c = b.candidate(2102);
  ResumeResult res = b.resume(c, r->token);
  ASSERT_EQ(res.status, ResumeResult::Status::kOk);
  EXPECT_EQ(res.affinity.size(), 2u);
  EXPECT_FALSE(c->affinity.spilled());
  EXPECT_EQ(c->affinity.hostFor(c->affinityNames(), "game"), "127.0.0.1:9001");
  EXPECT_EQ(c->affinity.hostFor(c->affinityNames(), "account"), "10.0.0.1:7000");
}

TEST_F(RedisStoreTest, ResumeMovesTheSessionToAnotherReplica) {
  Replica a("a", redis_), b("b", redis_);
  ASSERT_TRUE(a.waitUp());
  ASSERT_TRUE(b.waitUp());
  SessionRecord* r = a.create(2002);
  r->affinity.assign(r->affinityNames(), {{"game", "127.0.0.1:9001"}});
  a.manager().bindPlayer(55, 2002);
  r->player_id = 55;
  a.store().affinityChanged(*r);
  a.linger(r);  // the client left A
  a.run(50ms);
  EXPECT_EQ(fieldOf(redis_.hgetall("game-gateway:session:2002"), "state"), "lingering");
  EXPECT_LE(redis_.pttl("game-gateway:session:2002"), 65000);  // resume_window + 5 s

  SessionRecord* c = b.candidate(2002);
  ResumeResult res = b.resume(c, r->token);
  ASSERT_EQ(res.status, ResumeResult::Status::kOk);
  EXPECT_EQ(res.player_id, 55u);
  ASSERT_EQ(res.affinity.size(), 1u);
  EXPECT_EQ(res.affinity[0].second, "127.0.0.1:9001");
  SessionView v;
  ASSERT_TRUE(b.manager().get(2002, &v));
  EXPECT_EQ(v.record, c);
  auto h = redis_.hgetall("game-gateway:session:2002");
  EXPECT_EQ(fieldOf(h, "instance"), "inst-b");
  EXPECT_EQ(fieldOf(h, "state"), "connected");
  EXPECT_EQ(fieldOf(h, "gen"), "1");
  EXPECT_EQ(fieldOf(h, "token"), session::tokenHex(c->token));  // rotated

  // A hears "moved" and releases its lingering record silently.
  ASSERT_TRUE(runUntil(a.dispatcher(), [&] { return !a.released.empty(); }));
  EXPECT_EQ(a.released[0], std::make_pair(uint64_t{2002}, r->serial));
  // When A's linger runs out it learns the session continued elsewhere.
  std::optional<bool> continued;
  a.store().lingerExpired(*r, [&](bool c2) { continued = c2; });
  ASSERT_TRUE(runUntil(a.dispatcher(), [&] { return continued.has_value(); }));
  EXPECT_TRUE(*continued);
  EXPECT_TRUE(redis_.exists("game-gateway:session:2002"));  // B's record stays
  EXPECT_FALSE(a.manager().get(2002, &v));
}

TEST_F(RedisStoreTest, ResumeRefusals) {
  Replica a("a", redis_, 1s), b("b", redis_, 1s);
  ASSERT_TRUE(a.waitUp());
  ASSERT_TRUE(b.waitUp());
  SessionRecord* r = a.create(3003);
  a.linger(r);
  a.run(50ms);
  Token wrong = r->token;
  wrong[0] ^= 0x80;
  EXPECT_EQ(b.resume(b.candidate(3003), wrong).status, ResumeResult::Status::kBadToken);
  EXPECT_EQ(b.resume(b.candidate(9999), r->token).status, ResumeResult::Status::kUnknown);
  std::this_thread::sleep_for(1200ms);  // past the 1 s window
  EXPECT_EQ(b.resume(b.candidate(3003), r->token).status, ResumeResult::Status::kExpired);
  EXPECT_EQ(fieldOf(redis_.hgetall("game-gateway:session:3003"), "instance"), "inst-a");
}

// Redis answers the lookup with an error (here WRONGTYPE: the session's key
// is not a hash): the process's own table decides, as when Redis is down.
TEST_F(RedisStoreTest, ResumeFallsBackToTheLocalTableOnAnErrorReply) {
  Replica a("a", redis_);
  ASSERT_TRUE(a.waitUp());
  SessionRecord* r = a.create(3100);
  a.linger(r);
  a.run(50ms);
  ASSERT_NE(redis_.command({"DEL", "game-gateway:session:3100"}), nullptr);
  ASSERT_NE(redis_.command({"SET", "game-gateway:session:3100", "not a hash"}), nullptr);
  ASSERT_NE(redis_.command({"SET", "game-gateway:session:3101", "not a hash"}), nullptr);
  // Known here: resumed from the local table.
  EXPECT_EQ(a.resume(a.candidate(3100), r->token).status, ResumeResult::Status::kOk);
  // Unknown here: unavailable (Redis might know it), not unknown.
  EXPECT_EQ(a.resume(a.candidate(3101), r->token).status, ResumeResult::Status::kUnavailable);
}

TEST_F(RedisStoreTest, OnlyOneOfTwoRacingResumesWins) {
  Replica a("a", redis_), b("b", redis_), c("c", redis_);
  ASSERT_TRUE(a.waitUp() && b.waitUp() && c.waitUp());
  SessionRecord* r = a.create(4004);
  a.linger(r);
  a.run(50ms);
  std::optional<ResumeResult> rb, rc;
  b.store().resume(*b.candidate(4004), r->token, [&](ResumeResult x) { rb = x; });
  c.store().resume(*c.candidate(4004), r->token, [&](ResumeResult x) { rc = x; });
  auto deadline = std::chrono::steady_clock::now() + 5s;
  while ((!rb || !rc) && std::chrono::steady_clock::now() < deadline) {
    runFor(b.dispatcher(), 1ms);
    runFor(c.dispatcher(), 1ms);
  }
  ASSERT_TRUE(rb && rc);
  int wins = (rb->status == ResumeResult::Status::kOk) + (rc->status == ResumeResult::Status::kOk);
  EXPECT_EQ(wins, 1);
}

TEST_F(RedisStoreTest, DuplicateLoginAcrossReplicasKicksTheOlderSession) {
  Replica a("a", redis_), b("b", redis_);
  ASSERT_TRUE(a.waitUp() && b.waitUp());
  a.run(50ms);  // subscriptions registered
  SessionRecord* older = a.create(5005);
  SessionRecord* newer = b.create(5006);
  ASSERT_TRUE(runUntil(a.dispatcher(), [&] { return older->persisted; }));
  ASSERT_TRUE(runUntil(b.dispatcher(), [&] { return newer->persisted; }));
  EXPECT_EQ(a.bind(older, 77).status, BindResult::Status::kBound);
  BindResult r = b.bind(newer, 77);
  EXPECT_EQ(r.status, BindResult::Status::kKickedOld);
  EXPECT_EQ(r.other_session, 5005u);
  ASSERT_TRUE(runUntil(a.dispatcher(), [&] { return !a.kicks.empty(); }));
  EXPECT_EQ(a.kicks[0], std::make_pair(uint64_t{5005}, CloseReason::kDuplicateLogin));
  EXPECT_TRUE(b.kicks.empty());
  EXPECT_EQ(redis_.get("game-gateway:player:77").value_or(""), "5006");
  EXPECT_EQ(fieldOf(redis_.hgetall("game-gateway:session:5006"), "player"), "77");
}

TEST_F(RedisStoreTest, DuplicateLoginCanRefuseTheNewerSession) {
  Replica a("a", redis_, 60s, session::DuplicateLogin::kRefuseNew);
  Replica b("b", redis_, 60s, session::DuplicateLogin::kRefuseNew);
  ASSERT_TRUE(a.waitUp() && b.waitUp());
  SessionRecord* older = a.create(6006);
  SessionRecord* newer = b.create(6007);
  ASSERT_TRUE(runUntil(a.dispatcher(), [&] { return older->persisted; }));
  ASSERT_TRUE(runUntil(b.dispatcher(), [&] { return newer->persisted; }));
  EXPECT_EQ(a.bind(older, 88).status, BindResult::Status::kBound);
  BindResult r = b.bind(newer, 88);
  EXPECT_EQ(r.status, BindResult::Status::kRefused);
  EXPECT_EQ(r.other_session, 6006u);
  a.run(50ms);
  EXPECT_TRUE(a.kicks.empty());
  EXPECT_EQ(redis_.get("game-gateway:player:88").value_or(""), "6006");
}

TEST_F(RedisStoreTest, EndedSessionsAndExpiredLingersLeaveRedis) {
  Replica a("a", redis_);
  ASSERT_TRUE(a.waitUp());
  SessionRecord* r = a.create(7007);
  a.bind(r, 99);
  a.manager().remove(7007, r);
  a.store().ended(*r);
  a.run(50ms);
  EXPECT_FALSE(redis_.exists("game-gateway:session:7007"));
  EXPECT_FALSE(redis_.exists("game-gateway:player:99"));

  SessionRecord* l = a.create(7008);
  a.linger(l);
  std::optional<bool> continued;
  a.store().lingerExpired(*l, [&](bool c) { continued = c; });
  ASSERT_TRUE(runUntil(a.dispatcher(), [&] { return continued.has_value(); }));
  EXPECT_FALSE(*continued);  // nobody resumed it: backends get session close
  EXPECT_FALSE(redis_.exists("game-gateway:session:7008"));
}

TEST_F(RedisStoreTest, RefreshRenewsTheTtlOfActiveSessionsOnly) {
  Replica a("a", redis_);
  ASSERT_TRUE(a.waitUp());
  SessionRecord* active = a.create(8008);
  SessionRecord* idle = a.create(8009);
  ASSERT_TRUE(runUntil(a.dispatcher(), [&] { return active->persisted && idle->persisted; }));
  // Shorten both TTLs, then mark one as active: only it is renewed.
  redis_.command({"PEXPIRE", "game-gateway:session:8008", "100000"});
  redis_.command({"PEXPIRE", "game-gateway:session:8009", "100000"});
  active->last_active_s.store(active->last_active_s.load() + 5);
  a.run(500ms);  // refresh_interval is 200 ms
  EXPECT_GT(redis_.pttl("game-gateway:session:8008"), 1000000);
  EXPECT_LE(redis_.pttl("game-gateway:session:8009"), 100000);
}

TEST_F(RedisStoreTest, RedisOutageFallsBackToLocalStateAndResyncs) {
  Replica a("a", redis_);
  ASSERT_TRUE(a.waitUp());
  redis_.kill();
  ASSERT_TRUE(runUntil(a.dispatcher(), [&] { return !a.store().up(); }));
  // A session created during the outage lives locally...
  SessionRecord* r = a.create(9009);
  EXPECT_FALSE(r->persisted);
  // ...can be resumed on this replica...
  a.linger(r);
  SessionRecord* c = a.candidate(9009);
  ResumeResult res = a.resume(c, r->token);
  EXPECT_EQ(res.status, ResumeResult::Status::kOk);
  // ...and an unknown one is "unavailable", not "unknown".
  EXPECT_EQ(a.resume(a.candidate(9010), r->token).status, ResumeResult::Status::kUnavailable);
  // Redis comes back empty: the replica writes its records again.
  std::string error;
  ASSERT_TRUE(redis_.restart(&error)) << error;
  ASSERT_TRUE(runUntil(a.dispatcher(), [&] { return a.store().up(); }, 10s));
  ASSERT_TRUE(runUntil(a.dispatcher(), [&] { return redis_.exists("game-gateway:session:9009"); }));
  EXPECT_EQ(fieldOf(redis_.hgetall("game-gateway:session:9009"), "token"),
            session::tokenHex(c->token));
}

TEST_F(RedisStoreTest, EndsMissedDuringAnOutageAreReplayed) {
  Replica a("a", redis_);
  ASSERT_TRUE(a.waitUp());
  SessionRecord* r = a.create(9100);
  ASSERT_TRUE(runUntil(a.dispatcher(), [&] { return r->persisted; }));
  redis_.pause();  // hung: the store notices by its PING timing out
  ASSERT_TRUE(runUntil(a.dispatcher(), [&] { return !a.store().up(); }));
  a.end(r);  // kicked, say, while Redis was away
  redis_.resume();
  ASSERT_TRUE(runUntil(a.dispatcher(), [&] { return a.store().up(); }, 10s));
  // Without the replay the record would outlive the session (and be resumable).
  ASSERT_TRUE(runUntil(a.dispatcher(), [&] { return !redis_.exists("game-gateway:session:9100"); }));
}

// The filter with the Redis store: a resume is asynchronous; frames the
// client pipelines behind its resume request wait and follow in order.
TEST_F(RedisStoreTest, FilterHoldsFramesBehindAnAsynchronousResume) {
  std::string cfg = R"({"store": "redis", "redis": {"address": ")" + redis_.address() +
                    R"(", "prefix": "rig:"}, "resume": {"enabled": true}})";
  SessionRig first(cfg);
  first.ec.runFor(200ms);  // connected to Redis
  first.send(session::kResumeMsgId, controlPayload(0, Token{}));
  auto out = first.takeFrames();
  ASSERT_EQ(out.size(), 1u);
  uint64_t id = 0;
  Token token;
  ASSERT_TRUE(parseEstablished(out[0], &id, &token));
  ASSERT_TRUE(first.ec.runUntil([&] { return redis_.exists("rig:session:" + std::to_string(id)); }));
  first.ec.feedEof();
  ASSERT_TRUE(first.ec.runUntil([&] {
    return fieldOf(redis_.hgetall("rig:session:" + std::to_string(id)), "state") == "lingering";
  }));

  SessionRig second(cfg);
  second.ec.runFor(200ms);
  second.ec.feed(encodeClientFrame(session::kResumeMsgId, 0, controlPayload(id, token)) +
                 encodeClientFrame(7, 200 << 8, "one") + encodeClientFrame(8, 200 << 8, "two"));
  EXPECT_TRUE(second.log().frames.empty());  // waiting for Redis
  ASSERT_TRUE(second.ec.runUntil([&] { return second.log().frames.size() == 2; }));
  EXPECT_EQ(second.log().frames[0].payload, "one");
  EXPECT_EQ(second.log().frames[1].payload, "two");
  EXPECT_EQ(second.log().session_id, id);
  EXPECT_TRUE(second.log().resumed);
  out = second.takeFrames();
  ASSERT_GE(out.size(), 1u);
  uint64_t id2 = 0;
  ASSERT_TRUE(parseEstablished(out[0], &id2, &token));
  EXPECT_EQ(id2, id);
  // Reading resumed normally: the client's EOF is seen.
  second.ec.feedEof();
  EXPECT_TRUE(second.ec.closed());
}

// A Redis with a password (requirepass), as studios run it.
class RedisAuthStoreTest : public ::testing::Test {
 protected:
  static constexpr const char* kPassword = "s3cret-store-pw";
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);
    redis_.setServerArgs({"--requirepass", kPassword});
    std::string error;
    ASSERT_TRUE(redis_.start(&error)) << error;
    redis::Credentials c;
    c.password = kPassword;
    redis_.setClientCredentials(c);
    // A password file only the gateway's user reads.
    const char* tmp = std::getenv("TEST_TMPDIR");
    file_ = std::string(tmp ? tmp : "/tmp") + "/redis-store-pw-" + std::to_string(::getpid());
    FILE* f = std::fopen(file_.c_str(), "w");
    ASSERT_NE(f, nullptr);
    std::fprintf(f, "%s\n", kPassword);
    std::fclose(f);
    ::chmod(file_.c_str(), 0600);
  }
  void TearDown() override { std::remove(file_.c_str()); }
  RedisServer redis_;
  std::string file_;
};

// The session filter, configured with password_file and db 3: its store
// authenticates and its records land in database 3 (none in db 0).
TEST_F(RedisAuthStoreTest, FilterStoreAuthenticatesFromAFileAndUsesItsDb) {
  std::string cfg = R"({"store": "redis", "redis": {"address": ")" + redis_.address() +
                    R"(", "prefix": "auth:", "password_file": ")" + file_ +
                    R"(", "db": 3}, "resume": {"enabled": true}})";
  SessionRig rig(cfg);
  rig.ec.runFor(200ms);  // connected to Redis
  rig.send(session::kResumeMsgId, controlPayload(0, Token{}));
  auto out = rig.takeFrames();
  ASSERT_EQ(out.size(), 1u);
  uint64_t id = 0;
  Token token;
  ASSERT_TRUE(parseEstablished(out[0], &id, &token));
  std::string key = "auth:session:" + std::to_string(id);
  redis::Credentials db3;
  db3.password = kPassword;
  db3.db = 3;
  redis_.setClientCredentials(db3);
  ASSERT_TRUE(rig.ec.runUntil([&] { return redis_.exists(key); }));
  EXPECT_EQ(fieldOf(redis_.hgetall(key), "token"), session::tokenHex(token));
  redis::Credentials db0;
  db0.password = kPassword;
  redis_.setClientCredentials(db0);
  EXPECT_FALSE(redis_.exists(key));  // not in db 0
}

// A wrong password: counted, and the store behaves as with Redis down —
// sessions are created locally, resumes fall back to this replica's table.
// The right password (a reloaded config's) takes over at the next reconnect.
TEST_F(RedisAuthStoreTest, WrongPasswordIsCountedAndTheStoreFallsBackLikeRedisDown) {
  stats::Counter& failures = redis::authFailuresCounter("session");
  uint64_t before = failures.value();
  redis::RedisAuthConfig wrong;
  wrong.password_env = "SOME_VAR";
  wrong.credentials.password = "not-the-password";
  Replica a("a", redis_, 60s, session::DuplicateLogin::kKickOld, wrong);
  // Both connections (commands, events) are refused, again with backoff.
  ASSERT_TRUE(runUntil(a.dispatcher(), [&] { return failures.value() >= before + 2; }));
  a.run(300ms);
  EXPECT_FALSE(a.store().up());
  SessionRecord* r = a.create(7001);
  EXPECT_FALSE(r->persisted);
  a.linger(r);
  EXPECT_EQ(a.resume(a.candidate(7001), r->token).status, ResumeResult::Status::kOk);
  EXPECT_EQ(a.resume(a.candidate(7002), r->token).status, ResumeResult::Status::kUnavailable);
  EXPECT_FALSE(redis_.exists("game-gateway:session:7001"));
  // The operator fixes the password (a reload re-reads it): the next
  // reconnect authenticates and the records are written.
  redis::Credentials right;
  right.password = kPassword;
  a.store().setCredentials(right);
  ASSERT_TRUE(runUntil(a.dispatcher(), [&] { return a.store().up(); }, 10s));
  ASSERT_TRUE(runUntil(a.dispatcher(), [&] { return redis_.exists("game-gateway:session:7001"); }));
}

// The admin API's fleet view (a blocking connection) authenticates too.
TEST_F(RedisAuthStoreTest, FleetViewAuthenticates) {
  Replica a("a", redis_, 60s, session::DuplicateLogin::kKickOld, [&] {
    redis::RedisAuthConfig auth;
    auth.credentials.password = kPassword;
    return auth;
  }());
  ASSERT_TRUE(a.waitUp());
  a.create(7101);
  ASSERT_TRUE(runUntil(a.dispatcher(), [&] { return redis_.exists("game-gateway:session:7101"); }));
  session::RedisStoreConfig rc;
  rc.address = *Address::parse(redis_.address());
  rc.auth.credentials.password = kPassword;
  session::RedisFleetView view(rc);
  auto d = view.describe(7101);
  ASSERT_TRUE(d.has_value());
  EXPECT_NE(d->find("\"id\":\"7101\""), std::string::npos) << *d;
  rc.auth.credentials.password = "wrong";
  session::RedisFleetView refused(rc);
  stats::Counter& failures = redis::authFailuresCounter("session");
  uint64_t before = failures.value();
  EXPECT_FALSE(refused.describe(7101).has_value());
  EXPECT_EQ(failures.value(), before + 1);
}

}  // namespace
}  // namespace test
}  // namespace gw
