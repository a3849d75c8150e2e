#include "filters/session/redis_store.h"

#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <algorithm>
#include <cstdio>

#include "core/sdk/log.h"
#include "core/sdk/session_info.h"

namespace gw {
namespace session {

using std::chrono::milliseconds;

namespace {

// Writes a whole record unless another process holds it (within one
// process the local table decides which record is current).
// KEYS[1] session key. ARGV[1] ttl ms, ARGV[2] instance, ARGV[3..] field/value pairs.
// Returns 1 written, 0 another process has it.
constexpr const char* kSyncScript = R"lua(
local inst = redis.call('HGET', KEYS[1], 'instance')
if inst and inst ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], unpack(ARGV, 3))
redis.call('HSETNX', KEYS[1], 'gen', '0')
if redis.call('HGET', KEYS[1], 'state') == 'connected' then redis.call('HDEL', KEYS[1], 'left') end
redis.call('PEXPIRE', KEYS[1], ARGV[1])
return 1
)lua";

// Batched activity refresh.
// KEYS[1] session key, KEYS[2] (optional) player key. ARGV[1] ttl ms,
// ARGV[2] instance, ARGV[3] active (unix ms), ARGV[4] session id.
// Returns 1 refreshed, 0 another process has it, -1 no record.
constexpr const char* kRefreshScript = R"lua(
local inst = redis.call('HGET', KEYS[1], 'instance')
if not inst then return -1 end
if inst ~= ARGV[2] then return 0 end
redis.call('HSET', KEYS[1], 'active', ARGV[3])
redis.call('PEXPIRE', KEYS[1], ARGV[1])
if #KEYS > 1 and redis.call('GET', KEYS[2]) == ARGV[4] then redis.call('PEXPIRE', KEYS[2], ARGV[1]) end
return 1
)lua";

// Resume lookup: the record and whether its owning process is alive.
// KEYS[1] session key. ARGV[1] replica key prefix.
// Returns 0 (no record) or {alive, {field, value, ...}}.
constexpr const char* kLookupScript = R"lua(
local h = redis.call('HGETALL', KEYS[1])
if #h == 0 then return 0 end
local inst = redis.call('HGET', KEYS[1], 'instance')
local alive = 0
if inst then alive = redis.call('EXISTS', ARGV[1] .. inst) end
return {alive, h}
)lua";

// Resume claim: compare-and-set on gen.
// KEYS[1] session key. ARGV[1] expected gen, ARGV[2] ttl ms, ARGV[3] channel,
// ARGV[4] message, ARGV[5..] field/value pairs. Returns 1 claimed, 0 lost.
constexpr const char* kClaimScript = R"lua(
if redis.call('HGET', KEYS[1], 'gen') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[1], 'gen', tostring(tonumber(ARGV[1]) + 1), unpack(ARGV, 5))
redis.call('HDEL', KEYS[1], 'left')
redis.call('PEXPIRE', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
return 1
)lua";

// End of a session (final close, or a linger that ran out): only its owner
// may delete it. KEYS[1] session key, KEYS[2] (optional) player key.
// ARGV[1] owner tag, ARGV[2] session id.
// Returns 1 deleted, 0 another owner has it (it continued elsewhere), -1 none.
constexpr const char* kEndScript = R"lua(
local owner = redis.call('HGET', KEYS[1], 'owner')
if not owner then return -1 end
if owner ~= ARGV[1] then return 0 end
redis.call('DEL', KEYS[1])
if #KEYS > 1 and redis.call('GET', KEYS[2]) == ARGV[2] then redis.call('DEL', KEYS[2]) end
return 1
)lua";

