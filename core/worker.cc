#include "core/worker.h"

#include <event2/event.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/sdk/clock.h"
#include "core/sdk/log.h"
#include "core/sdk/session_info.h"

namespace gw {
namespace {

// Connection lifetimes, in seconds: 1 s to 1 day.
const std::vector<double>& durationBuckets() {
  static const std::vector<double> b = {0.1, 1, 10, 60, 300, 900, 1800, 3600, 7200, 21600, 86400};
  return b;
}

}  // namespace

ListenerStats::ListenerStats(const std::string& listener) {
  auto& reg = stats::StatsRegistry::get();
  stats::Labels labels = {{"listener", listener}};
  accepted = &reg.counter("game_gateway_connections_total", "Client connections accepted.", labels);
  active = &reg.gauge("game_gateway_connections_active", "Client connections open.", labels);
  duration = &reg.histogram("game_gateway_connection_duration_seconds",
                            "Client connection lifetimes (observed at close).", labels,
                            durationBuckets());
  const char* bytes_help = "Bytes from (in) and to (out) clients, counted when a connection closes.";
  bytes_in = &reg.counter("game_gateway_client_bytes_total", bytes_help,
                          {{"listener", listener}, {"direction", "in"}});
  bytes_out = &reg.counter("game_gateway_client_bytes_total", bytes_help,
                           {{"listener", listener}, {"direction", "out"}});
  const char* log_help = "Access log lines by result (written, or skipped by sample_rate).";
  access_logged = &reg.counter("game_gateway_access_log_lines_total", log_help,
                               {{"listener", listener}, {"result", "written"}});
  access_sampled_out = &reg.counter("game_gateway_access_log_lines_total", log_help,
                                    {{"listener", listener}, {"result", "sampled_out"}});
  shutdown_forced = &reg.counter(
      "game_gateway_shutdown_forced_closes_total",
      "Client connections a stop closed with output still unsent: the client did not take its "
      "goodbye (queued frames, WebSocket close, TLS close_notify) within the shutdown grace.",
      labels);
  for (size_t r = 0; r < kCloseReasonCount; ++r) {
    closes[r] = &reg.counter(
        "game_gateway_connection_closes_total", "Client connections closed, by reason.",
        {{"listener", listener},
         {"reason", std::string(closeReasonName(static_cast<CloseReason>(r)))}});
  }
}

Worker::Worker(size_t index, size_t count, std::shared_ptr<const GatewayConfig> config)
    : index_(index),
      count_(count),
      config_(std::move(config)),
      dispatcher_("worker-" + std::to_string(index)),
      shutdown_grace_(dispatcher_, [this] {
        closeAll("gateway stopping; output not taken within the grace",
                 Connection::CloseMode::kAbort);
        finishStopIfIdle();
      }) {}

static_assert(sizeof(void*) != 8 || sizeof(FilterChain) <= 160,
              "FilterChain grew past 160 bytes (an idle connection pays for it)");

Worker::ConnectionRecord::ConnectionRecord(const ChainSetRef& set,
                                           std::unique_ptr<Connection> conn)
    : chains(set),
      accepted_at(preciseNow()),
      chain(std::move(conn), chains->elements, &chains->limits, &Worker::onChainClosedThunk,
            this) {}

void Worker::onChainClosedThunk(void* context, FilterChain&, CloseReason reason,
                                std::string_view detail) {
  auto* record = static_cast<ConnectionRecord*>(context);
  record->listener().worker->onChainClosed(*record, reason, detail);
}

void Worker::linkConnection(ConnectionRecord* r) {
  r->prev = nullptr;
  r->next = connections_;
  if (connections_ != nullptr) connections_->prev = r;
  connections_ = r;
}

void Worker::unlinkConnection(ConnectionRecord* r) {
  if (r->prev != nullptr) {
    r->prev->next = r->next;
  } else {
    connections_ = r->next;
  }
  if (r->next != nullptr) r->next->prev = r->prev;
  r->prev = r->next = nullptr;
}

Worker::~Worker() {
  join();
  while (connections_ != nullptr) {
    ConnectionRecord* r = connections_;
    unlinkConnection(r);
    delete r;
  }
  closeListeningSockets();
}

void Worker::closeListeningSockets() {
  for (auto& l : listeners_) {
    if (l->guard) l->guard->cancel();
    if (l->accept_ev) event_free(l->accept_ev);
    l->accept_ev = nullptr;
    if (l->fd >= 0) ::close(l->fd);
    l->fd = -1;
  }
}

Worker::ChainSetRef Worker::buildChains(const std::shared_ptr<const GatewayConfig>& config,
                                        const ListenerConfig& listener, ActiveListener& active) {
  ChainSetRef set(new ChainSet());
  set->listener = &active;
  set->config = config;
  set->limits = listener.output;
  set->liveness = listener.liveness;
  WorkerContext ctx{dispatcher_, index_, count_, config->clusters, listener.name, services_};
  for (const auto& f : listener.filters) {
    set->factories.push_back(f.factory->createFactory(f.config, ctx));
    set->elements.push_back({set->factories.back().get(), f.traits});
  }
  return set;
}

void Worker::addListener(const ListenerConfig& listener, int fd) {
  auto l = std::make_unique<ActiveListener>();
  l->worker = this;
  l->name = listener.name;
  l->fd = fd;
  l->stats = std::make_unique<ListenerStats>(listener.name);
  l->chains = buildChains(config_, listener, *l);
  l->accept_ev = event_new(dispatcher_.base(), fd, EV_READ | EV_PERSIST, &Worker::onAcceptable,
                           l.get());
  event_add(l->accept_ev, nullptr);
  ActiveListener* raw = l.get();
  l->guard = std::make_unique<AcceptGuard>(
      dispatcher_, listener.name,
      [raw](bool watching) {
        if (raw->accept_ev == nullptr) return;  // closed meanwhile
        if (watching) {
          event_add(raw->accept_ev, nullptr);
        } else {
          event_del(raw->accept_ev);
        }
      },
      [this] { reserve_.restore(); });
  listeners_.push_back(std::move(l));
}

void Worker::start() {
  dispatcher_.post([this] { running_.store(true, std::memory_order_release); });
  thread_ = std::thread([this] {
    stats::setThreadShard(index_);
    dispatcher_.run();
  });
}

void Worker::join() {
  if (thread_.joinable()) thread_.join();
}

void Worker::stopAccepting() {
  dispatcher_.post([this] { closeListeningSockets(); });
}

void Worker::reload(std::shared_ptr<const GatewayConfig> config, std::shared_ptr<AccessLog> log,
                    std::function<void()> done) {
  dispatcher_.post([this, config = std::move(config), log = std::move(log),
                    done = std::move(done)]() mutable {
    // Factories are built here, on the worker's thread: they may create
    // timers on its loop and objects in its WorkerServices.
    for (auto& l : listeners_) {
      for (const auto& lc : config->listeners) {
        if (lc.name == l->name) l->chains = buildChains(config, lc, *l);
      }
    }
    config_ = std::move(config);
    access_log_ = std::move(log);
    if (done) done();
  });
}

void Worker::stop() {
  dispatcher_.post([this] {
    closeListeningSockets();
    stopping_ = true;
    shutdown_grace_.enable(kShutdownGrace);
    closeAll("gateway stopping", Connection::CloseMode::kFlush);
    finishStopIfIdle();
  });
}

void Worker::closeAll(std::string_view detail, Connection::CloseMode mode) {
  // Closing runs onChainClosed, which unlinks from the list: copy first
  // (records are deleted later: deferredDelete).
  std::vector<FilterChain*> open;
  for (ConnectionRecord* r = connections_; r != nullptr; r = r->next) open.push_back(&r->chain);
  for (FilterChain* c : open) c->close(CloseReason::kShutdown, detail, mode);
}

void Worker::finishStopIfIdle() {
  if (!stopping_ || exit_requested_ || connections_ != nullptr) return;
  exit_requested_ = true;
  shutdown_grace_.disable();
  if (forced_closes_ > 0) {
    GW_LOG(warn, "{}: shutdown: {} connection(s) did not take their output within {} ms; "
                 "forced closed",
           dispatcher_.name(), forced_closes_, kShutdownGrace.count());
  }
  // Posted: the loop turn that closed the last client runs to its end first,
  // so what filters wrote on their backend connections meanwhile (session
  // closes) is flushed before the loop ends.
  dispatcher_.exit();
}

void Worker::onAcceptable(int, short, void* arg) {
  auto* l = static_cast<ActiveListener*>(arg);
  l->worker->acceptFrom(*l);
}

void Worker::acceptFrom(ActiveListener& l) {
  // Bounded batch per readiness so one listener cannot starve the loop.
  for (int i = 0; i < 64 && l.fd >= 0; ++i) {
    sockaddr_storage ss;
    socklen_t len = sizeof(ss);
    int fd = accept4(l.fd, reinterpret_cast<sockaddr*>(&ss), &len, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (fd < 0) {
      int err = errno;
      if (err == EAGAIN || err == EWOULDBLOCK || err == EINTR) return;
      if (err == ECONNABORTED) continue;  // that client gave up; the next may be there
      // The socket stays readable while connections wait, so returning
      // without pausing would spin: AcceptGuard stops watching it for a
      // backoff. At the fd limit, the waiting clients are closed first.
      std::string detail;
      if (err == EMFILE || err == ENFILE) {
        if (size_t shed = shedPending(l))
          detail = "; closed " + std::to_string(shed) + " waiting connections";
      }
      l.guard->failed(err, detail);
      return;
    }
    l.guard->succeeded();
    setNoDelay(fd);
    std::string why;
    if (!setTcpLiveness(fd, l.chains->liveness, &why)) {
      // The values passed the config checks: a kernel without an option.
      // Serve the client anyway, without dead-peer detection.
      GW_LOG(debug, "listener {}: {}", l.name, why);
    }
    auto conn = std::make_unique<Connection>(dispatcher_, fd,
                                             Address(reinterpret_cast<sockaddr*>(&ss), len), false);
    auto* record = new ConnectionRecord(l.chains, std::move(conn));
    linkConnection(record);
    active_.fetch_add(1, std::memory_order_relaxed);
    l.stats->accepted->inc();
    l.stats->active->inc();
    record->chain.start();
  }
}

size_t Worker::shedPending(ActiveListener& l) {
  if (!reserve_.release()) return 0;
  size_t shed = 0;
  for (; shed < 64; ++shed) {
    int fd = accept4(l.fd, nullptr, nullptr, SOCK_CLOEXEC);
    if (fd < 0) break;
    ::close(fd);
  }
  reserve_.restore();  // fails if another thread took the slot; retried on resume
  l.guard->shed().inc(shed);
  return shed;
}

void Worker::onChainClosed(ConnectionRecord& record, CloseReason reason,
                           std::string_view detail) {
  ActiveListener& l = record.listener();
  FilterChain& chain = record.chain;
  ListenerStats& st = *l.stats;
  st.active->dec();
  st.closes[static_cast<size_t>(reason)]->inc();
  Connection& conn = chain.connection();
  if (stopping_ && reason == CloseReason::kShutdown && conn.bufferedOutput() > 0) {
    ++forced_closes_;  // by the grace timer or the flush's own bound
    st.shutdown_forced->inc();
  }
  st.bytes_in->inc(conn.bytesRead());
  st.bytes_out->inc(conn.bytesWritten());
  GW_LOG(debug, "{}: connection from {} closed: {} ({})", dispatcher_.name(),
         conn.peer().toString(), closeReasonName(reason), detail);
  auto lifetime = preciseNow() - record.accepted_at;
  st.duration->observe(std::chrono::duration<double>(lifetime).count());
  if (access_log_ && access_log_->config().enabled) {
    if (access_log_->sample()) {
      AccessLogEntry e;
      e.time = std::chrono::system_clock::now();
      e.listener = l.name;
      e.worker = index_;
      e.client = &conn.peer();
      const SessionInfo* session = chain.slots().get<SessionInfo>();
      e.session_id = session ? session->id : 0;
      e.trace = session ? &session->trace : nullptr;
      e.duration = std::chrono::duration_cast<std::chrono::nanoseconds>(lifetime);
      e.bytes_in = conn.bytesRead();
      e.bytes_out = conn.bytesWritten();
      e.frames_in = chain.framesIn();
      e.frames_out = chain.framesOut();
      e.reason = reason;
      e.detail = detail;
      access_log_->write(e);
      st.access_logged->inc();
    } else {
      st.access_sampled_out->inc();
    }
  }
  unlinkConnection(&record);
  dispatcher_.deferredDelete(std::unique_ptr<DeferredDeletable>(&record));
  active_.fetch_sub(1, std::memory_order_relaxed);
  finishStopIfIdle();
}

}  // namespace gw
