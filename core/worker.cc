#include "core/worker.h"

#include <event2/event.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.h"

namespace gw {

Worker::Worker(size_t index, size_t count, std::shared_ptr<const GatewayConfig> config)
    : index_(index),
      count_(count),
      config_(std::move(config)),
      dispatcher_("worker-" + std::to_string(index)) {}

Worker::~Worker() {
  join();
  connections_.clear();
  for (auto& l : listeners_) {
    if (l->accept_ev) event_free(l->accept_ev);
    if (l->fd >= 0) ::close(l->fd);
  }
}

void Worker::addListener(const ListenerConfig& listener, int fd) {
  auto l = std::make_unique<ActiveListener>();
  l->worker = this;
  l->name = listener.name;
  l->fd = fd;
  l->limits = listener.output;
  auto& reg = stats::StatsRegistry::get();
  stats::Labels labels = {{"listener", listener.name}};
  l->accepted = &reg.counter("game_gateway_connections_total",
                             "Client connections accepted.", labels);
  l->active = &reg.gauge("game_gateway_connections_active", "Client connections open.", labels);
  for (size_t r = 0; r < kCloseReasonCount; ++r) {
    l->closes[r] = &reg.counter(
        "game_gateway_connection_closes_total", "Client connections closed, by reason.",
        {{"listener", listener.name},
         {"reason", std::string(closeReasonName(static_cast<CloseReason>(r)))}});
  }
  WorkerContext ctx{dispatcher_, index_, count_, config_->clusters, listener.name, services_};
  for (const auto& f : listener.filters) {
    l->factories.push_back(f.factory->createFactory(f.config, ctx));
    l->elements.push_back({l->factories.back().get(), f.traits});
  }
  l->accept_ev = event_new(dispatcher_.base(), fd, EV_READ | EV_PERSIST, &Worker::onAcceptable,
                           l.get());
  event_add(l->accept_ev, nullptr);
  listeners_.push_back(std::move(l));
}

void Worker::start() {
  thread_ = std::thread([this] {
    stats::setThreadShard(index_);
    dispatcher_.run();
  });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::stop() {
  dispatcher_.post([this] {
    for (auto& l : listeners_) {
      if (l->accept_ev) event_del(l->accept_ev);
    }
    // Closing runs onChainClosed, which erases from the map: copy first.
    std::vector<FilterChain*> open;
    for (auto& [ptr, chain] : connections_) open.push_back(ptr);
    for (FilterChain* c : open)
      c->connection().close(CloseReason::kShutdown, "gateway stopping",
                            Connection::CloseMode::kAbort);
    dispatcher_.exit();
  });
}

void Worker::onAcceptable(int, short, void* arg) {
  auto* l = static_cast<ActiveListener*>(arg);
  l->worker->acceptFrom(*l);
}

void Worker::acceptFrom(ActiveListener& l) {
  // Bounded batch per readiness so one listener cannot starve the loop.
  for (int i = 0; i < 64; ++i) {
    sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = accept4(l.fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
      if (errno == EMFILE || errno == ENFILE) {
        GW_LOG(warn, "listener {}: accept: {} (raise the fd limit)", l.name, std::strerror(errno));
      }
      return;
    }
    setNoDelay(fd);
    auto conn = std::make_unique<Connection>(dispatcher_, fd,
                                             Address(reinterpret_cast<sockaddr*>(&ss), len), false);
    auto chain = std::make_unique<FilterChain>(
        std::move(conn), l.elements, l.limits,
        [this, &l](FilterChain& c, CloseReason r, std::string_view d) {
          onChainClosed(l, c, r, d);
        });
    FilterChain* raw = chain.get();
    connections_.emplace(raw, std::move(chain));
    active_.fetch_add(1, std::memory_order_relaxed);
    l.accepted->inc();
    l.active->inc();
    raw->start();
  }
}

void Worker::onChainClosed(ActiveListener& l, FilterChain& chain, CloseReason reason,
                           std::string_view detail) {
  l.active->dec();
  l.closes[static_cast<size_t>(reason)]->inc();
  GW_LOG(debug, "{}: connection from {} closed: {} ({})", dispatcher_.name(),
         chain.connection().peer().toString(), closeReasonName(reason), detail);
  auto it = connections_.find(&chain);
  if (it == connections_.end()) return;
  dispatcher_.deferredDelete(std::move(it->second));
  connections_.erase(it);
  active_.fetch_sub(1, std::memory_order_relaxed);
}

}  // namespace gw