// Player binding with the duplicate-login policy.
// KEYS[1] player key, KEYS[2] session key. ARGV[1] session id, ARGV[2] policy,
// ARGV[3] ttl ms, ARGV[4] channel, ARGV[5] session key prefix, ARGV[6] owner
// tag, ARGV[7] player id. Returns {1, ""} bound, {2, old} bound and old
// kicked, {0, old} refused (old keeps the player).
constexpr const char* kBindScript = R"lua(
local old = redis.call('GET', KEYS[1])
local status = 1
if old and old ~= ARGV[1] and redis.call('EXISTS', ARGV[5] .. old) == 1 then
  if ARGV[2] == 'refuse_new' then return {0, old} end
  redis.call('PUBLISH', ARGV[4], 'kick ' .. old .. ' duplicate_login')
  status = 2
else
  old = ''
end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
if redis.call('HGET', KEYS[2], 'owner') == ARGV[6] then redis.call('HSET', KEYS[2], 'player', ARGV[7]) end
return {status, old}
)lua";

// Claims a node id: KEYS[1] the node key; ARGV[1] this instance's value,
// ARGV[2] ttl ms. Returns "" when the claim is ours (set or renewed), else
// the value of the instance holding it.
constexpr const char* kNodeClaimScript = R"lua(
local cur = redis.call('GET', KEYS[1])
if cur and cur ~= ARGV[1] then return cur end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
return ''
)lua";

// How long a replica key outlives its last heartbeat.
constexpr milliseconds kHeartbeatInterval{1000};
constexpr milliseconds kReplicaTtl{5000};
// Records re-written per loop turn after a reconnect.
constexpr size_t kResyncBatch = 256;

std::string hexU64(uint64_t v) {
  char buf[17];
  std::snprintf(buf, sizeof(buf), "%016llx", static_cast<unsigned long long>(v));
  return buf;
}

std::optional<uint64_t> parseU64(std::string_view s) {
  if (s.empty() || s.size() > 20) return std::nullopt;
  uint64_t v = 0;
  for (char c : s) {
    if (c < '0' || c > '9') return std::nullopt;
    uint64_t d = static_cast<uint64_t>(c - '0');
    if (v > (UINT64_MAX - d) / 10) return std::nullopt;
    v = v * 10 + d;
  }
  return v;
}

std::string_view field(const std::vector<std::pair<std::string, std::string>>& f,
                       std::string_view name) {
  for (const auto& [k, v] : f)
    if (k == name) return v;
  return {};
}

int64_t toInt64(std::string_view s) {
  bool neg = !s.empty() && s[0] == '-';
  auto v = parseU64(neg ? s.substr(1) : s);
  if (!v) return 0;
  return neg ? -static_cast<int64_t>(*v) : static_cast<int64_t>(*v);
}

// argv storage: strings kept alive while their views are sent.
struct Argv {
  std::vector<std::string> owned;
  void add(std::string s) { owned.push_back(std::move(s)); }
  std::vector<std::string_view> views() const {
    std::vector<std::string_view> v;
    v.reserve(owned.size());
    for (const auto& s : owned) v.push_back(s);
    return v;
  }
};

// Appends the field/value pairs of rec's record.
void recordFields(Argv& a, const SessionRecord& rec, bool lingering, const std::string& instance,
                  const std::string& owner) {
  auto pair = [&](const char* k, std::string v) {
    a.add(k);
    a.add(std::move(v));
  };
  int64_t now = unixMillis();
  pair("replica", processReplicaName());
  pair("instance", instance);
  pair("owner", owner);
  pair("worker", std::to_string(rec.worker));
  pair("listener", rec.config ? rec.config->listener : "");
  pair("client", rec.client.toString());
  pair("created", std::to_string(rec.created_ms));
  pair("active", std::to_string(now));
  pair("state", lingering ? "lingering" : "connected");
  if (lingering) pair("left", std::to_string(now));
  pair("player", std::to_string(rec.player_id));
  if (rec.resumable) pair("token", tokenHex(rec.token));
  // Affinity as names (records hold indexes into their config's names).
  rec.affinity.forEach(rec.affinityNames(), [&](std::string_view cluster, std::string_view host) {
    pair(("aff:" + std::string(cluster)).c_str(), std::string(host));
  });
}

}  // namespace

