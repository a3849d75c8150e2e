// core/sdk/error_frame.h — the error frame the gateway sends to a client.
//
// When the gateway refuses a client frame but keeps the connection open (no
// route, backend unavailable, breaker open, overflow, message rate), it
// answers with one client frame:
//   msg_id    = kErrorMsgId (65535)
//   server_id = 0
//   payload   = u16 code (LE) | u16 msg_id of the refused frame (LE) | ASCII reason
// Codes are stable; docs/protocol.md lists them. Clients of the Go gateway
// never see msg_id 65535 unless one of these conditions happens.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "core/sdk/wire.h"

namespace gw {

inline constexpr uint16_t kErrorMsgId = 0xFFFF;

enum class ErrorCode : uint16_t {
  kNoRoute = 1,              // no route rule matches server_type:world_id
  kUpstreamUnavailable = 2,  // no host of the cluster can be reached
  kUpstreamOverflow = 3,     // too many frames waiting for a backend connection
  kCircuitOpen = 4,          // the breaker is open for the cluster or host
  kRateLimited = 5,          // the connection's message rate is exceeded
  kResumeFailed = 6,         // a session resume was refused (bad or expired token)
  kUpstreamLost = 7,         // the backend connection died with this frame unanswered
  kOverloaded = 8,           // the gateway is full: this connection was shed (then closed)
};

// Stable lower-case name of a code ("no_route").
constexpr std::string_view errorCodeName(ErrorCode c) {
  switch (c) {
    case ErrorCode::kNoRoute: return "no_route";
    case ErrorCode::kUpstreamUnavailable: return "upstream_unavailable";
    case ErrorCode::kUpstreamOverflow: return "upstream_overflow";
    case ErrorCode::kCircuitOpen: return "circuit_open";
    case ErrorCode::kRateLimited: return "rate_limited";
    case ErrorCode::kResumeFailed: return "resume_failed";
    case ErrorCode::kUpstreamLost: return "upstream_lost";
    case ErrorCode::kOverloaded: return "overloaded";
  }
  return "error";
}

// The error frame's payload: code, refused msg_id, then the code's name.
inline std::string errorFramePayload(ErrorCode code, uint16_t refused_msg_id) {
  std::string p(4, '\0');
  wire::putU16(reinterpret_cast<uint8_t*>(&p[0]), static_cast<uint16_t>(code));
  wire::putU16(reinterpret_cast<uint8_t*>(&p[2]), refused_msg_id);
  p += errorCodeName(code);
  return p;
}

}  // namespace gw
