// core/worker.h — one worker thread: an event loop, its listening sockets,
// its client connections and its filter factories.
//
// Each worker owns a SO_REUSEPORT listening socket per listener (the kernel
// spreads new connections across workers), builds one FilterFactory per
// filter per listener from the immutable config, and runs every connection
// accepted on its sockets to the end. Nothing on the data path crosses
// threads; other threads talk to a worker only through post() and the
// thread-safe methods below (stopAccepting, reload, stop).
//
// Reload: a config generation's factories for one listener form a ChainSet.
// The listener holds the current set; every connection holds the set it was
// accepted under, so live chains keep their old factories (and the old
// config they reference) until the last of them closes, while new
// connections get chains from the new set.
//
// Stop: every client connection closes with a flush and reason `shutdown`
// (filters' onClosing runs: a WebSocket close 1001, TLS close_notify; queued
// frames go out), within kShutdownGrace; what a client has not taken by
// then is dropped (counted). Backend connections are the filters': their
// session closes, written as the clients close, leave before the loop ends.
#pragma once

#include <array>
#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "config/config.h"
#include "core/accept_guard.h"
#include "core/access_log.h"
#include "core/sdk/dispatcher.h"
#include "core/sdk/filter_chain.h"
#include "core/sdk/stats.h"
#include "core/sdk/worker_services.h"

struct event;

namespace gw {

// Every metric a worker keeps per listener, declared in one place. Shared by
// all workers (the counters are sharded per thread).
struct ListenerStats {
  explicit ListenerStats(const std::string& listener);
  stats::Counter* accepted;          // game_gateway_connections_total
  stats::Gauge* active;              // game_gateway_connections_active
  stats::Histogram* duration;        // game_gateway_connection_duration_seconds
  stats::Counter* bytes_in;          // game_gateway_client_bytes_total{direction="in"}
  stats::Counter* bytes_out;         //   (counted when the connection closes)
  stats::Counter* access_logged;     // game_gateway_access_log_lines_total{result="written"}
  stats::Counter* access_sampled_out;
  stats::Counter* shutdown_forced;   // game_gateway_shutdown_forced_closes_total
  std::array<stats::Counter*, kCloseReasonCount> closes{};  // ..._connection_closes_total
};

class Worker {
 public:
  Worker(size_t index, size_t count, std::shared_ptr<const GatewayConfig> config);
  ~Worker();

  // Adopts the bound listening socket `fd` for `listener` (an element of the
  // config given to the constructor) and builds its filter factories. Call
  // before start().
  void addListener(const ListenerConfig& listener, int fd);
  // Sets the access log closes are written to (nullptr: none). Call before
  // start(); reload() replaces it later.
  void setAccessLog(std::shared_ptr<AccessLog> log) { access_log_ = std::move(log); }
  // Starts the worker thread.
  void start();
  // Stops accepting: removes the accept events and closes this worker's
  // listening sockets. Open connections go on. Thread-safe; asynchronous.
  void stopAccepting();
  // Switches to `config` (same listeners, same order, as the current one):
  // on the worker thread, builds new factories for every listener, makes
  // them current for new connections, swaps the access log, then calls
  // `done` (on the worker thread). Thread-safe; asynchronous.
  void reload(std::shared_ptr<const GatewayConfig> config, std::shared_ptr<AccessLog> log,
              std::function<void()> done);
  // How long stop() lets client connections take their output: the bound of
  // one flushing close (Connection::kFlushTimeoutMs).
  static constexpr std::chrono::milliseconds kShutdownGrace{Connection::kFlushTimeoutMs};

  // Stops accepting, closes every connection with reason `shutdown` and a
  // flush (see the banner), and ends the loop once the last one closed, at
  // most kShutdownGrace later. Thread-safe; returns at once (join() waits).
  void stop();
  void join();

  Dispatcher& dispatcher() { return dispatcher_; }
  size_t index() const { return index_; }
  // True once the worker's loop has started running (any thread).
  bool running() const { return running_.load(std::memory_order_acquire); }
  // Client connections open on this worker (readable from any thread).
  size_t activeConnections() const { return active_.load(std::memory_order_relaxed); }

