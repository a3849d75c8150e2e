// filters/session/redis_store.h — the session store shared by a fleet of
// gateway replicas, in Redis.
//
// Defines RedisStore (per worker: a SessionStore that keeps each session's
// record in Redis on top of the local MemoryStore), RedisStoreHost (what it
// needs from its worker) and RedisFleetView (the admin API's blocking view
// of sessions on other replicas). docs/fleet.md describes the data model:
//
//   <prefix>session:<id>      hash: replica, instance, owner, worker, listener,
//                             client, created, active, state (connected |
//                             lingering), left, player, token (hex, resumable
//                             sessions only), gen, aff:<cluster> = host.
//                             TTL: record_ttl while connected (refreshed in
//                             batches while active), resume_window + 5 s
//                             while lingering.
//   <prefix>player:<player>   string: the session id the player is bound to.
//   <prefix>replica:<inst>    string: a live process (heartbeat, 5 s TTL).
//   <prefix>sessions          pub/sub channel: "kick <id> <reason>",
//                             "moved <id> <owner>".
//
// Every read-modify-write is one Lua script, so two replicas racing for a
// session (a resume, a duplicate login, the end of a linger) cannot both win:
// a resume claims the record with a compare-and-set on `gen`; only the
// record's `owner` (process instance + record serial) may turn it lingering
// or delete it.
//
// Redis down (or not answering within command_timeout): connected sessions
// are unaffected (nothing on the data path waits for Redis); new sessions
// are created from local state and written to Redis when it returns (every
// worker re-writes its records on reconnect); resumes, duplicate-login
// checks and linger decisions fall back to this process's table.
//
// Threads: a RedisStore lives on one worker; RedisFleetView is thread-safe.
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/sdk/dispatcher.h"
#include "core/sdk/stats.h"
#include "filters/session/memory_store.h"
#include "core/redis/redis_client.h"
#include "filters/session/session_config.h"
#include "filters/session/session_store.h"

namespace gw {
namespace session {

// What a RedisStore needs from the worker that owns it.
class RedisStoreHost {
 public:
  virtual ~RedisStoreHost() = default;
  // The worker, for kicks and releases that arrive as messages.
  virtual SessionHome& home() = 0;
  // Calls fn for every record on this worker that uses `store`.
  virtual void forEachRecord(SessionStore* store, const std::function<void(SessionRecord&)>& fn) = 0;
};

class RedisStore : public SessionStore {
 public:
  RedisStore(Dispatcher& dispatcher, size_t worker_index, const RedisStoreConfig& config,
             std::shared_ptr<SessionManager> manager, RedisStoreHost& host);
  ~RedisStore() override;

  // Connects (commands and subscription) and starts the refresh and
  // heartbeat timers.
  void start();

  std::string_view kind() const override { return "redis"; }
  void created(SessionRecord& rec) override;
  void resume(SessionRecord& rec, const Token& presented,
              std::function<void(ResumeResult)> done) override;
  void bindPlayer(SessionRecord& rec, uint64_t player,
                  std::function<void(BindResult)> done) override;
  void affinityChanged(SessionRecord& rec) override;
  void lingering(SessionRecord& rec) override;
  void ended(SessionRecord& rec) override;
  void lingerExpired(SessionRecord& rec, std::function<void(bool continued)> done) override;

  // True while the command connection is up.
  bool up() const { return commands_.up(); }
  // A reloaded config's credentials (its password re-read): used by both
  // connections from their next reconnect on.
  void setCredentials(const redis::Credentials& auth);
  // Refreshes TTLs of records active since their last refresh now (the
  // timer does this every refresh_interval).
  void refreshNow();
  redis::RedisClient& commands() { return commands_; }
  redis::RedisClient& subscriber() { return subscriber_; }
  MemoryStore& local() { return local_; }

