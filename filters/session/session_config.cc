// The `session` filter type: its config parser, describe(), and its
// registration.
#include "filters/session/session_config.h"

#include <fstream>
#include <memory>
#include <string>

#include "core/sdk/log.h"
#include "core/sdk/parse_context.h"
#include "filters/session/session.h"
#include "filters/session/session_manager.h"
#include "filters/session/session_schema.h"
#include "filters/session/session_stats.h"

namespace gw {
namespace session {
namespace {

using std::chrono::milliseconds;

// The `redis` object (schema-valid) into `out`; records errors in ctx.
void parseRedis(const rapidjson::Value& r, ParseContext& ctx, RedisStoreConfig* out) {
  if (r.HasMember("address")) {
    std::string why;
    if (auto a = Address::parse(r["address"].GetString(), &why)) {
      out->address = *a;
    } else {
      ctx.fail("/redis/address", why + " (an IP and port, e.g. \"127.0.0.1:6379\")");
    }
  }
  if (r.HasMember("prefix")) out->prefix = r["prefix"].GetString();
  const milliseconds one(1);
  out->refresh_interval =
      ctx.duration(r, "refresh_interval", out->refresh_interval, one, kMaxConfigDuration, "/redis");
  out->connect_timeout =
      ctx.duration(r, "connect_timeout", out->connect_timeout, one, kMaxConfigDuration, "/redis");
  out->command_timeout =
      ctx.duration(r, "command_timeout", out->command_timeout, one, kMaxConfigDuration, "/redis");
  out->auth = redis::parseRedisAuth(r, ctx, "/redis");
}

// The session-id key in file `path`; records an error at /id_key_file.
// Reads at most 4 KiB + 1 bytes: a key file is 32 hex digits, and a path
// such as /dev/zero must not make the load read (and hold) without end.
std::optional<SessionIdKey> readIdKey(const std::string& path, ParseContext& ctx) {
  constexpr size_t kMaxBytes = 4096;
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    ctx.fail("/id_key_file", "cannot read \"" + path + "\"");
    return std::nullopt;
  }
  std::string text(kMaxBytes + 1, '\0');
  in.read(text.data(), static_cast<std::streamsize>(text.size()));
  text.resize(static_cast<size_t>(in.gcount()));
  if (text.size() > kMaxBytes) {
    ctx.fail("/id_key_file", "\"" + path + "\" is larger than 4 KiB: not a key file (it must "
                             "hold a 128-bit key as 32 hex digits)");
    return std::nullopt;
  }
  auto key = SessionIdKey::parseHex(text);
  if (!key) {
    ctx.fail("/id_key_file", "\"" + path + "\" must hold a 128-bit key as 32 hex digits "
                             "(e.g. from `openssl rand -hex 16`)");
  }
  return key;
}

}  // namespace

void SessionConfig::describe(rapidjson::Value& out, JsonAllocator& alloc) const {
  out.AddMember("store", rapidjson::StringRef(redis ? "redis" : "memory"), alloc);
  out.AddMember("shards", static_cast<uint64_t>(shards), alloc);
  out.AddMember("expected_sessions", static_cast<uint64_t>(expected_sessions), alloc);
  out.AddMember("node_id", node_id ? *node_id : SessionIdGenerator::process().nodeId(), alloc);
  if (!id_key_file.empty()) out.AddMember("id_key_file", jsonString(id_key_file, alloc), alloc);
  out.AddMember("cleanup_interval", jsonDuration(cleanup_interval, alloc), alloc);
  out.AddMember("idle_timeout", jsonDuration(idle_timeout, alloc), alloc);
  out.AddMember("duplicate_login",
                rapidjson::StringRef(duplicate_login == DuplicateLogin::kRefuseNew ? "refuse_new"
                                                                                  : "kick_old"),
                alloc);
  rapidjson::Value r(rapidjson::kObjectType);
  r.AddMember("enabled", resume, alloc);
  r.AddMember("window", jsonDuration(resume_window, alloc), alloc);
  r.AddMember("announce",
              rapidjson::StringRef(announce == Announce::kAlways ? "always" : "on_request"), alloc);
  out.AddMember("resume", r, alloc);
  if (redis) {
    rapidjson::Value rc(rapidjson::kObjectType);
    rc.AddMember("address", jsonString(redis_config.address.toString(), alloc), alloc);
    rc.AddMember("prefix", jsonString(redis_config.prefix, alloc), alloc);
    rc.AddMember("refresh_interval", jsonDuration(redis_config.refresh_interval, alloc), alloc);
    rc.AddMember("connect_timeout", jsonDuration(redis_config.connect_timeout, alloc), alloc);
    rc.AddMember("command_timeout", jsonDuration(redis_config.command_timeout, alloc), alloc);
    // Where the password comes from, never the password.
    redis::describeRedisAuth(redis_config.auth, rc, alloc);
    out.AddMember("redis", rc, alloc);
  }
}

class SessionConfigFactory : public TypedFilterConfigFactory<SessionConfig, SessionFactory> {
 public:
  SessionConfigFactory()
      : TypedFilterConfigFactory("session", FilterTraits::frames(), kSessionSchema) {}

