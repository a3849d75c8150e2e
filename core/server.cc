#include "core/server.h"

#include <event2/event.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <chrono>
#include <csignal>
#include <cstring>

#include "config/loader.h"
#include "core/sdk/cluster_manager.h"
#include "core/sdk/log.h"

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

// How often a drain checks whether the last connection is gone.
constexpr std::chrono::milliseconds kDrainPoll{50};

}  // namespace

Server::Server(std::shared_ptr<const GatewayConfig> config, plugins::PluginLoader& plugins)
    : config_(std::move(config)),
      plugins_(plugins),
      main_("main"),
      drain_deadline_(main_, [this] {
        GW_LOG(warn, "drain: drain_timeout ({} ms) passed with {} connection(s) open; "
                     "closing them",
               config_->drain_timeout.count(), activeConnections());
        stop();
      }),
      drain_poll_(main_, [this] { checkDrained(); }),
      memory_trimmer_(main_, [this] { return config_->memory_trim_interval; }) {
  auto& reg = stats::StatsRegistry::get();
  const char* help = "Config reloads (SIGHUP) by result.";
  reloads_ok_ = &reg.counter("game_gateway_config_reloads_total", help, {{"result", "ok"}});
  reloads_error_ = &reg.counter("game_gateway_config_reloads_total", help, {{"result", "error"}});
  // The Go gateway's names for the same events (config_type="config_file").
  refresh_ok_ = &reg.counter("game_gateway_config_refresh_success_total",
                             "Config refreshes applied, by config_type (the Go gateway's name).",
                             {{"config_type", "config_file"}});
  refresh_error_ = &reg.counter("game_gateway_config_refresh_errors_total",
                                "Config refreshes refused, by config_type (the Go gateway's name).",
                                {{"config_type", "config_file"}});
  last_reload_ok_time_ =
      &reg.gauge("game_gateway_config_last_reload_success_timestamp_seconds",
                 "Unix time of the last successful config load (start or reload).");
}

Server::~Server() {
  admin_.reset();
  health_.reset();
  metrics_.reset();
  for (event* ev : signal_events_) event_free(ev);
  for (auto& w : workers_) w->join();
  workers_.clear();
}

bool Server::init(std::string* error) {
  // The config is the cluster manager's static source (core/sdk/cluster_manager.h);
  // DNS names are its DNS source (first: the clusters it owns stay its own).
  dns_ = std::make_unique<DnsResolver>(main_, ClusterManager::process());
  dns_->configure(config_->dns, config_->clusters);
  ClusterManager::process().setStaticClusters(config_->clusters);
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
  std::string why;
  access_log_ = AccessLog::open(config_->access_log, &why);
  if (!access_log_) {
    *error = why;
    return false;
  }
  for (auto& w : workers_) w->setAccessLog(access_log_);
  if (config_->admin.enabled) {
    admin_ = std::make_unique<AdminServer>(main_, *this);
    if (!admin_->listen(config_->admin.address, error, config_->admin.max_connections)) return false;
  }
  if (!openReadOnly(config_->health_listener, AdminServer::Scope::kHealth, "health_listener",
                    &health_, error) ||
      !openReadOnly(config_->metrics_listener, AdminServer::Scope::kMetrics, "metrics_listener",
                    &metrics_, error)) {
    return false;
  }
  return true;
}

bool Server::openReadOnly(const std::optional<Address>& addr, AdminServer::Scope scope,
                          const char* key, std::unique_ptr<AdminServer>* out,
                          std::string* error) {
  if (!addr) return true;
  *out = std::make_unique<AdminServer>(main_, *this, scope);
  if ((*out)->listen(*addr, error, config_->admin.max_connections)) return true;
  *error = std::string(key) + ": " + *error;
  return false;
}

