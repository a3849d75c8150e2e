// core/admin_limits.cc — the admin API's connection cap and its behaviour at
// the fd limit (AdminServer::setUpLimits and its callbacks; core/admin.h).
//
// Cap: evhttp (libevent 2.1) has no connection limit and tells nobody when
// it drops a connection. Every admin connection's socket bufferevent comes
// from onNewConnection (evhttp's bufferevent factory), which keeps a
// reference to it; evhttp's bufferevent_free clears its callbacks, so a
// sweep (at each new connection and every 100 ms while any are open) finds
// the dropped ones and releases the last reference, which closes the
// socket. When a new connection would exceed max_connections, the oldest
// open one is shut down (evhttp sees EOF and drops it): idle clients cannot
// lock probes out.
// fd limit: evconnlistener retries a failed accept on every loop turn. The
// error callback first lends the reserve fd (closes it, so the next accept
// gets that slot and the request is served), restoring it on a timer once
// a slot is free again; without a reserve, AcceptGuard pauses the listener.
#include <event2/bufferevent.h>
#include <event2/event.h>
#include <event2/http.h>
#include <event2/listener.h>
#include <sys/socket.h>

#include <cerrno>
#include <map>

#include "core/admin.h"

namespace gw {

namespace {
// evconnlistener's error callback gets evhttp's user data: the evhttp.
std::map<const evhttp*, AdminServer*>& servers() {
  static std::map<const evhttp*, AdminServer*> m;
  return m;
}
constexpr std::chrono::milliseconds kRestoreRetry{20};
constexpr std::chrono::milliseconds kSweepInterval{100};

// True while evhttp still uses `bev` (bufferevent_free clears the callbacks).
bool inUse(bufferevent* bev) {
  bufferevent_data_cb read_cb = nullptr;
  bufferevent_getcb(bev, &read_cb, nullptr, nullptr, nullptr);
  return read_cb != nullptr;
}
}  // namespace

void AdminServer::setUpLimits(uint32_t max_connections) {
  max_connections_ = max_connections == 0 ? 1 : max_connections;
  auto& reg = stats::StatsRegistry::get();
  evicted_ = &reg.counter("game_gateway_admin_connections_evicted_total",
                          "Admin connections closed to make room under admin.max_connections.");
  open_gauge_ = &reg.gauge("game_gateway_admin_connections_active", "Admin connections open.");
  evhttp_set_bevcb(http_, &AdminServer::onNewConnection, this);
  servers()[http_] = this;
  sweep_ = std::make_unique<Timer>(dispatcher_, [this] { sweepConnections(); });
  restore_reserve_ = std::make_unique<Timer>(dispatcher_, [this] {
    if (!reserve_.restore()) restore_reserve_->enable(kRestoreRetry);
  });
  evconnlistener* lev = nullptr;
  evhttp_foreach_bound_socket(
      http_, [](evhttp_bound_socket* b, void* out) {
        *static_cast<evconnlistener**>(out) = evhttp_bound_socket_get_listener(b);
      }, &lev);
  guard_ = std::make_unique<AcceptGuard>(
      dispatcher_, "admin",
      [lev](bool watching) {
        if (watching) {
          evconnlistener_enable(lev);
        } else {
          evconnlistener_disable(lev);
        }
      },
      [this] { reserve_.restore(); });
}

bufferevent* AdminServer::onNewConnection(event_base* base, void* arg) {
  auto* self = static_cast<AdminServer*>(arg);
  self->guard_->succeeded();
  self->sweepConnections();
  while (self->open_.size() >= self->max_connections_) {
    bufferevent* oldest = self->open_.front().socket;
    ::shutdown(bufferevent_getfd(oldest), SHUT_RDWR);  // evhttp drops it at EOF
    bufferevent_decref(oldest);
    self->open_.pop_front();
    self->open_gauge_->dec();
    self->evicted_->inc();
  }
  bufferevent* socket = bufferevent_socket_new(base, -1, BEV_OPT_CLOSE_ON_FREE);
  bufferevent_incref(socket);
  self->open_.push_back(OpenConnection{socket});
  self->open_gauge_->inc();
  if (!self->sweep_->enabled()) self->sweep_->enable(kSweepInterval);
  return socket;
}

void AdminServer::sweepConnections() {
  bool freed = false;
  for (auto it = open_.begin(); it != open_.end();) {
    // A connection created a moment ago has no callbacks yet either, but
    // sweeps never run between the factory call and evhttp's setup.
    if (inUse(it->socket)) {
      ++it;
      continue;
    }
    bufferevent_decref(it->socket);  // the last reference: closes the socket
    it = open_.erase(it);
    open_gauge_->dec();
    freed = true;
  }
  if (!open_.empty() && !sweep_->enabled()) sweep_->enable(kSweepInterval);
  // A lent reserve comes back once a slot is free.
  if (freed && !reserve_.held() && !restore_reserve_->enabled())
    restore_reserve_->enable(std::chrono::milliseconds(0));
}

void AdminServer::onAcceptError(evconnlistener*, void* arg) {
  int err = errno;
  auto it = servers().find(static_cast<evhttp*>(arg));
  if (it == servers().end()) return;
  AdminServer* self = it->second;
  if ((err == EMFILE || err == ENFILE) && self->reserve_.release()) {
    // The listener tries again on the next loop turn and gets the slot.
    self->guard_->counted(err, "; lending the reserve fd to the admin API");
    return;
  }
  self->guard_->failed(err);
}

void AdminServer::unregisterLimits() {
  servers().erase(http_);
  for (auto& c : open_) bufferevent_decref(c.socket);  // evhttp_free freed them
  open_.clear();
  sweep_.reset();
  guard_.reset();
  restore_reserve_.reset();
}

}  // namespace gw
