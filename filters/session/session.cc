#include "filters/session/session.h"

#include <cstring>

#include "core/sdk/clock.h"
#include "core/sdk/error_frame.h"
#include "core/sdk/log.h"
#include "core/sdk/wire.h"

namespace gw {
namespace session {

using std::chrono::milliseconds;

SessionFilter::SessionFilter(SessionFactory& factory) : factory_(factory) {}

inline void SessionFilter::touch() {
  uint32_t now = factory_.sessions().now();
  if (rec_ != nullptr && rec_->last_active_s.load(std::memory_order_relaxed) != now)
    rec_->last_active_s.store(now, std::memory_order_relaxed);
}

SessionFilter::~SessionFilter() {
  if (rec_ != nullptr && phase_ != Phase::kClosed) {
    // Destroyed without a close (a test tearing the chain down): end the
    // session so nothing points at this filter.
    WorkerSessions& ws = factory_.sessions();
    if (phase_ == Phase::kLive) {
      if (counted_active_) {
        ws.manager().addConnected(-1);
        factory_.stats().active->dec();
      }
      bool current = ws.manager().remove(rec_->id, rec_);
      if (current && rec_->player_id != 0) ws.manager().unbindPlayer(rec_->player_id, rec_->id);
    }
    ws.deleteRecord(rec_);
  }
}

FilterStatus SessionFilter::onFrame(Frame& frame) {
  switch (phase_) {
    case Phase::kLive:
      touch();
      if ((frame.header.msg_id == kLeaveMsgId || frame.header.msg_id == kResumeMsgId) &&
          factory_.config().resume) {
        if (frame.header.msg_id == kLeaveMsgId) {
          // The client is leaving for good: no linger when it closes.
          info_.end = SessionInfo::End::kFinal;
        } else {
          // A resume request is only valid as the first frame.
          factory_.stats().resume_failed[0]->inc();
          callbacks().sendFrame(kErrorMsgId, 0,
                                errorFramePayload(ErrorCode::kResumeFailed, frame.header.msg_id));
        }
        frame.discardPayload();
        return FilterStatus::kStopIteration;
      }
      return FilterStatus::kContinue;
    case Phase::kNew:
      return firstFrame(frame);
    case Phase::kResuming:
      holdFrame(frame);
      return FilterStatus::kStopIteration;
    case Phase::kClosed:
      break;
  }
  return FilterStatus::kStopIteration;
}

FilterStatus SessionFilter::onWriteFrame(Frame&) {
  touch();
  return FilterStatus::kContinue;
}

FilterStatus SessionFilter::firstFrame(Frame& frame) {
  const SessionConfig& cfg = factory_.config();
  if (!cfg.resume || frame.header.msg_id != kResumeMsgId) {
    createSession(cfg.resume && cfg.announce == Announce::kAlways);
    touch();
    return FilterStatus::kContinue;
  }
  // A resume request: the client speaks the control frames.
  uint8_t buf[kControlPayload] = {0};
  size_t n = frame.payloadLength();
  bool ok = (n == kControlPayload && frame.peekPayload(buf, n) == n) || n == 0;
  frame.discardPayload();
  uint64_t id = n == kControlPayload ? wire::getU64(buf) : 0;
  if (!ok) {
    factory_.stats().resume_failed[0]->inc();
    callbacks().sendFrame(kErrorMsgId, 0, errorFramePayload(ErrorCode::kResumeFailed, kResumeMsgId));
    id = 0;
  }
  if (id == 0) {
    createSession(true);
    return FilterStatus::kStopIteration;
  }
  Token presented;
  std::memcpy(presented.data(), buf + 8, presented.size());
  beginResume(id, presented);
  return FilterStatus::kStopIteration;
}

void SessionFilter::createSession(bool resumable) {
  WorkerSessions& ws = factory_.sessions();
  rec_ = ws.newRecord(factory_.configPtr(), &factory_.store());
  rec_->id = SessionIdGenerator::process().next();
  rec_->created_ms = unixMillis();
  rec_->client = callbacks().connection().peer();
  rec_->resumable = resumable;
  if (resumable) rec_->token = randomToken();
  rec_->last_active_s.store(factory_.sessions().now(), std::memory_order_relaxed);
  rec_->filter = this;
  ws.manager().add(rec_->id, rec_, static_cast<uint16_t>(ws.workerIndex()));
  goLive();
  factory_.stats().created->inc();
  factory_.store().created(*rec_);
  if (resumable) sendEstablished();
}

void SessionFilter::goLive() {
  info_.id = rec_->id;
  info_.linger = rec_->resumable ? factory_.config().resume_window : milliseconds(0);
  info_.observer = this;
  callbacks().slots().set<SessionInfo>(&info_);
  phase_ = Phase::kLive;
  factory_.sessions().manager().addConnected(1);
  factory_.stats().active->inc();
  counted_active_ = true;
}

void SessionFilter::sendEstablished() {
  uint8_t payload[kControlPayload];
  wire::putU64(payload, rec_->id);
  std::memcpy(payload + 8, rec_->token.data(), rec_->token.size());
  callbacks().sendFrame(kEstablishedMsgId, 0,
                        std::string_view(reinterpret_cast<const char*>(payload), sizeof(payload)));
}

void SessionFilter::beginResume(uint64_t id, const Token& presented) {
  phase_ = Phase::kResuming;
  // Later frames wait in the input buffer (the codec stops decoding) until
  // the store answers.
  callbacks().readDisable(true);
  read_paused_ = true;
  WorkerSessions& ws = factory_.sessions();
  rec_ = ws.newRecord(factory_.configPtr(), &factory_.store());
  rec_->id = id;
  rec_->created_ms = unixMillis();
  rec_->client = callbacks().connection().peer();
  rec_->resumable = true;
  rec_->token = randomToken();  // a new token for every resume
  rec_->last_active_s.store(factory_.sessions().now(), std::memory_order_relaxed);
  rec_->filter = this;
  // The filter is found again through the record: gone (closed or
  // destroyed while resuming) means nobody waits for the answer.
  WorkerSessions* home = &ws;
  uint64_t serial = rec_->serial;
  factory_.store().resume(*rec_, presented, [home, serial](ResumeResult r) {
    SessionRecord* rec = home->findRecord(serial);
    if (rec == nullptr || rec->filter == nullptr) return;
    rec->filter->finishResume(std::move(r));
  });
}

void SessionFilter::finishResume(ResumeResult r) {
  if (phase_ != Phase::kResuming) return;
  if (r.status == ResumeResult::Status::kOk) {
    info_.resumed = true;
    info_.player_id = r.player_id;
    // The store copied the affinity into rec_ (affinityFor() answers from it).
    goLive();
    factory_.stats().resumed->inc();
    GW_LOG(debug, "session {}: resumed by {}", rec_->id, rec_->client.toString());
    sendEstablished();
  } else {
    factory_.stats().resume_failed[static_cast<int>(r.status)]->inc();
    GW_LOG(debug, "session {}: resume refused ({}); starting a new session", rec_->id,
           resumeStatusName(r.status));
    callbacks().sendFrame(kErrorMsgId, 0, errorFramePayload(ErrorCode::kResumeFailed, kResumeMsgId));
    factory_.sessions().deleteRecord(rec_);  // never entered the table
    rec_ = nullptr;
    createSession(true);
  }
  replayHeld();
  if (read_paused_ && phase_ != Phase::kClosed) {
    read_paused_ = false;
    callbacks().readDisable(false);
  }
}

void SessionFilter::holdFrame(Frame& frame) {
  if (!held_) held_ = std::make_unique<Held>();
  held_->headers.push_back(frame.header);
  frame.movePayloadTo(held_->payloads);
}

void SessionFilter::replayHeld() {
  if (!held_) return;
  // Owned here while replaying: a passed frame may close the connection.
  std::unique_ptr<Held> held = std::move(held_);
  for (const auto& h : held->headers) {
    if (phase_ != Phase::kLive || !callbacks().connection().open()) break;
    touch();
    Frame f(h, held->payloads);
    callbacks().passFrame(f);
  }
}

void SessionFilter::onPlayerBound(uint64_t player_id) {
  if (phase_ != Phase::kLive || rec_ == nullptr || player_id == 0) return;
  info_.player_id = player_id;
  WorkerSessions* home = &factory_.sessions();
  uint64_t serial = rec_->serial;
  uint64_t id = rec_->id;
  factory_.store().bindPlayer(*rec_, player_id, [home, serial, player_id, id](BindResult r) {
    // The filter, found again through its record (gone: nothing to do).
    SessionRecord* rec = home->findRecord(serial);
    SessionFilter* self = rec != nullptr ? rec->filter : nullptr;
    if (self == nullptr || self->phase_ != Phase::kLive) return;
    if (r.status == BindResult::Status::kBound) return;
    self->factory_.stats().duplicate_login->inc();
    if (r.status == BindResult::Status::kKickedOld) {
      GW_LOG(info, "session {}: player {} logged in again; kicking the older session {}", id,
             player_id, r.other_session);
      return;
    }
    GW_LOG(info, "session {}: player {} is already logged in on session {}; refusing this one",
           id, player_id, r.other_session);
    self->kick(CloseReason::kDuplicateLogin,
               "player " + std::to_string(player_id) + " is already logged in (session " +
                   std::to_string(r.other_session) + ")");
  });
}

void SessionFilter::onAffinityChanged(const std::string& cluster, const std::string& host) {
  if (phase_ != Phase::kLive || rec_ == nullptr) return;
  // Stored as indexes into the config's names (no allocation for a host
  // of the config); the admin API reads it under the lock.
  factory_.sessions().manager().locked(rec_->id, [&](SessionManager::Table&) {
    rec_->affinity.set(rec_->affinityNames(), cluster, host);
  });
  factory_.store().affinityChanged(*rec_);
}

std::string_view SessionFilter::affinityFor(std::string_view cluster) const {
  // Only this worker writes the record: no lock to read it here.
  if (rec_ == nullptr) return {};
  return rec_->affinity.hostFor(rec_->affinityNames(), cluster);
}

void SessionFilter::kick(CloseReason reason, const std::string& why) {
  if (phase_ != Phase::kLive) return;
  info_.end = SessionInfo::End::kFinal;
  callbacks().close(reason, why, Connection::CloseMode::kFlush);
}

void SessionFilter::releaseMoved() {
  if (phase_ != Phase::kLive) return;
  info_.end = SessionInfo::End::kMoved;
  callbacks().close(CloseReason::kLocalClosed, "session resumed on another connection",
                    Connection::CloseMode::kFlush);
}

void SessionFilter::closeIdle(uint32_t idle_s) {
  if (phase_ != Phase::kLive) return;
  factory_.stats().idle_closed->inc();
  info_.end = SessionInfo::End::kFinal;
  callbacks().close(CloseReason::kSessionIdle,
                    "session idle for " + std::to_string(idle_s) + "s (idle_timeout " +
                        std::to_string(factory_.config().idle_timeout.count()) + "ms)",
                    Connection::CloseMode::kFlush);
}

void SessionFilter::onClose(CloseReason reason) {
  Phase was = phase_;
  phase_ = Phase::kClosed;
  held_.reset();
  if (rec_ == nullptr) return;
  WorkerSessions& ws = factory_.sessions();
  if (was == Phase::kResuming) {
    ws.deleteRecord(rec_);  // the candidate never entered the table
    rec_ = nullptr;
    return;
  }
  if (counted_active_) {
    counted_active_ = false;
    ws.manager().addConnected(-1);
    factory_.stats().active->dec();
  }
  rec_->filter = nullptr;
  if (info_.end == SessionInfo::End::kDefault &&
      (reason == CloseReason::kKicked || reason == CloseReason::kDuplicateLogin ||
       reason == CloseReason::kSessionIdle)) {
    info_.end = SessionInfo::End::kFinal;
  }
  SessionRecord* rec = rec_;
  rec_ = nullptr;
  if (info_.end == SessionInfo::End::kDefault && rec->resumable) {
    if (ws.startLinger(rec)) return;  // the record lingers in `ws` now
    info_.end = SessionInfo::End::kMoved;  // someone took the session over meanwhile
  }
  if (info_.end == SessionInfo::End::kMoved) {
    ws.manager().remove(rec->id, rec);  // no-op unless it is somehow still current
    ws.deleteRecord(rec);
    return;
  }
  bool current = ws.manager().remove(rec->id, rec);
  if (current && rec->player_id != 0) ws.manager().unbindPlayer(rec->player_id, rec->id);
  if (current) rec->store->ended(*rec);
  ws.deleteRecord(rec);
}

SessionFactory::SessionFactory(std::shared_ptr<const SessionConfig> config, WorkerContext& worker)
    : config_(std::move(config)),
      ws_(worker.services.get<WorkerSessions>()),
      store_([&]() -> SessionStore& {
        // The config's process-wide effects, once, by the first worker
        // that builds a chain with it (never at parse time: --check-config
        // and a refused reload change nothing).
        std::call_once(config_->applied, [this] {
          // Sized up front: no table doubling (a few ms per shard) below this.
          if (config_->expected_sessions > 0) config_->manager->reserve(config_->expected_sessions);
          SessionIdGenerator::process().reset(config_->node_id, config_->id_key);
          RedisStore::nodeIdConflictGauge();
          RedisStore::nodeIdCollisionsCounter();
          if (config_->redis)
            config_->manager->setFleet(std::make_shared<RedisFleetView>(config_->redis_config));
        });
        ws_.init(worker.dispatcher, worker.worker_index, worker.services, config_->manager);
        return ws_.storeFor(*config_);
      }()),
      stats_(config_->stats ? config_->stats : statsFor(config_->listener)) {}

std::unique_ptr<Filter> SessionFactory::createFilter() {
  return std::make_unique<SessionFilter>(*this);
}

}  // namespace session
}  // namespace gw