RedisStore::RedisStore(Dispatcher& dispatcher, size_t worker_index,
                       const RedisStoreConfig& config, std::shared_ptr<SessionManager> manager,
                       RedisStoreHost& host)
    : dispatcher_(dispatcher),
      worker_(worker_index),
      config_(config),
      manager_(manager),
      host_(host),
      instance_(processInstance()),
      local_(manager),
      commands_(dispatcher, [&] {
        redis::RedisClient::Options o;
        o.address = config.address;
        o.connect_timeout = config.connect_timeout;
        o.command_timeout = config.command_timeout;
        o.name = "session store (worker " + std::to_string(worker_index) + ")";
        o.auth = config.auth.credentials;
        o.component = "session";
        return o;
      }()),
      subscriber_(dispatcher, [&] {
        redis::RedisClient::Options o;
        o.address = config.address;
        o.connect_timeout = config.connect_timeout;
        o.command_timeout = config.command_timeout;
        o.ping_interval = milliseconds(0);
        o.name = "session events (worker " + std::to_string(worker_index) + ")";
        o.auth = config.auth.credentials;
        o.component = "session";
        return o;
      }()),
      refresh_timer_(dispatcher, [this] {
        refreshNow();
        refresh_timer_.enable(config_.refresh_interval);
      }),
      heartbeat_timer_(dispatcher, [this] { heartbeat(); }) {
  auto& reg = stats::StatsRegistry::get();
  up_gauge_ = &reg.gauge("game_gateway_session_store_redis_connected",
                         "Workers whose session store is connected to Redis.");
  errors_ = &reg.counter("game_gateway_session_store_errors_total",
                         "Session store operations that Redis could not serve (answered "
                         "from this replica's state instead).");
  node_conflict_ = &nodeIdConflictGauge();
  node_collisions_ = &nodeIdCollisionsCounter();
}

stats::Gauge& RedisStore::nodeIdConflictGauge() {
  return stats::StatsRegistry::get().gauge(
      "game_gateway_session_node_id_conflict",
      "1 while another gateway instance holds this one's session-id node id in Redis (ids may "
      "collide), else 0.");
}

stats::Counter& RedisStore::nodeIdCollisionsCounter() {
  return stats::StatsRegistry::get().counter(
      "game_gateway_session_node_id_collisions_total",
      "Times this gateway found its session-id node id held by another instance in Redis.");
}

RedisStore::~RedisStore() {
  *alive_ = false;
  if (counted_up_) up_gauge_->dec();
}

const std::string& RedisStore::processInstance() {
  static const std::string* inst = new std::string(hexU64(randomU64()));
  return *inst;
}

std::string RedisStore::ownerTag(const SessionRecord& rec) const {
  return instance_ + "-" + std::to_string(rec.serial);
}

std::string RedisStore::sessionKey(uint64_t id) const {
  return config_.prefix + "session:" + std::to_string(id);
}

std::string RedisStore::playerKey(uint64_t player) const {
  return config_.prefix + "player:" + std::to_string(player);
}

std::string RedisStore::replicaKey() const { return config_.prefix + "replica:" + instance(); }

void RedisStore::setCredentials(const redis::Credentials& auth) {
  config_.auth.credentials = auth;
  commands_.setCredentials(auth);
  subscriber_.setCredentials(auth);
}

void RedisStore::countError(const char* op) {
  errors_->inc();
  GW_LOG(debug, "session store (worker {}): redis {} failed; using local state", worker_, op);
}

void RedisStore::start() {
  commands_.setStateHandler([this](bool up) { onStateChange(up); });
  subscriber_.subscribe(channel(),
                        [this](std::string_view, std::string_view msg) { onMessage(msg); });
  commands_.start();
  subscriber_.start();
  refresh_timer_.enable(config_.refresh_interval);
  heartbeat_timer_.enable(kHeartbeatInterval);
}

