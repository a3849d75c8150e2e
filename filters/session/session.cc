#include "filters/session/session.h"

#include <algorithm>
#include <cstring>

#include "core/sdk/duration.h"
#include "core/sdk/error_frame.h"
#include "core/sdk/log.h"
#include "core/sdk/wire.h"
#include "filters/session/session_schema.h"

namespace gw {
namespace session {

using std::chrono::milliseconds;

namespace {

std::atomic<uint64_t> g_next_serial{1};

// How long after its resume window a lingering record is dropped by the
// sweep when no terminal asked about it (the terminal normally does, at the
// end of the window).
constexpr uint32_t kLingerGraceSeconds = 30;

uint32_t ceilSeconds(milliseconds d) { return static_cast<uint32_t>((d.count() + 999) / 1000); }

}  // namespace

SessionStats::SessionStats(const std::string& listener) {
  auto& r = stats::StatsRegistry::get();
  stats::Labels l = {{"listener", listener}};
  active = &r.gauge("game_gateway_sessions_active", "Sessions with a connected client.", l);
  lingering = &r.gauge("game_gateway_sessions_lingering",
                       "Sessions whose client left and that may still be resumed.", l);
  created = &r.counter("game_gateway_sessions_created_total", "Sessions created.", l);
  resumed = &r.counter("game_gateway_sessions_resumed_total",
                       "Sessions a reconnecting client resumed.", l);
  const char* failed_help = "Resume requests refused (the client got a new session), by reason.";
  for (int s = 0; s < 5; ++s) {
    auto status = static_cast<ResumeResult::Status>(s);
    resume_failed[s] = &r.counter("game_gateway_sessions_resume_failed_total", failed_help,
                                  {{"listener", listener},
                                   {"reason", std::string(status == ResumeResult::Status::kOk
                                                              ? "malformed"
                                                              : resumeStatusName(status))}});
  }
  kicked = &r.counter("game_gateway_sessions_kicked_total",
                      "Sessions kicked by an operator (admin API), here or through the fleet.", l);
  idle_closed = &r.counter("game_gateway_sessions_idle_closed_total",
                           "Sessions the idle sweep closed.", l);
  duplicate_login = &r.counter("game_gateway_sessions_duplicate_login_total",
                               "Player ids bound to a second live session (the older one was "
                               "kicked, or the newer one refused).",
                               l);
  linger_ended = &r.counter("game_gateway_sessions_linger_expired_total",
                            "Lingering sessions whose resume window ran out.", l);
}

std::shared_ptr<SessionStats> statsFor(const std::string& listener) {
  return std::make_shared<SessionStats>(listener);
}

// ---------------------------------------------------------------- WorkerSessions

WorkerSessions::~WorkerSessions() {
  // The workers are stopping: lingering sessions leave the local table but
  // keep their Redis records, so another replica can still resume them.
  if (manager_) {
    for (auto& [serial, rec] : records_) manager_->remove(rec->id, rec.get());
  }
  redis_.clear();
  records_.clear();
}

void WorkerSessions::init(Dispatcher& dispatcher, size_t worker_index, WorkerServices& services,
                          std::shared_ptr<SessionManager> manager) {
  if (dispatcher_ != nullptr) return;
  dispatcher_ = &dispatcher;
  worker_ = worker_index;
  services_ = &services;
  manager_ = std::move(manager);
  memory_ = std::make_unique<MemoryStore>(manager_);
  now_s_ = coarseNowSeconds();
  // Four ticks a second: a stamp lags the real second by at most 250 ms.
  clock_timer_ = std::make_unique<Timer>(dispatcher, [this] {
    now_s_ = coarseNowSeconds();
    clock_timer_->enable(milliseconds(250));
  });
  clock_timer_->enable(milliseconds(250));
  sweep_timer_ = std::make_unique<Timer>(dispatcher, [this] {
    sweep();
    armSweep();
  });
  services.get<SessionLingerSeams>().owner = this;
}

SessionStore& WorkerSessions::storeFor(const SessionConfig& config) {
  if (sweep_interval_.count() == 0 || config.cleanup_interval < sweep_interval_) {
    sweep_interval_ = config.cleanup_interval;
    armSweep();
  }
  if (!config.redis) return *memory_;
  std::string key = config.redis_config.address.toString() + "|" + config.redis_config.prefix;
  auto& slot = redis_[key];
  if (!slot) {
    slot = std::make_unique<RedisStore>(*dispatcher_, worker_, config.redis_config, manager_, *this);
    slot->start();
  }
  return *slot;
}

void WorkerSessions::armSweep() {
  if (sweep_timer_ && sweep_interval_.count() > 0) sweep_timer_->enable(sweep_interval_);
}

SessionRecord* WorkerSessions::newRecord(std::shared_ptr<const SessionConfig> config,
                                         SessionStore* store) {
  auto rec = std::make_unique<SessionRecord>();
  rec->serial = g_next_serial.fetch_add(1, std::memory_order_relaxed);
  rec->home = this;
  rec->worker = static_cast<uint16_t>(worker_);
  rec->config = std::move(config);
  rec->store = store;
  SessionRecord* raw = rec.get();
  records_.emplace(raw->serial, std::move(rec));
  return raw;
}

void WorkerSessions::deleteRecord(SessionRecord* rec) {
  auto it = lingering_.find(rec->id);
  if (it != lingering_.end() && it->second == rec) lingering_.erase(it);
  records_.erase(rec->serial);
}

bool WorkerSessions::startLinger(SessionRecord* rec) {
  uint32_t until = coarseNowSeconds() + ceilSeconds(rec->config->resume_window);
  bool current = manager_->locked(rec->id, [&](SessionManager::Table& t) {
    SessionSlot* s = t.find(rec->id);
    if (s == nullptr || s->record() != rec) return false;
    s->setState(SlotState::kLingering);
    rec->lingering = true;
    rec->linger_until_s = until;
    return true;
  });
  if (!current) return false;
  rec->filter = nullptr;
  auto it = lingering_.find(rec->id);
  if (it != lingering_.end() && it->second != rec) {
    // An older linger of the same id on this worker: superseded.
    SessionRecord* stale = it->second;
    lingering_.erase(it);
    records_.erase(stale->serial);
  }
  lingering_[rec->id] = rec;
  rec->config->stats->lingering->inc();
  rec->store->lingering(*rec);
  return true;
}

void WorkerSessions::endLinger(SessionRecord* rec, bool notify, bool final_end) {
  uint64_t id = rec->id;
  rec->config->stats->lingering->dec();
  if (final_end) {
    bool current = manager_->remove(id, rec);
    if (current && rec->player_id != 0) manager_->unbindPlayer(rec->player_id, id);
    if (current) rec->store->ended(*rec);
  }
  deleteRecord(rec);
  if (SessionLingerSeams* seams = services_->find<SessionLingerSeams>()) {
    if (seams->keeper != nullptr) seams->keeper->endLinger(id, notify);
  }
}

void WorkerSessions::kickLocal(uint64_t id, CloseReason reason, const std::string& why) {
  SessionRecord* rec = manager_->locked(id, [&](SessionManager::Table& t) -> SessionRecord* {
    SessionSlot* s = t.find(id);
    if (s == nullptr || s->record() == nullptr || s->record()->home != this) return nullptr;
    return s->record();
  });
  if (rec == nullptr) return;
  // Only this thread deletes this worker's records: rec stays valid here.
  if (reason == CloseReason::kKicked) rec->config->stats->kicked->inc();
  GW_LOG(info, "session {}: {} ({})", id, closeReasonName(reason), why);
  if (rec->filter != nullptr) {
    rec->filter->kick(reason, why);
  } else if (rec->lingering) {
    endLinger(rec, /*notify=*/true, /*final_end=*/true);
  }
}

void WorkerSessions::releaseMoved(uint64_t id, uint64_t serial) {
  auto it = records_.find(serial);
  if (it == records_.end() || it->second->id != id) return;
  SessionRecord* rec = it->second.get();
  if (rec->filter != nullptr) {
    rec->filter->releaseMoved();
  } else if (rec->lingering) {
    // Resumed elsewhere: the table no longer points here; drop silently.
    manager_->remove(id, rec);
    endLinger(rec, /*notify=*/false, /*final_end=*/false);
  }
}

void WorkerSessions::lingerExpired(uint64_t id, std::function<void(bool continued)> done) {
  auto it = lingering_.find(id);
  if (it == lingering_.end()) {
    // Not lingering here (ended or released already): nothing continues it
    // on this worker's knowledge; the terminal closes it.
    done(false);
    return;
  }
  SessionRecord* rec = it->second;
  lingering_.erase(it);
  rec->config->stats->lingering->dec();
  rec->config->stats->linger_ended->inc();
  uint64_t serial = rec->serial;
  rec->store->lingerExpired(*rec, [this, serial, done](bool continued) {
    if (SessionRecord* rec = findRecord(serial)) {
      if (!continued && rec->player_id != 0) manager_->unbindPlayer(rec->player_id, rec->id);
      deleteRecord(rec);
    }
    done(continued);
  });
}

void WorkerSessions::lingerEnded(uint64_t id) {
  auto it = lingering_.find(id);
  if (it == lingering_.end()) return;
  SessionRecord* rec = it->second;
  rec->config->stats->lingering->dec();
  lingering_.erase(it);
  bool current = manager_->remove(id, rec);
  if (current && rec->player_id != 0) manager_->unbindPlayer(rec->player_id, id);
  if (current) rec->store->ended(*rec);
  deleteRecord(rec);
}

void WorkerSessions::forEachRecord(SessionStore* store,
                                   const std::function<void(SessionRecord&)>& fn) {
  for (auto& [serial, rec] : records_) {
    if (rec->store == store && rec->id != 0) fn(*rec);
  }
}

void WorkerSessions::sweep() {
  uint32_t now = coarseNowSeconds();
  now_s_ = now;
  std::vector<std::pair<SessionFilter*, uint32_t>> idle;
  std::vector<SessionRecord*> stale;
  for (auto& [serial, rec] : records_) {
    if (rec->filter != nullptr) {
      auto timeout = rec->config->idle_timeout;
      if (timeout.count() <= 0) continue;
      uint32_t last = rec->last_active_s.load(std::memory_order_relaxed);
      uint32_t idle_s = now > last ? now - last : 0;
      // Stamps are whole seconds: idle for more than the timeout's seconds
      // means idle for at least the timeout (less the clock's 250 ms lag).
      if (idle_s > ceilSeconds(timeout)) idle.emplace_back(rec->filter, idle_s);
    } else if (rec->lingering && now > rec->linger_until_s + kLingerGraceSeconds) {
      stale.push_back(rec.get());
    }
  }
  for (auto& [filter, idle_s] : idle) filter->closeIdle(idle_s);
  for (SessionRecord* rec : stale) {
    // No terminal asked about this linger (none keeps one): end it here.
    auto it = lingering_.find(rec->id);
    if (it == lingering_.end() || it->second != rec) continue;
    uint64_t id = rec->id;
    lingerExpired(id, [](bool) {});
  }
}

// ---------------------------------------------------------------- SessionFilter

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

// ---------------------------------------------------------------- factories

SessionFactory::SessionFactory(std::shared_ptr<const SessionConfig> config, WorkerContext& worker)
    : config_(std::move(config)),
      ws_(worker.services.get<WorkerSessions>()),
      store_([&]() -> SessionStore& {
        ws_.init(worker.dispatcher, worker.worker_index, worker.services, config_->manager);
        return ws_.storeFor(*config_);
      }()),
      stats_(config_->stats ? config_->stats : statsFor(config_->listener)) {}

std::unique_ptr<Filter> SessionFactory::createFilter() {
  return std::make_unique<SessionFilter>(*this);
}

class SessionConfigFactory : public FilterConfigFactory {
 public:
  std::string_view name() const override { return "session"; }
  FilterTraits traits() const override {
    FilterTraits t;
    t.consumes = Layer::kFrames;
    t.produces = Layer::kFrames;
    return t;
  }
  std::string_view schema() const override { return kSessionSchema; }

