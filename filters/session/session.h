// filters/session/session.h — the `session` filter: session identity,
// resume, player binding and the idle sweep.
//
// Frames layer, not terminal; sits after `framing`, before `breaker` and
// `upstream` (docs/filters/session.md).
//   read:  first frame ─▶ new session (or a resume request) ─▶ SessionInfo
//          published in the connection's Slots ─▶ frames pass on
//   write: frames pass through (last activity noted)
//
// Defines:
//  - the control frames' msg_ids (docs/protocol.md, "Session control frames");
//  - SessionFilter (per connection) and SessionFactory (per worker and
//    listener).
// The worker's records, kicks, linger and sweep are WorkerSessions
// (worker_sessions.h); the metrics SessionStats (session_stats.h); the
// parsed config and the registered filter type session_config.h/.cc.
// Per-frame cost: one comparison of two 32-bit seconds (and a store when the
// second changed). Nothing is allocated per frame.
#pragma once

#include <event2/buffer.h>

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "core/sdk/filter.h"
#include "core/sdk/registry.h"
#include "core/sdk/session_info.h"
#include "filters/session/session_config.h"
#include "filters/session/session_stats.h"
#include "filters/session/session_store.h"
#include "filters/session/worker_sessions.h"

namespace gw {
namespace session {

// Client -> gateway, first frame only: resume session (u64 id, 16-byte
// token), or id 0 = "start a resumable session".
inline constexpr uint16_t kResumeMsgId = 0xFFFD;
// Gateway -> client: the session's id (u64) and its resume token (16 bytes).
inline constexpr uint16_t kEstablishedMsgId = 0xFFFE;
// Client -> gateway, any time: end the session when this connection closes
// (no linger).
inline constexpr uint16_t kLeaveMsgId = 0xFFFC;
// Payload size of kResumeMsgId and kEstablishedMsgId.
inline constexpr size_t kControlPayload = 8 + 16;

class SessionFactory;

class SessionFilter : public Filter, public SessionObserver {
 public:
  explicit SessionFilter(SessionFactory& factory);
  ~SessionFilter() override;

  FilterStatus onFrame(Frame& frame) override;
  FilterStatus onWriteFrame(Frame& frame) override;
  void onClose(CloseReason reason) override;

  // SessionObserver (called by upstream).
  void onPlayerBound(uint64_t player_id) override;
  void onAffinityChanged(const std::string& cluster, const std::string& host) override;
  std::string_view affinityFor(std::string_view cluster) const override;

  // From WorkerSessions (this worker's thread):
  // Closes the connection for good with `reason` (kicked, duplicate login).
  void kick(CloseReason reason, const std::string& why);
  // The session continues on another connection: close without telling
  // backends.
  void releaseMoved();
  // The sweep found it idle for `idle_s` seconds.
  void closeIdle(uint32_t idle_s);

  const SessionInfo& info() const { return info_; }
  SessionRecord* record() { return rec_; }

 private:
  enum class Phase : uint8_t { kNew, kResuming, kLive, kClosed };
  // Frames that arrived while a resume was in flight (rare: allocated then).
  struct Held {
    Held() : payloads(evbuffer_new()) {}
    ~Held() { evbuffer_free(payloads); }
    evbuffer* payloads;
    std::vector<wire::ClientHeader> headers;
  };

  // Marks activity: one comparison; a store only when the second changed.
  void touch();
  FilterStatus firstFrame(Frame& frame);
  // Creates a new session; `resumable`: the client gets a token.
  void createSession(bool resumable);
  void beginResume(uint64_t id, const Token& presented);
  void finishResume(ResumeResult result);
  void goLive();
  void sendEstablished();
  // Frames that arrived while a resume was in flight, replayed after it.
  void holdFrame(Frame& frame);
  void replayHeld();

  // Per connection (112 bytes with the bases' pointers). Everything else
  // about the session is in its SessionRecord (per session, owned by the
  // worker's WorkerSessions): id, player, affinity, token, last activity.
  // Asynchronous store callbacks find this filter again through the
  // record's serial (WorkerSessions::findRecord), so nothing here is
  // reference-counted.
  SessionFactory& factory_;  // per worker: config, store, clock, stats
  SessionInfo info_;         // published in the connection's Slots
  SessionRecord* rec_ = nullptr;  // the session's record (nullptr before the first frame)
  std::unique_ptr<Held> held_;    // only while a resume is in flight
  Phase phase_ = Phase::kNew;
  bool read_paused_ = false;
  bool counted_active_ = false;
};

class SessionFactory : public FilterFactory {
 public:
  // Built by the registered filter type (session_config.cc) for one worker.
  SessionFactory(std::shared_ptr<const SessionConfig> config, WorkerContext& worker);
  std::unique_ptr<Filter> createFilter() override;

  const SessionConfig& config() const { return *config_; }
  const std::shared_ptr<const SessionConfig>& configPtr() const { return config_; }
  WorkerSessions& sessions() { return ws_; }
  SessionStore& store() { return store_; }
  SessionStats& stats() { return *stats_; }

 private:
  std::shared_ptr<const SessionConfig> config_;
  WorkerSessions& ws_;
  SessionStore& store_;
  std::shared_ptr<SessionStats> stats_;
};

}  // namespace session
}  // namespace gw
