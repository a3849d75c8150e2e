// Tests of AUTH and SELECT (core/redis/redis_auth.h, redis_client.h)
// against a real redis-server started with --requirepass and an ACL user:
// the client authenticates (default user and ACL user), selects its
// database, counts and logs a refusal without the secret and stays down
// (retrying), takes new credentials at the next reconnect; upstream's
// routes_from_redis reads its rules with a password from an environment
// variable; and the config keys' errors.
#include <event2/event.h>
#include <gtest/gtest.h>
#include <rapidjson/document.h>
#include <signal.h>
#include <spdlog/sinks/ostream_sink.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <functional>
#include <sstream>

#include "core/redis/redis_auth.h"
#include "core/redis/redis_client.h"
#include "core/sdk/log.h"
#include "filters/upstream/redis_routes.h"
#include "filters/upstream/route_table.h"
#include "test/filters/session/redis_fixture.h"

namespace gw {
namespace test {
namespace {

using namespace std::chrono_literals;

constexpr const char* kPassword = "pw-default-6f1c";
constexpr const char* kAlicePassword = "pw-alice-93ab";

redis::Credentials creds(std::string password, std::string user = "", int db = 0) {
  redis::Credentials c;
  c.username = std::move(user);
  c.password = std::move(password);
  c.db = db;
  return c;
}

// Captures the gateway's log lines while alive.
class LogCapture {
 public:
  LogCapture() : sink_(std::make_shared<spdlog::sinks::ostream_sink_mt>(out_)) {
    log::get().sinks().push_back(sink_);
  }
  ~LogCapture() {
    auto& sinks = log::get().sinks();
    for (auto it = sinks.begin(); it != sinks.end(); ++it) {
      if (*it == sink_) {
        sinks.erase(it);
        break;
      }
    }
  }
  std::string text() {
    log::get().flush();
    return out_.str();
  }

