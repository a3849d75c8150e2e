// filters/upstream/linger.h — backend bindings of sessions whose client left
// while it may still resume.
//
// Defines LingerKeeper: per worker (in WorkerServices), the sessions whose
// client connection closed with SessionInfo::linger > 0. Their backends are
// not told at once: each lingering session keeps its (backend connection,
// host) bindings until
//  - the client resumes it on this worker: takeOver() forgets the bindings
//    silently (the new connection announces itself with session open
//    "resume"), or
//  - its linger runs out: the keeper asks the session owner
//    (SessionLingerSeams::owner) whether the session continued elsewhere;
//    if not, backends get session close; if it did, they get nothing; with
//    no owner, session close; or
//  - the owner ends it early (endLinger: kicked, or resumed elsewhere), or a
//    backend kicks it (kicked()).
// A backend connection that dies drops its bindings (backendGone). The
// pools and connections bound to belong to the worker (upstream_worker.h),
// not to a config generation, so a lingering session outlives the factory
// that served it. Per worker; not thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <set>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/sdk/dispatcher.h"
#include "core/sdk/session_info.h"
#include "core/sdk/worker_services.h"

namespace gw {
namespace upstream {

class BackendConnection;
class ClusterPool;
struct HostPool;

class LingerKeeper : public SessionLingerKeeper {
 public:
  // One cluster the session was bound to.
  struct Binding {
    ClusterPool* pool = nullptr;
    HostPool* host = nullptr;            // counted in its `sessions`; nullptr: none
    BackendConnection* conn = nullptr;   // nullptr once that connection is gone
  };

  LingerKeeper() = default;
  ~LingerKeeper() override;

  // Binds to the worker (first upstream factory on it); later calls no-ops.
  void init(Dispatcher& dispatcher, WorkerServices& services);

  // Keeps `bindings` of session `id` for `linger`.
  void park(uint64_t id, std::vector<Binding> bindings, std::chrono::milliseconds linger);
  // The session resumed on this worker: forgets its bindings without
  // telling backends. Returns true if it was lingering here.
  bool takeOver(uint64_t id);
  // A backend kicked lingering session `id`: backends get session close and
  // the owner is told the session ended. Returns true if it was lingering.
  bool kicked(uint64_t id);
  // Backend connection `conn` closed; it carried `id`.
  void backendGone(uint64_t id, BackendConnection* conn);

  // SessionLingerKeeper
  void endLinger(uint64_t id, bool notify_backends) override;

  size_t size() const { return sessions_.size(); }
  bool lingering(uint64_t id) const { return sessions_.count(id) != 0; }

 private:
  struct Entry {
    std::vector<Binding> bindings;
    std::chrono::steady_clock::time_point deadline;
    bool asking = false;  // the owner is deciding (asynchronously)
    uint64_t generation = 0;
  };
  void finish(uint64_t id, bool notify);
  void onTimer();
  void arm();

  Dispatcher* dispatcher_ = nullptr;
  WorkerServices* services_ = nullptr;
  std::unique_ptr<Timer> timer_;
  std::unordered_map<uint64_t, Entry> sessions_;
  std::set<std::pair<std::chrono::steady_clock::time_point, uint64_t>> deadlines_;
  uint64_t next_generation_ = 1;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace upstream
}  // namespace gw
