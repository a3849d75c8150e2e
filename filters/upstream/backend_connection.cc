#include "filters/upstream/backend_connection.h"

#include <event2/buffer.h>

#include "core/sdk/clock.h"
#include "core/sdk/error_frame.h"
#include "core/sdk/log.h"
#include "filters/upstream/cluster_pool.h"
#include "filters/upstream/connect_retry.h"
#include "filters/upstream/upstream.h"
#include "filters/upstream/upstream_worker.h"

namespace gw {
namespace upstream {

namespace {
// Largest server frame accepted from a backend (length field); larger means
// the stream is corrupt and the connection is closed.
constexpr int64_t kMaxServerFrameLength = 16 * 1024 * 1024;

// The session filter's "session established" frame (filters/session/session.h,
// kEstablishedMsgId; a filter cannot include another's header).
constexpr uint16_t kSessionEstablishedMsgId = 0xFFFE;

// At most one log line per connection per this interval for refused frames.
constexpr auto kRefusedLogInterval = std::chrono::seconds(10);

// True for the msg_ids a client takes as the gateway's own frames (error
// 0xFFFF, session established 0xFFFE; docs/protocol.md): a backend frame
// of such a type would be a forgery. `type` is what the client would see
// (the server frame's type truncated to the client's u16 msg_id).
bool isReservedForGateway(uint16_t type) {
  return type == kErrorMsgId || type == kSessionEstablishedMsgId;
}
}  // namespace

BackendConnection::BackendConnection(ClusterPool& pool, HostPool& host,
                                     std::unique_ptr<Connection> conn, MonoTime setup_started,
                                     uint64_t dedicated_to)
    : pool_(pool),
      host_(host),
      conn_(std::move(conn)),
      compat_(pool.config().compat),
      dedicated_to_(dedicated_to),
      connect_timer_(pool.dispatcher(),
                     [this] {
                       timed_out_ = true;
                       host_.stats->go.timeouts->inc();
                       conn_->close(CloseReason::kUpstreamConnectFailed,
                                    "connect " + host_.name + ": timed out after " +
                                        std::to_string(pool_.config().connect_timeout.count()) +
                                        "ms");
                     }),
      idle_timer_(pool.dispatcher(), [this] { onIdleCheck(); }),
      retry_timer_(pool.dispatcher(), [this] { reconnect(); }) {
  conn_->setCallbacks(this);
  conn_->setReadSize(64 * 1024);
  connect_timer_.enable(pool_.config().connect_timeout);
  last_activity_ = coarseNow();
  setup_started_ = setup_started;
  connect_started_ = preciseNow();
}

BackendConnection::~BackendConnection() { conn_->setCallbacks(nullptr); }

void BackendConnection::shutdown() {
  closed_ = true;
  retrying_ = false;
  retry_timer_.disable();
  conn_->setCallbacks(nullptr);
  conn_->close(CloseReason::kShutdown, "pool shutting down", Connection::CloseMode::kFlush);
}

void BackendConnection::writeHeader(wire::Opcode op, int32_t type, uint64_t session,
                                    size_t payload_len) {
  uint8_t hdr[wire::kServerFrameOverhead];
  wire::ServerHeader::make(op, type, session, payload_len).encode(hdr);
  evbuffer_add(conn_->output(), hdr, sizeof(hdr));
}

size_t BackendConnection::sendData(const SessionInfo& s, const PeerKey& ip, Frame& frame) {
  size_t written = 0;
  uint64_t session = s.id;
  if (sessions_.insert(session).second) {
    // First frame of this session on this connection: announce it (not to
    // the Go gateway's backends, which know only data frames). Payload
    // "resume" tells the backend the session continues from elsewhere.
    if (!compat_.enabled) {
      std::string_view open_payload = s.resumed ? "resume" : "";
      writeHeader(wire::Opcode::kSessionOpen, 0, session, open_payload.size());
      if (!open_payload.empty())
        evbuffer_add(conn_->output(), open_payload.data(), open_payload.size());
      written += wire::kServerFrameOverhead + open_payload.size();
    }
    if (sessions_.size() == 1) pool_.updatePoolGauges(host_);
  }
  size_t len = frame.payloadLength();
  if (compat_.trace_propagation) {
    uint8_t hdr[wire::kTracedServerFrameOverhead];
    wire::TracedServerHeader::make(frame.header.msg_id, session, len, s.trace.trace_id,
                                   s.trace.span_id)
        .encode(hdr);
    evbuffer_add(conn_->output(), hdr, sizeof(hdr));
    written += sizeof(hdr) + len;
  } else {
    writeHeader(wire::Opcode::kData, frame.header.msg_id, session, len);
    written += wire::kServerFrameOverhead + len;
  }
  frame.movePayloadTo(conn_->output());
  shares_.add(session, ip, written);
  if (connecting()) pending_.emplace_back(session, frame.header.msg_id);
  conn_->flushSoon();
  last_activity_ = coarseNow();
  pool_.watchdog().onSent(host_);
  return written;
}

void BackendConnection::closeSession(uint64_t session) {
  if (sessions_.erase(session) == 0) return;
  if (open() && !compat_.enabled) {
    writeHeader(wire::Opcode::kSessionClose, 0, session, 0);
    shares_.add(session, PeerKey{}, wire::kServerFrameOverhead);
    conn_->flushSoon();
  }
  if (sessions_.empty()) {
    pool_.updatePoolGauges(host_);
    last_activity_ = coarseNow();
    pool_.onConnectionIdle(this);  // a removed host's connection closes now
  }
}

void BackendConnection::onConnected(Connection&) {
  connect_timer_.disable();
  MonoTime now = preciseNow();
  host_.stats->go.connection_latency->observe(
      std::chrono::duration<double>(now - connect_started_).count());
  host_.stats->go.setup_latency->observe(
      std::chrono::duration<double>(now - setup_started_).count());
  if (retries_ > 0) {
    GW_LOG(info, "upstream: cluster '{}' host {}: connected after {} retr{}", pool_.name(),
           host_.name, retries_, retries_ == 1 ? "y" : "ies");
  }
  retries_ = 0;
  pending_.clear();
  pending_.shrink_to_fit();
  last_activity_ = coarseNow();
  idle_timer_.enable(pool_.config().idle_timeout);
  pool_.onConnected(host_);
}

void BackendConnection::onIdleCheck() {
  auto idle = coarseNow() - last_activity_;
  if (sessions_.empty() && idle >= pool_.config().idle_timeout) {
    conn_->close(CloseReason::kIdleTimeout, "backend connection idle", Connection::CloseMode::kFlush);
    return;
  }
  auto left = pool_.config().idle_timeout -
              std::chrono::duration_cast<std::chrono::milliseconds>(idle);
  idle_timer_.enable(left.count() > 0 ? left : pool_.config().idle_timeout);
}

void BackendConnection::onRead(Connection& conn, bool end_stream) {
  evbuffer* in = conn.input();
  UpstreamWorker& worker = pool_.worker();
  ClusterStats& stats = pool_.stats();
  uint8_t raw[wire::kServerFrameOverhead];
  last_activity_ = coarseNow();
  while (conn.state() == Connection::State::kOpen) {
    size_t avail = evbuffer_get_length(in);
    if (avail < wire::kServerFrameOverhead) break;
    evbuffer_copyout(in, raw, sizeof(raw));
    wire::ServerHeader h = wire::ServerHeader::decode(raw);
    int64_t payload = h.payloadLength();
    if (payload < 0 || h.length > kMaxServerFrameLength) {
      worker.drops().malformed->inc();
      host_.stats->go.errors_protocol->inc();
      GW_LOG(warn, "upstream: cluster '{}' host {}: malformed server frame (length {}): closing",
             pool_.name(), host_.name, h.length);
      conn.close(CloseReason::kMalformedFrame,
                 "malformed server frame length " + std::to_string(h.length),
                 Connection::CloseMode::kAbort);
      return;
    }
    if (avail < wire::kServerFrameOverhead + static_cast<size_t>(payload)) break;
    evbuffer_drain(in, wire::kServerFrameOverhead);
    stats.frames_in->inc();
    pool_.watchdog().onReceived(host_);
    stats.bytes_in->inc(wire::kServerFrameOverhead + static_cast<size_t>(payload));
    host_.stats->go.bytes_response->inc(wire::kServerFrameOverhead + static_cast<size_t>(payload));
    // A dedicated connection's frames are its session's, whatever session
    // id they carry (the Go gateway never read it).
    uint64_t session = dedicated_to_ != 0 ? dedicated_to_ : static_cast<uint64_t>(h.session_id);
    UpstreamFilter* target = worker.findSession(session);
    if (compat_.enabled) {
      // The Go gateway forwarded every backend frame as data, whatever its opcode.
      forwardData(h, target, session, payload);
      continue;
    }
    switch (static_cast<wire::Opcode>(h.opcode)) {
      case wire::Opcode::kData:
        forwardData(h, target, session, payload);
        break;
      case wire::Opcode::kKick:
        evbuffer_drain(in, static_cast<size_t>(payload));
        if (target != nullptr) {
          worker.drops().kicks->inc();
          target->kick(host_.name);
        } else if (worker.linger().kicked(session)) {
          worker.drops().kicks->inc();  // a lingering session: it ends now
        }
        break;
      case wire::Opcode::kBindPlayer: {
        uint8_t id[8] = {0};
        if (payload >= 8) evbuffer_copyout(in, id, 8);
        evbuffer_drain(in, static_cast<size_t>(payload));
        if (target != nullptr && payload >= 8) target->bindPlayer(wire::getU64(id));
        break;
      }
      default:
        worker.drops().unknown_opcode->inc();
        evbuffer_drain(in, static_cast<size_t>(payload));
        break;
    }
  }
  if (end_stream && conn.state() == Connection::State::kOpen) {
    conn.close(CloseReason::kUpstreamClosed, "backend closed the connection",
               Connection::CloseMode::kAbort);
  }
}

void BackendConnection::forwardData(const wire::ServerHeader& h, UpstreamFilter* target,
                                    uint64_t session, int64_t payload) {
  evbuffer* in = conn_->input();
  UpstreamWorker& worker = pool_.worker();
  if (isReservedForGateway(static_cast<uint16_t>(h.type))) {
    refuseReserved(h, session);
    evbuffer_drain(in, static_cast<size_t>(payload));
  } else if (target == nullptr) {
    worker.drops().unknown_session->inc();
    evbuffer_drain(in, static_cast<size_t>(payload));
  } else if (payload > static_cast<int64_t>(wire::kMaxClientPayload)) {
    worker.drops().too_large->inc();
    GW_LOG(warn, "upstream: cluster '{}': backend frame of {} bytes for session {} does not "
                 "fit a client frame (max 65535): dropped", pool_.name(), payload, session);
    evbuffer_drain(in, static_cast<size_t>(payload));
  } else {
    target->deliver(pool_, h, in);
  }
}

void BackendConnection::refuseReserved(const wire::ServerHeader& h, uint64_t session) {
  pool_.stats().refused_reserved->inc();
  ++refused_unlogged_;
  MonoTime now = coarseNow();
  if (refused_logged_at_ != MonoTime{} && now - refused_logged_at_ < kRefusedLogInterval) return;
  GW_LOG(warn, "upstream: cluster '{}' host {}: refused a backend frame of type {} (reserved for "
               "the gateway's own frames) for session {}{}",
         pool_.name(), host_.name, h.type, session,
         refused_unlogged_ > 1 ? "; " + std::to_string(refused_unlogged_ - 1) +
                                     " more refused since the last such line"
                               : std::string());
  refused_logged_at_ = now;
  refused_unlogged_ = 0;
}

void BackendConnection::onClose(Connection&, CloseReason reason, std::string_view detail) {
  connect_timer_.disable();
  idle_timer_.disable();
  if (closed_) return;
  bool during_connect = reason == CloseReason::kUpstreamConnectFailed;
  if (during_connect && retryConnect(detail)) return;
  finish(during_connect, detail);
}

bool BackendConnection::retryConnect(std::string_view detail) {
  if (retries_ >= pool_.config().max_retries || !host_.in_set) return false;
  ++retries_;
  pool_.onConnectAttemptFailed(host_, timed_out_);
  host_.stats->retries->inc();
  auto delay = retryDelay(pool_.config().retry_delay, retries_, pool_.random());
  GW_LOG(info, "upstream: cluster '{}' host {}: {}; retry {}/{} in {}ms", pool_.name(), host_.name,
         detail, retries_, pool_.config().max_retries, delay.count());
  // The closed socket's output (frames queued meanwhile too) moves to the
  // next one in reconnect().
  retrying_ = true;
  retry_timer_.enable(delay);
  return true;
}

void BackendConnection::reconnect() {
  retrying_ = false;
  timed_out_ = false;  // this attempt's own verdict
  std::string why;
  int fd = connectSocket(host_.address, pool_.config().liveness, &why);
  if (fd < 0) {
    if (!retryConnect(why)) finish(true, why);
    return;
  }
  auto next = std::make_unique<Connection>(pool_.dispatcher(), fd, host_.address, true);
  evbuffer_add_buffer(next->output(), conn_->output());
  conn_->setCallbacks(nullptr);
  conn_ = std::move(next);  // the old one is closed and not on the stack (a timer callback)
  conn_->setCallbacks(this);
  conn_->setReadSize(64 * 1024);
  connect_timer_.enable(pool_.config().connect_timeout);
}

void BackendConnection::finish(bool during_connect, std::string_view detail) {
  closed_ = true;
  retrying_ = false;
  retry_timer_.disable();
  UpstreamWorker& worker = pool_.worker();
  // Frames queued during a failed connect: each client gets an error frame.
  for (const auto& [session, msg_id] : pending_) {
    if (UpstreamFilter* f = worker.findSession(session))
      f->refuse(pool_, msg_id, ErrorCode::kUpstreamUnavailable);
  }
  pending_.clear();
  // Sessions on this connection re-home on their next frame.
  bool had_sessions = !sessions_.empty();
  auto sessions = std::move(sessions_);
  sessions_.clear();
  for (uint64_t s : sessions) {
    if (UpstreamFilter* f = worker.findSession(s)) {
      // A session with a connection of its own ends with it (Go's rule).
      if (dedicated_to_ != 0) {
        f->endWithBackend(pool_, this, during_connect ? CloseReason::kUpstreamConnectFailed
                                                      : CloseReason::kUpstreamClosed, detail);
      } else {
        f->onBackendGone(pool_, this);
      }
    } else {
      worker.linger().backendGone(s, this);
    }
  }
  pool_.onConnectionClosed(this, during_connect, had_sessions, detail);
}

}  // namespace upstream
}  // namespace gw