void RedisStore::heartbeat() {
  if (commands_.up()) {
    std::string ttl = std::to_string(kReplicaTtl.count());
    commands_.send({"SET", replicaKey(), processReplicaName(), "PX", ttl});
    if (worker_ == 0) claimNodeId();
  }
  heartbeat_timer_.enable(kHeartbeatInterval);
}

void RedisStore::claimNodeId() {
  uint16_t node = SessionIdGenerator::process().nodeId();
  std::string key = config_.prefix + "node:" + std::to_string(node);
  std::string mine = instance() + " " + processReplicaName();
  std::string ttl = std::to_string(kReplicaTtl.count());
  std::weak_ptr<bool> alive = alive_;
  commands_.command({"EVAL", kNodeClaimScript, "1", key, mine, ttl},
                    [this, alive, node](const redisReply* r) {
                      if (alive.expired()) return;
                      auto holder = redis::replyString(r);
                      if (!holder) return;  // Redis failed: decided at the next heartbeat
                      bool conflict = !holder->empty();
                      if (conflict && !node_conflict_now_) {
                        node_collisions_->inc();
                        GW_LOG(error,
                               "session ids: node id {} is held by gateway instance '{}' in "
                               "Redis: both mint session ids from it, so ids may collide; give "
                               "each replica its own session.node_id or $GATEWAY_NODE_ID",
                               node, std::string(*holder));
                      } else if (!conflict && node_conflict_now_) {
                        GW_LOG(info, "session ids: node id {} is this gateway's again", node);
                      }
                      node_conflict_now_ = conflict;
                      node_conflict_->set(conflict ? 1 : 0);
                    });
}

void RedisStore::onStateChange(bool up) {
  if (up != counted_up_) {
    if (up) {
      up_gauge_->inc();
    } else {
      up_gauge_->dec();
    }
    counted_up_ = up;
  }
  if (!up) return;
  heartbeat_timer_.disable();
  heartbeat();
  // Re-write every record of this worker: sessions created while Redis was
  // away become visible to the fleet, and a Redis that lost its data is
  // repopulated. A few hundred per loop turn.
  auto todo = std::make_shared<std::vector<std::pair<SessionRecord*, std::weak_ptr<char>>>>();
  host_.forEachRecord(this, [&](SessionRecord& r) { todo->emplace_back(&r, r.lifeToken()); });
  if (!todo->empty()) {
    GW_LOG(info, "session store (worker {}): redis is back; re-writing {} session record(s)",
           worker_, todo->size());
  }
  auto ends = std::move(pending_ends_);
  pending_ends_.clear();
  for (const auto& e : ends) sendEnd(e.id, e.player, e.owner);
  resyncStep(std::move(todo), 0);
}

void RedisStore::resyncStep(
    std::shared_ptr<std::vector<std::pair<SessionRecord*, std::weak_ptr<char>>>> todo,
    size_t from) {
  size_t end = std::min(todo->size(), from + kResyncBatch);
  for (size_t i = from; i < end && commands_.up(); ++i) {
    if ((*todo)[i].second.expired()) continue;
    SessionRecord& r = *(*todo)[i].first;
    sync(r, r.lingering, {});
    if (r.player_id != 0) {
      // A binding made while Redis was away: claim the player key unless
      // another session took it meanwhile (no kicks after the fact).
      commands_.send({"SET", playerKey(r.player_id), std::to_string(r.id), "PX",
                      std::to_string(r.config->recordTtl().count()), "NX"});
    }
  }
  if (end < todo->size() && commands_.up()) {
    std::weak_ptr<bool> alive = alive_;
    dispatcher_.post([this, alive, todo, end] {
      auto a = alive.lock();
      if (a && *a) resyncStep(todo, end);
    });
  }
}