 private:
  std::ostringstream out_;
  std::shared_ptr<spdlog::sinks::ostream_sink_mt> sink_;
};

class RedisAuthTest : public ::testing::Test {
 protected:
  void SetUp() override {
    signal(SIGPIPE, SIG_IGN);
    redis_.setServerArgs({"--requirepass", kPassword, "--user", "alice", "on",
                          std::string(">") + kAlicePassword, "~*", "&*", "+@all"});
    std::string error;
    ASSERT_TRUE(redis_.start(&error)) << error;
    redis_.setClientCredentials(creds(kPassword));
  }
  redis::RedisClient::Options options(redis::Credentials auth) {
    redis::RedisClient::Options o;
    o.address = *Address::parse(redis_.address());
    o.reconnect_min = 50ms;
    o.reconnect_max = 200ms;
    o.auth = std::move(auth);
    o.component = "test";
    return o;
  }
  // SET key value through a client with `auth`; true once it is answered OK.
  bool setThrough(redis::Credentials auth, const std::string& key, const std::string& value) {
    Dispatcher d("client");
    redis::RedisClient c(d, options(std::move(auth)));
    c.start();
    if (!runUntil(d, [&] { return c.up(); })) return false;
    bool ok = false, done = false;
    c.command({"SET", key, value}, [&](const redisReply* r) {
      ok = redis::replyString(r).value_or("") == "OK";
      done = true;
    });
    runUntil(d, [&] { return done; });
    return ok;
  }
  RedisServer redis_;
};

TEST_F(RedisAuthTest, DefaultUserAndAclUserAuthenticate) {
  EXPECT_TRUE(setThrough(creds(kPassword), "k1", "default"));
  EXPECT_TRUE(setThrough(creds(kAlicePassword, "alice"), "k2", "alice"));
  EXPECT_EQ(redis_.get("k1").value_or(""), "default");
  EXPECT_EQ(redis_.get("k2").value_or(""), "alice");
}

TEST_F(RedisAuthTest, SelectsTheConfiguredDatabase) {
  ASSERT_TRUE(setThrough(creds(kPassword, "", 3), "in3", "x"));
  EXPECT_FALSE(redis_.get("in3").has_value());  // not in db 0
  redis_.setClientCredentials(creds(kPassword, "", 3));
  EXPECT_EQ(redis_.get("in3").value_or(""), "x");
  // The ACL user selects too.
  ASSERT_TRUE(setThrough(creds(kAlicePassword, "alice", 5), "in5", "y"));
  redis_.setClientCredentials(creds(kPassword, "", 5));
  EXPECT_EQ(redis_.get("in5").value_or(""), "y");
}

// Wrong password, wrong ACL user password, no password at all: each is
// counted, logged without the secret, and the client stays down (commands
// refused, as with an unreachable server) while it retries with backoff.
TEST_F(RedisAuthTest, RefusedCredentialsAreCountedLoggedWithoutTheSecretAndStayDown) {
  stats::Counter& failures = redis::authFailuresCounter("test");
  struct Case {
    redis::Credentials auth;
    const char* error;
  } cases[] = {
      {creds("wrong-secret-1234"), "WRONGPASS"},
      {creds("wrong-secret-5678", "alice"), "WRONGPASS"},
      {creds(""), "NOAUTH"},
  };
  for (const auto& c : cases) {
    LogCapture log;
    uint64_t before = failures.value();
    Dispatcher d("client");
    redis::RedisClient client(d, options(c.auth));
    int ups = 0;
    client.setStateHandler([&](bool up) { ups += up ? 1 : 0; });
    client.start();
    // Retried with backoff: refused again and again, never up.
    ASSERT_TRUE(runUntil(d, [&] { return failures.value() >= before + 3; }, 5s))
        << c.error << ": " << log.text();
    EXPECT_FALSE(client.up());
    EXPECT_EQ(ups, 0);
    EXPECT_EQ(client.connects(), 0u);
    EXPECT_FALSE(client.command({"GET", "x"}, [](const redisReply*) {}));
    std::string text = log.text();
    EXPECT_NE(text.find(c.error), std::string::npos) << text;
    EXPECT_NE(text.find("refused the credentials"), std::string::npos) << text;
    // Logged once per episode, not once per attempt.
    EXPECT_EQ(text.find("refused the credentials"), text.rfind("refused the credentials")) << text;
    if (!c.auth.password.empty())
      EXPECT_EQ(text.find(c.auth.password), std::string::npos) << "the password was logged";
  }
}

// New credentials (a reloaded config's re-read password) apply at the next
// reconnect; the server changing its password drops nobody already in.
TEST_F(RedisAuthTest, NewCredentialsApplyAtTheNextReconnect) {
  stats::Counter& failures = redis::authFailuresCounter("test");
  Dispatcher d("client");
  redis::RedisClient c(d, options(creds(kPassword)));
  c.start();
  ASSERT_TRUE(runUntil(d, [&] { return c.up(); }));
  ASSERT_NE(redis_.command({"CONFIG", "SET", "requirepass", "rotated-pw"}), nullptr);
  redis_.setClientCredentials(creds("rotated-pw"));
  uint64_t before = failures.value();
  c.reconnect("test");
  ASSERT_TRUE(runUntil(d, [&] { return failures.value() > before; }));
  EXPECT_FALSE(c.up());
  c.setCredentials(creds("rotated-pw"));
  ASSERT_TRUE(runUntil(d, [&] { return c.up(); }));
  EXPECT_EQ(c.connects(), 2u);
}

// A subscriber authenticates before it subscribes.
TEST_F(RedisAuthTest, SubscriberAuthenticatesBeforeSubscribing) {
  Dispatcher d("client");
  auto o = options(creds(kAlicePassword, "alice"));
  o.ping_interval = 0ms;
  redis::RedisClient sub(d, o);
  std::vector<std::string> got;
  sub.subscribe("chan", [&](std::string_view, std::string_view m) { got.emplace_back(m); });
  sub.start();
  ASSERT_TRUE(runUntil(d, [&] { return sub.up(); }));
  runFor(d, 50ms);
  EXPECT_EQ(redis_.publish("chan", "hello"), 1);
  ASSERT_TRUE(runUntil(d, [&] { return got.size() == 1; }));
}

// upstream's routes_from_redis with password_env and db 2: its command
// and notice connections authenticate; the rules come from db 2.
TEST_F(RedisAuthTest, RoutesFromRedisReadsWithAPasswordFromTheEnvironment) {
  ::setenv("GW_TEST_ROUTES_REDIS_PW", kPassword, 1);
  rapidjson::Document doc;
  doc.Parse(R"({"password_env": "GW_TEST_ROUTES_REDIS_PW", "db": 2})");
  std::vector<ClusterConfig> none;
  ParseContext ctx(none, "test");
  upstream::RoutesFromRedis cfg;
  cfg.auth = redis::parseRedisAuth(doc, ctx, "/routes_from_redis");
  ::unsetenv("GW_TEST_ROUTES_REDIS_PW");
  ASSERT_TRUE(ctx.ok());
  cfg.address = *Address::parse(redis_.address());
  cfg.refresh_interval = 60s;
  cfg.key += ":auth";
  ClusterConfig game, account;
  game.name = "game";
  account.name = "account";
  std::vector<ClusterConfig> clusters{game, account};
  redis_.setClientCredentials(creds(kPassword, "", 2));
  redis_.set(cfg.key, R"({"routes": [{"match": "200:0", "cluster": "account"}]})");
  std::vector<std::shared_ptr<const upstream::RouteTable>> applied;
  Dispatcher d("routes");
  upstream::RedisRoutes routes(d, cfg, clusters, 0, "auth-test",
                               [&](std::shared_ptr<const upstream::RouteTable> t) {
                                 applied.push_back(std::move(t));
                               });
  routes.start();
  ASSERT_TRUE(runUntil(d, [&] { return applied.size() == 1; }));
  wire::ClientHeader h;
  h.server_id = wire::ClientHeader::makeServerId(0, 200, 0);
  EXPECT_EQ(applied[0]->resolve(h), 1);
  // The notice connection (a subscriber) is authenticated too.
  runFor(d, 100ms);
  redis_.set(cfg.key, R"({"routes": [{"match": "200:0", "cluster": "game"}]})");
  EXPECT_EQ(redis_.publish(cfg.channel, "updated"), 1);
  ASSERT_TRUE(runUntil(d, [&] { return applied.size() == 2; }, 2s));
  EXPECT_EQ(applied[1]->resolve(h), 0);
}

// A wrong password for routes_from_redis: counted under its component;
// the static routes stay in force (nothing applied).
TEST_F(RedisAuthTest, RoutesFromRedisWithAWrongPasswordKeepsTheStaticRoutes) {
  stats::Counter& failures = redis::authFailuresCounter("routes_from_redis");
  uint64_t before = failures.value();
  upstream::RoutesFromRedis cfg;
  cfg.auth.credentials = creds("wrong");
  cfg.address = *Address::parse(redis_.address());
  cfg.key += ":wrong";
  redis_.set(cfg.key, R"({"routes": [{"match": "200:0", "cluster": "game"}]})");
  ClusterConfig game;
  game.name = "game";
  std::vector<ClusterConfig> clusters{game};
  int applied = 0;
  Dispatcher d("routes");
  upstream::RedisRoutes routes(d, cfg, clusters, 0, "auth-test",
                               [&](std::shared_ptr<const upstream::RouteTable>) { ++applied; });
  routes.start();
  ASSERT_TRUE(runUntil(d, [&] { return failures.value() >= before + 2; }));
  runFor(d, 200ms);
  EXPECT_EQ(applied, 0);
  EXPECT_FALSE(routes.fromRedis());
}

// ---- the config keys ----

class RedisAuthConfigTest : public ::testing::Test {
 protected:
  void SetUp() override {
    const char* tmp = std::getenv("TEST_TMPDIR");
    dir_ = std::string(tmp ? tmp : "/tmp");
  }
  // Writes `text` to a file of mode `mode`; returns its path.
  std::string file(const std::string& name, const std::string& text, mode_t mode) {
    std::string path = dir_ + "/" + name;
    FILE* f = std::fopen(path.c_str(), "w");
    EXPECT_NE(f, nullptr);
    std::fwrite(text.data(), 1, text.size(), f);
    std::fclose(f);
    ::chmod(path.c_str(), mode);
    return path;
  }
  // Parses `json` at "/redis"; returns the errors ("" if none).
  std::string parse(const std::string& json, redis::RedisAuthConfig* out = nullptr) {
    rapidjson::Document doc;
    doc.Parse(json.c_str());
    std::vector<ClusterConfig> none;
    ParseContext ctx(none, "test");
    auto a = redis::parseRedisAuth(doc, ctx, "/redis");
    if (out) *out = a;
    std::string errors;
    for (const auto& e : ctx.errors()) errors += e.pointer + ": " + e.message + "\n";
    return errors;
  }
  std::string dir_;
};

TEST_F(RedisAuthConfigTest, ReadsThePasswordFromAFileStrippingTheNewline) {
  redis::RedisAuthConfig a;
  std::string path = file("pw-ok", "from-file\n", 0600);
  EXPECT_EQ(parse(R"({"password_file": ")" + path + R"(", "username": "bob", "db": 7})", &a), "");
  EXPECT_EQ(a.credentials.password, "from-file");
  EXPECT_EQ(a.credentials.username, "bob");
  EXPECT_EQ(a.credentials.db, 7);
  EXPECT_EQ(a.password_file, path);
  path = file("pw-crlf", "crlf\r\n", 0640);
  EXPECT_EQ(parse(R"({"password_file": ")" + path + R"("})", &a), "");
  EXPECT_EQ(a.credentials.password, "crlf");
  // Nothing set: no AUTH, db 0.
  EXPECT_EQ(parse("{}", &a), "");
  EXPECT_EQ(a.credentials, redis::Credentials{});
}

TEST_F(RedisAuthConfigTest, RefusesUnsafeOrMissingSecrets) {
  std::string world = file("pw-world", "secret-in-world-file\n", 0644);
  std::string errors = parse(R"({"password_file": ")" + world + R"("})");
  EXPECT_NE(errors.find("/redis/password_file: password file \"" + world +
                        "\" is readable by everyone (mode 0644)"),
            std::string::npos)
      << errors;
  EXPECT_EQ(errors.find("secret-in-world-file"), std::string::npos);
  errors = parse(R"({"password_file": ")" + dir_ + R"(/does-not-exist"})");
  EXPECT_NE(errors.find("/redis/password_file: cannot read"), std::string::npos) << errors;
  std::string empty = file("pw-empty", "\n", 0600);
  errors = parse(R"({"password_file": ")" + empty + R"("})");
  EXPECT_NE(errors.find("/redis/password_file: password file \"" + empty + "\" is empty"),
            std::string::npos)
      << errors;
  std::string big = file("pw-big", std::string(redis::kMaxPasswordFileBytes + 1, 'x'), 0600);
  errors = parse(R"({"password_file": ")" + big + R"("})");
  EXPECT_NE(errors.find("is larger than 4096 bytes"), std::string::npos) << errors;

  ::unsetenv("GW_TEST_UNSET_PW");
  errors = parse(R"({"password_env": "GW_TEST_UNSET_PW"})");
  EXPECT_EQ(errors,
            "/redis/password_env: environment variable GW_TEST_UNSET_PW is not set (it must hold "
            "the Redis password)\n");

  errors = parse(R"({"address": "127.0.0.1:6379", "password": "hunter2-literal"})");
  EXPECT_NE(errors.find("/redis/password: a password is never written in the config"),
            std::string::npos)
      << errors;
  EXPECT_NE(errors.find("\"password_file\""), std::string::npos) << errors;
  EXPECT_NE(errors.find("\"password_env\""), std::string::npos) << errors;
  EXPECT_EQ(errors.find("hunter2-literal"), std::string::npos) << errors;

  ::setenv("GW_TEST_SET_PW", "x", 1);
  std::string ok = file("pw-ok2", "x", 0600);
  errors = parse(R"({"password_env": "GW_TEST_SET_PW", "password_file": ")" + ok + R"("})");
  EXPECT_NE(errors.find("/redis/password_env: set one of"), std::string::npos) << errors;
  ::unsetenv("GW_TEST_SET_PW");
  errors = parse(R"({"username": "bob"})");
  EXPECT_NE(errors.find("/redis/username: needs a password"), std::string::npos) << errors;
  errors = parse(R"({"db": 16})");
  EXPECT_NE(errors.find("/redis/db: must be an integer from 0 to 15, got 16"), std::string::npos)
      << errors;
}

TEST_F(RedisAuthConfigTest, DescribeNamesTheSourceNeverThePassword) {
  ::setenv("GW_TEST_DESCRIBE_PW", "described-secret", 1);
  redis::RedisAuthConfig a;
  EXPECT_EQ(parse(R"({"password_env": "GW_TEST_DESCRIBE_PW", "username": "u", "db": 4})", &a), "");
  ::unsetenv("GW_TEST_DESCRIBE_PW");
  rapidjson::Document doc(rapidjson::kObjectType);
  redis::describeRedisAuth(a, doc, doc.GetAllocator());
  EXPECT_EQ(std::string(doc["password_env"].GetString()), "GW_TEST_DESCRIBE_PW");
  EXPECT_EQ(std::string(doc["username"].GetString()), "u");
  EXPECT_EQ(doc["db"].GetInt(), 4);
  EXPECT_FALSE(doc.HasMember("password"));
  EXPECT_FALSE(doc.HasMember("password_file"));
}

}  // namespace
}  // namespace test
}  // namespace gw
