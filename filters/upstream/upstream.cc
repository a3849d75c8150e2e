#include "filters/upstream/upstream.h"

#include <event2/buffer.h>

#include "config/duration.h"
#include "core/error_frame.h"
#include "core/log.h"
#include "filters/upstream/upstream_schema.h"

namespace gw {
namespace upstream {

UpstreamFilter::UpstreamFilter(UpstreamFactory& factory) : factory_(factory) {}

UpstreamFilter::~UpstreamFilter() {
  if (registered_) factory_.unregisterSession(session_->id, this);
}

FilterStatus UpstreamFilter::onNewConnection() {
  callbacks().slots().set<RouteResolver>(this);
  return FilterStatus::kContinue;
}

const std::string* UpstreamFilter::clusterFor(const wire::ClientHeader& header) const {
  int c = factory_.config().routes.resolve(header);
  return c == RouteTable::kNoRoute ? nullptr : &factory_.config().clusters[static_cast<size_t>(c)].name;
}

void UpstreamFilter::ensureSession() {
  if (session_ == nullptr) {
    session_ = callbacks().slots().get<SessionInfo>();
    if (session_ == nullptr) {
      own_session_.id = SessionIdGenerator::process().next();
      session_ = &own_session_;
      callbacks().slots().set<SessionInfo>(session_);
    }
  }
  if (!registered_) {
    factory_.registerSession(session_->id, this);
    registered_ = true;
  }
}

UpstreamFilter::Affinity& UpstreamFilter::affinityFor(ClusterPool& pool) {
  for (auto& a : affinity_)
    if (a.pool == &pool) return a;
  affinity_.push_back(Affinity{&pool});
  return affinity_.back();
}

void UpstreamFilter::sendError(ClusterPool* pool, uint16_t msg_id, ErrorCode code) {
  if (pool != nullptr) pool->stats().errors[static_cast<size_t>(code)]->inc();
  std::string payload = errorFramePayload(code, msg_id);
  callbacks().sendFrame(kErrorMsgId, 0, payload);
}

FilterStatus UpstreamFilter::onFrame(Frame& frame) {
  ensureSession();
  int c = factory_.config().routes.resolve(frame.header);
  if (c == RouteTable::kNoRoute) {
    factory_.noRoute()->inc();
    sendError(nullptr, frame.header.msg_id, ErrorCode::kNoRoute);
    return FilterStatus::kStopIteration;
  }
  ClusterPool& pool = factory_.pool(c);
  Affinity& a = affinityFor(pool);
  if (a.conn == nullptr || !a.conn->open()) {
    int h = pool.pickHost(session_->id, a.host);
    if (h < 0) {
      sendError(&pool, frame.header.msg_id, ErrorCode::kUpstreamUnavailable);
      return FilterStatus::kStopIteration;
    }
    BackendConnection* conn = pool.pickConnection(static_cast<size_t>(h));
    if (conn == nullptr) {
      sendError(&pool, frame.header.msg_id, ErrorCode::kUpstreamUnavailable);
      return FilterStatus::kStopIteration;
    }
    if (a.host != h) {
      if (a.host >= 0) --pool.host(static_cast<size_t>(a.host)).sessions;
      ++pool.host(static_cast<size_t>(h)).sessions;
      a.host = h;
    }
    a.conn = conn;
  }
  BackendConnection& conn = *a.conn;
  if ((conn.connecting() && conn.pendingFrames() >= pool.config().max_pending_frames) ||
      conn.bufferedOutput() > factory_.config().max_backend_output_bytes) {
    sendError(&pool, frame.header.msg_id, ErrorCode::kUpstreamOverflow);
    return FilterStatus::kStopIteration;
  }
  size_t bytes = conn.sendData(session_->id, session_->resumed, frame);
  pool.stats().frames_out->inc();
  pool.stats().bytes_out->inc(bytes);
  if (!a.awaiting) {
    a.awaiting = true;
    a.sent_at = factory_.dispatcher().now();
  }
  pool.publish(UpstreamEvent::Type::kFrameSent, conn.host(), session_->id);
  return FilterStatus::kStopIteration;
}

void UpstreamFilter::deliver(ClusterPool& pool, const wire::ServerHeader& header,
                             evbuffer* payload_src) {
  for (auto& a : affinity_) {
    if (a.pool == &pool && a.awaiting) {
      a.awaiting = false;
      auto d = factory_.dispatcher().now() - a.sent_at;
      pool.stats().latency->observe(std::chrono::duration<double>(d).count());
      break;
    }
  }
  wire::ClientHeader h;
  h.length = static_cast<uint16_t>(header.payloadLength());
  h.msg_id = static_cast<uint16_t>(header.type);
  h.server_id = 0;
  Frame frame(h, payload_src);
  callbacks().writeFrame(frame);
  if (!factory_.bus().empty() && registered_) {
    for (auto& a : affinity_) {
      if (a.pool == &pool && a.host >= 0) {
        pool.publish(UpstreamEvent::Type::kFrameReceived, pool.host(static_cast<size_t>(a.host)),
                     session_->id);
        break;
      }
    }
  }
}

void UpstreamFilter::kick(const std::string& by) {
  callbacks().close(CloseReason::kKicked, "kicked by backend " + by,
                    Connection::CloseMode::kFlush);
}

void UpstreamFilter::onBackendGone(ClusterPool& pool, BackendConnection* conn) {
  for (auto& a : affinity_) {
    if (a.pool == &pool && a.conn == conn) {
      a.conn = nullptr;
      a.awaiting = false;
    }
  }
}

void UpstreamFilter::refuse(ClusterPool& pool, uint16_t msg_id, ErrorCode code) {
  sendError(&pool, msg_id, code);
}

void UpstreamFilter::onClose(CloseReason) {
  for (auto& a : affinity_) {
    if (a.conn != nullptr) a.conn->closeSession(session_->id);
    a.conn = nullptr;
    if (a.host >= 0) --a.pool->host(static_cast<size_t>(a.host)).sessions;
    a.host = -1;
  }
  if (registered_) {
    factory_.unregisterSession(session_->id, this);
    registered_ = false;
  }
}

UpstreamFactory::UpstreamFactory(std::shared_ptr<const UpstreamConfig> config,
                                 WorkerContext& worker)
    : config_(std::move(config)),
      dispatcher_(worker.dispatcher),
      bus_(worker.services.get<UpstreamEventBus>()),
      availability_(worker.services.get<HostAvailabilitySlot>()),
      no_route_(&stats::StatsRegistry::get().counter(
          "game_gateway_upstream_no_route_total", "Client frames that matched no route rule.",
          {{"listener", worker.listener}})) {
  for (const auto& c : config_->clusters)
    pools_.push_back(std::make_unique<ClusterPool>(*this, c, worker.worker_index, worker.worker_count));
}

UpstreamFactory::~UpstreamFactory() = default;

std::unique_ptr<Filter> UpstreamFactory::createFilter() {
  return std::make_unique<UpstreamFilter>(*this);
}

class UpstreamConfigFactory : public FilterConfigFactory {
 public:
  std::string_view name() const override { return "upstream"; }
  FilterTraits traits() const override {
    FilterTraits t;
    t.consumes = Layer::kFrames;
    t.terminal = true;
    return t;
  }
  std::string_view schema() const override { return kUpstreamSchema; }
  std::shared_ptr<const FilterConfig> parse(const rapidjson::Value& json,
                                            ParseContext& ctx) const override {
    auto cfg = std::make_shared<UpstreamConfig>();
    const auto& routes = json["routes"];
    bool ok = true;
    for (rapidjson::SizeType i = 0; i < routes.Size(); ++i) {
      std::string at = "/routes/" + std::to_string(i);
      std::string why;
      auto m = RouteTable::parseMatch(routes[i]["match"].GetString(), &why);
      if (!m) {
        ctx.fail(at + "/match", why);
        ok = false;
        continue;
      }
      std::string name = routes[i]["cluster"].GetString();
      const ClusterConfig* cluster = ctx.findCluster(name);
      if (cluster == nullptr) {
        std::string known;
        for (const auto& c : ctx.clusters()) known += (known.empty() ? "" : ", ") + c.name;
        ctx.fail(at + "/cluster", "unknown cluster \"" + name + "\"; defined clusters: " +
                                      (known.empty() ? "(none: add one under /clusters)" : known));
        ok = false;
        continue;
      }
      int index = -1;
      for (size_t k = 0; k < cfg->clusters.size(); ++k)
        if (cfg->clusters[k].name == name) index = static_cast<int>(k);
      if (index < 0) {
        cfg->clusters.push_back(*cluster);
        index = static_cast<int>(cfg->clusters.size() - 1);
      }
      cfg->routes.add(m->first, m->second, index);
    }
    if (json.HasMember("max_backend_output_bytes"))
      cfg->max_backend_output_bytes = json["max_backend_output_bytes"].GetUint64();
    if (!ok) return nullptr;
    return cfg;
  }
  std::unique_ptr<FilterFactory> createFactory(std::shared_ptr<const FilterConfig> config,
                                               WorkerContext& worker) const override {
    return std::make_unique<UpstreamFactory>(
        std::static_pointer_cast<const UpstreamConfig>(config), worker);
  }
};

GW_REGISTER_FILTER(UpstreamConfigFactory);

}  // namespace upstream
}  // namespace gw
