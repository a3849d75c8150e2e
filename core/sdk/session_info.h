// core/sdk/session_info.h — the session a client connection belongs to.
//
// Defines SessionInfo, published in the connection's Slots by whichever
// filter owns session identity (`session`; `upstream` makes one itself when
// no filter did), SessionObserver (how the terminal tells the owner what
// backends did to the session), the per-worker seams between the session
// owner and the terminal for sessions that outlive their connection
// (SessionLingerSeams), and SessionIdGenerator: 64-bit ids unique across
// gateway replicas without coordination (12 bits of a hash of the node name,
// 40 bits of milliseconds, 12 bits of sequence — the Go gateway's layout).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>

namespace gw {

// Told by the terminal (`upstream`) about what backends did to a session.
// Implemented by the session owner (`session`); called on the connection's
// worker thread while the connection is open.
class SessionObserver {
 public:
  virtual ~SessionObserver() = default;
  // A backend bound `player_id` to the session (lifecycle opcode 5). The
  // owner enforces duplicate-login rules; it may close this connection.
  virtual void onPlayerBound(uint64_t player_id) = 0;
  // The session was pinned to `host` ("ip:port") of `cluster` (its first
  // frame to that cluster, or a re-home after the host went down). Called
  // only when the host differs from the one affinityFor() gave.
  virtual void onAffinityChanged(const std::string& cluster, const std::string& host) = 0;
  // The host ("ip:port") the session is pinned to in `cluster`, or "" if
  // none. For a resumed session: the host it used before (maybe on another
  // replica), which the terminal prefers while it is up. The owner keeps the
  // affinity (SessionInfo does not); the view is valid until the next
  // onAffinityChanged.
  virtual std::string_view affinityFor(std::string_view /*cluster*/) const { return {}; }
};

// Per connection: published in the connection's Slots by the session owner
// (a member of its filter object), read by the terminal. 32 bytes: the
// session's per-cluster affinity is not here but with the owner (see
// SessionObserver::affinityFor), and the terminal keeps its own per-cluster
// state (host index, backend connection).
struct SessionInfo {
  // What the terminal does with the session's backend side when the client
  // connection closes. Set by the owner before (or while) the connection
  // closes; the terminal reads it in its onClose.
  enum class End : uint8_t {
    kDefault,  // linger (if `linger` > 0) so the client can resume, else close
    kFinal,    // the session is over (kicked, duplicate login, idle): close now
    kMoved,    // the session continues on another connection or replica:
               // forget it without telling backends
  };
  // Milliseconds in 32 bits (durations in config are at most 30 days).
  using Millis32 = std::chrono::duration<uint32_t, std::milli>;

  uint64_t id = 0;
  uint64_t player_id = 0;  // 0 until a backend binds one
  // The owner's hooks (player binding, affinity), or nullptr (no session
  // filter: the terminal made the session itself).
  SessionObserver* observer = nullptr;
  // > 0: the client may resume this session; when its connection closes
  // (End::kDefault) the terminal keeps the session's backend binding this
  // long and asks SessionLingerSeams::owner whether it continued before
  // sending session close. 0: close at once (the Go gateway's behaviour).
  Millis32 linger{0};
  // Set by the owner when the session came back through resume: backends
  // then see it continue (session open with payload "resume").
  bool resumed = false;
  End end = End::kDefault;
};
static_assert(sizeof(SessionInfo) <= 32, "SessionInfo is per connection: keep it small");

// The session owner's side of a lingering session (a client that left with
// resume on). Implemented by `session` per worker.
class SessionLingerOwner {
 public:
  virtual ~SessionLingerOwner() = default;
  // The terminal's linger for session `id` ran out. Calls done(true) if the
  // session continues elsewhere (resumed on another connection, worker or
  // replica: send nothing) or done(false) if it is over (send session
  // close). `done` runs on this worker's thread, possibly before this
  // returns, possibly later (a store lookup); it is always called once.
  virtual void lingerExpired(uint64_t id, std::function<void(bool continued)> done) = 0;
  // The terminal ended lingering session `id` early (a backend kicked it):
  // it can no longer be resumed.
  virtual void lingerEnded(uint64_t id) = 0;
};

// The terminal's side of lingering sessions. Implemented by `upstream` per
// worker.
class SessionLingerKeeper {
 public:
  virtual ~SessionLingerKeeper() = default;
  // Ends lingering session `id` now: sends session close to its backends if
  // `notify_backends`, else forgets it silently (it continues elsewhere).
  // No-op if `id` does not linger on this worker.
  virtual void endLinger(uint64_t id, bool notify_backends) = 0;
};

// WorkerServices slot joining the two (either may be nullptr).
struct SessionLingerSeams {
  SessionLingerOwner* owner = nullptr;
  SessionLingerKeeper* keeper = nullptr;
};

class SessionIdGenerator {
 public:
  // `node` names this replica (pod name, host name); only its hash is used.
  explicit SessionIdGenerator(std::string_view node);

  // Next id. Thread-safe and lock-free. Never returns 0. If more than 4096
  // ids are requested in one millisecond, borrows the next millisecond.
  uint64_t next();

  // The 12-bit node hash this generator stamps.
  uint16_t nodeBits() const { return node_bits_; }

  // The process-wide generator, named by $GATEWAY_NODE_NAME, else $HOSTNAME,
  // else the host name.
  static SessionIdGenerator& process();

 private:
  uint16_t node_bits_;
  std::atomic<uint64_t> state_{0};  // (ms << 12) | seq of the last id
};

}  // namespace gw
