// core/redis/redis_client.h — a Redis client on a worker's event loop.
//
// Defines RedisClient: one asynchronous hiredis connection attached to a
// Dispatcher's event_base with hiredis's libevent adapter. It connects in
// the background, reconnects with exponential backoff (reconnect_min ..
// reconnect_max) whenever the connection drops, and bounds every wait that
// hiredis 0.14 itself leaves unbounded: a connect that takes longer than
// connect_timeout, or a reply that takes longer than command_timeout (a
// hung or black-holed server), drops the connection, which fails every
// command in flight. A periodic PING (ping_interval) finds a dead server
// even when nothing else is asked. A client is either a command client
// (command()/send()) or a subscriber (subscribe()); subscriptions are
// renewed after every reconnect. When given Credentials (redis_auth.h), it
// sends AUTH and SELECT, pipelined ahead of that first PING, on every
// (re)connect; a refused AUTH (or a NOAUTH / WRONGPASS / NOPERM answer) is
// counted in game_gateway_redis_auth_failures_total{component}, logged once
// per episode (never with the password) and handled like an unreachable
// server: the client stays down and retries with backoff.
//
// Also defines BlockingRedis: a synchronous connection with a timeout for
// rare calls from threads that have no event loop of their own (the admin
// API on the main thread), and Reply helpers.
//
// Generic (it knows nothing about sessions): `session` uses it for its store
// and `upstream` for routes_from_redis. It lives here, not in core/, only
// because core/ is another engineer's package; it is a separate Bazel target
// (//core/redis:redis_client) that registers no filter.
//
// Threads: a RedisClient is used only on its dispatcher's thread; callbacks
// run there. BlockingRedis is thread-safe (one call at a time).
#pragma once

#include <hiredis/hiredis.h>

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/redis/redis_auth.h"
#include "core/sdk/address.h"
#include "core/sdk/dispatcher.h"
#include "core/sdk/stats.h"

struct redisAsyncContext;

namespace gw {
namespace redis {

// Reply helpers. All accept nullptr (a failed command) and return the
// "absent" value for it.
// The reply's bytes if it is a string or status reply, else nullopt.
std::optional<std::string_view> replyString(const redisReply* r);
// The reply's integer if it is an integer reply (or a string of digits).
std::optional<long long> replyInteger(const redisReply* r);
// True for a nil reply.
bool replyIsNil(const redisReply* r);
// True for an error reply (or nullptr).
bool replyIsError(const redisReply* r);
// True for an error reply that says the connection is not (or not
// correctly) authenticated: NOAUTH, WRONGPASS, NOPERM.
bool replyIsAuthError(const redisReply* r);
// Field/value pairs of a HGETALL reply (an array of even length); nullopt
// if the reply is not an array.
std::optional<std::vector<std::pair<std::string, std::string>>> replyPairs(const redisReply* r);

class RedisClient {
 public:
  struct Options {
    Address address;
    std::chrono::milliseconds connect_timeout{1000};
    std::chrono::milliseconds command_timeout{1000};
    std::chrono::milliseconds reconnect_min{100};
    std::chrono::milliseconds reconnect_max{5000};
    // A PING every this long while up (command clients only); 0 disables.
    std::chrono::milliseconds ping_interval{1000};
    // Names the client in log lines ("session store worker-0").
    std::string name = "redis";
    // Sent on every (re)connect before anything else (none by default).
    Credentials auth;
    // The `component` label of the auth-failure metric ("session",
    // "routes_from_redis").
    std::string component = "redis";
  };
  // `reply` is nullptr when the command failed without a reply (the
  // connection dropped or timed out). Valid only during the call.
  using Callback = std::function<void(const redisReply* reply)>;
  using MessageHandler = std::function<void(std::string_view channel, std::string_view message)>;
  // Called with true when the connection comes up, false when it drops.
  using StateHandler = std::function<void(bool up)>;

  RedisClient(Dispatcher& dispatcher, Options options);
  // Writes what is queued (without waiting) and closes the connection.
  // Commands still in flight are dropped without calling their callbacks.
  ~RedisClient();
  RedisClient(const RedisClient&) = delete;
  RedisClient& operator=(const RedisClient&) = delete;

  // Starts connecting (and reconnecting, forever, until destroyed).
  void start();
  // True while connected: the TCP connection is open and the server
  // answered the PING sent on it (a hung server that still accepts
  // connections never counts as up).
  bool up() const { return state_ == State::kUp && !broken_; }
  // Sets the handler told about the connection going up or down.
  void setStateHandler(StateHandler h) { on_state_ = std::move(h); }

  // Sends a command (argv form; binary-safe). Returns false, without calling
  // `cb`, when not connected; otherwise `cb` is called exactly once, later,
  // on this thread (never from inside command()). A command client only.
  bool command(const std::vector<std::string_view>& args, Callback cb);
  // Sends a command whose reply nobody waits for. Returns false when not
  // connected.
  bool send(const std::vector<std::string_view>& args);