  std::shared_ptr<const FilterConfig> parse(const rapidjson::Value& json,
                                            ParseContext& ctx) const override {
    auto cfg = std::make_shared<SessionConfig>();
    cfg->listener = ctx.listener();
    cfg->stats = statsFor(cfg->listener);
    cfg->affinity_names = AffinityNames(ctx.clusters());
    bool ok = true;
    auto duration = [&](const rapidjson::Value& obj, const char* key, const std::string& at,
                        milliseconds* out, bool allow_zero) {
      if (!obj.HasMember(key)) return;
      auto d = config::parseDuration(obj[key].GetString());
      if (!d) {
        ctx.fail(at + "/" + key, "must be at most 30 days");
        ok = false;
        return;
      }
      if (!allow_zero && d->count() == 0) {
        ctx.fail(at + "/" + key, "must be > 0");
        ok = false;
        return;
      }
      *out = *d;
    };
    if (json.HasMember("store")) cfg->redis = std::string(json["store"].GetString()) == "redis";
    if (json.HasMember("shards")) cfg->shards = json["shards"].GetUint();
    if (json.HasMember("expected_sessions"))
      cfg->expected_sessions = json["expected_sessions"].GetUint64();
    duration(json, "cleanup_interval", "", &cfg->cleanup_interval, false);
    duration(json, "idle_timeout", "", &cfg->idle_timeout, true);
    if (json.HasMember("duplicate_login")) {
      cfg->duplicate_login = std::string(json["duplicate_login"].GetString()) == "refuse_new"
                                 ? DuplicateLogin::kRefuseNew
                                 : DuplicateLogin::kKickOld;
    }
    if (json.HasMember("resume")) {
      const auto& r = json["resume"];
      if (r.HasMember("enabled")) cfg->resume = r["enabled"].GetBool();
      duration(r, "window", "/resume", &cfg->resume_window, false);
      if (r.HasMember("announce")) {
        cfg->announce = std::string(r["announce"].GetString()) == "always" ? Announce::kAlways
                                                                          : Announce::kOnRequest;
      }
    }
    if (json.HasMember("redis")) {
      const auto& r = json["redis"];
      if (!cfg->redis) {
        ctx.fail("/redis", "is set but \"store\" is \"memory\": set \"store\": \"redis\" to use "
                           "Redis, or remove /redis");
        ok = false;
      }
      if (r.HasMember("address")) {
        std::string why;
        auto a = Address::parse(r["address"].GetString(), &why);
        if (!a) {
          ctx.fail("/redis/address", why + " (an IP and port, e.g. \"127.0.0.1:6379\")");
          ok = false;
        } else {
          cfg->redis_config.address = *a;
        }
      }
      if (r.HasMember("prefix")) cfg->redis_config.prefix = r["prefix"].GetString();
      duration(r, "refresh_interval", "/redis", &cfg->redis_config.refresh_interval, false);
      duration(r, "connect_timeout", "/redis", &cfg->redis_config.connect_timeout, false);
      duration(r, "command_timeout", "/redis", &cfg->redis_config.command_timeout, false);
    }
    if (cfg->redis && (!json.HasMember("redis") || !json["redis"].HasMember("address"))) {
      ctx.fail("/redis/address",
               "store \"redis\" needs the Redis address, e.g. \"redis\": {\"address\": "
               "\"127.0.0.1:6379\"}");
      ok = false;
    }
    if (!ok) return nullptr;
    cfg->manager = SessionManager::process(cfg->shards);
    if (cfg->manager->shardCount() != cfg->shards) {
      GW_LOG(warn, "session (listener '{}'): shards {} ignored: the session table already has {} "
                   "shards (restart the gateway to change it)",
             cfg->listener, cfg->shards, cfg->manager->shardCount());
    }
    return cfg;
  }

  std::unique_ptr<FilterFactory> createFactory(std::shared_ptr<const FilterConfig> config,
                                               WorkerContext& worker) const override {
    auto cfg = std::static_pointer_cast<const SessionConfig>(config);
    std::call_once(cfg->applied, [&cfg] {
      // Sized up front: no table doubling (a few ms per shard) below this.
      if (cfg->expected_sessions > 0) cfg->manager->reserve(cfg->expected_sessions);
      if (cfg->redis) cfg->manager->setFleet(std::make_shared<RedisFleetView>(cfg->redis_config));
    });
    return std::make_unique<SessionFactory>(std::move(cfg), worker);
  }
};

GW_REGISTER_FILTER(SessionConfigFactory);

}  // namespace session
}  // namespace gw
