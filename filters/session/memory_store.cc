#include "filters/session/memory_store.h"

namespace gw {
namespace session {

void MemoryStore::release(SessionRecord* old) {
  SessionHome* home = old->home;
  uint64_t id = old->id;
  uint64_t serial = old->serial;
  home->dispatcher().post([home, id, serial] { home->releaseMoved(id, serial); });
}

ResumeResult MemoryStore::resumeLocal(SessionRecord& rec, const Token& presented) {
  ResumeResult r;
  SessionRecord* old = nullptr;
  manager_->locked(rec.id, [&](SessionManager::Table& t) {
    SessionSlot* s = t.find(rec.id);
    if (s == nullptr || s->record() == nullptr) {
      r.status = ResumeResult::Status::kUnknown;
      return;
    }
    SessionRecord* o = s->record();
    // Compare even for a record without a token, so the time taken does not
    // tell which sessions are resumable.
    bool match = tokensEqual(o->token, presented);
    if (!o->resumable || !match) {
      r.status = ResumeResult::Status::kBadToken;
      return;
    }
    if (s->state() == SlotState::kLingering && coarseNowSeconds() > o->linger_until_s) {
      r.status = ResumeResult::Status::kExpired;
      return;
    }
    r.status = ResumeResult::Status::kOk;
    r.created_ms = o->created_ms;
    r.player_id = o->player_id;
    r.affinity = o->affinity.toPairs(o->affinityNames());
    rec.created_ms = o->created_ms;
    rec.player_id = o->player_id;
    // Indexes are copied as they are when both records have the same
    // config; else through names.
    rec.affinity.assign(rec.affinityNames(), o->affinity, o->affinityNames());
    t.insert(SessionSlot(rec.id, &rec, rec.worker, SlotState::kConnected));
    old = o;
  });
  if (old != nullptr && old != &rec) release(old);
  return r;
}

void MemoryStore::resume(SessionRecord& rec, const Token& presented,
                         std::function<void(ResumeResult)> done) {
  done(resumeLocal(rec, presented));
}

void MemoryStore::install(SessionRecord& rec, const ResumeResult& r) {
  SessionRecord* old = nullptr;
  rec.created_ms = r.created_ms;
  manager_->locked(rec.id, [&](SessionManager::Table& t) {
    rec.player_id = r.player_id;
    rec.affinity.assign(rec.affinityNames(), r.affinity);
    t.insert(SessionSlot(rec.id, &rec, rec.worker, SlotState::kConnected), &old);
  });
  if (r.player_id != 0) manager_->bindPlayer(r.player_id, rec.id);
  if (old != nullptr && old != &rec) release(old);
}

void MemoryStore::setPlayer(SessionRecord& rec, uint64_t player) {
  manager_->locked(rec.id, [&](SessionManager::Table&) { rec.player_id = player; });
}

BindResult MemoryStore::bindLocal(SessionRecord& rec, uint64_t player) {
  BindResult r;
  setPlayer(rec, player);
  uint64_t previous = manager_->bindPlayer(player, rec.id);
  if (previous == 0) return r;
  const SessionConfig& cfg = *rec.config;
  std::string why = "player " + std::to_string(player) + " logged in again (session " +
                    std::to_string(rec.id) + ")";
  bool alive = manager_->locked(previous, [&](SessionManager::Table& t) {
    SessionSlot* s = t.find(previous);
    if (s == nullptr || s->record() == nullptr || s->record()->player_id != player) return false;
    if (cfg.duplicate_login == DuplicateLogin::kKickOld) {
      SessionHome* home = s->record()->home;
      home->dispatcher().post([home, previous, why] {
        home->kickLocal(previous, CloseReason::kDuplicateLogin, why);
      });
    }
    return true;
  });
  if (!alive) return r;
  r.other_session = previous;
  if (cfg.duplicate_login == DuplicateLogin::kKickOld) {
    r.status = BindResult::Status::kKickedOld;
  } else {
    manager_->bindPlayer(player, previous);  // the older session keeps the player
    r.status = BindResult::Status::kRefused;
  }
  return r;
}

void MemoryStore::bindPlayer(SessionRecord& rec, uint64_t player,
                             std::function<void(BindResult)> done) {
  done(bindLocal(rec, player));
}

bool MemoryStore::removeIfCurrent(SessionRecord& rec) { return manager_->remove(rec.id, &rec); }

void MemoryStore::lingerExpired(SessionRecord& rec, std::function<void(bool continued)> done) {
  // Still this record: nobody resumed it, the session is over. Another
  // record: it was resumed on another connection of this process.
  done(!removeIfCurrent(rec));
}

}  // namespace session
}  // namespace gw
