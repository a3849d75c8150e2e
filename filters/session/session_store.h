// filters/session/session_store.h — where session state lives beyond one
// connection.
//
// Defines SessionStore, the interface the `session` filter's worker state
// (WorkerSessions) uses for everything that may involve more than this
// worker: resuming a session, binding a player id (duplicate login),
// publishing a session's lifecycle, deciding whether a lingering session
// continued elsewhere. Two implementations:
//   MemoryStore (memory_store.h)  this process only, over SessionManager;
//                                 every callback runs before the call returns.
//   RedisStore  (redis_store.h)   the fleet, through Redis; callbacks run
//                                 later (the filter waits), and it falls back
//                                 to the memory store when Redis is down.
// One store object per worker (per Redis address and prefix); used only on
// that worker's thread. Callbacks run on it too.
//
// Who touches the shared table: the worker inserts a new session's record
// (SessionManager::add) and turns it lingering or removes it when its
// connection closes; the store does every other table change (a resume
// replaces the record of an id; an expired linger removes it).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "filters/session/session_manager.h"
#include "filters/session/token.h"

namespace gw {
namespace session {

struct ResumeResult {
  enum class Status {
    kOk,           // resumed: `rec` is now the session's record
    kUnknown,      // no such session (never existed, ended, or expired long ago)
    kBadToken,     // the token does not match
    kExpired,      // the session existed but its resume window passed
    kUnavailable,  // the store could not be asked (and the session is not here)
  };
  Status status = Status::kUnknown;
  // kOk: what the session carries over.
  int64_t created_ms = 0;
  uint64_t player_id = 0;
  // As names (cluster, host "ip:port"): records of another config or
  // replica may use other indexes.
  AffinityPairs affinity;
};

// Stable snake_case name of a resume failure, for the metric label.
inline std::string_view resumeStatusName(ResumeResult::Status s) {
  switch (s) {
    case ResumeResult::Status::kOk: return "ok";
    case ResumeResult::Status::kUnknown: return "unknown";
    case ResumeResult::Status::kBadToken: return "bad_token";
    case ResumeResult::Status::kExpired: return "expired";
    case ResumeResult::Status::kUnavailable: return "unavailable";
  }
  return "unknown";
}

struct BindResult {
  enum class Status {
    kBound,      // no other live session had the player
    kKickedOld,  // another session had it and is being kicked (kick_old)
    kRefused,    // another session has it and keeps it (refuse_new)
  };
  Status status = Status::kBound;
  uint64_t other_session = 0;  // the other session (kKickedOld, kRefused)
};

class SessionStore {
 public:
  virtual ~SessionStore() = default;
  // "memory" or "redis".
  virtual std::string_view kind() const = 0;

  // `rec` was just added to the table as a new connected session.
  virtual void created(SessionRecord& rec) = 0;
  // `rec` is a fresh record for this connection (id = the id the client
  // presented, a new token, not in the table) that wants to take over the
  // session with `presented`. On kOk the store has made `rec` the id's
  // record (connected; created_ms, player_id and affinity copied) and told
  // the worker holding the old record to release it. `done` runs once; it
  // is not run if `rec` is destroyed first.
  virtual void resume(SessionRecord& rec, const Token& presented,
                      std::function<void(ResumeResult)> done) = 0;
  // A backend bound `player` to `rec`'s session; applies the listener's
  // duplicate-login policy across the store's scope. `done` as for resume.
  virtual void bindPlayer(SessionRecord& rec, uint64_t player,
                          std::function<void(BindResult)> done) = 0;
  // `rec`'s affinity changed (already written to the record).
  virtual void affinityChanged(SessionRecord& rec) = 0;
  // `rec`'s client left; the table now holds it as lingering.
  virtual void lingering(SessionRecord& rec) = 0;
  // `rec`'s session is over for good (the worker already removed it from
  // the table and the player map if it was current).
  virtual void ended(SessionRecord& rec) = 0;
  // `rec` lingered to the end of its resume window. Removes it from the
  // table if it is still the id's record, then calls done(false) if the
  // session is over, or done(true) if it continues elsewhere (resumed on
  // another worker or replica). `done` runs once even if `rec` is gone.
  virtual void lingerExpired(SessionRecord& rec, std::function<void(bool continued)> done) = 0;
};

}  // namespace session
}  // namespace gw