int Server::run() {
  for (int sig : {SIGTERM, SIGINT, SIGHUP}) {
    event* ev = evsignal_new(main_.base(), sig, &Server::onSignal, this);
    event_add(ev, nullptr);
    signal_events_.push_back(ev);
  }
  std::signal(SIGPIPE, SIG_IGN);
  last_reload_ok_time_->set(std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  for (auto& w : workers_) w->start();
  memory_trimmer_.start();
  for (size_t i = 0; i < bound_.size(); ++i) {
    GW_LOG(info, "listener '{}' listening on {} ({} workers, chain: {} filters)",
           config_->listeners[i].name, bound_[i].toString(), workers_.size(),
           config_->listeners[i].filters.size());
  }
  // After the listener lines: tests wait for the first "listening on".
  if (admin_) GW_LOG(info, "admin listening on {}", admin_->address().toString());
  if (health_) GW_LOG(info, "health listener on {}", health_->address().toString());
  if (metrics_) GW_LOG(info, "metrics listener on {}", metrics_->address().toString());
  if (config_->access_log.enabled) {
    GW_LOG(info, "access log: {} (sample_rate {})", config_->access_log.path,
           config_->access_log.sample_rate);
  }
  main_.run();
  admin_.reset();  // no admin requests while the workers wind down
  health_.reset();
  metrics_.reset();
  for (auto& w : workers_) w->stop();
  for (auto& w : workers_) w->join();
  GW_LOG(info, "gateway stopped");
  return 0;
}

void Server::stop() { main_.exit(); }

bool Server::ready() const {
  if (draining_) return false;
  for (const auto& w : workers_)
    if (!w->running()) return false;
  return true;
}

size_t Server::activeConnections() const {
  size_t n = 0;
  for (const auto& w : workers_) n += w->activeConnections();
  return n;
}

void Server::drain(std::string_view why) {
  if (draining_) return;
  draining_ = true;
  GW_LOG(info, "drain ({}): not accepting; {} connection(s) open; closing the rest in {} ms",
         why, activeConnections(), config_->drain_timeout.count());
  for (auto& w : workers_) w->stopAccepting();
  drain_deadline_.enable(config_->drain_timeout);
  drain_poll_.enable(std::chrono::milliseconds(0));
}

void Server::checkDrained() {
  if (activeConnections() == 0) {
    GW_LOG(info, "drain: all connections closed");
    stop();
    return;
  }
  drain_poll_.enable(kDrainPoll);
}

std::string Server::reloadBlocker(const GatewayConfig& next) const {
  const GatewayConfig& cur = *config_;
  if (next.workers != cur.workers) {
    return "\"workers\" changed from " + std::to_string(cur.workers) + " to " +
           std::to_string(next.workers) + "; restart the gateway to change it";
  }
  if (next.admin.enabled != cur.admin.enabled ||
      next.admin.address.toString() != cur.admin.address.toString()) {
    return "the admin address changed from " + cur.admin.address.toString() + " to " +
           next.admin.address.toString() + "; restart the gateway to change it";
  }
  auto text = [](const std::optional<Address>& a) { return a ? a->toString() : "(none)"; };
  if (text(next.health_listener) != text(cur.health_listener) ||
      text(next.metrics_listener) != text(cur.metrics_listener)) {
    return "health_listener or metrics_listener changed (health " + text(cur.health_listener) +
           " -> " + text(next.health_listener) + ", metrics " + text(cur.metrics_listener) +
           " -> " + text(next.metrics_listener) + "); restart the gateway to change them";
  }
  if (next.listeners.size() != cur.listeners.size()) {
    return "the number of listeners changed from " + std::to_string(cur.listeners.size()) +
           " to " + std::to_string(next.listeners.size()) +
           "; listeners cannot be added or removed by a reload: restart the gateway";
  }
  for (size_t i = 0; i < cur.listeners.size(); ++i) {
    const auto& a = cur.listeners[i];
    const auto& b = next.listeners[i];
    if (a.name != b.name) {
      return "listener #" + std::to_string(i + 1) + " was renamed from '" + a.name + "' to '" +
             b.name + "'; listeners cannot change by a reload: restart the gateway";
    }
    if (a.address.toString() != b.address.toString()) {
      return "listener '" + a.name + "' address changed from " + a.address.toString() + " to " +
             b.address.toString() +
             "; listener addresses cannot change by a reload: restart the gateway";
    }
    if (a.backlog != b.backlog) {
      return "listener '" + a.name + "' backlog changed from " + std::to_string(a.backlog) +
             " to " + std::to_string(b.backlog) + "; restart the gateway to change it";
    }
  }
  return "";
}

bool Server::reload() {
  const std::string path = config_->source;  // a copy: config_ is replaced below
  auto refuse = [&](const std::string& why) {
    reloads_error_->inc();
    refresh_error_->inc();
    GW_LOG(error, "config reload refused: {}; still running generation {} from {}", why,
           generation_, path);
    return false;
  };
  if (draining_) return refuse("the gateway is draining");
  GW_LOG(info, "config reload: reading {}", path);
  auto result = config::loadFile(path, &plugins_);
  if (!result.errors.empty()) {
    for (const auto& e : result.errors) GW_LOG(error, "config reload: {}", e);
    return refuse(std::to_string(result.errors.size()) + " config error" +
                  (result.errors.size() == 1 ? "" : "s"));
  }
  std::unique_ptr<GatewayConfig> next = std::move(result.config);
  std::string blocker = reloadBlocker(*next);
  if (!blocker.empty()) return refuse(blocker);
  std::string why;
  auto access = AccessLog::open(next->access_log, &why);
  if (!access) return refuse(why);

  config_ = std::shared_ptr<const GatewayConfig>(std::move(next));
  // Before the workers build the new generation: its pools read these hosts.
  dns_->configure(config_->dns, config_->clusters);
  ClusterManager::process().setStaticClusters(config_->clusters);
  uint64_t generation = ++generation_;
  log::setLevel(config_->log_level);
  access_log_ = access;
  auto pending = std::make_shared<std::atomic<size_t>>(workers_.size());
  for (auto& w : workers_) {
    w->reload(config_, access, [this, pending, generation] {
      if (pending->fetch_sub(1) == 1) {
        main_.post([generation] {
          GW_LOG(info, "config reload {} applied on every worker", generation);
        });
      }
    });
  }
  memory_trimmer_.start();  // a reload may turn the checks on
  reloads_ok_->inc();
  refresh_ok_->inc();
  last_reload_ok_time_->set(std::chrono::duration_cast<std::chrono::seconds>(
                                std::chrono::system_clock::now().time_since_epoch())
                                .count());
  GW_LOG(info, "config reload {}: loaded {} ({} listener(s), {} cluster(s)); new connections "
               "get the new chains, open ones keep theirs",
         generation, path, config_->listeners.size(), config_->clusters.size());
  return true;
}

void Server::onSignal(int sig, short, void* arg) {
  auto* self = static_cast<Server*>(arg);
  switch (sig) {
    case SIGHUP:
      GW_LOG(info, "received SIGHUP: reloading the config");
      self->reload();
      break;
    case SIGTERM:
      // While draining already (POST /drain from a preStop hook, then the
      // kubelet's SIGTERM), the drain simply goes on.
      GW_LOG(info, "received SIGTERM: draining");
      self->drain("SIGTERM");
      break;
    default:
      GW_LOG(info, "received SIGINT: stopping");
      self->stop();
      break;
  }
}

}  // namespace gw
