// filters/session/session_config.h — the parsed config of the `session` filter.
//
// Defines SessionConfig (one per listener that uses `session`; immutable,
// shared by every worker), its Redis part, and the duplicate-login policy.
// docs/filters/session.md documents every field. The parser and the
// registered filter type are in session_config.cc.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "core/redis/redis_auth.h"
#include "core/sdk/address.h"
#include "core/sdk/registry.h"
#include "core/sdk/session_info.h"
#include "filters/session/affinity.h"

namespace gw {
namespace session {

class SessionManager;
struct SessionStats;

// What happens when a second session binds a player id that a live session
// already has.
enum class DuplicateLogin {
  kKickOld,    // the older session is kicked (reason duplicate_login)
  kRefuseNew,  // the newer session is closed (reason duplicate_login)
};

// When a resume-enabled listener sends the "session established" frame.
enum class Announce {
  kOnRequest,  // only to clients whose first frame is a resume request
  kAlways,     // to every new session
};

struct RedisStoreConfig {
  Address address;                                 // "127.0.0.1:6379"
  std::string prefix = "game-gateway:";            // every key and channel starts with it
  std::chrono::milliseconds refresh_interval{30000};  // batched TTL refresh of active sessions
  std::chrono::milliseconds connect_timeout{1000};
  std::chrono::milliseconds command_timeout{1000};
  // password_file / password_env, username, db, and the password read at
  // config load (core/redis/redis_auth.h).
  redis::RedisAuthConfig auth;
};

struct SessionConfig : FilterConfig {
  std::string listener;
  bool redis = false;  // store: "redis" (else "memory")
  RedisStoreConfig redis_config;
  size_t shards = 16;
  std::chrono::milliseconds cleanup_interval{5 * 60 * 1000};
  std::chrono::milliseconds idle_timeout{30 * 60 * 1000};  // 0: never idle-closed
  bool resume = false;
  std::chrono::milliseconds resume_window{60 * 1000};
  Announce announce = Announce::kOnRequest;
  DuplicateLogin duplicate_login = DuplicateLogin::kKickOld;
  // The process-wide table every worker and listener shares.
  std::shared_ptr<SessionManager> manager;
  // The listener's metrics (thread-safe counters, shared by its workers).
  std::shared_ptr<SessionStats> stats;
  // The gateway config's cluster and host names by index: records of this
  // config store their affinity as indexes into it (affinity.h).
  AffinityNames affinity_names;
  // The session-id node id (0..65535) of this replica: applied to the
  // process-wide SessionIdGenerator. Absent: the one in force stays
  // ($GATEWAY_NODE_ID, else a 16-bit hash of the replica name).
  std::optional<uint16_t> node_id;
  // The file holding the session-id key (32 hex digits), read at parse
  // time, and the key: for fleets whose replicas must share one. Absent:
  // the key in force stays (random per process).
  std::string id_key_file;
  std::optional<SessionIdKey> id_key;
  // Presize `manager` for this many sessions (0: grow as needed).
  size_t expected_sessions = 0;
  // Guards the process-wide effects of this config (presizing the table,
  // the Redis fleet view for the admin API, the session-id node id and
  // key): applied once, by the first
  // worker that builds a chain with it — never at parse time, so that
  // --check-config and a refused reload change nothing.
  mutable std::once_flag applied;

  // {"store", "shards", "expected_sessions", "node_id", "id_key_file" (if
  //  set; never the key), "cleanup_interval",
  //  "idle_timeout", "duplicate_login", "resume": {"enabled", "window",
  //  "announce"}, "redis": {"address", "prefix", "refresh_interval",
  //  "connect_timeout", "command_timeout", "password_file" | "password_env"
  //  (if set; never the password), "username" (if set), "db"} (store
  //  "redis" only)}: the values
  // in force, defaults filled in, durations as config writes them.
  void describe(rapidjson::Value& out, JsonAllocator& alloc) const override;

  // TTL of a connected session's Redis record: it outlives the idle sweep,
  // and the batched refresh renews it well before it runs out.
  std::chrono::milliseconds recordTtl() const {
    auto base = idle_timeout.count() > 0 ? idle_timeout : std::chrono::milliseconds(30 * 60 * 1000);
    return base + 2 * redis_config.refresh_interval;
  }
  // TTL of a lingering session's record: the resume window plus slack.
  std::chrono::milliseconds lingerTtl() const { return resume_window + std::chrono::seconds(5); }
};

}  // namespace session
}  // namespace gw
