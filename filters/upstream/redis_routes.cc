#include "filters/upstream/redis_routes.h"

#include <map>
#include <mutex>

#include "core/sdk/log.h"

namespace gw {
namespace upstream {

namespace {
// The last rules value applied from each Redis key (by address and key),
// process-wide: a reader of a reloaded config starts from it instead of
// the static routes, even if Redis is down at the reload.
struct LastRules {
  std::mutex mu;
  std::map<std::string, std::string> by_key;

  static LastRules& get() {
    static LastRules* last = new LastRules();  // never destroyed: workers may outlive main
    return *last;
  }
};

std::string cacheKey(const RoutesFromRedis& c) { return c.address.toString() + " " + c.key; }
}  // namespace

RedisRoutes::RedisRoutes(Dispatcher& dispatcher, const RoutesFromRedis& config,
                         const std::vector<ClusterConfig>& clusters, size_t worker_index,
                         const std::string& listener,
                         std::function<void(std::shared_ptr<const RouteTable>)> apply)
    : config_(config),
      clusters_(clusters),
      worker_(worker_index),
      listener_(listener),
      apply_(std::move(apply)),
      commands_(dispatcher, [&] {
        redis::RedisClient::Options o;
        o.address = config.address;
        o.name = "routes_from_redis (listener " + listener + ", worker " +
                 std::to_string(worker_index) + ")";
        return o;
      }()),
      notices_(dispatcher, [&] {
        redis::RedisClient::Options o;
        o.address = config.address;
        o.ping_interval = std::chrono::milliseconds(0);
        o.name = "routes_from_redis notices (listener " + listener + ", worker " +
                 std::to_string(worker_index) + ")";
        return o;
      }()),
      timer_(dispatcher, [this] {
        fetch();
        timer_.enable(config_.refresh_interval);
      }) {
  auto& r = stats::StatsRegistry::get();
  const char* help = "Route rule updates read from Redis, by result (counted per worker).";
  applied_ = &r.counter("game_gateway_upstream_route_updates_total", help,
                        {{"listener", listener}, {"result", "applied"}});
  refused_ = &r.counter("game_gateway_upstream_route_updates_total", help,
                        {{"listener", listener}, {"result", "refused"}});
  // The Go gateway's names (config_type="routing_rules"), counted with
  // applied_ / refused_.
  go_success_ = &r.counter("game_gateway_config_refresh_success_total",
                           "Config refreshes applied, by config_type (the Go gateway's name).",
                           {{"config_type", "routing_rules"}});
  go_errors_ = &r.counter("game_gateway_config_refresh_errors_total",
                          "Config refreshes refused, by config_type (the Go gateway's name).",
                          {{"config_type", "routing_rules"}});
  active_ = &r.gauge("game_gateway_upstream_redis_routes_active",
                     "Workers routing with rules from Redis (0: the static routes).",
                     {{"listener", listener}});
}

RedisRoutes::~RedisRoutes() {
  if (from_redis_) active_->dec();
}

void RedisRoutes::start() {
  std::string seed;
  {
    LastRules& last = LastRules::get();
    std::lock_guard<std::mutex> lock(last.mu);
    auto it = last.by_key.find(cacheKey(config_));
    if (it != last.by_key.end()) seed = it->second;
  }
  if (!seed.empty()) {
    // Rules this process already applied from the key (an earlier config):
    // in force at once; the first GET replaces them if the key changed.
    last_value_ = seed;
    install(seed, /*seeded=*/true);
  }
  commands_.setStateHandler([this](bool up) {
    if (up) fetch();
  });
  notices_.subscribe(config_.channel, [this](std::string_view, std::string_view) { fetch(); });
  commands_.start();
  notices_.start();
  timer_.enable(config_.refresh_interval);
}

void RedisRoutes::fetch() {
  if (fetching_) {
    // A GET is in flight, but it may have been read before the change this
    // call announces: read again when it returns.
    refetch_ = true;
    return;
  }
  fetching_ = true;
  refetch_ = false;
  bool sent = commands_.command({"GET", config_.key}, [this](const redisReply* reply) {
    fetching_ = false;
    onValue(reply);
    if (refetch_) fetch();
  });
  if (!sent) fetching_ = false;
}

void RedisRoutes::onValue(const redisReply* reply) {
  if (reply == nullptr) return;  // down: keep what we have
  if (redis::replyIsError(reply)) {
    // E.g. WRONGTYPE: the key holds no string. Counted and logged like a
    // malformed value, once per distinct error.
    std::string error = reply->str != nullptr ? std::string(reply->str, reply->len) : "error reply";
    if (error == last_value_) return;
    last_value_ = error;
    refused_->inc();
    go_errors_->inc();
    if (worker_ == 0) {
      GW_LOG(error, "upstream (listener '{}'): routes_from_redis: GET {} failed: {}; keeping the "
                    "{} rules",
             listener_, config_.key, error, from_redis_ ? "last good" : "static");
    }
    return;
  }
  if (redis::replyIsNil(reply)) {
    if (!warned_missing_ && worker_ == 0) {
      GW_LOG(warn, "upstream (listener '{}'): routes_from_redis: key {} does not exist; {}",
             listener_, config_.key,
             from_redis_ ? "keeping the last rules read from it" : "using the static routes");
    }
    warned_missing_ = true;
    return;
  }
  warned_missing_ = false;
  auto text = redis::replyString(reply);
  if (!text) return;
  if (*text == last_value_) return;  // unchanged: nothing to do (and nothing to log again)
  last_value_ = std::string(*text);
  install(*text, /*seeded=*/false);
}

void RedisRoutes::install(std::string_view text, bool seeded) {
  std::string why;
  auto table = RouteTable::fromJson(
      text,
      [this](std::string_view name) {
        for (size_t i = 0; i < clusters_.size(); ++i)
          if (clusters_[i].name == name) return static_cast<int>(i);
        return -1;
      },
      &why);
  if (!table) {
    if (seeded) {
      // Good for the earlier config, not for this one (e.g. a cluster was
      // renamed): wait for Redis.
      if (worker_ == 0) {
        GW_LOG(warn, "upstream (listener '{}'): routes_from_redis: the rules last read from {} "
                     "do not fit this config ({}); static routes until Redis has new ones",
               listener_, config_.key, why);
      }
      return;
    }
    refused_->inc();
    go_errors_->inc();
    if (worker_ == 0) {
      GW_LOG(error, "upstream (listener '{}'): routes_from_redis: refused the update in {}: {}; "
                    "keeping the {} rules",
             listener_, config_.key, why, from_redis_ ? "last good" : "static");
    }
    return;
  }
  if (!seeded) {
    applied_->inc();
    go_success_->inc();
    LastRules& last = LastRules::get();
    std::lock_guard<std::mutex> lock(last.mu);
    last.by_key[cacheKey(config_)] = std::string(text);
  }
  if (!from_redis_) active_->inc();
  from_redis_ = true;
  apply_(std::make_shared<const RouteTable>(std::move(*table)));
  if (worker_ == 0) {
    GW_LOG(info, "upstream (listener '{}'): routes_from_redis: applied {} rules from {}", listener_,
           seeded ? "the last known" : "new", config_.key);
  }
}

}  // namespace upstream
}  // namespace gw
