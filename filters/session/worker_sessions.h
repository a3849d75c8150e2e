// filters/session/worker_sessions.h — one worker's sessions: the registry
// side of the `session` filter.
//
// Defines WorkerSessions: one per worker (in WorkerServices). It owns that
// worker's SessionRecords (connected and lingering), its stores, the coarse
// clock and the idle sweep; it answers the kicks and releases other threads
// post to it (SessionHome: the admin API's POST /sessions/{id}/kick reaches
// a session through the process-wide SessionManager, then here), upstream's
// linger questions (SessionLingerOwner), and the Redis store's resync
// (RedisStoreHost). The per-connection filter is in session.h.
// Per worker; not thread-safe (other threads post to its dispatcher).
#pragma once

#include <absl/container/flat_hash_map.h>

#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <string>

#include "core/sdk/dispatcher.h"
#include "core/sdk/session_info.h"
#include "core/sdk/worker_services.h"
#include "filters/session/memory_store.h"
#include "filters/session/redis_store.h"
#include "filters/session/session_config.h"
#include "filters/session/session_manager.h"
#include "filters/session/session_store.h"

namespace gw {
namespace session {

class WorkerSessions : public SessionHome, public SessionLingerOwner, public RedisStoreHost {
 public:
  WorkerSessions() = default;  // WorkerServices default-constructs; then init()
  ~WorkerSessions() override;

  // Binds to the worker (first factory on it). Later calls are no-ops.
  void init(Dispatcher& dispatcher, size_t worker_index, WorkerServices& services,
            std::shared_ptr<SessionManager> manager);
  // The store for `config` (the memory store, or the Redis store for its
  // address, db and prefix, created and started on first use; a later
  // config's re-read credentials replace the store's for its next
  // reconnect), and registers the config's sweep interval.
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
  std::map<std::string, std::unique_ptr<RedisStore>> redis_;  // by "address|db|prefix"
  absl::flat_hash_map<uint64_t, std::unique_ptr<SessionRecord>> records_;  // by serial
  absl::flat_hash_map<uint64_t, SessionRecord*> lingering_;               // by session id
  std::unique_ptr<Timer> clock_timer_;
  std::unique_ptr<Timer> sweep_timer_;
  std::chrono::milliseconds sweep_interval_{0};
  uint32_t now_s_ = 0;
};

}  // namespace session
}  // namespace gw
