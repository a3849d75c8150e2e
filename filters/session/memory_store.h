// filters/session/memory_store.h — the session store of a single gateway.
//
// Defines MemoryStore: a SessionStore over the process-wide SessionManager.
// Resumes, duplicate-login checks and linger decisions see every worker of
// this process and nothing else; every callback runs before the call
// returns. The Redis store uses it as its fallback while Redis is down.
// Per worker; used only on that worker's thread.
#pragma once

#include <memory>

#include "filters/session/session_manager.h"
#include "filters/session/session_store.h"

namespace gw {
namespace session {

class MemoryStore : public SessionStore {
 public:
  explicit MemoryStore(std::shared_ptr<SessionManager> manager) : manager_(std::move(manager)) {}

  std::string_view kind() const override { return "memory"; }
  void created(SessionRecord&) override {}
  void resume(SessionRecord& rec, const Token& presented,
              std::function<void(ResumeResult)> done) override;
  void bindPlayer(SessionRecord& rec, uint64_t player,
                  std::function<void(BindResult)> done) override;
  void affinityChanged(SessionRecord&) override {}
  void lingering(SessionRecord&) override {}
  void ended(SessionRecord&) override {}
  void lingerExpired(SessionRecord& rec, std::function<void(bool continued)> done) override;

  // The resume check and takeover on the local table (resume() without the
  // callback). Public for the Redis store's fallback.
  ResumeResult resumeLocal(SessionRecord& rec, const Token& presented);
  // Makes `rec` the connected record of its id (replacing and releasing any
  // older record) with the carried-over fields of `r`. For the Redis store
  // after a successful claim.
  void install(SessionRecord& rec, const ResumeResult& r);
  // The local duplicate-login decision (bindPlayer() without the callback).
  BindResult bindLocal(SessionRecord& rec, uint64_t player);
  // Records `player` on `rec`'s slot and record.
  void setPlayer(SessionRecord& rec, uint64_t player);
  // Removes `rec` from the table if it is still its id's record; returns
  // whether it was.
  bool removeIfCurrent(SessionRecord& rec);

  SessionManager& manager() { return *manager_; }

 private:
  // Posts releaseMoved to the worker holding `old`.
  static void release(SessionRecord* old);

  std::shared_ptr<SessionManager> manager_;
};

}  // namespace session
}  // namespace gw
