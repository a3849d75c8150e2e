// core/sdk/session_info.h — the session a client connection belongs to.
//
// Defines SessionInfo, published in the connection's Slots by whichever
// filter owns session identity (`session`; `upstream` makes one itself when
// no filter did), SessionObserver (how the terminal tells the owner what
// backends did to the session), the per-worker seams between the session
// owner and the terminal for sessions that outlive their connection
// (SessionLingerSeams), TraceContext (the session's W3C trace id and span
// id), and SessionIdGenerator: 64-bit session ids, unique
// across gateway replicas and not guessable from one another (a keyed
// permutation of node id, milliseconds and sequence; see SessionIdGenerator).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

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

// A session's W3C trace context: a 16-byte trace id and an 8-byte span id,
// random and never all-zero (W3C's invalid value). One per SessionInfo,
// made with it on the connection's worker; `upstream` sends it to backends
// of a compat cluster with trace_propagation (the 33-byte extended gate
// header, core/sdk/wire.h), the access log writes the trace id, and other
// transports (gRPC metadata) may carry it. The span id names the gateway's
// span for the whole session: the same for every frame.
struct TraceContext {
  uint8_t trace_id[16] = {0};
  uint8_t span_id[8] = {0};

  // A new random context: a per-thread generator seeded from the kernel's
  // random source (getrandom), no lock. Never returns an all-zero trace id
  // or span id.
  static TraceContext generate();
  // 32 lowercase hex digits (the trace-id field of a W3C traceparent).
  std::string traceIdHex() const;
  // 16 lowercase hex digits.
  std::string spanIdHex() const;
};

// Per connection: published in the connection's Slots by the session owner
// (a member of its filter object), read by the terminal. 56 bytes: the
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
  // The session's trace context (made with the SessionInfo; per connection:
  // a resumed session gets the new connection's).
  TraceContext trace = TraceContext::generate();
};
static_assert(sizeof(SessionInfo) <= 64, "SessionInfo is per connection: keep it small");

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

// The 128-bit secret that keys SessionIdGenerator's permutation.
struct SessionIdKey {
  uint64_t k0 = 0;
  uint64_t k1 = 0;

  // 128 bits from the kernel's random source (getrandom). Aborts if the
  // kernel cannot supply them (there is no safe fallback).
  static SessionIdKey random();
  // 32 hex digits (surrounding whitespace ignored), the format of a key
  // file; nullopt if `text` is anything else.
  static std::optional<SessionIdKey> parseHex(std::string_view text);

  bool operator==(const SessionIdKey& o) const { return k0 == o.k0 && k1 == o.k1; }
};

// Session ids: next() returns permute_key(node:16 | ms:36 | seq:12), where
// the permutation is a 4-round Feistel network over the two 32-bit halves
// whose round function is SipHash-2-4 keyed by a SessionIdKey. A permutation
// is a bijection, so distinct inputs give distinct ids: ids of one generator
// never repeat (until its 36-bit millisecond clock wraps, every ~2.2 years),
// and generators with the same key and distinct node ids never collide.
// Generators with different keys (the default: a random key per process)
// collide only by chance, ~n^2/2^65 for n ids alive at once. Without the key
// an id says nothing usable about the ids made before or after it.
class SessionIdGenerator {
 public:
  // What an id was made from (decode()).
  struct Fields {
    uint16_t node = 0;
    uint64_t ms = 0;   // Unix milliseconds modulo 2^36
    uint16_t seq = 0;  // 0..4095 within the millisecond
  };

  // Node id nodeIdFromName(node), a random key.
  explicit SessionIdGenerator(std::string_view node);
  SessionIdGenerator(uint16_t node_id, SessionIdKey key);
  SessionIdGenerator(const SessionIdGenerator&) = delete;
  SessionIdGenerator& operator=(const SessionIdGenerator&) = delete;

  // Next id. Thread-safe and lock-free. Never returns 0. If more than 4096
  // ids are requested in one millisecond, borrows the next millisecond.
  uint64_t next();

  // The node id and key of ids from now on (a config that names them); an
  // absent one stays as it is. Thread-safe; later ids are distinct from
  // earlier ones for certain while the key is unchanged (else by chance, as
  // between keys). Keeps every key it was given until destroyed.
  void reset(std::optional<uint16_t> node_id, std::optional<SessionIdKey> key);

  // The node id this generator stamps (before the permutation).
  uint16_t nodeId() const;
  // Inverts the permutation with this generator's current key.
  Fields decode(uint64_t id) const;

  // 16 bits of a hash (FNV-1a) of `name`: the node id of a replica that was
  // given none.
  static uint16_t nodeIdFromName(std::string_view name);

  // The process-wide generator: node id $GATEWAY_NODE_ID (0..65535) if set,
  // else nodeIdFromName($GATEWAY_NODE_NAME, else $HOSTNAME, else the host
  // name); a random key. The `session` filter may reset() it from config.
  static SessionIdGenerator& process();

 private:
  struct Params {
    uint16_t node;
    SessionIdKey key;
  };
  std::atomic<const Params*> params_;  // the last of all_
  std::atomic<uint64_t> state_{0};     // (ms << 12) | seq of the last id
  std::mutex mu_;                      // guards all_
  // Every Params ever in force (next() may still be reading an earlier one).
  std::vector<std::unique_ptr<const Params>> all_;
};

}  // namespace gw
