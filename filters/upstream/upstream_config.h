// filters/upstream/upstream_config.h — the parsed config of the `upstream`
// filter.
//
// Defines UpstreamConfig: one per listener that uses `upstream`; immutable,
// shared by every worker's UpstreamFactory. docs/filters/upstream.md
// documents every field. The parser and the registered filter type are in
// upstream_config.cc.
#pragma once

#include <rapidjson/document.h>

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "core/sdk/cluster.h"
#include "core/sdk/registry.h"
#include "filters/upstream/output_shares.h"
#include "filters/upstream/redis_routes.h"
#include "filters/upstream/route_table.h"

namespace gw {
namespace upstream {

struct UpstreamConfig : FilterConfig {
  // One static rule as written in the config ("200:0" -> "game"), kept for
  // describe(); `routes` is what the data path resolves with.
  struct Rule {
    std::string match;
    std::string cluster;
  };

  RouteTable routes;
  std::vector<Rule> rules;
  // The clusters routes may name; index = route target. Only those the
  // static routes reference, or every cluster of the gateway config when
  // routes_from_redis is set (its rules may name any of them).
  std::vector<ClusterConfig> clusters;
  size_t max_backend_output_bytes = 8 * 1024 * 1024;
  // The fair sharing of a backend connection's output: limit =
  // max_backend_output_bytes, and the `fair_share` object's floor (default
  // 64 KiB), hard_cap (default 2 x max_backend_output_bytes) and per_ip
  // (default true).
  ShareLimits shares;
  std::optional<RoutesFromRedis> routes_from_redis;

  // {"routes": [{"match", "cluster"}...], "clusters": [names...],
  //  "max_backend_output_bytes": N, "fair_share": {"floor", "hard_cap",
  //  "per_ip"}, "routes_from_redis": {"address", "key",
  //  "channel", "refresh_interval", "password_file" | "password_env" (if
  //  set; never the password), "username" (if set), "db"} (only when set)}.
  void describe(rapidjson::Value& out, JsonAllocator& alloc) const override;
};

}  // namespace upstream
}  // namespace gw