 private:
  struct ActiveListener;
  // One listener's factories built from one config generation. Counted by
  // hand (refs, through ChainSetRef): every holder is on the worker's
  // thread, and a connection's reference is one pointer, not a shared_ptr.
  struct ChainSet {
    ActiveListener* listener = nullptr;  // the listener it was built for
    std::shared_ptr<const GatewayConfig> config;  // first: factories reference its clusters
    std::vector<std::unique_ptr<FilterFactory>> factories;
    std::vector<ChainElement> elements;
    OutputLimits limits;  // every chain built from the set points at these
    TcpLiveness liveness;  // applied to every client socket accepted under this set
    uint32_t refs = 0;    // ChainSetRefs: the listener while current, and each connection
  };
  // One reference to a ChainSet; the last one deletes it. Not thread-safe
  // (the worker's thread; before start() and after join(), the owner's).
  class ChainSetRef {
   public:
    ChainSetRef() = default;
    explicit ChainSetRef(ChainSet* set) : set_(set) {
      if (set_ != nullptr) ++set_->refs;
    }
    ChainSetRef(const ChainSetRef& other) : ChainSetRef(other.set_) {}
    ChainSetRef& operator=(ChainSetRef other) {
      std::swap(set_, other.set_);
      return *this;
    }
    ~ChainSetRef() {
      if (set_ != nullptr && --set_->refs == 0) delete set_;
    }
    ChainSet* operator->() const { return set_; }
    ChainSet& operator*() const { return *set_; }

   private:
    ChainSet* set_ = nullptr;
  };
  struct ActiveListener {
    Worker* worker;
    std::string name;
    int fd = -1;
    event* accept_ev = nullptr;
    ChainSetRef chains;  // current: new connections use it
    std::unique_ptr<ListenerStats> stats;
    std::unique_ptr<AcceptGuard> guard;  // pauses accept_ev after an accept failure
  };
  // A live connection: its chain (in the same allocation), the chain set its
  // filters came from (and, through it, its listener), and its links in the
  // worker's list of connections. 200 bytes on 64-bit.
  struct ConnectionRecord : DeferredDeletable {
    ConnectionRecord(const ChainSetRef& set, std::unique_ptr<Connection> conn);
    ActiveListener& listener() const { return *chains->listener; }
    ChainSetRef chains;  // declared first: destroyed after the chain
    ConnectionRecord* prev = nullptr;  // Worker::connections_ (intrusive, unordered)
    ConnectionRecord* next = nullptr;
    std::chrono::steady_clock::time_point accepted_at;
    FilterChain chain;
  };

  ChainSetRef buildChains(const std::shared_ptr<const GatewayConfig>& config,
                          const ListenerConfig& listener, ActiveListener& active);
  // FilterChain's close callback; `context` is the ConnectionRecord.
  static void onChainClosedThunk(void* context, FilterChain&, CloseReason reason,
                                 std::string_view detail);
  static void onAcceptable(int fd, short, void* arg);
  void acceptFrom(ActiveListener& l);
  // At the fd limit: releases reserve_, accepts and closes at once up to 64
  // pending connections of `l` (their clients see a prompt close instead of
  // waiting in the backlog), then re-opens reserve_. Returns how many.
  size_t shedPending(ActiveListener& l);
  void onChainClosed(ConnectionRecord& record, CloseReason reason, std::string_view detail);
  void linkConnection(ConnectionRecord* r);
  void unlinkConnection(ConnectionRecord* r);
  void closeListeningSockets();
  // Closes every client connection with reason `shutdown` and `mode` (for
  // kAbort: also those still flushing).
  void closeAll(std::string_view detail, Connection::CloseMode mode);
  // Ends the loop once stopping and no connection is left (once).
  void finishStopIfIdle();

  size_t index_;
  size_t count_;
  std::shared_ptr<const GatewayConfig> config_;  // the current generation
  Dispatcher dispatcher_;
  WorkerServices services_;  // before listeners_: factories use it until destroyed
  std::shared_ptr<AccessLog> access_log_;
  std::vector<std::unique_ptr<ActiveListener>> listeners_;
  ReserveFd reserve_;  // spare fd for shedPending()
  // Live connections (owned: deleted when unlinked, or by ~Worker). An
  // intrusive doubly linked list: no allocation besides the record itself.
  ConnectionRecord* connections_ = nullptr;
  std::atomic<size_t> active_{0};
  std::atomic<bool> running_{false};
  // Stop state (worker thread): set by stop(); the loop's exit requested;
  // closes that dropped output; the grace timer (aborts what is left).
  bool stopping_ = false;
  bool exit_requested_ = false;
  size_t forced_closes_ = 0;
  Timer shutdown_grace_;
  std::thread thread_;
};

}  // namespace gw