void RedisStore::sync(SessionRecord& rec, bool lingering,
                      std::function<void(bool ok, bool taken)> done) {
  const SessionConfig& cfg = *rec.config;
  Argv a;
  a.add("EVAL");
  a.add(kSyncScript);
  a.add("1");
  a.add(sessionKey(rec.id));
  a.add(std::to_string((lingering ? cfg.lingerTtl() : cfg.recordTtl()).count()));
  a.add(instance());
  std::string owner = ownerTag(rec);
  // Guarded fields (affinity, player) are written by this worker only, so
  // reading them here without the lock is safe.
  recordFields(a, rec, lingering, instance_, owner);
  std::weak_ptr<char> life = rec.lifeToken();
  SessionRecord* r = &rec;
  bool sent = commands_.command(a.views(), [this, life, r, done](const redisReply* reply) {
    auto v = redis::replyInteger(reply);
    if (!v) countError("write");
    if (!life.expired() && v) {
      if (*v == 1) {
        r->persisted = true;
      } else {
        // Another replica claimed the session (while this one could not
        // reach Redis): this connection or linger is stale.
        host_.home().releaseMoved(r->id, r->serial);
      }
    }
    if (done) done(v.has_value(), v && *v == 0);
  });
  if (!sent) {
    rec.persisted = false;
    if (done) done(false, false);
  }
}

void RedisStore::created(SessionRecord& rec) { sync(rec, false); }

void RedisStore::affinityChanged(SessionRecord& rec) {
  if (!rec.lingering) sync(rec, false);
}

void RedisStore::lingering(SessionRecord& rec) { sync(rec, true); }

void RedisStore::sendEnd(uint64_t id, uint64_t player, const std::string& owner) {
  Argv a;
  a.add("EVAL");
  a.add(kEndScript);
  a.add(player != 0 ? "2" : "1");
  a.add(sessionKey(id));
  if (player != 0) a.add(playerKey(player));
  a.add(owner);
  a.add(std::to_string(id));
  if (commands_.send(a.views())) return;
  // Redis is away: delete the record when it is back, so an ended session
  // (kicked, say) cannot be resumed meanwhile elsewhere. Bounded.
  if (pending_ends_.size() >= kMaxPendingEnds) pending_ends_.pop_front();
  pending_ends_.push_back({id, player, owner});
}

void RedisStore::ended(SessionRecord& rec) { sendEnd(rec.id, rec.player_id, ownerTag(rec)); }

void RedisStore::lingerExpired(SessionRecord& rec, std::function<void(bool continued)> done) {
  auto local_decision = [this, &rec, done] { local_.lingerExpired(rec, done); };
  if (!commands_.up()) {
    countError("linger check");
    local_decision();
    return;
  }
  Argv a;
  a.add("EVAL");
  a.add(kEndScript);
  a.add(rec.player_id != 0 ? "2" : "1");
  a.add(sessionKey(rec.id));
  if (rec.player_id != 0) a.add(playerKey(rec.player_id));
  a.add(ownerTag(rec));
  a.add(std::to_string(rec.id));
  std::weak_ptr<char> life = rec.lifeToken();
  SessionRecord* r = &rec;
  bool sent = commands_.command(a.views(), [this, life, r, done](const redisReply* reply) {
    auto v = redis::replyInteger(reply);
    if (life.expired()) {
      done(!v || *v == 0);
      return;
    }
    if (!v) {
      countError("linger check");
      local_.lingerExpired(*r, done);
      return;
    }
    // 1: we owned it and deleted it. -1: no record (expired, or Redis lost
    // it). Either way the session is over unless another connection of this
    // process resumed it (the local table says so). 0: another owner
    // claimed it: it continues elsewhere.
    bool removed_here = local_.removeIfCurrent(*r);
    SessionView view;
    bool resumed_here = !removed_here && manager_->get(r->id, &view);
    done(resumed_here || *v == 0);
  });
  if (!sent) {
    countError("linger check");
    local_decision();
  }
}

