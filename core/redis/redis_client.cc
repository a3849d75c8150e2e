#include "core/redis/redis_client.h"

#include <hiredis/adapters/libevent.h>
#include <hiredis/async.h>

#include <algorithm>
#include <cstring>
#include <random>

#include "core/sdk/clock.h"
#include "core/sdk/log.h"

namespace gw {
namespace redis {

using std::chrono::milliseconds;
using std::chrono::steady_clock;

std::optional<std::string_view> replyString(const redisReply* r) {
  if (r == nullptr) return std::nullopt;
  if (r->type == REDIS_REPLY_STRING || r->type == REDIS_REPLY_STATUS)
    return std::string_view(r->str, r->len);
  return std::nullopt;
}

std::optional<long long> replyInteger(const redisReply* r) {
  if (r == nullptr) return std::nullopt;
  if (r->type == REDIS_REPLY_INTEGER) return r->integer;
  if (r->type == REDIS_REPLY_STRING && r->len > 0 && r->len <= 19) {
    long long v = 0;
    for (size_t i = 0; i < r->len; ++i) {
      char c = r->str[i];
      if (c < '0' || c > '9') return std::nullopt;
      v = v * 10 + (c - '0');
    }
    return v;
  }
  return std::nullopt;
}

bool replyIsNil(const redisReply* r) { return r != nullptr && r->type == REDIS_REPLY_NIL; }

bool replyIsError(const redisReply* r) { return r == nullptr || r->type == REDIS_REPLY_ERROR; }

bool replyIsAuthError(const redisReply* r) {
  if (r == nullptr || r->type != REDIS_REPLY_ERROR) return false;
  std::string_view e(r->str, r->len);
  for (std::string_view code : {"NOAUTH", "WRONGPASS", "NOPERM"}) {
    if (e.substr(0, code.size()) == code) return true;
  }
  return false;
}

stats::Counter& authFailuresCounter(const std::string& component) {
  return stats::StatsRegistry::get().counter(
      "game_gateway_redis_auth_failures_total",
      "Redis connections whose AUTH (or SELECT) the server refused, by component (the "
      "connection then counts as down and retries with backoff).",
      {{"component", component}});
}

namespace {

// One command a connection sends before any other.
struct HandshakeCommand {
  std::vector<std::string> args;
  std::string name;  // for messages: "AUTH" (never its arguments) or "SELECT 3"
  bool auth;         // a refusal is an auth failure
};

// What a connection with `auth` sends first: AUTH [username] password (if
// a password is set), SELECT db (if not 0).
std::vector<HandshakeCommand> handshakeCommands(const Credentials& auth) {
  std::vector<HandshakeCommand> out;
  if (!auth.password.empty()) {
    HandshakeCommand a{{"AUTH"}, "AUTH", true};
    if (!auth.username.empty()) a.args.push_back(auth.username);
    a.args.push_back(auth.password);
    out.push_back(std::move(a));
  }
  if (auth.db != 0) {
    std::string db = std::to_string(auth.db);
    out.push_back({{"SELECT", db}, "SELECT " + db, false});
  }
  return out;
}

// "<command> refused: <the server's error>", with the password (should a
// server ever echo it) replaced by "[redacted]": safe to log.
std::string refusal(std::string_view command, const redisReply* r, const std::string& password) {
  std::string text = r != nullptr && r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len)
                                                                   : std::string("no answer");
  if (!password.empty()) {
    for (size_t at = text.find(password); at != std::string::npos; at = text.find(password, at))
      text.replace(at, password.size(), "[redacted]");
  }
  return std::string(command) + " refused: " + text;
}

}  // namespace

std::optional<std::vector<std::pair<std::string, std::string>>> replyPairs(const redisReply* r) {
  if (r == nullptr || r->type != REDIS_REPLY_ARRAY || r->elements % 2 != 0) return std::nullopt;
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(r->elements / 2);
  for (size_t i = 0; i + 1 < r->elements; i += 2) {
    auto k = replyString(r->element[i]);
    auto v = replyString(r->element[i + 1]);
    if (!k || !v) return std::nullopt;
    out.emplace_back(std::string(*k), std::string(*v));
  }
  return out;
}

// One command in flight: who to call with the reply.
struct RedisClient::Pending {
  RedisClient* client;
  Callback cb;  // empty for send()
};

RedisClient::RedisClient(Dispatcher& dispatcher, Options options)
    : dispatcher_(dispatcher),
      options_(std::move(options)),
      reconnect_timer_(dispatcher, [this] { connect(); }),
      connect_timer_(dispatcher,
                     [this] {
                       dropConnection("connect did not complete within " +
                                      std::to_string(options_.connect_timeout.count()) + "ms");
                     }),
      tick_timer_(dispatcher, [this] { onTick(); }),
      auth_failures_(&authFailuresCounter(options_.component)) {}

RedisClient::~RedisClient() {
  destroying_ = true;
  *alive_ = false;
  if (ac_ != nullptr) {
    redisAsyncContext* ac = ac_;
    ac_ = nullptr;
    // Best effort: hand what is queued to the kernel (a stopping gateway's
    // last writes, e.g. sessions turned lingering) without waiting.
    // A write error frees the context right there (the disconnect callback
    // then sets context_gone_).
    if (state_ == State::kUp && !broken_) redisAsyncHandleWrite(ac);
    if (!context_gone_) redisAsyncFree(ac);  // pending callbacks are dropped uncalled
  }
}

void RedisClient::start() {
  if (state_ != State::kIdle) return;
  connect();
}

void RedisClient::connect() {
  if (destroying_ || ac_ != nullptr) return;
  std::string ip = options_.address.ipString();
  redisAsyncContext* ac = redisAsyncConnect(ip.c_str(), options_.address.port());
  if (ac == nullptr || ac->err) {
    last_error_ = ac ? ac->errstr : "out of memory";
    if (ac != nullptr) redisAsyncFree(ac);
    if (!logged_down_) {
      GW_LOG(warn, "{}: cannot connect to redis {}: {}; retrying", options_.name,
             options_.address.toString(), last_error_);
      logged_down_ = true;
    }
    state_ = State::kWaiting;
    scheduleReconnect();
    return;
  }
  ac->data = this;
  redisLibeventAttach(ac, dispatcher_.base());
  redisAsyncSetConnectCallback(ac, &RedisClient::onConnectTrampoline);
  redisAsyncSetDisconnectCallback(ac, &RedisClient::onDisconnectTrampoline);
  ac_ = ac;
  state_ = State::kConnecting;
  connect_timer_.enable(options_.connect_timeout);
}

void RedisClient::onConnectTrampoline(const redisAsyncContext* ac, int status) {
  auto* self = static_cast<RedisClient*>(ac->data);
  if (self == nullptr || self->destroying_) return;
  self->onConnected(status);
}

void RedisClient::onConnected(int status) {
  connect_timer_.disable();
  if (status != REDIS_OK) {
    // hiredis frees the context when this returns; no disconnect callback.
    last_error_ = ac_ != nullptr && ac_->errstr[0] ? ac_->errstr : "connect failed";
    ac_ = nullptr;
    if (!logged_down_) {
      GW_LOG(warn, "{}: cannot connect to redis {}: {}; retrying with backoff", options_.name,
             options_.address.toString(), last_error_);
      logged_down_ = true;
    }
    state_ = State::kWaiting;
    scheduleReconnect();
    return;
  }
  // TCP is up. AUTH and SELECT (if configured) go first, pipelined with a
  // PING; the server is up once it answers the PING (every reply bounded by
  // command_timeout like any command) and refused none of them.
  state_ = State::kHandshake;
  broken_ = false;
  handshake_failed_ = false;
  milliseconds tick = options_.command_timeout;
  if (options_.ping_interval.count() > 0) tick = std::min(tick, options_.ping_interval);
  tick_timer_.enable(std::max(milliseconds(20), tick / 2));
  for (auto& cmd : handshakeCommands(options_.auth)) {
    std::vector<std::string_view> args(cmd.args.begin(), cmd.args.end());
    if (!sendHandshake(args, [this, name = std::move(cmd.name), auth = cmd.auth](
                                 const redisReply* r) {
          if (r != nullptr && r->type == REDIS_REPLY_ERROR)
            failHandshake(name, r, auth || replyIsAuthError(r));
        })) {
      return;
    }
  }
  sendHandshake({"PING"}, [this](const redisReply* r) {
    if (r == nullptr || state_ != State::kHandshake || handshake_failed_) return;
    // A server that wants a password we do not send (or a user without
    // the right to PING) answers NOAUTH / NOPERM.
    if (replyIsAuthError(r)) return failHandshake("PING", r, true);
    becomeUp();
  });
}

bool RedisClient::sendHandshake(const std::vector<std::string_view>& args, Callback cb) {
  auto* p = new Pending{this, std::move(cb)};
  if (!sendArgv(args, p)) {
    delete p;
    return false;
  }
  in_flight_.push_back(coarseNow());
  return true;
}

void RedisClient::failHandshake(std::string_view command, const redisReply* reply, bool auth) {
  if (handshake_failed_) return;
  handshake_failed_ = true;
  std::string why = refusal(command, reply, options_.auth.password);
  if (auth) {
    auth_failures_->inc();
    if (!logged_auth_) {
      GW_LOG(warn, "{}: redis {} refused the credentials ({}; {}): {}; retrying with backoff",
             options_.name, options_.address.toString(),
             options_.auth.password.empty() ? "no password configured" : "password set",
             options_.auth.username.empty() ? "default user"
                                            : "user \"" + options_.auth.username + "\"",
             why);
      logged_auth_ = true;
      logged_down_ = true;  // lostConnection need not say it again
    }
  }
  // Not from inside hiredis's callback: the drop frees the context.
  reconnect(why);
}

void RedisClient::becomeUp() {
  state_ = State::kUp;
  backoff_ = milliseconds(0);
  ++connects_;
  ping_outstanding_ = false;
  GW_LOG(info, "{}: connected to redis {}{}", options_.name, options_.address.toString(),
         options_.auth.db != 0 ? " (db " + std::to_string(options_.auth.db) + ")" : std::string());
  logged_down_ = false;
  logged_auth_ = false;
  for (const auto& s : subscriptions_) sendSubscribe(s.first);
  setUp(true);
}

void RedisClient::onDisconnectTrampoline(const redisAsyncContext* ac, int) {
  auto* self = static_cast<RedisClient*>(ac->data);
  if (self == nullptr) return;
  if (self->destroying_) {
    self->context_gone_ = true;
    return;
  }
  if (self->dropping_) return;  // dropConnection() finishes the job
  self->onDisconnected();
}

void RedisClient::onDisconnected() {
  // hiredis frees the context when this returns; pending commands have
  // already been failed (their callbacks ran with nullptr).
  bool was_up = state_ == State::kUp;
  std::string why = !last_error_.empty()                 ? last_error_
                    : ac_ != nullptr && ac_->err != 0 ? std::string(ac_->errstr)
                                                      : std::string("connection closed by the server");
  ac_ = nullptr;
  in_flight_.clear();
  tick_timer_.disable();
  lostConnection(was_up, why);
}

void RedisClient::dropConnection(const std::string& why) {
  if (ac_ == nullptr || destroying_) return;
  redisAsyncContext* ac = ac_;
  bool was_up = state_ == State::kUp;
  // Fails what is in flight (callbacks run with nullptr); the disconnect
  // callback, if hiredis runs one, leaves the rest to us.
  dropping_ = true;
  redisAsyncFree(ac);
  dropping_ = false;
  ac_ = nullptr;
  connect_timer_.disable();
  tick_timer_.disable();
  in_flight_.clear();
  lostConnection(was_up, why);
}

void RedisClient::lostConnection(bool was_up, const std::string& why) {
  state_ = State::kWaiting;
  if (was_up) {
    GW_LOG(warn, "{}: lost redis {}: {}; reconnecting with backoff", options_.name,
           options_.address.toString(), why);
    logged_down_ = true;
    setUp(false);
  } else if (!logged_down_) {
    GW_LOG(warn, "{}: redis {}: {}; retrying with backoff", options_.name,
           options_.address.toString(), why);
    logged_down_ = true;
  }
  last_error_.clear();
  scheduleReconnect();
}

void RedisClient::reconnect(std::string_view why) {
  // Deferred to a timer: this may be called from inside a hiredis callback,
  // where the context must not be freed.
  std::string reason(why);
  std::weak_ptr<bool> alive = alive_;
  dispatcher_.post([this, alive, reason] {
    auto a = alive.lock();
    if (a && *a) dropConnection(reason);
  });
}

void RedisClient::scheduleReconnect() {
  if (destroying_) return;
  if (backoff_.count() == 0) {
    backoff_ = options_.reconnect_min;
  } else {
    backoff_ = std::min(backoff_ * 2, options_.reconnect_max);
  }
  // +-25% jitter so a fleet does not reconnect in lockstep.
  static thread_local std::minstd_rand rng(std::random_device{}());
  int64_t b = backoff_.count();
  int64_t jitter = b / 4 > 0 ? static_cast<int64_t>(rng() % static_cast<uint64_t>(b / 2 + 1)) - b / 4 : 0;
  reconnect_timer_.enable(milliseconds(std::max<int64_t>(1, b + jitter)));
}

void RedisClient::onTick() {
  if (state_ != State::kUp && state_ != State::kHandshake) return;
  auto now = coarseNow();
  if (!in_flight_.empty() && now - in_flight_.front() > options_.command_timeout) {
    dropConnection("no reply within command_timeout " +
                   std::to_string(options_.command_timeout.count()) + "ms");
    return;
  }
  if (state_ == State::kUp && subscriptions_.empty() && options_.ping_interval.count() > 0 &&
      !ping_outstanding_) {
    ping_outstanding_ = true;
    command({"PING"}, [this](const redisReply*) { ping_outstanding_ = false; });
  }
  milliseconds tick = options_.command_timeout;
  if (options_.ping_interval.count() > 0) tick = std::min(tick, options_.ping_interval);
  tick_timer_.enable(std::max(milliseconds(20), tick / 2));
}

void RedisClient::setUp(bool up) {
  if (on_state_) on_state_(up);
}

bool RedisClient::sendArgv(const std::vector<std::string_view>& args, Pending* p) {
  constexpr size_t kInline = 16;
  const char* argv_inline[kInline];
  size_t lens_inline[kInline];
  std::vector<const char*> argv_heap;
  std::vector<size_t> lens_heap;
  const char** argv = argv_inline;
  size_t* lens = lens_inline;
  if (args.size() > kInline) {
    argv_heap.resize(args.size());
    lens_heap.resize(args.size());
    argv = argv_heap.data();
    lens = lens_heap.data();
  }
  for (size_t i = 0; i < args.size(); ++i) {
    argv[i] = args[i].data();
    lens[i] = args[i].size();
  }
  int rc = redisAsyncCommandArgv(ac_, &RedisClient::onReplyTrampoline, p,
                                 static_cast<int>(args.size()), argv, lens);
  return rc == REDIS_OK;
}

bool RedisClient::command(const std::vector<std::string_view>& args, Callback cb) {
  if (state_ != State::kUp || broken_ || ac_ == nullptr || args.empty()) return false;
  auto* p = new Pending{this, std::move(cb)};
  if (!sendArgv(args, p)) {
    delete p;
    return false;
  }
  in_flight_.push_back(coarseNow());
  return true;
}

bool RedisClient::send(const std::vector<std::string_view>& args) {
  return command(args, Callback());
}

void RedisClient::onReplyTrampoline(redisAsyncContext* ac, void* reply, void* privdata) {
  auto* p = static_cast<Pending*>(privdata);
  std::unique_ptr<Pending> owned(p);
  RedisClient* self = p->client;
  if (self->destroying_) return;
  if (!self->in_flight_.empty()) self->in_flight_.pop_front();
  // nullptr: the connection is going away; nothing more may be sent on it.
  if (reply == nullptr) self->broken_ = true;
  (void)ac;
  if (p->cb) p->cb(static_cast<const redisReply*>(reply));
}

void RedisClient::subscribe(std::string channel, MessageHandler h) {
  subscriptions_.emplace_back(channel, std::move(h));
  if (state_ == State::kUp) sendSubscribe(channel);
}

void RedisClient::sendSubscribe(const std::string& channel) {
  const char* argv[2] = {"SUBSCRIBE", channel.c_str()};
  size_t lens[2] = {9, channel.size()};
  redisAsyncCommandArgv(ac_, &RedisClient::onMessageTrampoline, this, 2, argv, lens);
}

void RedisClient::onMessageTrampoline(redisAsyncContext*, void* reply, void* privdata) {
  auto* self = static_cast<RedisClient*>(privdata);
  if (self->destroying_ || reply == nullptr) return;
  auto* r = static_cast<redisReply*>(reply);
  if (r->type != REDIS_REPLY_ARRAY || r->elements < 3) return;
  auto kind = replyString(r->element[0]);
  if (!kind || *kind != "message") return;  // "subscribe" confirmations
  auto channel = replyString(r->element[1]);
  auto message = replyString(r->element[2]);
  if (!channel || !message) return;
  for (auto& s : self->subscriptions_) {
    if (s.first == *channel && s.second) s.second(*channel, *message);
  }
}

BlockingRedis::~BlockingRedis() {
  if (ctx_ != nullptr) redisFree(ctx_);
}

BlockingRedis::ReplyPtr BlockingRedis::command(const std::vector<std::string_view>& args,
                                               std::string* error) {
  auto none = ReplyPtr(nullptr, [](redisReply* r) { freeReplyObject(r); });
  std::lock_guard<std::mutex> lock(mu_);
  if (ctx_ == nullptr && !connect(error)) return none;
  std::vector<const char*> argv;
  std::vector<size_t> lens;
  for (auto a : args) {
    argv.push_back(a.data());
    lens.push_back(a.size());
  }
  void* r = redisCommandArgv(ctx_, static_cast<int>(args.size()), argv.data(), lens.data());
  if (r == nullptr) {
    if (error) *error = ctx_->errstr;
    redisFree(ctx_);
    ctx_ = nullptr;
    return none;
  }
  return ReplyPtr(static_cast<redisReply*>(r), [](redisReply* x) { freeReplyObject(x); });
}

bool BlockingRedis::connect(std::string* error) {
  timeval tv{static_cast<time_t>(timeout_.count() / 1000),
             static_cast<suseconds_t>((timeout_.count() % 1000) * 1000)};
  std::string ip = address_.ipString();
  ctx_ = redisConnectWithTimeout(ip.c_str(), address_.port(), tv);
  if (ctx_ == nullptr || ctx_->err) {
    if (error) *error = ctx_ ? ctx_->errstr : "out of memory";
    if (ctx_) redisFree(ctx_);
    ctx_ = nullptr;
    return false;
  }
  redisSetTimeout(ctx_, tv);
  for (const auto& cmd : handshakeCommands(auth_)) {
    std::vector<const char*> argv;
    std::vector<size_t> lens;
    for (const auto& a : cmd.args) {
      argv.push_back(a.data());
      lens.push_back(a.size());
    }
    auto* r = static_cast<redisReply*>(
        redisCommandArgv(ctx_, static_cast<int>(cmd.args.size()), argv.data(), lens.data()));
    bool refused = r == nullptr || r->type == REDIS_REPLY_ERROR;
    if (refused && error)
      *error = r == nullptr ? std::string(ctx_->errstr) : refusal(cmd.name, r, auth_.password);
    if (refused && r != nullptr && (cmd.auth || replyIsAuthError(r)))
      authFailuresCounter(component_).inc();
    if (r != nullptr) freeReplyObject(r);
    if (refused) {
      redisFree(ctx_);
      ctx_ = nullptr;
      return false;
    }
  }
  return true;
}

}  // namespace redis
}  // namespace gw
