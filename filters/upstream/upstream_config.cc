// The `upstream` filter type: its config parser, describe(), and its
// registration (with its admin view).
#include "filters/upstream/upstream_config.h"

#include <memory>
#include <string>

#include "core/sdk/parse_context.h"
#include "filters/upstream/upstream.h"
#include "filters/upstream/upstream_admin_view.h"
#include "filters/upstream/upstream_schema.h"

namespace gw {
namespace upstream {
namespace {

// routes_from_redis (schema-valid): records errors in ctx.
RoutesFromRedis parseRoutesFromRedis(const rapidjson::Value& r, ParseContext& ctx) {
  RoutesFromRedis rr;
  std::string why;
  if (auto addr = Address::parse(r["address"].GetString(), &why)) {
    rr.address = *addr;
  } else {
    ctx.fail("/routes_from_redis/address", why + " (an IP and port, e.g. \"127.0.0.1:6379\")");
  }
  if (r.HasMember("routes_format") && std::string_view(r["routes_format"].GetString()) == "go") {
    rr.format = RoutesFormat::kGo;
  }
  if (rr.format == RoutesFormat::kGo) {
    // The Go gateway derives its keys and channels from redis.key_prefix.
    for (const char* k : {"key", "channel"}) {
      if (r.HasMember(k)) {
        ctx.fail(std::string("/routes_from_redis/") + k,
                 "not with \"routes_format\": \"go\" (the Go gateway's keys follow "
                 "\"key_prefix\")");
      }
    }
    if (r.HasMember("key_prefix")) rr.key_prefix = r["key_prefix"].GetString();
    rr.useGoKeys();
    if (r.HasMember("cluster_template")) {
      if (const ClusterConfig* t = ctx.cluster(r, "cluster_template", "/routes_from_redis")) {
        rr.endpoint_template = *t;
        rr.cluster_template = t->name;
      }
    }
  } else {
    for (const char* k : {"key_prefix", "cluster_template"}) {
      if (r.HasMember(k)) {
        ctx.fail(std::string("/routes_from_redis/") + k,
                 "only with \"routes_format\": \"go\"");
      }
    }
    if (r.HasMember("key")) rr.key = r["key"].GetString();
    if (r.HasMember("channel")) rr.channel = r["channel"].GetString();
  }
  rr.refresh_interval = ctx.duration(r, "refresh_interval", rr.refresh_interval,
                                     std::chrono::milliseconds(1), kMaxConfigDuration,
                                     "/routes_from_redis");
  rr.auth = redis::parseRedisAuth(r, ctx, "/routes_from_redis");
  return rr;
}

// The fair-share knobs (`fair_share`, schema-valid) for a connection output
// limit of `limit` bytes: records errors in ctx.
ShareLimits parseFairShare(const rapidjson::Value& json, size_t limit, ParseContext& ctx) {
  ShareLimits s;
  s.limit = limit;
  s.hard_cap = 2 * limit;
  if (!json.HasMember("fair_share")) return s;
  const auto& f = json["fair_share"];
  s.floor = ctx.size(f, "floor", s.floor, 1024, limit, "/fair_share");
  // Above the limit: under it, sessions within their share would be refused
  // while the connection still has room.
  s.hard_cap = ctx.size(f, "hard_cap", s.hard_cap, limit, uint64_t{1} << 40, "/fair_share");
  if (f.HasMember("per_ip")) s.per_ip = f["per_ip"].GetBool();
  return s;
}

}  // namespace

void UpstreamConfig::describe(rapidjson::Value& out, JsonAllocator& alloc) const {
  rapidjson::Value routes_json(rapidjson::kArrayType);
  for (const auto& r : rules) {
    rapidjson::Value rule(rapidjson::kObjectType);
    rule.AddMember("match", jsonString(r.match, alloc), alloc);
    rule.AddMember("cluster", jsonString(r.cluster, alloc), alloc);
    routes_json.PushBack(rule, alloc);
  }
  out.AddMember("routes", routes_json, alloc);
  rapidjson::Value cluster_names(rapidjson::kArrayType);
  for (const auto& c : clusters) cluster_names.PushBack(jsonString(c.name, alloc), alloc);
  out.AddMember("clusters", cluster_names, alloc);
  out.AddMember("max_backend_output_bytes", static_cast<uint64_t>(max_backend_output_bytes), alloc);
  rapidjson::Value share(rapidjson::kObjectType);
  share.AddMember("floor", static_cast<uint64_t>(shares.floor), alloc);
  share.AddMember("hard_cap", static_cast<uint64_t>(shares.hard_cap), alloc);
  share.AddMember("per_ip", shares.per_ip, alloc);
  out.AddMember("fair_share", share, alloc);
  if (routes_from_redis) {
    rapidjson::Value r(rapidjson::kObjectType);
    r.AddMember("address", jsonString(routes_from_redis->address.toString(), alloc), alloc);
    bool go = routes_from_redis->format == RoutesFormat::kGo;
    r.AddMember("routes_format", rapidjson::StringRef(go ? "go" : "gateway"), alloc);
    if (go) {
      r.AddMember("key_prefix", jsonString(routes_from_redis->key_prefix, alloc), alloc);
      r.AddMember("realm_key", jsonString(routes_from_redis->realm_key, alloc), alloc);
      r.AddMember("realm_channel", jsonString(routes_from_redis->realm_channel, alloc), alloc);
      r.AddMember("cluster_template", jsonString(routes_from_redis->cluster_template, alloc),
                  alloc);
    }
    r.AddMember("key", jsonString(routes_from_redis->key, alloc), alloc);
    r.AddMember("channel", jsonString(routes_from_redis->channel, alloc), alloc);
    r.AddMember("refresh_interval", jsonDuration(routes_from_redis->refresh_interval, alloc),
                alloc);
    // Where the password comes from, never the password.
    redis::describeRedisAuth(routes_from_redis->auth, r, alloc);
    out.AddMember("routes_from_redis", r, alloc);
  }
}

class UpstreamConfigFactory : public TypedFilterConfigFactory<UpstreamConfig, UpstreamFactory> {
 public:
  UpstreamConfigFactory()
      : TypedFilterConfigFactory("upstream", FilterTraits::framesTerminal(), kUpstreamSchema) {}