  // Makes this a subscriber and subscribes to `channel` (now if connected,
  // else on connect, and again after every reconnect). `h` runs for every
  // message.
  void subscribe(std::string channel, MessageHandler h);

  // Drops the connection now (commands in flight fail) and reconnects after
  // the backoff. For tests and for owners that saw the server misbehave.
  void reconnect(std::string_view why);

  // Commands sent and not yet answered.
  size_t inFlight() const { return in_flight_.size(); }
  // Successful connects so far.
  uint64_t connects() const { return connects_; }
  const Options& options() const { return options_; }
  // Replaces the credentials used from the next (re)connect on (a reloaded
  // config's re-read password); the connection in place is kept.
  void setCredentials(Credentials auth) { options_.auth = std::move(auth); }

 private:
  enum class State { kIdle, kConnecting, kHandshake, kUp, kWaiting };
  struct Pending;

  void connect();
  void onConnected(int status);
  // Sends one handshake command (AUTH, SELECT, PING) whose reply goes to
  // `cb`. Returns false if hiredis refused it.
  bool sendHandshake(const std::vector<std::string_view>& args, Callback cb);
  // A handshake command was answered with an error: counts an auth failure
  // (`auth`) and logs it once per episode, then drops the connection and
  // retries with backoff. Once per connection attempt.
  void failHandshake(std::string_view command, const redisReply* reply, bool auth);
  void becomeUp();
  void onDisconnected();
  void dropConnection(const std::string& why);
  // After the context is gone (onDisconnected, dropConnection): waits,
  // logs the loss once (`was_up`: it was serving), tells the state handler,
  // and schedules the reconnect.
  void lostConnection(bool was_up, const std::string& why);
  void scheduleReconnect();
  void onTick();
  void setUp(bool up);
  bool sendArgv(const std::vector<std::string_view>& args, Pending* p);
  void sendSubscribe(const std::string& channel);

  static void onConnectTrampoline(const redisAsyncContext* ac, int status);
  static void onDisconnectTrampoline(const redisAsyncContext* ac, int status);
  static void onReplyTrampoline(redisAsyncContext* ac, void* reply, void* privdata);
  static void onMessageTrampoline(redisAsyncContext* ac, void* reply, void* privdata);

  Dispatcher& dispatcher_;
  Options options_;
  redisAsyncContext* ac_ = nullptr;
  State state_ = State::kIdle;
  Timer reconnect_timer_;
  Timer connect_timer_;
  Timer tick_timer_;
  std::chrono::milliseconds backoff_{0};
  std::deque<std::chrono::steady_clock::time_point> in_flight_;  // send times, oldest first
  std::vector<std::pair<std::string, MessageHandler>> subscriptions_;
  StateHandler on_state_;
  std::string last_error_;
  uint64_t connects_ = 0;
  bool destroying_ = false;
  bool context_gone_ = false;  // hiredis freed the context while we were destroying
  bool dropping_ = false;      // inside dropConnection's redisAsyncFree
  bool broken_ = false;  // a command failed without a reply: the connection is going away
  bool ping_outstanding_ = false;
  bool logged_down_ = false;
  bool handshake_failed_ = false;  // this connection's AUTH/SELECT/PING was refused
  bool logged_auth_ = false;       // an auth failure was logged since the last time up
  stats::Counter* auth_failures_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// The auth-failure counter of `component` (process-wide): the one
// declaration of game_gateway_redis_auth_failures_total.
stats::Counter& authFailuresCounter(const std::string& component);

// A synchronous connection for threads without an event loop. Connects on
// first use and after a failure (sending `auth`'s AUTH and SELECT first; a
// refusal is counted under `component` and fails the call); every call is
// bounded by `timeout`.
class BlockingRedis {
 public:
  BlockingRedis(Address address, std::chrono::milliseconds timeout, Credentials auth = {},
                std::string component = "redis")
      : address_(std::move(address)),
        timeout_(timeout),
        auth_(std::move(auth)),
        component_(std::move(component)) {}
  ~BlockingRedis();
  BlockingRedis(const BlockingRedis&) = delete;
  BlockingRedis& operator=(const BlockingRedis&) = delete;

  using ReplyPtr = std::unique_ptr<redisReply, void (*)(redisReply*)>;
  // Runs one command. Returns nullptr (and sets *error if given) when Redis
  // cannot be reached or did not answer in time. Thread-safe.
  ReplyPtr command(const std::vector<std::string_view>& args, std::string* error = nullptr);

 private:
  std::mutex mu_;
  // Connects and authenticates ctx_; false with *error on failure.
  bool connect(std::string* error);

  Address address_;
  std::chrono::milliseconds timeout_;
  Credentials auth_;
  std::string component_;
  redisContext* ctx_ = nullptr;
};

}  // namespace redis
}  // namespace gw
