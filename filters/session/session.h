// filters/session/session.h — the `session` filter: session identity,
// resume, player binding and the idle sweep.
//
// Frames layer, not terminal; sits after `framing`, before `breaker` and
// `upstream` (docs/filters/session.md).
//   read:  first frame ─▶ new session (or a resume request) ─▶ SessionInfo
//          published in the connection's Slots ─▶ frames pass on
//   write: frames pass through (last activity noted)
//
// Defines:
//  - the control frames' msg_ids (docs/protocol.md, "Session control frames");
//  - SessionStats: every metric of the filter for one listener;
//  - WorkerSessions: one per worker (in WorkerServices): owns that worker's
//    SessionRecords, its stores, the coarse clock, the idle sweep, and
//    answers kicks and releases posted by other threads (SessionHome), and
//    upstream's linger questions (SessionLingerOwner);
//  - SessionFilter (per connection) and SessionFactory (per worker and
//    listener).
// Per-frame cost: one comparison of two 32-bit seconds (and a store when the
// second changed). Nothing is allocated per frame.
#pragma once

#include <absl/container/flat_hash_map.h>
#include <event2/buffer.h>

#include <chrono>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "core/sdk/dispatcher.h"
#include "core/sdk/filter.h"
#include "core/sdk/registry.h"
#include "core/sdk/session_info.h"
#include "core/sdk/stats.h"
#include "core/sdk/worker_services.h"
#include "filters/session/memory_store.h"
#include "filters/session/redis_store.h"
#include "filters/session/session_config.h"
#include "filters/session/session_manager.h"
#include "filters/session/session_store.h"

namespace gw {
namespace session {

// Client -> gateway, first frame only: resume session (u64 id, 16-byte
// token), or id 0 = "start a resumable session".
inline constexpr uint16_t kResumeMsgId = 0xFFFD;
// Gateway -> client: the session's id (u64) and its resume token (16 bytes).
inline constexpr uint16_t kEstablishedMsgId = 0xFFFE;
// Client -> gateway, any time: end the session when this connection closes
// (no linger).
inline constexpr uint16_t kLeaveMsgId = 0xFFFC;
// Payload size of kResumeMsgId and kEstablishedMsgId.
inline constexpr size_t kControlPayload = 8 + 16;

struct SessionStats {
  explicit SessionStats(const std::string& listener);
  stats::Gauge* active;         // game_gateway_sessions_active
  stats::Gauge* lingering;      // game_gateway_sessions_lingering
  stats::Counter* created;      // game_gateway_sessions_created_total
  stats::Counter* resumed;      // game_gateway_sessions_resumed_total
  stats::Counter* resume_failed[5];  // ..._resume_failed_total{reason}, by ResumeResult::Status
  stats::Counter* kicked;       // game_gateway_sessions_kicked_total
  stats::Counter* idle_closed;  // game_gateway_sessions_idle_closed_total
  stats::Counter* duplicate_login;  // game_gateway_sessions_duplicate_login_total
  stats::Counter* linger_ended;     // game_gateway_sessions_linger_expired_total
};

class SessionFilter;

class WorkerSessions : public SessionHome, public SessionLingerOwner, public RedisStoreHost {
 public:
  WorkerSessions() = default;  // WorkerServices default-constructs; then init()
  ~WorkerSessions() override;

  // Binds to the worker (first factory on it). Later calls are no-ops.
  void init(Dispatcher& dispatcher, size_t worker_index, WorkerServices& services,
            std::shared_ptr<SessionManager> manager);
  // The store for `config` (the memory store, or the Redis store for its
  // address and prefix, created and started on first use), and registers
  // the config's sweep interval.
  SessionStore& storeFor(const SessionConfig& config);
  // The worker's coarse clock (coarseNowSeconds(), updated four times a second).
  uint32_t now() const { return now_s_; }
  size_t workerIndex() const { return worker_; }
  SessionManager& manager() { return *manager_; }

  // A new record owned by this worker (id 0; the caller fills it in).
  SessionRecord* newRecord(std::shared_ptr<const SessionConfig> config, SessionStore* store);
  // The record of this worker with `serial`, or nullptr (deleted): what
  // asynchronous callbacks hold instead of a pointer.
  SessionRecord* findRecord(uint64_t serial) {
    auto it = records_.find(serial);
    return it == records_.end() ? nullptr : it->second.get();
  }
  // Deletes a record of this worker (it must not be in the table).
  void deleteRecord(SessionRecord* rec);
  // A record's connection closed and it may resume: it lingers here (the
  // table marks it lingering). False, with nothing changed, if the record
  // is no longer its id's record (the session continued elsewhere).
  bool startLinger(SessionRecord* rec);
  // The sweep, now (the timer runs it every cleanup_interval).
  void sweep();
  // Records of this worker (connected and lingering).
  size_t recordCount() const { return records_.size(); }
  size_t lingeringCount() const { return lingering_.size(); }

