// core/worker.h — one worker thread: an event loop, its listening sockets,
// its client connections and its filter factories.
//
// Each worker owns a SO_REUSEPORT listening socket per listener (the kernel
// spreads new connections across workers), builds one FilterFactory per
// filter per listener from the immutable config, and runs every connection
// accepted on its sockets to the end. Nothing on the data path crosses
// threads; other threads talk to a worker only through post().
#pragma once

#include <array>
#include <atomic>
#include <memory>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "config/config.h"
#include "core/dispatcher.h"
#include "core/filter_chain.h"
#include "core/stats.h"
#include "core/worker_services.h"

struct event;

namespace gw {

class Worker {
 public:
  Worker(size_t index, size_t count, std::shared_ptr<const GatewayConfig> config);
  ~Worker();

  // Adopts the bound listening socket `fd` for `listener` and builds its
  // filter factories. Call before start().
  void addListener(const ListenerConfig& listener, int fd);
  // Starts the worker thread.
  void start();
  // Stops accepting, closes every connection with reason `shutdown`, and
  // ends the loop. Thread-safe; returns at once (join() waits).
  void stop();
  void join();

  Dispatcher& dispatcher() { return dispatcher_; }
  size_t index() const { return index_; }
  // Client connections open on this worker (readable from any thread).
  size_t activeConnections() const { return active_.load(std::memory_order_relaxed); }

 private:
  struct ActiveListener {
    Worker* worker;
    std::string name;
    int fd = -1;
    event* accept_ev = nullptr;
    std::vector<std::unique_ptr<FilterFactory>> factories;
    std::vector<ChainElement> elements;
    OutputLimits limits;
    stats::Counter* accepted = nullptr;
    stats::Gauge* active = nullptr;
    std::array<stats::Counter*, kCloseReasonCount> closes{};
  };
  static void onAcceptable(int fd, short, void* arg);
  void acceptFrom(ActiveListener& l);
  void onChainClosed(ActiveListener& l, FilterChain& chain, CloseReason reason,
                     std::string_view detail);

  size_t index_;
  size_t count_;
  std::shared_ptr<const GatewayConfig> config_;
  Dispatcher dispatcher_;
  WorkerServices services_;  // before listeners_: factories use it until destroyed
  std::vector<std::unique_ptr<ActiveListener>> listeners_;
  std::unordered_map<FilterChain*, std::unique_ptr<FilterChain>> connections_;
  std::atomic<size_t> active_{0};
  std::thread thread_;
};

}  // namespace gw
