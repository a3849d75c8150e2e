// filters/upstream/redis_routes.h — route rules shared by a fleet through a
// Redis key (upstream's `routes_from_redis`).
//
// Defines RoutesFromRedis (its config) and RedisRoutes: per worker and
// listener, it reads the rules key (JSON, see RouteTable::fromJson) at
// start, every refresh_interval, and at once when anything is published on
// the notice channel; a value that parses and names only known clusters
// replaces the worker's route table (on the worker's own thread, so a swap
// is a pointer assignment); anything else is refused with a log line (from
// worker 0 only) and the last good rules stay. A missing key keeps what is
// in force. A reader starts from the rules this process last applied from
// the same address, db and key (kept process-wide, so a reloaded config keeps
// routing by them even while Redis is down); with none yet, or none that
// fit its clusters, the static "routes" apply until Redis provides good
// rules.
// With "routes_format": "go" it reads the Go gateway's keys instead (see
// go_routes.h): the rules key (GET, JSON of GoRules) and the realm mapping
// hash (HGETALL), each re-read on its own notice channel (the key +
// ":notify", as the Go gateway subscribes) and both every
// refresh_interval (the Go gateway's one refresh loop). A refused rules
// value or realm mapping is logged and counted; the last good one stays.
// docs/filters/upstream.md and docs/fleet.md describe it for operators.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/sdk/address.h"
#include "core/sdk/cluster.h"
#include "core/sdk/dispatcher.h"
#include "core/sdk/stats.h"
#include "core/redis/redis_client.h"
#include "filters/upstream/go_routes.h"
#include "filters/upstream/route_table.h"

namespace gw {
namespace upstream {

// Which format the rules key holds: this gateway's {"routes": [...]} or
// the Go gateway's rules (go_routes.h).
enum class RoutesFormat { kGateway, kGo };

struct RoutesFromRedis {
  Address address;
  // password_file / password_env, username, db, and the password read at
  // config load (core/redis/redis_auth.h); both connections use them.
  redis::RedisAuthConfig auth;
  RoutesFormat format = RoutesFormat::kGateway;
  std::string key = "game-gateway:routing:rules";
  std::chrono::milliseconds refresh_interval{10000};
  std::string channel = "game-gateway:routing:updates";
  // Go format only: the Go gateway's redis.key_prefix; key = prefix +
  // "routing:rules", channel = key + ":notify", realm_key = prefix +
  // "realm:mapping", realm_channel = realm_key + ":notify".
  std::string key_prefix = "game-gateway:";
  std::string realm_key;
  std::string realm_channel;
  // Go format only: the settings of the clusters made from endpoints (a
  // config cluster's, named by `cluster_template`; else the defaults).
  ClusterConfig endpoint_template;
  std::string cluster_template;  // "" = the defaults

  // Go format: derives key, channel, realm_key and realm_channel from
  // key_prefix.
  void useGoKeys();
};

class RedisRoutes {
 public:
  // `apply` installs a new table (called on this worker's thread).
  // `clusters` are the upstream config's clusters (their indexes are the
  // route targets); they must outlive this object.
  RedisRoutes(Dispatcher& dispatcher, const RoutesFromRedis& config,
              const std::vector<ClusterConfig>& clusters, size_t worker_index,
              const std::string& listener,
              std::function<void(std::shared_ptr<const RouteTable>)> apply);
  // Go format: `apply` installs a new Go table (rules and realm mapping).
  RedisRoutes(Dispatcher& dispatcher, const RoutesFromRedis& config, size_t worker_index,
              const std::string& listener,
              std::function<void(std::shared_ptr<const GoRouteTable>)> apply);
  ~RedisRoutes();

  // Connects and fetches; then refreshes on the interval and on notices.
  void start();
  // Fetches the key now.
  void fetch();
  // Go format: fetches the realm mapping now.
  void fetchRealms();
  // True once rules from Redis are in force on this worker.
  bool fromRedis() const { return from_redis_; }

 private:
  void onValue(const redisReply* reply);
  // Parses `text` against this config's clusters and installs it; refuses
  // it (logged; counted unless `seeded`) if it does not parse.
  // `seeded`: the process-wide last known rules, not a value read now.
  void install(std::string_view text, bool seeded);
  // Go format: parses `text` as GoRules; on success re-checks the realm
  // mapping against them and applies. Returns false with *why if refused.
  bool installGo(std::string_view text, std::string* why);
  void onRealms(const redisReply* reply);
  // Go format: checks `fields` against the rules in force and applies them
  // (refused: logged; counted unless `seeded`). Without rules yet they wait.
  // Returns true when applied.
  bool installRealms(std::vector<std::pair<std::string, std::string>> fields, bool seeded);
  // Go format: applies GoRouteTable(go_rules_, realms_).
  void applyGo();
  // Worker 0 logs "HEAD: WHY; keeping the last good rules" (or static
  // rules, or `realms`: the last good realm mapping).
  void logRefusal(const std::string& head, const std::string& why, bool realms);

  static const std::vector<ClusterConfig>& noClusters();

  RoutesFromRedis config_;
  const std::vector<ClusterConfig>& clusters_;
  size_t worker_;
  std::string listener_;
  std::function<void(std::shared_ptr<const RouteTable>)> apply_;
  std::function<void(std::shared_ptr<const GoRouteTable>)> apply_go_;
  // Go format state (this worker): the rules and realm mapping in force,
  // the realm fields applied (re-checked when the rules change) and those
  // read before any rules.
  std::shared_ptr<const GoRules> go_rules_;
  RealmMap realms_;
  std::vector<std::pair<std::string, std::string>> realm_fields_;
  std::optional<std::vector<std::pair<std::string, std::string>>> pending_realms_;
  std::string last_realms_;  // the last realm mapping seen (canonical text)
  bool fetching_realms_ = false;
  bool refetch_realms_ = false;
  redis::RedisClient commands_;
  redis::RedisClient notices_;
  Timer timer_;
  std::string last_value_;    // the last value seen (applied or refused)
  bool fetching_ = false;
  bool refetch_ = false;  // a fetch() came while a GET was in flight
  bool from_redis_ = false;
  bool warned_missing_ = false;
  stats::Counter* applied_;
  stats::Counter* refused_;
  stats::Gauge* active_;
  stats::Counter* realms_applied_;
  stats::Counter* realms_refused_;
  // The Go gateway's names (config_type routing_rules | realm_mapping),
  // counted by worker 0 only (once per process, as Go counts), whatever
  // routes_format is (realm_mapping stays 0 with the gateway's format).
  stats::Counter* go_success_[2] = {nullptr, nullptr};
  stats::Counter* go_errors_[2] = {nullptr, nullptr};
};

}  // namespace upstream
}  // namespace gw