  // Key and channel names.
  std::string sessionKey(uint64_t id) const;
  std::string playerKey(uint64_t player) const;
  std::string replicaKey() const;
  std::string channel() const { return config_.prefix + "sessions"; }
  // The node-id claim's metrics (see claimNodeId()); the session filter
  // registers them whatever its store, so dashboards and alert rules find
  // them (0) on a memory-store gateway too.
  static stats::Gauge& nodeIdConflictGauge();
  static stats::Counter& nodeIdCollisionsCounter();
  // This process's instance name (random per start, 16 hex digits).
  static const std::string& processInstance();
  // The instance this store writes as (processInstance() unless a test
  // made one store act as another replica with setInstanceForTest()).
  const std::string& instance() const { return instance_; }
  void setInstanceForTest(std::string instance) { instance_ = std::move(instance); }
  // The owner tag of a record: "<instance>-<serial>".
  std::string ownerTag(const SessionRecord& rec) const;

 private:
  // Writes rec's whole record (state connected or lingering) unless another
  // owner holds it; `done(ok, taken)` when given (taken: another owner has it).
  void sync(SessionRecord& rec, bool lingering, std::function<void(bool ok, bool taken)> done = {});
  // Deletes a session's record (and its player key) if `owner` still owns
  // it; queued for the reconnect while Redis is away.
  void sendEnd(uint64_t id, uint64_t player, const std::string& owner);
  // The lookup's answer for a resume of `rec` with `token`: refuses, or
  // claims the record (compare-and-set on its generation) and answers.
  void onResumeLookup(SessionRecord& rec, const Token& token, const redisReply* reply,
                      const std::function<void(ResumeResult)>& done);
  // The one fallback of resume() when Redis cannot answer (down, an error
  // reply, a command not sent): counts the error and lets this process's
  // own table decide; a session it does not know is kUnavailable (Redis may
  // know it), not kUnknown.
  void resumeLocally(SessionRecord& rec, const Token& token,
                     const std::function<void(ResumeResult)>& done);
  void onMessage(std::string_view message);
  void onStateChange(bool up);
  void resyncStep(std::shared_ptr<std::vector<std::pair<SessionRecord*, std::weak_ptr<char>>>> todo,
                  size_t from);
  void heartbeat();
  // Worker 0 only: claims this process's session-id node id in Redis
  // (`<prefix>node:<id>`, held as "<instance> <replica>" for kReplicaTtl,
  // renewed every heartbeat). Held by another instance: a collision —
  // logged once per episode, counted, and shown in the conflict gauge —
  // since both mint ids from the same node id (docs/ops/README.md).
  void claimNodeId();
  void countError(const char* op);

  Dispatcher& dispatcher_;
  size_t worker_;
  RedisStoreConfig config_;
  std::shared_ptr<SessionManager> manager_;
  RedisStoreHost& host_;
  std::string instance_;
  MemoryStore local_;
  redis::RedisClient commands_;
  redis::RedisClient subscriber_;
  Timer refresh_timer_;
  Timer heartbeat_timer_;
  stats::Gauge* up_gauge_;
  stats::Counter* errors_;
  stats::Gauge* node_conflict_;
  stats::Counter* node_collisions_;
  bool node_conflict_now_ = false;
  bool counted_up_ = false;
  struct PendingEnd {
    uint64_t id;
    uint64_t player;
    std::string owner;
  };
  static constexpr size_t kMaxPendingEnds = 100000;
  std::deque<PendingEnd> pending_ends_;  // ends Redis did not get (it was down)
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

// The admin API's view of sessions on other replicas: blocking reads of
// their Redis records (bounded by a short timeout) and kicks through the
// fleet channel.
class RedisFleetView : public FleetView {
 public:
  RedisFleetView(const RedisStoreConfig& config);
  std::optional<std::string> describe(uint64_t id) override;
  bool kick(uint64_t id, std::string_view why) override;

 private:
  std::string prefix_;
  redis::BlockingRedis redis_;
};

}  // namespace session
}  // namespace gw
