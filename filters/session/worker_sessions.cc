#include "filters/session/worker_sessions.h"

#include <atomic>
#include <vector>

#include "core/sdk/clock.h"
#include "core/sdk/log.h"
#include "filters/session/session.h"
#include "filters/session/session_stats.h"

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
  const RedisStoreConfig& rc = config.redis_config;
  std::string key = rc.address.toString() + "|" + std::to_string(rc.auth.credentials.db) + "|" +
                    rc.prefix;
  auto& slot = redis_[key];
  if (!slot) {
    slot = std::make_unique<RedisStore>(*dispatcher_, worker_, rc, manager_, *this);
    slot->start();
  } else {
    slot->setCredentials(rc.auth.credentials);
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

}  // namespace session
}  // namespace gw
