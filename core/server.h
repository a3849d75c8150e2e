// core/server.h — the gateway process: main thread, workers, signals.
//
// Defines Server: binds every listener once per worker (SO_REUSEPORT),
// starts the workers, and runs the main thread's loop for signals (SIGTERM
// and SIGINT stop the gateway) and the admin port. A bind failure (port in
// use, bad address) is reported by init() before anything starts.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "config/config.h"
#include "core/dispatcher.h"
#include "core/worker.h"

struct event;

namespace gw {

class Server {
 public:
  explicit Server(std::shared_ptr<const GatewayConfig> config);
  ~Server();

  // Binds all listeners for all workers and builds their filter factories.
  // Returns false with *error set ("listener 'game': bind 0.0.0.0:8080:
  // Address already in use") if any socket cannot be bound.
  bool init(std::string* error);
  // Starts the workers and runs the main loop until stop() or a signal.
  // Returns the process exit code (0 after a clean stop).
  int run();
  // Asks the server to stop (thread-safe).
  void stop();

  // Bound address of listener `i` (after init; the real port when 0 was
  // configured).
  const Address& listenerAddress(size_t i) const { return bound_[i]; }
  Dispatcher& mainDispatcher() { return main_; }
  const std::vector<std::unique_ptr<Worker>>& workers() const { return workers_; }

 private:
  static void onSignal(int sig, short, void* arg);

  std::shared_ptr<const GatewayConfig> config_;
  Dispatcher main_;
  std::vector<std::unique_ptr<Worker>> workers_;
  std::vector<Address> bound_;
  std::vector<event*> signal_events_;
};

}  // namespace gw
