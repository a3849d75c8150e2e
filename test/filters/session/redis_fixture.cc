#include "test/filters/session/redis_fixture.h"

#include <event2/event.h>
#include <signal.h>

#include <thread>

#include "test/harness/net.h"

namespace gw {
namespace test {

bool runUntil(Dispatcher& d, const std::function<bool()>& pred, std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return false;
    timeval tv{0, 2000};
    event_base_loopexit(d.base(), &tv);
    event_base_dispatch(d.base());
  }
  return true;
}

void runFor(Dispatcher& d, std::chrono::milliseconds t) {
  timeval tv{static_cast<time_t>(t.count() / 1000), static_cast<suseconds_t>(t.count() % 1000 * 1000)};
  event_base_loopexit(d.base(), &tv);
  event_base_dispatch(d.base());
}

RedisServer::~RedisServer() { kill(); }

bool RedisServer::start(std::string* error, uint16_t port, std::chrono::milliseconds timeout) {
  if (port != 0) return startOn(port, error, timeout);
  // redis-server cannot bind a port the kernel picks (--port 0 turns TCP
  // off), so the port is picked first, and a test running in parallel can
  // take it before redis binds it: then try another.
  for (int attempt = 1;; ++attempt) {
    uint16_t free = freePort();
    if (free == 0) {
      if (error) *error = "no free port";
      return false;
    }
    std::string why;
    if (startOn(free, &why, timeout)) return true;
    if (attempt == 3 || why.find("Address already in use") == std::string::npos) {
      if (error) *error = why;
      return false;
    }
  }
}

bool RedisServer::startOn(uint16_t port, std::string* error, std::chrono::milliseconds timeout) {
  auto fail = [&](const std::string& why) {
    if (error) *error = why;
    return false;
  };
  if (running()) return fail("redis-server already running");
  port_ = port;
  process_ = std::make_unique<Process>();
  std::string why;
  std::vector<std::string> argv{"/usr/bin/redis-server", "--port", std::to_string(port_), "--bind",
                                "127.0.0.1", "--save", "", "--appendonly", "no",
                                "--protected-mode", "no", "--loglevel", "notice"};
  argv.insert(argv.end(), server_args_.begin(), server_args_.end());
  if (!process_->start(argv, &why)) {
    return fail("cannot start redis-server: " + why);
  }
  if (!process_->waitForOutput("Ready to accept connections", timeout)) {
    std::string out = process_->output();
    kill();
    return fail("redis-server did not become ready on port " + std::to_string(port_) +
                "; output:\n" + out);
  }
  setClientCredentials(client_auth_);
  return true;
}

void RedisServer::setClientCredentials(redis::Credentials auth) {
  client_auth_ = std::move(auth);
  client_ = std::make_unique<redis::BlockingRedis>(*Address::parse(address()),
                                                   std::chrono::milliseconds(2000), client_auth_,
                                                   "test fixture");
}

void RedisServer::kill() {
  if (process_ != nullptr && process_->running()) {
    process_->signal(SIGCONT);  // a paused server dies as well
    process_->signal(SIGKILL);
    process_->wait(std::chrono::seconds(5));
  }
}

void RedisServer::pause() {
  if (running()) process_->signal(SIGSTOP);
}

void RedisServer::resume() {
  if (running()) process_->signal(SIGCONT);
}

bool RedisServer::restart(std::string* error) {
  kill();
  // The port was ours a moment ago; a TIME_WAIT does not block a listener.
  return start(error, port_);
}

redis::BlockingRedis::ReplyPtr RedisServer::command(const std::vector<std::string>& args) {
  if (!client_) return redis::BlockingRedis::ReplyPtr(nullptr, [](redisReply*) {});
  std::vector<std::string_view> v(args.begin(), args.end());
  return client_->command(v);
}

std::optional<std::string> RedisServer::get(const std::string& key) {
  auto r = command({"GET", key});
  auto s = redis::replyString(r.get());
  if (!s) return std::nullopt;
  return std::string(*s);
}

bool RedisServer::set(const std::string& key, const std::string& value) {
  auto r = command({"SET", key, value});
  return r != nullptr && !redis::replyIsError(r.get());
}

long long RedisServer::publish(const std::string& channel, const std::string& message) {
  auto r = command({"PUBLISH", channel, message});
  return redis::replyInteger(r.get()).value_or(-1);
}

bool RedisServer::exists(const std::string& key) {
  auto r = command({"EXISTS", key});
  return redis::replyInteger(r.get()).value_or(0) == 1;
}

std::vector<std::pair<std::string, std::string>> RedisServer::hgetall(const std::string& key) {
  auto r = command({"HGETALL", key});
  auto p = redis::replyPairs(r.get());
  return p ? *p : std::vector<std::pair<std::string, std::string>>{};
}

long long RedisServer::pttl(const std::string& key) {
  auto r = command({"PTTL", key});
  return redis::replyInteger(r.get()).value_or(-3);
}

}  // namespace test
}  // namespace gw
