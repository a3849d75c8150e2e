// core/sdk/close_reason.h — why a connection was closed.
//
// Every close carries a CloseReason (a fixed, low-cardinality name used as
// the `reason` metric label and in the access log) plus a free-text detail
// for the log line.
#pragma once

#include <cstddef>
#include <string_view>

namespace gw {

enum class CloseReason {
  kRemoteClosed,           // the peer closed (FIN) or reset the connection
  kLocalClosed,            // closed by the gateway for no error (end of proxying)
  kShutdown,               // the gateway is stopping or draining
  kSocketError,            // read/write error on the socket
  kUpstreamConnectFailed,  // the backend could not be reached
  kUpstreamClosed,         // the backend connection closed
  kIdleTimeout,            // no traffic for the idle timeout
  kReadTimeout,            // a frame stalled mid-way past the read timeout
  kFrameTooLarge,          // a frame's length exceeds max_frame_bytes
  kMalformedFrame,         // bytes that do not decode as a frame
  kOutputOverflow,         // a slow reader: output buffered past its bound
  kRateLimited,            // ip_limiter refused the connection or its messages
  kKicked,                 // a backend or an operator kicked the session
  kSessionIdle,            // the session sweep found it idle
  kDuplicateLogin,         // the player logged in elsewhere
  kFilterError,            // a filter closed it (detail says why)
  kFirstFrameTimeout,      // no complete first frame within the first-frame deadline
  kOverloaded,             // shed at the connection cap to make room for a new client
  kTlsHandshakeFailed,     // the TLS handshake failed (not TLS, no shared version/cipher, ...)
  kTlsHandshakeTimeout,    // the TLS handshake did not complete within handshake_timeout
  kTlsError,               // a TLS error after the handshake (bad record, unexpected message)
  kCount,
};

inline constexpr size_t kCloseReasonCount = static_cast<size_t>(CloseReason::kCount);

// The stable snake_case name ("frame_too_large"), used as a metric label.
constexpr std::string_view closeReasonName(CloseReason r) {
  switch (r) {
    case CloseReason::kRemoteClosed: return "remote_closed";
    case CloseReason::kLocalClosed: return "local_closed";
    case CloseReason::kShutdown: return "shutdown";
    case CloseReason::kSocketError: return "socket_error";
    case CloseReason::kUpstreamConnectFailed: return "upstream_connect_failed";
    case CloseReason::kUpstreamClosed: return "upstream_closed";
    case CloseReason::kIdleTimeout: return "idle_timeout";
    case CloseReason::kReadTimeout: return "read_timeout";
    case CloseReason::kFrameTooLarge: return "frame_too_large";
    case CloseReason::kMalformedFrame: return "malformed_frame";
    case CloseReason::kOutputOverflow: return "output_overflow";
    case CloseReason::kRateLimited: return "rate_limited";
    case CloseReason::kKicked: return "kicked";
    case CloseReason::kSessionIdle: return "session_idle";
    case CloseReason::kDuplicateLogin: return "duplicate_login";
    case CloseReason::kFilterError: return "filter_error";
    case CloseReason::kFirstFrameTimeout: return "first_frame_timeout";
    case CloseReason::kOverloaded: return "overloaded";
    case CloseReason::kTlsHandshakeFailed: return "tls_handshake_failed";
    case CloseReason::kTlsHandshakeTimeout: return "tls_handshake_timeout";
    case CloseReason::kTlsError: return "tls_error";
    case CloseReason::kCount: break;
  }
  return "unknown";
}

}  // namespace gw
