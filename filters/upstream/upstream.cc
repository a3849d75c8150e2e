#include "filters/upstream/upstream.h"

#include <event2/buffer.h>

#include "core/sdk/clock.h"
#include "core/sdk/error_frame.h"
#include "core/sdk/log.h"

namespace gw {
namespace upstream {

UpstreamFilter::UpstreamFilter(UpstreamFactory& factory)
    : factory_(factory), created_at_(preciseNow()) {}

UpstreamFilter::~UpstreamFilter() {
  // Not session_->id: the filter that published the SessionInfo may be
  // destroyed already (a chain torn down without a close).
  if (registered_id_ != 0) factory_.worker().unregisterSession(registered_id_, this);
}

FilterStatus UpstreamFilter::onNewConnection() {
  callbacks().slots().set<RouteResolver>(this);
  return FilterStatus::kContinue;
}

const std::string* UpstreamFilter::clusterFor(const wire::ClientHeader& header) const {
  ClusterPool* pool =
      pinned_pool_ != nullptr ? pinned_pool_ : factory_.route(header, *this, /*commit=*/false);
  return pool == nullptr ? nullptr : &pool->name();
}

void UpstreamFilter::ensureSession() {
  if (session_ == nullptr) {
    session_ = callbacks().slots().get<SessionInfo>();
    if (session_ == nullptr) {
      own_session_ = std::make_unique<SessionInfo>();
      own_session_->id = SessionIdGenerator::process().next();
      session_ = own_session_.get();
      callbacks().slots().set<SessionInfo>(session_);
    }
  }
  if (registered_id_ == 0) {
    factory_.worker().registerSession(session_->id, this);
    registered_id_ = session_->id;
    // A resumed session whose old connection lingers on this worker: this
    // connection takes over (backends get session open "resume" on its
    // first frame, never a close).
    if (session_->resumed) factory_.linger().takeOver(session_->id);
  }
}

UpstreamFilter::Affinity& UpstreamFilter::affinityFor(ClusterPool& pool) {
  for (auto& a : affinity_)
    if (a.pool == &pool) return a;
  affinity_.push_back(Affinity{&pool});
  Affinity& a = affinity_.back();
  // A resumed session carries the host it used (maybe on another replica):
  // prefer it while it is up.
  std::string_view host =
      session_->observer != nullptr ? session_->observer->affinityFor(pool.name()) : "";
  if (!host.empty()) {
    if (HostPool* h = pool.findHost(host)) {
      a.host = h;
      ++h->sessions;
    }
  }
  return a;
}

void UpstreamFilter::noteAffinity(ClusterPool& pool, HostPool& h) {
  if (session_->observer != nullptr) session_->observer->onAffinityChanged(pool.name(), h.name);
}

void UpstreamFilter::sendError(ClusterPool* pool, uint16_t msg_id, ErrorCode code) {
  if (pool != nullptr) pool->stats().errors[static_cast<size_t>(code)]->inc();
  std::string payload = errorFramePayload(code, msg_id);
  callbacks().sendFrame(kErrorMsgId, 0, payload);
}

BackendConnection* UpstreamFilter::connectionFor(ClusterPool& pool, HostPool& h, ErrorCode* why) {
  const CompatConfig& compat = pool.config().compat;
  if (compat.enabled && compat.connection_per_session)
    return pool.openForSession(h, session_->id, why);
  *why = ErrorCode::kUpstreamUnavailable;
  return pool.pickConnection(h);
}

FilterStatus UpstreamFilter::onFrame(Frame& frame) {
  ensureSession();
  ClusterPool* routed =
      pinned_pool_ != nullptr ? pinned_pool_ : factory_.route(frame.header, *this, /*commit=*/true);
  if (routed == nullptr) {
    factory_.noRoute()->inc();
    factory_.routingNotFound()->inc();
    sendError(nullptr, frame.header.msg_id, ErrorCode::kNoRoute);
    return FilterStatus::kStopIteration;
  }
  ClusterPool& pool = *routed;
  const CompatConfig& compat = pool.config().compat;
  if (compat.enabled && compat.routing == CompatConfig::Routing::kPerConnection)
    pinned_pool_ = &pool;
  // Host set or states changed (one atomic load otherwise): may move this
  // session (maint) before it is used.
  pool.refreshIfStale();
  Affinity& a = affinityFor(pool);
  if (a.conn == nullptr || !a.conn->open()) {
    HostPool* h = pool.pickHost(session_->id, a.host);
    if (h == nullptr) {
      sendError(&pool, frame.header.msg_id, ErrorCode::kUpstreamUnavailable);
      return FilterStatus::kStopIteration;
    }
    ErrorCode why = ErrorCode::kUpstreamUnavailable;
    BackendConnection* conn = connectionFor(pool, *h, &why);
    if (conn == nullptr) {
      if (why == ErrorCode::kUpstreamUnavailable) pool.stats().routing_connection_failed->inc();
      sendError(&pool, frame.header.msg_id, why);
      return FilterStatus::kStopIteration;
    }
    // a.host is the host the owner knows (its affinityFor() answer, or the
    // last one reported): report only a change.
    bool changed = a.host != h;
    if (changed) {
      if (a.host != nullptr) --a.host->sessions;
      ++h->sessions;
      a.host = h;
    }
    a.conn = conn;
    h->stats->go.requests_success->inc();
    if (changed) noteAffinity(pool, *h);
  }
  BackendConnection& conn = *a.conn;
  if (conn.connecting() && conn.pendingFrames() >= pool.config().max_pending_frames) {
    pool.stats().connect_queue_refused->inc();
    sendError(&pool, frame.header.msg_id, ErrorCode::kUpstreamOverflow);
    return FilterStatus::kStopIteration;
  }
  // The connection's output is shared: a frame is refused only when its own
  // session or client IP holds more than its share (output_shares.h).
  PeerKey ip = PeerKey::of(callbacks().connection().peer());
  ShareVerdict verdict = conn.admit(session_->id, ip, factory_.config().shares);
  if (verdict != ShareVerdict::kAdmit) {
    pool.stats().output_refused[static_cast<size_t>(verdict)]->inc();
    sendError(&pool, frame.header.msg_id, ErrorCode::kUpstreamOverflow);
    return FilterStatus::kStopIteration;
  }
  size_t bytes = conn.sendData(*session_, ip, frame);
  uint8_t type = frame.header.serverType();
  pool.stats().frames_out->inc();
  pool.stats().bytes_out->inc(bytes);
  pool.stats().messagesOut(type).inc();
  conn.host().stats->go.bytes_request->inc(bytes);
  a.service_type = type;
  if (!a.awaiting()) {
    a.sent_at = preciseNow();
  }
  if (created_at_ != std::chrono::steady_clock::time_point{}) {
    auto since_accept = preciseNow() - created_at_;
    created_at_ = {};
    pool.stats().setupLatency(type).observe(std::chrono::duration<double>(since_accept).count());
  }
  pool.publish(UpstreamEvent::Type::kFrameSent, conn.host(), session_->id);
  return FilterStatus::kStopIteration;
}

void UpstreamFilter::deliver(ClusterPool& pool, const wire::ServerHeader& header,
                             evbuffer* payload_src) {
  for (auto& a : affinity_) {
    if (a.pool != &pool) continue;
    pool.stats().messagesIn(a.service_type).inc();
    if (a.awaiting()) {
      double d = std::chrono::duration<double>(preciseNow() - a.sent_at).count();
      a.sent_at = {};
      pool.stats().latency(a.service_type).observe(d);
      if (a.host != nullptr) a.host->stats->go.request_latency->observe(d);
    }
    break;
  }
  wire::ClientHeader h;
  h.length = static_cast<uint16_t>(header.payloadLength());
  h.msg_id = static_cast<uint16_t>(header.type);
  h.server_id = 0;
  Frame frame(h, payload_src);
  callbacks().writeFrame(frame);
  if (!factory_.bus().empty() && registered_id_ != 0) {
    for (auto& a : affinity_) {
      if (a.pool == &pool && a.host != nullptr) {
        pool.publish(UpstreamEvent::Type::kFrameReceived, *a.host, session_->id);
        break;
      }
    }
  }
}

void UpstreamFilter::kick(const std::string& by) {
  if (session_ != nullptr) session_->end = SessionInfo::End::kFinal;  // no linger after a kick
  callbacks().close(CloseReason::kKicked, "kicked by backend " + by,
                    Connection::CloseMode::kFlush);
}

void UpstreamFilter::bindPlayer(uint64_t player_id) {
  if (session_ == nullptr) return;
  session_->player_id = player_id;
  // The owner may close this connection (duplicate login, refuse_new).
  if (session_->observer != nullptr) session_->observer->onPlayerBound(player_id);
}

void UpstreamFilter::onBackendGone(ClusterPool& pool, BackendConnection* conn) {
  for (auto& a : affinity_) {
    if (a.pool == &pool && a.conn == conn) {
      a.conn = nullptr;
      a.sent_at = {};
    }
  }
}

void UpstreamFilter::endWithBackend(ClusterPool& pool, BackendConnection* conn, CloseReason reason,
                                    std::string_view detail) {
  onBackendGone(pool, conn);
  if (session_ != nullptr) session_->end = SessionInfo::End::kFinal;
  callbacks().close(reason,
                    "the session's own backend connection to " + conn->host().name +
                        " closed: " + std::string(detail),
                    Connection::CloseMode::kFlush);
}

void UpstreamFilter::leaveHost(ClusterPool& pool, HostPool& host) {
  for (auto& a : affinity_) {
    if (a.pool != &pool || a.host != &host) continue;
    BackendConnection* conn = a.conn;
    if (conn != nullptr && conn->dedicatedTo() != 0) {
      // Its own connection closes with the host: the session ends.
      a.conn = nullptr;
      pool.closeSessionConnection(conn);
      if (session_ != nullptr) session_->end = SessionInfo::End::kFinal;
      callbacks().close(CloseReason::kUpstreamClosed,
                        "backend host " + host.name + " went into maint",
                        Connection::CloseMode::kFlush);
      continue;
    }
    a.conn = nullptr;
    a.sent_at = {};
    --host.sessions;
    a.host = nullptr;
    if (conn != nullptr) conn->closeSession(session_->id);
  }
}

void UpstreamFilter::refuse(ClusterPool& pool, uint16_t msg_id, ErrorCode code) {
  sendError(&pool, msg_id, code);
}

void UpstreamFilter::closeDedicated() {
  for (auto& a : affinity_) {
    if (a.conn == nullptr || a.conn->dedicatedTo() == 0) continue;
    BackendConnection* conn = a.conn;
    a.conn = nullptr;
    conn->forgetSession(session_->id);
    a.pool->closeSessionConnection(conn);
  }
}

void UpstreamFilter::onClose(CloseReason) {
  // Connections of its own close with the session; they never linger.
  closeDedicated();
  // A session published by an owner that never reached this filter (the
  // client left after a control frame) still lingers uniformly.
  SessionInfo* s = session_ != nullptr ? session_ : callbacks().slots().get<SessionInfo>();
  SessionInfo::End end = s != nullptr ? s->end : SessionInfo::End::kDefault;
  if (s != nullptr && end == SessionInfo::End::kDefault && s->linger.count() > 0) {
    // The client may resume: keep the backend bindings for the linger; the
    // keeper sends session close only if nobody resumes the session.
    std::vector<LingerKeeper::Binding> bindings;
    for (auto& a : affinity_) bindings.push_back({a.pool, a.host, a.conn});
    affinity_.clear();
    factory_.linger().park(s->id, std::move(bindings), s->linger);
  }
  for (auto& a : affinity_) {
    if (a.conn != nullptr) {
      if (end == SessionInfo::End::kMoved) {
        a.conn->forgetSession(session_->id);  // it continues elsewhere: backends hear nothing
      } else {
        a.conn->closeSession(session_->id);
      }
    }
    a.conn = nullptr;
    if (a.host != nullptr) --a.host->sessions;
    a.host = nullptr;
  }
  if (registered_id_ != 0) {
    factory_.worker().unregisterSession(session_->id, this);
    registered_id_ = 0;
  }
}

UpstreamFactory::UpstreamFactory(std::shared_ptr<const UpstreamConfig> config,
                                 WorkerContext& worker)
    : config_(std::move(config)),
      routes_(&config_->routes),
      worker_(worker.services.get<UpstreamWorker>()),
      no_route_(&stats::StatsRegistry::get().counter(
          "game_gateway_upstream_no_route_total", "Client frames that matched no route rule.",
          {{"listener", worker.listener}})),
      routing_not_found_(&stats::StatsRegistry::get().counter(
          kGoRoutingErrorsMetric, kGoRoutingErrorsHelp, {{"error_type", "not_found"}})) {
  worker_.init(worker.dispatcher, worker.services, worker.worker_index, worker.worker_count,
               ClusterManager::process());
  for (const auto& c : config_->clusters) pools_.push_back(&worker_.acquire(c));
  if (config_->routes_from_redis && config_->routes_from_redis->format == RoutesFormat::kGo) {
    redis_routes_ = std::make_unique<RedisRoutes>(
        worker.dispatcher, *config_->routes_from_redis, worker.worker_index, worker.listener,
        [this](std::shared_ptr<const GoRouteTable> table) { applyGo(std::move(table)); });
    redis_routes_->start();
  } else if (config_->routes_from_redis) {
    redis_routes_ = std::make_unique<RedisRoutes>(
        worker.dispatcher, *config_->routes_from_redis, config_->clusters, worker.worker_index,
        worker.listener, [this](std::shared_ptr<const RouteTable> table) {
          redis_table_ = std::move(table);
          routes_ = redis_table_.get();
        });
    redis_routes_->start();
  }
}

UpstreamFactory::~UpstreamFactory() {
  redis_routes_.reset();
  // The pools stay with the worker (the next generation uses them); one no
  // generation uses any more closes its idle connections.
  for (ClusterPool* p : pools_) worker_.release(*p);
  for (auto& [name, p] : go_acquired_) worker_.release(*p);
}

void UpstreamFactory::applyGo(std::shared_ptr<const GoRouteTable> table) {
  const RoutesFromRedis& r = *config_->routes_from_redis;
  ClusterManager& manager = worker_.manager();
  std::vector<ClusterPool*> pools;
  for (const HostSpec& endpoint : table->rules().endpoints()) {
    ClusterConfig c = goEndpointClusterConfig(r.endpoint_template, endpoint);
    auto it = go_acquired_.find(c.name);
    if (it == go_acquired_.end()) it = go_acquired_.emplace(c.name, &worker_.acquire(c)).first;
    pools.push_back(it->second);
    // Once per process (worker 0); again after a reload took it out. A
    // name's hosts come from the runtime's resolver (none until resolved).
    if (worker_.workerIndex() == 0 && manager.hosts(c.name) == nullptr) {
      if (endpoint.address) manager.replaceHosts(c.name, "go_routes", {ClusterHost{*endpoint.address}});
      else manager.resolveNames(c);
    }
  }
  go_pools_ = std::move(pools);
  go_table_ = std::move(table);
}

std::unique_ptr<Filter> UpstreamFactory::createFilter() {
  return std::make_unique<UpstreamFilter>(*this);
}

}  // namespace upstream
}  // namespace gw
