// filters/upstream/backend_connection.h — one multiplexed connection to a
// backend host.
//
// Defines BackendConnection: many sessions share it; every frame carries its
// session id (server frame, docs/protocol.md). Writes of all sessions during
// a loop turn leave in one write. Reads decode server frames and hand each
// to the worker's UpstreamWorker, which routes it by session id (data
// frames typed as the gateway's own control frames are refused, never
// forwarded). Every byte it queues is attributed to a session and client IP
// (output_shares.h), so a flood is refused to the flooding session alone
// (admit()). A failed connect is tried again up to the cluster's
// max_retries times (connect_retry.h delays), the queued output kept; only
// the last failure closes it (one kConnectFailed for the breaker).
//
// To a `compat` cluster (ClusterConfig::compat, taken when the connection
// opens) it speaks the Go gateway's TCP mode: data frames only (no session
// open/close), with the 33-byte extended gate header when trace_propagation
// is on, and every backend frame, whatever its opcode, is data for the
// client. A connection dedicated to one session (compat
// connection_per_session) delivers everything it reads to that session,
// whatever session id the frame carries, and ends the session when it
// closes. Per worker (owned by its HostPool); not thread-safe.
#pragma once

#include <absl/container/flat_hash_set.h>

#include <chrono>
#include <memory>
#include <vector>

#include "core/sdk/cluster.h"
#include "core/sdk/clock.h"
#include "core/sdk/connection.h"
#include "core/sdk/frame.h"
#include "core/sdk/session_info.h"
#include "core/sdk/wire.h"
#include "filters/upstream/output_shares.h"

namespace gw {
namespace upstream {

class ClusterPool;
struct HostPool;
class UpstreamFilter;

class BackendConnection : private ConnectionCallbacks {
 public:
  // `setup_started`: when the pool decided to open it (before the socket
  // was made; backend_connection_setup_latency_seconds counts from there).
  // `dedicated_to`: the one session this connection serves (compat
  // connection_per_session), 0 for a multiplexed connection.
  BackendConnection(ClusterPool& pool, HostPool& host, std::unique_ptr<Connection> conn,
                    MonoTime setup_started, uint64_t dedicated_to = 0);
  // True once connect_timeout expired on it (its close is a timeout).
  bool timedOut() const { return timed_out_; }
  ~BackendConnection() override;

  // The session this connection is dedicated to, or 0 (multiplexed).
  uint64_t dedicatedTo() const { return dedicated_to_; }

  // Connect in progress, or waiting to retry it.
  bool connecting() const {
    return retrying_ || conn_->state() == Connection::State::kConnecting;
  }
  bool open() const {
    auto s = conn_->state();
    return retrying_ || s == Connection::State::kOpen || s == Connection::State::kConnecting;
  }
  // Failed connect attempts retried so far (0 once connected).
  uint32_t retries() const { return retries_; }
  HostPool& host() { return host_; }
  size_t sessionCount() const { return sessions_.size(); }
  // The sessions announced on this connection and not closed.
  const absl::flat_hash_set<uint64_t>& sessions() const { return sessions_; }
  // Frames queued while the connect is in progress.
  size_t pendingFrames() const { return pending_.size(); }
  size_t bufferedOutput() const { return conn_->bufferedOutput(); }

  // Whether `session` of a client at `ip` may queue another frame here, by
  // its share of the output buffer (OutputShares::check; brings the
  // accounting up to date with what the socket took first).
  ShareVerdict admit(uint64_t session, const PeerKey& ip, const ShareLimits& limits) {
    shares_.sync(conn_->bufferedOutput());
    return shares_.check(session, ip, limits);
  }
  // Who queued the buffered output (for tests and the admin view).
  const OutputShares& shares() const { return shares_; }

  // Writes a data frame for `session` of a client at `ip` (a session-open
  // first if the session is new on this connection, except to a compat
  // cluster; the extended gate header with the session's trace context with
  // compat trace_propagation), moving the payload out of `frame`. Returns
  // the bytes written (headers included).
  size_t sendData(const SessionInfo& session, const PeerKey& ip, Frame& frame);
  // Tells the backend the session closed (not a compat cluster's: Go's
  // backends learn it from the connection) and forgets it.
  void closeSession(uint64_t session);
  // Forgets the session without telling the backend (it moved elsewhere).
  void forgetSession(uint64_t session) { sessions_.erase(session); }

  // Closes the connection (no callbacks to the pool).
  void shutdown();

 private:
  void onRead(Connection& conn, bool end_stream) override;
  void onConnected(Connection& conn) override;
  void onClose(Connection& conn, CloseReason reason, std::string_view detail) override;
  void writeHeader(wire::Opcode op, int32_t type, uint64_t session, size_t payload_len);
  void onIdleCheck();
  // A connect attempt failed with `detail`: schedules a retry when the
  // cluster's max_retries allow one (true), else false.
  bool retryConnect(std::string_view detail);
  // The retry timer fired: a new socket takes over the queued output.
  void reconnect();
  // The connection is gone for good: pending frames get error frames,
  // sessions re-home, the pool learns of it.
  void finish(bool during_connect, std::string_view detail);
  // Counts a data frame whose type a client would take for the gateway's own
  // (error, session established) and logs it, at most once per 10 s per
  // connection (the line says how many were refused in between). The caller
  // drains the payload.
  void refuseReserved(const wire::ServerHeader& h, uint64_t session);
  // A data frame of `payload` bytes (still in the input buffer) for
  // `target` (nullptr: no such session here): delivers it or drains and
  // counts it (reserved type, unknown session, too large for a client).
  void forwardData(const wire::ServerHeader& h, UpstreamFilter* target, uint64_t session,
                   int64_t payload);

  ClusterPool& pool_;
  HostPool& host_;
  std::unique_ptr<Connection> conn_;
  // The cluster's compat settings when this connection opened (a reload
  // applies to connections opened after it).
  const CompatConfig compat_;
  const uint64_t dedicated_to_;
  Timer connect_timer_;
  Timer idle_timer_;
  Timer retry_timer_;
  uint32_t retries_ = 0;   // failed attempts retried in this connect
  bool retrying_ = false;  // between a failed attempt and its retry
  std::chrono::steady_clock::time_point last_activity_;
  MonoTime setup_started_;    // pool decided to open it
  MonoTime connect_started_;  // connect() issued
  bool timed_out_ = false;    // connect_timeout expired
  absl::flat_hash_set<uint64_t> sessions_;
  // Who queued the bytes in conn_'s output: every write above adds to it.
  OutputShares shares_;
  // (session, msg_id) of frames queued while connecting: each gets an error
  // frame if the connect fails, so nothing is lost silently.
  std::vector<std::pair<uint64_t, uint16_t>> pending_;
  bool closed_ = false;
  // Rate limit of refuseReserved()'s log line: when it last logged (epoch:
  // never) and the refusals since.
  std::chrono::steady_clock::time_point refused_logged_at_{};
  uint64_t refused_unlogged_ = 0;
};

}  // namespace upstream
}  // namespace gw
