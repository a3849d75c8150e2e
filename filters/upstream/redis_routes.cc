#include "filters/upstream/redis_routes.h"

#include <algorithm>
#include <map>
#include <mutex>

#include "core/sdk/log.h"

namespace gw {
namespace upstream {

namespace {
// The last rules value applied from each Redis key (by address, db and key),
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

// "address/db key": one Redis database's key.
std::string cacheKey(const RoutesFromRedis& c, const std::string& key) {
  return c.address.toString() + "/" + std::to_string(c.auth.credentials.db) + " " + key;
}
std::string cacheKey(const RoutesFromRedis& c) { return cacheKey(c, c.key); }

// The value cached for `key`, or "".
std::string cached(const std::string& key) {
  LastRules& last = LastRules::get();
  std::lock_guard<std::mutex> lock(last.mu);
  auto it = last.by_key.find(key);
  return it == last.by_key.end() ? std::string() : it->second;
}

void cache(const std::string& key, std::string value) {
  LastRules& last = LastRules::get();
  std::lock_guard<std::mutex> lock(last.mu);
  last.by_key[key] = std::move(value);
}

using Fields = std::vector<std::pair<std::string, std::string>>;

// A realm mapping as text (sorted "realm\taddress\n" lines): compared to
// skip unchanged reads, and cached for the next config's readers.
std::string fieldsText(Fields fields) {
  std::sort(fields.begin(), fields.end());
  std::string out;
  for (const auto& [k, v] : fields) out += k + "\t" + v + "\n";
  return out;
}

Fields textFields(std::string_view text) {
  Fields out;
  while (!text.empty()) {
    size_t nl = text.find('\n');
    std::string_view line = text.substr(0, nl);
    size_t tab = line.find('\t');
    if (tab != std::string_view::npos)
      out.emplace_back(std::string(line.substr(0, tab)), std::string(line.substr(tab + 1)));
    if (nl == std::string_view::npos) break;
    text.remove_prefix(nl + 1);
  }
  return out;
}

enum GoConfigType { kRoutingRules = 0, kRealmMapping = 1 };
}  // namespace

void RoutesFromRedis::useGoKeys() {
  key = key_prefix + "routing:rules";
  channel = key + ":notify";
  realm_key = key_prefix + "realm:mapping";
  realm_channel = realm_key + ":notify";
}

const std::vector<ClusterConfig>& RedisRoutes::noClusters() {
  static const std::vector<ClusterConfig>* none = new std::vector<ClusterConfig>();
  return *none;
}

RedisRoutes::RedisRoutes(Dispatcher& dispatcher, const RoutesFromRedis& config,
                         size_t worker_index, const std::string& listener,
                         std::function<void(std::shared_ptr<const GoRouteTable>)> apply)
    : RedisRoutes(dispatcher, config, noClusters(), worker_index, listener, nullptr) {
  apply_go_ = std::move(apply);
}

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
        o.auth = config.auth.credentials;
        o.component = "routes_from_redis";
        return o;
      }()),
      notices_(dispatcher, [&] {
        redis::RedisClient::Options o;
        o.address = config.address;
        o.ping_interval = std::chrono::milliseconds(0);
        o.name = "routes_from_redis notices (listener " + listener + ", worker " +
                 std::to_string(worker_index) + ")";
        o.auth = config.auth.credentials;
        o.component = "routes_from_redis";
        return o;
      }()),
      timer_(dispatcher, [this] {
        fetch();
        if (config_.format == RoutesFormat::kGo) fetchRealms();
        timer_.enable(config_.refresh_interval);
      }) {
  auto& r = stats::StatsRegistry::get();
  const char* help = "Route rule updates read from Redis, by result (counted per worker).";
  applied_ = &r.counter("game_gateway_upstream_route_updates_total", help,
                        {{"listener", listener}, {"result", "applied"}});
  refused_ = &r.counter("game_gateway_upstream_route_updates_total", help,
                        {{"listener", listener}, {"result", "refused"}});
  active_ = &r.gauge("game_gateway_upstream_redis_routes_active",
                     "Workers routing with rules from Redis (0: the static routes).",
                     {{"listener", listener}});
  const char* realm_help = "Realm mapping updates read from Redis (routes_format \"go\"), by "
                           "result (counted per worker).";
  realms_applied_ = &r.counter("game_gateway_upstream_realm_mapping_updates_total", realm_help,
                               {{"listener", listener}, {"result", "applied"}});
  realms_refused_ = &r.counter("game_gateway_upstream_realm_mapping_updates_total", realm_help,
                               {{"listener", listener}, {"result", "refused"}});
  if (worker_index == 0) {
    const char* types[] = {"routing_rules", "realm_mapping"};
    for (int t : {kRoutingRules, kRealmMapping}) {
      go_success_[t] = &r.counter("game_gateway_config_refresh_success_total",
                                  "Configuration values read from Redis and applied, by "
                                  "config_type (the Go gateway's name).",
                                  {{"config_type", types[t]}});
      go_errors_[t] = &r.counter("game_gateway_config_refresh_errors_total",
                                 "Configuration values read from Redis and refused, by "
                                 "config_type (the Go gateway's name).",
                                 {{"config_type", types[t]}});
    }
  }
}

