#include "filters/upstream/linger.h"

#include "core/sdk/clock.h"
#include "filters/upstream/backend_connection.h"
#include "filters/upstream/cluster_pool.h"

namespace gw {
namespace upstream {

LingerKeeper::~LingerKeeper() { *alive_ = false; }

void LingerKeeper::init(Dispatcher& dispatcher, WorkerServices& services) {
  if (dispatcher_ != nullptr) return;
  dispatcher_ = &dispatcher;
  services_ = &services;
  timer_ = std::make_unique<Timer>(dispatcher, [this] { onTimer(); });
  services.get<SessionLingerSeams>().keeper = this;
}

void LingerKeeper::park(uint64_t id, std::vector<Binding> bindings,
                        std::chrono::milliseconds linger) {
  if (sessions_.count(id) != 0) finish(id, false);  // an older linger of the same id
  Entry e;
  e.bindings = std::move(bindings);
  e.deadline = coarseNow() + linger;
  e.generation = next_generation_++;
  deadlines_.emplace(e.deadline, id);
  sessions_.emplace(id, std::move(e));
  arm();
}

void LingerKeeper::arm() {
  if (deadlines_.empty()) {
    timer_->disable();
    return;
  }
  auto wait = std::chrono::ceil<std::chrono::milliseconds>(deadlines_.begin()->first -
                                                           coarseNow());
  timer_->enable(std::max(wait, std::chrono::milliseconds(0)));
}

void LingerKeeper::onTimer() {
  auto now = coarseNow();
  std::vector<uint64_t> due;
  while (!deadlines_.empty() && deadlines_.begin()->first <= now) {
    due.push_back(deadlines_.begin()->second);
    deadlines_.erase(deadlines_.begin());
  }
  SessionLingerSeams* seams = services_->find<SessionLingerSeams>();
  SessionLingerOwner* owner = seams != nullptr ? seams->owner : nullptr;
  for (uint64_t id : due) {
    auto it = sessions_.find(id);
    if (it == sessions_.end() || it->second.asking || it->second.deadline > now) continue;
    if (owner == nullptr) {
      finish(id, true);
      continue;
    }
    it->second.asking = true;
    uint64_t generation = it->second.generation;
    std::weak_ptr<bool> alive = alive_;
    owner->lingerExpired(id, [this, alive, id, generation](bool continued) {
      auto a = alive.lock();
      if (!a || !*a) return;
      auto e = sessions_.find(id);
      if (e == sessions_.end() || e->second.generation != generation) return;
      finish(id, !continued);
    });
  }
  arm();
}

void LingerKeeper::finish(uint64_t id, bool notify) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  Entry e = std::move(it->second);
  sessions_.erase(it);
  deadlines_.erase({e.deadline, id});
  for (auto& b : e.bindings) {
    if (b.conn != nullptr) {
      if (notify) {
        b.conn->closeSession(id);
      } else {
        b.conn->forgetSession(id);
      }
    }
    if (b.host != nullptr) --b.host->sessions;
  }
}

bool LingerKeeper::takeOver(uint64_t id) {
  if (sessions_.count(id) == 0) return false;
  finish(id, false);
  arm();
  return true;
}

bool LingerKeeper::kicked(uint64_t id) {
  if (sessions_.count(id) == 0) return false;
  finish(id, true);
  arm();
  if (SessionLingerSeams* seams = services_->find<SessionLingerSeams>()) {
    if (seams->owner != nullptr) seams->owner->lingerEnded(id);
  }
  return true;
}

void LingerKeeper::endLinger(uint64_t id, bool notify_backends) {
  if (sessions_.count(id) == 0) return;
  finish(id, notify_backends);
  arm();
}

void LingerKeeper::backendGone(uint64_t id, BackendConnection* conn) {
  auto it = sessions_.find(id);
  if (it == sessions_.end()) return;
  for (auto& b : it->second.bindings)
    if (b.conn == conn) b.conn = nullptr;
}

}  // namespace upstream
}  // namespace gw