void RedisStore::resumeLocally(SessionRecord& rec, const Token& token,
                               const std::function<void(ResumeResult)>& done) {
  countError("resume");
  ResumeResult r = local_.resumeLocal(rec, token);
  // Redis may know the session even though this process does not.
  if (r.status == ResumeResult::Status::kUnknown) r.status = ResumeResult::Status::kUnavailable;
  done(std::move(r));
}

void RedisStore::resume(SessionRecord& rec, const Token& presented,
                        std::function<void(ResumeResult)> done) {
  std::weak_ptr<char> life = rec.lifeToken();
  SessionRecord* r = &rec;
  bool sent = commands_.up() &&
              commands_.command(
                  {"EVAL", kLookupScript, "1", sessionKey(rec.id), config_.prefix + "replica:"},
                  [this, life, r, presented, done](const redisReply* reply) {
                    if (!life.expired()) onResumeLookup(*r, presented, reply, done);
                  });
  if (!sent) resumeLocally(rec, presented, done);
}

void RedisStore::onResumeLookup(SessionRecord& rec, const Token& token, const redisReply* reply,
                                const std::function<void(ResumeResult)>& done) {
  if (reply == nullptr || reply->type == REDIS_REPLY_ERROR) return resumeLocally(rec, token, done);
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
    // No record in Redis: perhaps a session of this process that Redis
    // never saw (created while it was down). Not a Redis failure.
    done(local_.resumeLocal(rec, token));
    return;
  }
  bool owner_alive = redis::replyInteger(reply->element[0]).value_or(0) == 1;
  auto fields = redis::replyPairs(reply->element[1]);
  ResumeResult res;
  if (!fields) {
    res.status = ResumeResult::Status::kUnknown;
    done(std::move(res));
    return;
  }
  auto stored = tokenFromHex(field(*fields, "token"));
  if (!stored || !tokensEqual(*stored, token)) {
    res.status = ResumeResult::Status::kBadToken;
    done(std::move(res));
    return;
  }
  const SessionConfig& cfg = *rec.config;
  int64_t now = unixMillis();
  int64_t window = cfg.resume_window.count();
  bool expired;
  if (field(*fields, "state") == "lingering") {
    expired = now - toInt64(field(*fields, "left")) > window;
  } else {
    // Connected: the owner still serves it (it will let go), or the owner
    // died without saying so; then the last refresh tells.
    expired = !owner_alive &&
              now - toInt64(field(*fields, "active")) > window + config_.refresh_interval.count();
  }
  if (expired) {
    res.status = ResumeResult::Status::kExpired;
    done(std::move(res));
    return;
  }
  res.status = ResumeResult::Status::kOk;
  res.created_ms = toInt64(field(*fields, "created"));
  res.player_id = parseU64(field(*fields, "player")).value_or(0);
  for (const auto& [k, v] : *fields) {
    if (k.rfind("aff:", 0) == 0) res.affinity.emplace_back(k.substr(4), v);
  }
  // Claim it: compare-and-set on gen, so one claimant wins.
  rec.created_ms = res.created_ms;
  rec.player_id = res.player_id;
  rec.affinity.assign(rec.affinityNames(), res.affinity);
  std::string owner = ownerTag(rec);
  Argv a;
  a.add("EVAL");
  a.add(kClaimScript);
  a.add("1");
  a.add(sessionKey(rec.id));
  a.add(std::string(field(*fields, "gen")));
  a.add(std::to_string(cfg.recordTtl().count()));
  a.add(channel());
  a.add("moved " + std::to_string(rec.id) + " " + owner);
  recordFields(a, rec, false, instance_, owner);
  std::weak_ptr<char> life = rec.lifeToken();
  SessionRecord* r = &rec;
  bool sent = commands_.command(
      a.views(), [this, life, r, res, done, token](const redisReply* claim) mutable {
        if (life.expired()) return;
        auto v = redis::replyInteger(claim);
        if (!v) return resumeLocally(*r, token, done);
        if (*v != 1) {
          ResumeResult lost;
          lost.status = ResumeResult::Status::kExpired;  // someone else took it first
          done(std::move(lost));
          return;
        }
        r->persisted = true;
        local_.install(*r, res);
        done(std::move(res));
      });
  if (!sent) resumeLocally(rec, token, done);
}