  std::shared_ptr<const SessionConfig> parseConfig(const rapidjson::Value& json,
                                                   ParseContext& ctx) const override {
    auto cfg = std::make_shared<SessionConfig>();
    cfg->listener = ctx.listener();
    cfg->stats = statsFor(cfg->listener);
    cfg->affinity_names = AffinityNames(ctx.clusters());
    const milliseconds one(1);
    if (json.HasMember("store")) cfg->redis = std::string(json["store"].GetString()) == "redis";
    cfg->shards = ctx.size(json, "shards", cfg->shards, 1, 4096);
    cfg->expected_sessions = ctx.size(json, "expected_sessions", cfg->expected_sessions);
    if (json.HasMember("node_id"))
      cfg->node_id = static_cast<uint16_t>(ctx.size(json, "node_id", 0, 0, 65535));
    if (json.HasMember("id_key_file")) {
      cfg->id_key_file = json["id_key_file"].GetString();
      cfg->id_key = readIdKey(cfg->id_key_file, ctx);
    }
    cfg->cleanup_interval = ctx.duration(json, "cleanup_interval", cfg->cleanup_interval, one);
    // 0: never idle-closed.
    cfg->idle_timeout = ctx.duration(json, "idle_timeout", cfg->idle_timeout);
    if (json.HasMember("duplicate_login")) {
      cfg->duplicate_login = std::string(json["duplicate_login"].GetString()) == "refuse_new"
                                 ? DuplicateLogin::kRefuseNew
                                 : DuplicateLogin::kKickOld;
    }
    if (json.HasMember("resume")) {
      const auto& r = json["resume"];
      if (r.HasMember("enabled")) cfg->resume = r["enabled"].GetBool();
      cfg->resume_window =
          ctx.duration(r, "window", cfg->resume_window, one, kMaxConfigDuration, "/resume");
      if (r.HasMember("announce")) {
        cfg->announce = std::string(r["announce"].GetString()) == "always" ? Announce::kAlways
                                                                          : Announce::kOnRequest;
      }
    }
    if (json.HasMember("redis")) {
      if (!cfg->redis) {
        ctx.fail("/redis", "is set but \"store\" is \"memory\": set \"store\": \"redis\" to use "
                           "Redis, or remove /redis");
      }
      parseRedis(json["redis"], ctx, &cfg->redis_config);
    }
    if (cfg->redis && (!json.HasMember("redis") || !json["redis"].HasMember("address"))) {
      ctx.fail("/redis/address",
               "store \"redis\" needs the Redis address, e.g. \"redis\": {\"address\": "
               "\"127.0.0.1:6379\"}");
    }
    if (!ctx.ok()) return nullptr;
    cfg->manager = SessionManager::process(cfg->shards);
    if (cfg->manager->shardCount() != cfg->shards) {
      GW_LOG(warn, "session (listener '{}'): shards {} ignored: the session table already has {} "
                   "shards (restart the gateway to change it)",
             cfg->listener, cfg->shards, cfg->manager->shardCount());
    }
    return cfg;
  }
};

GW_REGISTER_FILTER(SessionConfigFactory);

}  // namespace session
}  // namespace gw