RedisRoutes::~RedisRoutes() {
  if (from_redis_) active_->dec();
}

void RedisRoutes::start() {
  std::string seed = cached(cacheKey(config_));
  if (!seed.empty()) {
    // Rules this process already applied from the key (an earlier config):
    // in force at once; the first GET replaces them if the key changed.
    last_value_ = seed;
    install(seed, /*seeded=*/true);
  }
  bool go = config_.format == RoutesFormat::kGo;
  if (go) {
    std::string realms = cached(cacheKey(config_, config_.realm_key));
    if (!realms.empty()) {
      last_realms_ = realms;
      installRealms(textFields(realms), /*seeded=*/true);
    }
  }
  commands_.setStateHandler([this, go](bool up) {
    if (!up) return;
    fetch();
    if (go) fetchRealms();
  });
  notices_.subscribe(config_.channel, [this](std::string_view, std::string_view) { fetch(); });
  if (go) {
    notices_.subscribe(config_.realm_channel,
                       [this](std::string_view, std::string_view) { fetchRealms(); });
  }
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
    if (go_errors_[kRoutingRules] != nullptr) go_errors_[kRoutingRules]->inc();
    logRefusal("GET " + config_.key + " failed", error, /*realms=*/false);
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

void RedisRoutes::logRefusal(const std::string& head, const std::string& why, bool realms) {
  if (worker_ != 0) return;
  GW_LOG(error, "upstream (listener '{}'): routes_from_redis: {}: {}; keeping the {}", listener_,
         head, why,
         realms ? "last good realm mapping" : (from_redis_ ? "last good rules" : "static rules"));
}

void RedisRoutes::install(std::string_view text, bool seeded) {
  std::string why;
  bool ok;
  std::shared_ptr<const RouteTable> table;
  if (config_.format == RoutesFormat::kGo) {
    ok = installGo(text, &why);
  } else {
    auto parsed = RouteTable::fromJson(
        text,
        [this](std::string_view name) {
          for (size_t i = 0; i < clusters_.size(); ++i)
            if (clusters_[i].name == name) return static_cast<int>(i);
          return -1;
        },
        &why);
    ok = parsed.has_value();
    if (ok) table = std::make_shared<const RouteTable>(std::move(*parsed));
  }
  if (!ok) {
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
    if (go_errors_[kRoutingRules] != nullptr) go_errors_[kRoutingRules]->inc();
    logRefusal("refused the update in " + config_.key, why, /*realms=*/false);
    return;
  }
  if (!seeded) {
    applied_->inc();
    if (go_success_[kRoutingRules] != nullptr) go_success_[kRoutingRules]->inc();
    cache(cacheKey(config_), std::string(text));
  }
  if (!from_redis_) active_->inc();
  from_redis_ = true;
  if (table) apply_(std::move(table));
  if (worker_ == 0) {
    GW_LOG(info, "upstream (listener '{}'): routes_from_redis: applied {} rules from {}", listener_,
           seeded ? "the last known" : "new", config_.key);
  }
}

bool RedisRoutes::installGo(std::string_view text, std::string* why) {
  auto rules = GoRules::parse(text, why);
  if (!rules) return false;
  go_rules_ = std::make_shared<const GoRules>(std::move(*rules));
  if (pending_realms_) {
    // Read before any rules: checked now.
    auto fields = std::move(*pending_realms_);
    pending_realms_.reset();
    if (installRealms(std::move(fields), /*seeded=*/false)) return true;  // applied with them
  }
  // The realm mapping in force, re-checked against the new rules: entries
  // whose endpoint the rules no longer name are ignored until the mapping
  // changes.
  realms_.clear();
  for (const auto& f : realm_fields_) {
    std::string bad;
    if (auto one = parseRealmMapping({f}, *go_rules_, &bad)) {
      realms_.insert(one->begin(), one->end());
    } else if (worker_ == 0) {
      GW_LOG(warn, "upstream (listener '{}'): routes_from_redis: {} {}; ignored under the new "
                   "rules",
             listener_, config_.realm_key, bad);
    }
  }
  applyGo();
  return true;
}

void RedisRoutes::fetchRealms() {
  if (fetching_realms_) {
    refetch_realms_ = true;
    return;
  }
  fetching_realms_ = true;
  refetch_realms_ = false;
  bool sent = commands_.command({"HGETALL", config_.realm_key}, [this](const redisReply* reply) {
    fetching_realms_ = false;
    onRealms(reply);
    if (refetch_realms_) fetchRealms();
  });
  if (!sent) fetching_realms_ = false;
}

void RedisRoutes::onRealms(const redisReply* reply) {
  if (reply == nullptr) return;  // down: keep what we have
  Fields fields;
  std::string error;
  if (redis::replyIsError(reply)) {
    error = reply->str != nullptr ? std::string(reply->str, reply->len) : "error reply";
  } else if (reply->type != REDIS_REPLY_ARRAY || reply->elements % 2 != 0) {
    error = "HGETALL answered no field list";
  } else {
    for (size_t i = 0; i + 1 < reply->elements; i += 2) {
      auto k = redis::replyString(reply->element[i]);
      auto v = redis::replyString(reply->element[i + 1]);
      if (!k || !v) {
        error = "HGETALL answered a field that is not a string";
        break;
      }
      fields.emplace_back(std::string(*k), std::string(*v));
    }
  }
  if (!error.empty()) {
    if (error == last_realms_) return;
    last_realms_ = error;
    realms_refused_->inc();
    if (go_errors_[kRealmMapping] != nullptr) go_errors_[kRealmMapping]->inc();
    logRefusal("HGETALL " + config_.realm_key + " failed", error, /*realms=*/true);
    return;
  }
  std::string text = fieldsText(fields);
  if (text == last_realms_) return;
  last_realms_ = text;
  installRealms(std::move(fields), /*seeded=*/false);
}

bool RedisRoutes::installRealms(Fields fields, bool seeded) {
  if (!go_rules_) {
    pending_realms_ = std::move(fields);
    return false;
  }
  std::string why;
  auto map = parseRealmMapping(fields, *go_rules_, &why);
  if (!map) {
    if (seeded) return false;  // the rules in force changed since: wait for Redis
    realms_refused_->inc();
    if (go_errors_[kRealmMapping] != nullptr) go_errors_[kRealmMapping]->inc();
    logRefusal("refused the realm mapping in " + config_.realm_key, why, /*realms=*/true);
    return false;
  }
  if (!seeded) {
    realms_applied_->inc();
    if (go_success_[kRealmMapping] != nullptr) go_success_[kRealmMapping]->inc();
    cache(cacheKey(config_, config_.realm_key), fieldsText(fields));
  }
  realms_ = std::move(*map);
  realm_fields_ = std::move(fields);
  if (worker_ == 0) {
    GW_LOG(info, "upstream (listener '{}'): routes_from_redis: applied the realm mapping in {} "
                 "({} realms)",
           listener_, config_.realm_key, realms_.size());
  }
  applyGo();
  return true;
}

void RedisRoutes::applyGo() {
  if (!go_rules_ || !apply_go_) return;
  apply_go_(std::make_shared<const GoRouteTable>(go_rules_, realms_));
}

}  // namespace upstream
}  // namespace gw
