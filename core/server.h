// core/server.h — the gateway process: main thread, workers, signals,
// admin API, drain and reload.
//
// Defines Server: binds every listener once per worker (SO_REUSEPORT) and
// the admin port, starts the workers, and runs the main thread's loop for
// signals and the admin API. A bind failure (port in use, bad address) is
// reported by init() before anything starts.
//
// Signals:
//   SIGTERM  drain: stop accepting on every worker (listening sockets
//            closed), /ready answers 503 at once, open connections go on;
//            when the last one closes, or after `drain_timeout`, whichever
//            comes first, the rest close with reason `shutdown` (a stop:
//            Worker::stop(), flushed within Worker::kShutdownGrace) and
//            run() returns 0. SIGTERM while draining (e.g. after POST
//            /drain) lets the drain go on.
//   SIGINT   stop at once (connections close with reason `shutdown`, with
//            the same grace).
//   SIGHUP   reload the config file: see reload().
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/access_log.h"
#include "core/admin.h"
#include "core/dns_resolver.h"
#include "core/memory_trim.h"
#include "core/sdk/dispatcher.h"
#include "core/sdk/stats.h"
#include "core/worker.h"
#include "plugins/loader.h"

struct event;

namespace gw {

class Server : public AdminTarget {
 public:
  // `plugins` is the runtime's plugin loader (outlives the server): a
  // reload loads the new config's plugins through it (see reload()).
  Server(std::shared_ptr<const GatewayConfig> config, plugins::PluginLoader& plugins);
  ~Server() override;

  // Binds all listeners for all workers, builds their filter factories,
  // opens the access log and binds the admin port (when enabled). Returns
  // false with *error set ("listener 'game': bind 0.0.0.0:8080: Address
  // already in use", "admin: bind 127.0.0.1:9901: ...") if any fails.
  bool init(std::string* error);
  // Starts the workers and runs the main loop until stop(), a signal or the
  // end of a drain. Returns the process exit code (0 after a clean stop).
  int run();
  // Asks the server to stop now (thread-safe).
  void stop();

  // Starts draining (main thread): see the banner. Idempotent.
  void drain(std::string_view why) override;
  // Re-reads the config file (main thread) and loads its plugins through
  // the loader: plugins already loaded from the same file are kept, a new
  // plugin is loaded, and a plugin already loaded from another path or
  // from a file whose bytes changed is an error that says to restart
  // (docs/plugins.md). On errors, or if the new config
  // changes what cannot change while running (listener names, order or
  // addresses, workers, the admin address), logs why, counts
  // game_gateway_config_reloads_total{result="error"} and keeps the running
  // config. Otherwise every worker switches to new factories for new
  // connections (live ones keep theirs), the log level and access log
  // follow the new config, and {result="ok"} is counted; "config reload N
  // applied" is logged once every worker has switched. Returns true if the
  // reload was accepted.
  bool reload();

  // Bound address of listener `i` (after init; the real port when 0 was
  // configured).
  const Address& listenerAddress(size_t i) const { return bound_[i]; }
  Dispatcher& mainDispatcher() { return main_; }
  const std::vector<std::unique_ptr<Worker>>& workers() const { return workers_; }
  // The admin server, or nullptr when the admin API is disabled.
  AdminServer* admin() { return admin_.get(); }

  // AdminTarget (main thread).
  std::shared_ptr<const GatewayConfig> currentConfig() const override { return config_; }
  uint64_t configGeneration() const override { return generation_; }
  bool ready() const override;
  bool draining() const override { return draining_; }
  size_t activeConnections() const override;
  size_t workerCount() const override { return workers_.size(); }

 private:
  static void onSignal(int sig, short, void* arg);
  void checkDrained();
  // Empty if `next` may replace the running config, else why not.
  std::string reloadBlocker(const GatewayConfig& next) const;
  // Binds a read-only listener (health_listener / metrics_listener, named
  // `key` in errors) into *out when `addr` is set. False with *error set
  // when the bind fails.
  bool openReadOnly(const std::optional<Address>& addr, AdminServer::Scope scope, const char* key,
                    std::unique_ptr<AdminServer>* out, std::string* error);

  std::shared_ptr<const GatewayConfig> config_;
  plugins::PluginLoader& plugins_;
  Dispatcher main_;
  // The cluster manager's DNS source, on main_ (core/dns_resolver.h).
  std::unique_ptr<DnsResolver> dns_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<Address> bound_;
  std::vector<event*> signal_events_;
  std::unique_ptr<AdminServer> admin_;
  // The read-only health_listener / metrics_listener, or nullptr.
  std::unique_ptr<AdminServer> health_;
  std::unique_ptr<AdminServer> metrics_;
  std::shared_ptr<AccessLog> access_log_;
  uint64_t generation_ = 1;
  bool draining_ = false;
  Timer drain_deadline_;
  Timer drain_poll_;
  MemoryTrimmer memory_trimmer_;
  stats::Counter* reloads_ok_;
  stats::Counter* reloads_error_;
  stats::Counter* refresh_ok_;     // config_refresh_success_total{config_type="config_file"}
  stats::Counter* refresh_error_;  // config_refresh_errors_total{config_type="config_file"}
  stats::Gauge* last_reload_ok_time_;
};

}  // namespace gw
