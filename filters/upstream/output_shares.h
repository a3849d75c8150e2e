// filters/upstream/output_shares.h — who queued the bytes waiting in a
// backend connection's output buffer, and whether a session may queue more.
//
// Defines PeerKey (a client IP as a 128-bit key), ShareLimits (the knobs,
// from the upstream config's max_backend_output_bytes and `fair_share`),
// ShareVerdict, and OutputShares: a FIFO of (session, bytes) segments in
// the order the bytes were appended to the output, with per-session and
// per-client-IP totals. The connection reports how many bytes its output
// still holds (sync()); the difference left the buffer from its front, so
// the oldest segments are drained. No write-progress callback is needed:
// the figures are brought up to date before each decision.
//
// The rule (check()): nothing is refused while the output holds at most
// `limit` bytes (the connection keeps up); above `hard_cap` everything is.
// In between the connection is contended, and a frame is refused only when
// its own session holds more than its share, max(floor, limit / sessions
// with bytes queued), or (per_ip) its client IP holds more than
// max(floor, limit / IPs with bytes queued). A session under its share is
// refused only at the hard cap.
//
// Per backend connection (a member of BackendConnection, so per worker);
// not thread-safe. Memory: 16 bytes per segment (consecutive bytes of one
// session share a segment), one map entry per session and per IP with bytes
// queued; entries go when their bytes drained.
#pragma once

#include <absl/container/flat_hash_map.h>

#include <cstddef>
#include <cstdint>
#include <deque>

#include "core/sdk/address.h"

namespace gw {
namespace upstream {

// A client IP: IPv6 as is, IPv4 as ::ffff:a.b.c.d. {0, 0} (none()) for a
// peer that is not an IP socket: such clients have no IP share.
struct PeerKey {
  uint64_t hi = 0;
  uint64_t lo = 0;

  // The key of `addr`'s IP (port ignored).
  static PeerKey of(const Address& addr);
  bool none() const { return hi == 0 && lo == 0; }
  bool operator==(const PeerKey& o) const { return hi == o.hi && lo == o.lo; }
  bool operator!=(const PeerKey& o) const { return !(*this == o); }
  template <typename H>
  friend H AbslHashValue(H h, const PeerKey& k) {
    return H::combine(std::move(h), k.hi, k.lo);
  }
};

// Knobs of OutputShares::check() (docs/filters/upstream.md, "Fair sharing").
struct ShareLimits {
  size_t limit = 8 * 1024 * 1024;      // max_backend_output_bytes: no refusal at or below
  size_t floor = 64 * 1024;            // fair_share.floor: the least share
  size_t hard_cap = 16 * 1024 * 1024;  // fair_share.hard_cap: every frame refused above
  bool per_ip = true;                  // fair_share.per_ip: also share by client IP
};

// Why check() refuses a frame (kAdmit: it does not). The names are the
// reason label of game_gateway_upstream_output_refused_total.
enum class ShareVerdict : uint8_t { kAdmit, kSessionShare, kIpShare, kHardCap };
const char* shareVerdictName(ShareVerdict v);

class OutputShares {
 public:
  // `bytes` were appended at the back of the output for `session` of a
  // client at `ip`. A session's bytes count for the IP of its latest add()
  // (a resumed session moves its queued bytes along); none() keeps the IP
  // the session has (a session close), or none if it has none.
  void add(uint64_t session, const PeerKey& ip, size_t bytes);
  // The output now holds `buffered` bytes: what the segments hold beyond
  // that was written, oldest first, and is forgotten. Bytes appended
  // without add() (none are, in BackendConnection) would make the figures
  // lag: they are drained as if they were the oldest accounted bytes.
  void sync(size_t buffered);
  // Whether `session` (from `ip`) may queue another frame; call sync() first.
  ShareVerdict check(uint64_t session, const PeerKey& ip, const ShareLimits& limits) const;

  // Bytes accounted and not yet drained (= the buffered output after sync()).
  size_t total() const { return total_; }
  size_t sessionBytes(uint64_t session) const;
  size_t ipBytes(const PeerKey& ip) const;
  // Sessions / IPs with bytes queued.
  size_t activeSessions() const { return by_session_.size(); }
  size_t activeIps() const { return by_ip_.size(); }
  size_t segments() const { return fifo_.size(); }

 private:
  struct Segment {
    uint64_t session;
    uint32_t bytes;
  };
  struct SessionBytes {
    size_t bytes = 0;
    PeerKey ip;
  };
  // Forgets `bytes` of `session` (drained).
  void release(uint64_t session, size_t bytes);

  std::deque<Segment> fifo_;  // oldest first
  size_t total_ = 0;
  size_t buffered_ = 0;  // the output's size at the last sync() or add()
  absl::flat_hash_map<uint64_t, SessionBytes> by_session_;
  absl::flat_hash_map<PeerKey, size_t> by_ip_;
};

}  // namespace upstream
}  // namespace gw