void RedisStore::bindPlayer(SessionRecord& rec, uint64_t player,
                            std::function<void(BindResult)> done) {
  if (!commands_.up()) {
    countError("bind player");
    done(local_.bindLocal(rec, player));
    return;
  }
  // The local map follows too, for when Redis is away later.
  local_.setPlayer(rec, player);
  const SessionConfig& cfg = *rec.config;
  Argv a;
  a.add("EVAL");
  a.add(kBindScript);
  a.add("2");
  a.add(playerKey(player));
  a.add(sessionKey(rec.id));
  a.add(std::to_string(rec.id));
  a.add(cfg.duplicate_login == DuplicateLogin::kRefuseNew ? "refuse_new" : "kick_old");
  a.add(std::to_string(cfg.recordTtl().count()));
  a.add(channel());
  a.add(config_.prefix + "session:");
  a.add(ownerTag(rec));
  a.add(std::to_string(player));
  std::weak_ptr<char> life = rec.lifeToken();
  SessionRecord* r = &rec;
  bool sent = commands_.command(a.views(), [this, life, r, player, done](const redisReply* reply) {
    if (life.expired()) return;
    if (reply == nullptr || reply->type != REDIS_REPLY_ARRAY || reply->elements != 2) {
      countError("bind player");
      done(local_.bindLocal(*r, player));
      return;
    }
    long long status = redis::replyInteger(reply->element[0]).value_or(1);
    uint64_t other = parseU64(redis::replyString(reply->element[1]).value_or("")).value_or(0);
    BindResult res;
    res.other_session = other;
    if (status == 0) {
      res.status = BindResult::Status::kRefused;
    } else {
      // The fleet's binding is ours now; keep the local map in step.
      manager_->bindPlayer(player, r->id);
      res.status = status == 2 ? BindResult::Status::kKickedOld : BindResult::Status::kBound;
    }
    done(res);
  });
  if (!sent) {
    countError("bind player");
    done(local_.bindLocal(rec, player));
  }
}

void RedisStore::refreshNow() {
  if (!commands_.up()) return;
  std::string now = std::to_string(unixMillis());
  host_.forEachRecord(this, [&](SessionRecord& rec) {
    if (rec.lingering) return;
    uint32_t active = rec.last_active_s.load(std::memory_order_relaxed);
    if (rec.persisted && active == rec.refreshed_active_s) return;
    rec.refreshed_active_s = active;
    if (!rec.persisted) {
      sync(rec, false);
      return;
    }
    Argv a;
    a.add("EVAL");
    a.add(kRefreshScript);
    a.add(rec.player_id != 0 ? "2" : "1");
    a.add(sessionKey(rec.id));
    if (rec.player_id != 0) a.add(playerKey(rec.player_id));
    a.add(std::to_string(rec.config->recordTtl().count()));
    a.add(instance());
    a.add(now);
    a.add(std::to_string(rec.id));
    std::weak_ptr<char> life = rec.lifeToken();
    SessionRecord* r = &rec;
    commands_.command(a.views(), [this, life, r](const redisReply* reply) {
      if (life.expired()) return;
      auto v = redis::replyInteger(reply);
      if (!v) return;
      if (*v == -1) {
        sync(*r, r->lingering);  // the record vanished (Redis restarted empty): write it again
      } else if (*v == 0) {
        // Another replica claimed the session: this connection is stale.
        host_.home().releaseMoved(r->id, r->serial);
      }
    });
  });
}