  std::shared_ptr<const UpstreamConfig> parseConfig(const rapidjson::Value& json,
                                                    ParseContext& ctx) const override {
    auto cfg = std::make_shared<UpstreamConfig>();
    if (json.HasMember("routes_from_redis")) {
      // Redis rules may name any cluster: every one gets a pool (pools
      // connect on first use, so unused ones cost nothing).
      cfg->clusters = ctx.clusters();
      cfg->routes_from_redis = parseRoutesFromRedis(json["routes_from_redis"], ctx);
    }
    const auto& routes = json["routes"];
    for (rapidjson::SizeType i = 0; i < routes.Size(); ++i) {
      std::string at = "/routes/" + std::to_string(i);
      std::string why;
      const char* match = routes[i]["match"].GetString();
      auto m = RouteTable::parseMatch(match, &why);
      if (!m) {
        ctx.fail(at + "/match", why);
        continue;
      }
      const ClusterConfig* cluster = ctx.cluster(routes[i], "cluster", at);
      if (cluster == nullptr) continue;
      cfg->routes.add(m->first, m->second, clusterIndex(*cfg, *cluster));
      cfg->rules.push_back({match, cluster->name});
    }
    cfg->max_backend_output_bytes =
        ctx.size(json, "max_backend_output_bytes", cfg->max_backend_output_bytes, 65536);
    cfg->shares = parseFairShare(json, cfg->max_backend_output_bytes, ctx);
    return cfg;
  }

  const AdminView* adminView() const override { return &view_; }

 private:
  // The index of `cluster` in cfg.clusters, added at the end if missing.
  static int clusterIndex(UpstreamConfig& cfg, const ClusterConfig& cluster) {
    for (size_t k = 0; k < cfg.clusters.size(); ++k)
      if (cfg.clusters[k].name == cluster.name) return static_cast<int>(k);
    cfg.clusters.push_back(cluster);
    return static_cast<int>(cfg.clusters.size() - 1);
  }

  UpstreamAdminView view_;
};

GW_REGISTER_FILTER(UpstreamConfigFactory);

}  // namespace upstream
}  // namespace gw
