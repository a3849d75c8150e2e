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
// the same address and key (kept process-wide, so a reloaded config keeps
// routing by them even while Redis is down); with none yet, or none that
// fit its clusters, the static "routes" apply until Redis provides good
// rules.
// docs/filters/upstream.md and docs/fleet.md describe it for operators.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/sdk/address.h"
#include "core/sdk/cluster.h"
#include "core/sdk/dispatcher.h"
#include "core/sdk/stats.h"
#include "core/redis/redis_client.h"
#include "filters/upstream/route_table.h"

namespace gw {
namespace upstream {

struct RoutesFromRedis {
  Address address;
  std::string key = "game-gateway:routing:rules";
  std::chrono::milliseconds refresh_interval{10000};
  std::string channel = "game-gateway:routing:updates";
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
  ~RedisRoutes();

  // Connects and fetches; then refreshes on the interval and on notices.
  void start();
  // Fetches the key now.
  void fetch();
  // True once rules from Redis are in force on this worker.
  bool fromRedis() const { return from_redis_; }

 private:
  void onValue(const redisReply* reply);
  // Parses `text` against this config's clusters and installs it; refuses
  // it (logged; counted unless `seeded`) if it does not parse.
  // `seeded`: the process-wide last known rules, not a value read now.
  void install(std::string_view text, bool seeded);

  RoutesFromRedis config_;
  const std::vector<ClusterConfig>& clusters_;
  size_t worker_;
  std::string listener_;
  std::function<void(std::shared_ptr<const RouteTable>)> apply_;
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
  stats::Counter* go_success_;  // config_refresh_success_total{config_type="routing_rules"}
  stats::Counter* go_errors_;   // config_refresh_errors_total{config_type="routing_rules"}
  stats::Gauge* active_;
};

}  // namespace upstream
}  // namespace gw
