#include "core/server.h"

#include <event2/event.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstring>

#include "core/log.h"

namespace gw {
namespace {

// True if nothing listens on `addr` yet. The workers' SO_REUSEPORT sockets
// would silently join a port another process (say, a second gateway) already
// listens on with SO_REUSEPORT; a probe bound without it fails with
// EADDRINUSE then (*error says so), and is closed again before the real bind.
bool portFree(const Address& addr, std::string* error) {
  int fd = socket(addr.family(), SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return true;  // listenSocket() reports it
  int one = 1;
  setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (addr.family() == AF_INET6) setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &one, sizeof(one));
  bool ok = bind(fd, addr.sockaddr_ptr(), addr.len()) == 0 || errno != EADDRINUSE;
  if (!ok) *error = "bind " + addr.toString() + ": " + std::strerror(errno);
  ::close(fd);
  return ok;
}

}  // namespace

Server::Server(std::shared_ptr<const GatewayConfig> config)
    : config_(std::move(config)), main_("main") {}

Server::~Server() {
  for (event* ev : signal_events_) event_free(ev);
  for (auto& w : workers_) w->join();
  workers_.clear();
}

bool Server::init(std::string* error) {
  for (size_t i = 0; i < config_->workers; ++i)
    workers_.push_back(std::make_unique<Worker>(i, config_->workers, config_));
  for (const auto& l : config_->listeners) {
    Address addr = l.address;
    std::vector<int> fds;
    std::string in_use;
    if (addr.port() != 0 && !portFree(addr, &in_use)) {
      *error = "listener '" + l.name + "': " + in_use;
      return false;
    }
    for (size_t i = 0; i < workers_.size(); ++i) {
      std::string why;
      int fd = listenSocket(addr, l.backlog, &why);
      if (fd < 0) {
        for (int f : fds) ::close(f);
        *error = "listener '" + l.name + "': " + why;
        return false;
      }
      if (i == 0 && addr.port() == 0) addr = localAddress(fd);  // others share the real port
      fds.push_back(fd);
    }
    for (size_t i = 0; i < workers_.size(); ++i) workers_[i]->addListener(l, fds[i]);
    bound_.push_back(addr);
  }
  return true;
}

int Server::run() {
  for (int sig : {SIGTERM, SIGINT}) {
    event* ev = evsignal_new(main_.base(), sig, &Server::onSignal, this);
    event_add(ev, nullptr);
    signal_events_.push_back(ev);
  }
  std::signal(SIGPIPE, SIG_IGN);
  for (auto& w : workers_) w->start();
  for (size_t i = 0; i < bound_.size(); ++i) {
    GW_LOG(info, "listener '{}' listening on {} ({} workers, chain: {} filters)",
           config_->listeners[i].name, bound_[i].toString(), workers_.size(),
           config_->listeners[i].filters.size());
  }
  main_.run();
  for (auto& w : workers_) w->stop();
  for (auto& w : workers_) w->join();
  GW_LOG(info, "gateway stopped");
  return 0;
}

void Server::stop() { main_.exit(); }

void Server::onSignal(int sig, short, void* arg) {
  auto* self = static_cast<Server*>(arg);
  GW_LOG(info, "received {}: stopping", sig == SIGTERM ? "SIGTERM" : "SIGINT");
  self->stop();
}

}  // namespace gw