void RedisStore::onMessage(std::string_view message) {
  // "kick <id> <reason>" or "moved <id> <owner>"
  size_t sp1 = message.find(' ');
  if (sp1 == std::string_view::npos) return;
  size_t sp2 = message.find(' ', sp1 + 1);
  std::string_view verb = message.substr(0, sp1);
  std::string_view id_text =
      message.substr(sp1 + 1, sp2 == std::string_view::npos ? std::string_view::npos : sp2 - sp1 - 1);
  std::string_view arg = sp2 == std::string_view::npos ? "" : message.substr(sp2 + 1);
  auto id = parseU64(id_text);
  if (!id || *id == 0) return;
  SessionView view;
  if (!manager_->get(*id, &view) || view.worker != worker_ || view.record == nullptr) return;
  // Only this worker deletes its records, so the record is safe to read here.
  SessionRecord* rec = view.record;
  if (rec->home != &host_.home()) return;
  if (verb == "kick") {
    bool duplicate = arg == "duplicate_login";
    host_.home().kickLocal(*id, duplicate ? CloseReason::kDuplicateLogin : CloseReason::kKicked,
                           duplicate ? "the player logged in on another session"
                                     : "kicked through the fleet (admin API of another replica)");
  } else if (verb == "moved") {
    if (arg != ownerTag(*rec)) host_.home().releaseMoved(*id, rec->serial);
  }
}

RedisFleetView::RedisFleetView(const RedisStoreConfig& config)
    : prefix_(config.prefix),
      redis_(config.address, std::chrono::milliseconds(250), config.auth.credentials, "session") {}

std::optional<std::string> RedisFleetView::describe(uint64_t id) {
  std::string key = prefix_ + "session:" + std::to_string(id);
  auto reply = redis_.command({"HGETALL", key});
  auto fields = redis::replyPairs(reply.get());
  if (!fields || fields->empty()) return std::nullopt;
  int64_t now = unixMillis();
  rapidjson::StringBuffer sb;
  rapidjson::Writer<rapidjson::StringBuffer> w(sb);
  auto str = [&](const char* k, std::string_view v) {
    w.Key(k);
    w.String(v.data(), static_cast<rapidjson::SizeType>(v.size()));
  };
  w.StartObject();
  str("id", std::to_string(id));
  str("replica", field(*fields, "replica"));
  w.Key("local");
  w.Bool(false);
  w.Key("worker");
  w.Int64(toInt64(field(*fields, "worker")));
  str("listener", field(*fields, "listener"));
  str("store", "redis");
  str("state", field(*fields, "state"));
  str("client", field(*fields, "client"));
  w.Key("created_unix_ms");
  w.Int64(toInt64(field(*fields, "created")));
  // The record's `active` is refreshed in batches: idle time is approximate.
  int64_t active = toInt64(field(*fields, "active"));
  w.Key("idle_seconds");
  w.Int64(active > 0 && now > active ? (now - active) / 1000 : 0);
  str("player_id", field(*fields, "player").empty() ? "0" : field(*fields, "player"));
  w.Key("resumable");
  w.Bool(!field(*fields, "token").empty());
  w.Key("backends");
  w.StartObject();
  for (const auto& [k, v] : *fields) {
    if (k.rfind("aff:", 0) != 0) continue;
    w.Key(k.c_str() + 4);
    w.String(v.c_str());
  }
  w.EndObject();
  w.EndObject();
  return std::string(sb.GetString(), sb.GetSize());
}

bool RedisFleetView::kick(uint64_t id, std::string_view) {
  std::string key = prefix_ + "session:" + std::to_string(id);
  auto exists = redis_.command({"EXISTS", key});
  if (redis::replyInteger(exists.get()).value_or(0) != 1) return false;
  auto published = redis_.command(
      {"PUBLISH", prefix_ + "sessions", "kick " + std::to_string(id) + " kicked"});
  return redis::replyInteger(published.get()).value_or(0) > 0;
}

}  // namespace session
}  // namespace gw
