#include "filters/upstream/output_shares.h"

#include <netinet/in.h>

#include <algorithm>
#include <cstring>
#include <limits>

namespace gw {
namespace upstream {

PeerKey PeerKey::of(const Address& addr) {
  PeerKey k;
  const sockaddr* sa = addr.sockaddr_ptr();
  uint8_t b[16] = {0};
  if (sa->sa_family == AF_INET) {
    b[10] = 0xff;
    b[11] = 0xff;
    std::memcpy(b + 12, &reinterpret_cast<const sockaddr_in*>(sa)->sin_addr, 4);
  } else if (sa->sa_family == AF_INET6) {
    std::memcpy(b, &reinterpret_cast<const sockaddr_in6*>(sa)->sin6_addr, 16);
  } else {
    return k;
  }
  for (int i = 0; i < 8; ++i) k.hi = (k.hi << 8) | b[i];
  for (int i = 8; i < 16; ++i) k.lo = (k.lo << 8) | b[i];
  return k;
}

const char* shareVerdictName(ShareVerdict v) {
  switch (v) {
    case ShareVerdict::kAdmit: return "admit";
    case ShareVerdict::kSessionShare: return "session_share";
    case ShareVerdict::kIpShare: return "ip_share";
    case ShareVerdict::kHardCap: return "hard_cap";
  }
  return "admit";
}

void OutputShares::add(uint64_t session, const PeerKey& ip, size_t bytes) {
  if (bytes == 0) return;
  total_ += bytes;
  buffered_ += bytes;
  SessionBytes& s = by_session_[session];
  // Bytes without an address (a session close) count for the session's.
  PeerKey key = ip.none() ? s.ip : ip;
  if (s.bytes > 0 && key != s.ip) {
    // The session continues from another address: its queued bytes move.
    if (!s.ip.none()) {
      auto old = by_ip_.find(s.ip);
      if (old != by_ip_.end() && (old->second -= std::min(old->second, s.bytes)) == 0)
        by_ip_.erase(old);
    }
    by_ip_[key] += s.bytes;
  }
  s.bytes += bytes;
  s.ip = key;
  if (!key.none()) by_ip_[key] += bytes;
  // Consecutive bytes of one session share a segment (a segment holds at
  // most 4 GiB).
  constexpr size_t kMaxSegment = std::numeric_limits<uint32_t>::max();
  while (bytes > 0) {
    if (!fifo_.empty() && fifo_.back().session == session && fifo_.back().bytes < kMaxSegment) {
      size_t room = kMaxSegment - fifo_.back().bytes;
      size_t n = std::min(room, bytes);
      fifo_.back().bytes += static_cast<uint32_t>(n);
      bytes -= n;
    } else {
      size_t n = std::min(kMaxSegment, bytes);
      fifo_.push_back(Segment{session, static_cast<uint32_t>(n)});
      bytes -= n;
    }
  }
}

void OutputShares::release(uint64_t session, size_t bytes) {
  auto it = by_session_.find(session);
  if (it == by_session_.end()) return;
  SessionBytes& s = it->second;
  if (!s.ip.none()) {
    auto ip = by_ip_.find(s.ip);
    if (ip != by_ip_.end()) {
      ip->second -= std::min(ip->second, bytes);
      if (ip->second == 0) by_ip_.erase(ip);
    }
  }
  s.bytes -= std::min(s.bytes, bytes);
  if (s.bytes == 0) by_session_.erase(it);
}

void OutputShares::sync(size_t buffered) {
  buffered_ = buffered;
  if (buffered >= total_) return;
  size_t written = total_ - buffered;
  total_ = buffered;
  while (written > 0 && !fifo_.empty()) {
    Segment& seg = fifo_.front();
    size_t n = std::min<size_t>(seg.bytes, written);
    release(seg.session, n);
    written -= n;
    seg.bytes -= static_cast<uint32_t>(n);
    if (seg.bytes == 0) fifo_.pop_front();
  }
}

size_t OutputShares::sessionBytes(uint64_t session) const {
  auto it = by_session_.find(session);
  return it == by_session_.end() ? 0 : it->second.bytes;
}

size_t OutputShares::ipBytes(const PeerKey& ip) const {
  auto it = by_ip_.find(ip);
  return it == by_ip_.end() ? 0 : it->second;
}

ShareVerdict OutputShares::check(uint64_t session, const PeerKey& ip,
                                 const ShareLimits& limits) const {
  size_t buffered = std::max(total_, buffered_);
  if (buffered > limits.hard_cap) return ShareVerdict::kHardCap;
  if (buffered <= limits.limit) return ShareVerdict::kAdmit;
  // Contended: only bytes queued by the session (or its IP) count against it.
  size_t sessions = std::max<size_t>(1, by_session_.size());
  size_t share = std::max(limits.floor, limits.limit / sessions);
  if (sessionBytes(session) > share) return ShareVerdict::kSessionShare;
  if (limits.per_ip && !ip.none()) {
    size_t ips = std::max<size_t>(1, by_ip_.size());
    size_t ip_share = std::max(limits.floor, limits.limit / ips);
    if (ipBytes(ip) > ip_share) return ShareVerdict::kIpShare;
  }
  return ShareVerdict::kAdmit;
}

}  // namespace upstream
}  // namespace gw