  // SessionHome
  Dispatcher& dispatcher() override { return *dispatcher_; }
  void kickLocal(uint64_t id, CloseReason reason, const std::string& why) override;
  void releaseMoved(uint64_t id, uint64_t serial) override;
  // SessionLingerOwner
  void lingerExpired(uint64_t id, std::function<void(bool continued)> done) override;
  void lingerEnded(uint64_t id) override;
  // RedisStoreHost
  SessionHome& home() override { return *this; }
  void forEachRecord(SessionStore* store, const std::function<void(SessionRecord&)>& fn) override;

 private:
  // Drops a lingering record for good (`notify`: tell the terminal to send
  // session close now; else it forgets silently).
  void endLinger(SessionRecord* rec, bool notify, bool final_end);
  void armSweep();

  Dispatcher* dispatcher_ = nullptr;
  size_t worker_ = 0;
  WorkerServices* services_ = nullptr;
  std::shared_ptr<SessionManager> manager_;
  std::unique_ptr<MemoryStore> memory_;
  std::map<std::string, std::unique_ptr<RedisStore>> redis_;  // by "address|prefix"
  absl::flat_hash_map<uint64_t, std::unique_ptr<SessionRecord>> records_;  // by serial
  absl::flat_hash_map<uint64_t, SessionRecord*> lingering_;               // by session id
  std::unique_ptr<Timer> clock_timer_;
  std::unique_ptr<Timer> sweep_timer_;
  std::chrono::milliseconds sweep_interval_{0};
  uint32_t now_s_ = 0;
};

class SessionFactory;

class SessionFilter : public Filter, public SessionObserver {
 public:
  explicit SessionFilter(SessionFactory& factory);
  ~SessionFilter() override;

  FilterStatus onFrame(Frame& frame) override;
  FilterStatus onWriteFrame(Frame& frame) override;
  void onClose(CloseReason reason) override;

  // SessionObserver (called by upstream).
  void onPlayerBound(uint64_t player_id) override;
  void onAffinityChanged(const std::string& cluster, const std::string& host) override;
  std::string_view affinityFor(std::string_view cluster) const override;

  // From WorkerSessions (this worker's thread):
  // Closes the connection for good with `reason` (kicked, duplicate login).
  void kick(CloseReason reason, const std::string& why);
  // The session continues on another connection: close without telling
  // backends.
  void releaseMoved();
  // The sweep found it idle for `idle_s` seconds.
  void closeIdle(uint32_t idle_s);

  const SessionInfo& info() const { return info_; }
  SessionRecord* record() { return rec_; }

 private:
  enum class Phase : uint8_t { kNew, kResuming, kLive, kClosed };
  // Frames that arrived while a resume was in flight (rare: allocated then).
  struct Held {
    Held() : payloads(evbuffer_new()) {}
    ~Held() { evbuffer_free(payloads); }
    evbuffer* payloads;
    std::vector<wire::ClientHeader> headers;
  };

  // Marks activity: one comparison; a store only when the second changed.
  void touch();
  FilterStatus firstFrame(Frame& frame);
  // Creates a new session; `resumable`: the client gets a token.
  void createSession(bool resumable);
  void beginResume(uint64_t id, const Token& presented);
  void finishResume(ResumeResult result);
  void goLive();
  void sendEstablished();
  // Frames that arrived while a resume was in flight, replayed after it.
  void holdFrame(Frame& frame);
  void replayHeld();

  // Per connection (88 bytes with the bases' pointers). Everything else
  // about the session is in its SessionRecord (per session, owned by the
  // worker's WorkerSessions): id, player, affinity, token, last activity.
  // Asynchronous store callbacks find this filter again through the
  // record's serial (WorkerSessions::findRecord), so nothing here is
  // reference-counted.
  SessionFactory& factory_;  // per worker: config, store, clock, stats
  SessionInfo info_;         // published in the connection's Slots
  SessionRecord* rec_ = nullptr;  // the session's record (nullptr before the first frame)
  std::unique_ptr<Held> held_;    // only while a resume is in flight
  Phase phase_ = Phase::kNew;
  bool read_paused_ = false;
  bool counted_active_ = false;
};

class SessionFactory : public FilterFactory {
 public:
  SessionFactory(std::shared_ptr<const SessionConfig> config, WorkerContext& worker);
  std::unique_ptr<Filter> createFilter() override;

  const SessionConfig& config() const { return *config_; }
  const std::shared_ptr<const SessionConfig>& configPtr() const { return config_; }
  WorkerSessions& sessions() { return ws_; }
  SessionStore& store() { return store_; }
  SessionStats& stats() { return *stats_; }

 private:
  std::shared_ptr<const SessionConfig> config_;
  WorkerSessions& ws_;
  SessionStore& store_;
  std::shared_ptr<SessionStats> stats_;
};

// The listener's stats (shared by its workers' factories).
std::shared_ptr<SessionStats> statsFor(const std::string& listener);

}  // namespace session
}  // namespace gw
