#include "filters/tcp_proxy/tcp_proxy.h"

#include <event2/buffer.h>

#include "core/sdk/clock.h"
#include "core/sdk/log.h"
#include "filters/tcp_proxy/tcp_proxy_schema.h"

namespace gw {
namespace tcp_proxy {

TcpProxyFilter::TcpProxyFilter(TcpProxyFactory& factory, const TcpProxyConfig& config)
    : factory_(factory), config_(config) {}

TcpProxyFilter::~TcpProxyFilter() {
  if (upstream_) upstream_->setCallbacks(nullptr);
}

FilterStatus TcpProxyFilter::onNewConnection() {
  std::optional<Address> picked = factory_.pickHost();
  if (!picked) {
    std::string why = "cluster '" + config_.cluster.name + "' has no ready host";
    GW_LOG(warn, "tcp_proxy: {}", why);
    callbacks().close(CloseReason::kUpstreamConnectFailed, why, Connection::CloseMode::kAbort);
    return FilterStatus::kStopIteration;
  }
  const Address& host = *picked;
  std::string why;
  int fd = connectSocket(host, config_.cluster.liveness, &why);
  if (fd < 0) {
    factory_.onConnectFailed();
    GW_LOG(warn, "tcp_proxy: cluster '{}': {}", config_.cluster.name, why);
    callbacks().close(CloseReason::kUpstreamConnectFailed, why, Connection::CloseMode::kAbort);
    return FilterStatus::kStopIteration;
  }
  upstream_ = std::make_unique<Connection>(factory_.dispatcher(), fd, host, true);
  upstream_->setCallbacks(this);
  size_t high = config_.buffer_high_watermark;
  upstream_->setWatermarks(high / 4, high);
  factory_.connectTimeouts().touch(*this, coarseNowNs());
  // Hold client bytes in the kernel until the backend is there.
  callbacks().readDisable(true);
  return FilterStatus::kStopIteration;
}

void TcpProxyFilter::onConnectTimeout() {
  factory_.onConnectFailed();
  closeBoth(CloseReason::kUpstreamConnectFailed,
            "connect " + upstream_->peer().toString() + ": timed out after " +
                std::to_string(config_.cluster.connect_timeout.count()) + "ms");
}

void TcpProxyFilter::onConnected(Connection&) {
  // Leaves the connect list for the idle list.
  touchIdle();
  callbacks().readDisable(false);
  callbacks().continueReading();
}

FilterStatus TcpProxyFilter::onData(evbuffer* data, bool end_stream) {
  if (!upstream_ || closing_) return FilterStatus::kStopIteration;
  touchIdle();
  if (evbuffer_get_length(data) > 0) upstream_->write(data);
  if (end_stream && !client_eof_) {
    client_eof_ = true;
    upstream_->shutdownWrite();
    maybeFinish();
  }
  return FilterStatus::kStopIteration;
}

void TcpProxyFilter::onRead(Connection& conn, bool end_stream) {
  touchIdle();
  size_t len = evbuffer_get_length(conn.input());
  if (len > 0) callbacks().writeBytes(conn.input(), len);
  if (end_stream && !upstream_eof_) {
    upstream_eof_ = true;
    callbacks().shutdownWrite();
    maybeFinish();
  }
}

void TcpProxyFilter::maybeFinish() {
  if (client_eof_ && upstream_eof_) closeBoth(CloseReason::kLocalClosed, "both sides closed");
}

void TcpProxyFilter::touchIdle() {
  if (closing_) return;
  factory_.idleTimeouts().touch(*this, coarseNowNs());
}

void TcpProxyFilter::onIdleTimeout() {
  closeBoth(CloseReason::kIdleTimeout,
            "no traffic for " + std::to_string(config_.idle_timeout.count()) + "ms");
}

void TcpProxyFilter::closeBoth(CloseReason reason, const std::string& detail) {
  if (closing_) return;
  closing_ = true;
  if (reason == CloseReason::kUpstreamConnectFailed)
    GW_LOG(warn, "tcp_proxy: cluster '{}': {}", config_.cluster.name, detail);
  if (upstream_) {
    upstream_->setCallbacks(nullptr);
    upstream_->close(reason, detail, Connection::CloseMode::kFlush);
  }
  callbacks().close(reason, detail, Connection::CloseMode::kFlush);
}

void TcpProxyFilter::onClose(Connection&, CloseReason reason, std::string_view detail) {
  // The upstream closed on its own (reset, error, or connect failure).
  if (closing_) return;
  closing_ = true;
  if (reason == CloseReason::kUpstreamConnectFailed) {
    factory_.onConnectFailed();
    GW_LOG(warn, "tcp_proxy: cluster '{}': {}", config_.cluster.name, detail);
    callbacks().close(reason, detail, Connection::CloseMode::kAbort);
    return;
  }
  callbacks().close(CloseReason::kUpstreamClosed, "upstream: " + std::string(detail),
                    Connection::CloseMode::kFlush);
}

void TcpProxyFilter::onClose(CloseReason reason) {
  // The client side closed: take the upstream down with it.
  if (upstream_ && upstream_->state() != Connection::State::kClosed) {
    closing_ = true;
    upstream_->setCallbacks(nullptr);
    upstream_->close(reason, "client closed", Connection::CloseMode::kFlush);
  }
  unlink();  // no timeout after the close
}

// Upstream output high: stop reading the client.
void TcpProxyFilter::onAboveHighWatermark(Connection&) {
  if (!client_paused_) {
    client_paused_ = true;
    callbacks().readDisable(true);
  }
}
void TcpProxyFilter::onBelowLowWatermark(Connection&) {
  if (client_paused_) {
    client_paused_ = false;
    callbacks().readDisable(false);
  }
}
// Client output high: stop reading the upstream.
void TcpProxyFilter::onAboveWriteBufferHighWatermark() {
  if (upstream_ && !upstream_paused_) {
    upstream_paused_ = true;
    upstream_->readDisable(true);
  }
}
void TcpProxyFilter::onBelowWriteBufferLowWatermark() {
  if (upstream_ && upstream_paused_) {
    upstream_paused_ = false;
    upstream_->readDisable(false);
  }
}

TcpProxyFactory::TcpProxyFactory(std::shared_ptr<const TcpProxyConfig> config,
                                 WorkerContext& worker)
    : config_(std::move(config)),
      dispatcher_(worker.dispatcher),
      hosts_(ClusterManager::process(), config_->cluster.name, config_->cluster.hosts),
      connect_timeouts_(worker.dispatcher, config_->cluster.connect_timeout,
                        [](TimeoutList::Entry& e, int64_t) {
                          static_cast<TcpProxyFilter&>(e).onConnectTimeout();
                        }),
      idle_timeouts_(worker.dispatcher, config_->idle_timeout, [](TimeoutList::Entry& e, int64_t) {
        static_cast<TcpProxyFilter&>(e).onIdleTimeout();
      }) {}

std::unique_ptr<Filter> TcpProxyFactory::createFilter() {
  return std::make_unique<TcpProxyFilter>(*this, *config_);
}

std::optional<Address> TcpProxyFactory::pickHost() {
  const auto& hosts = hosts_.get().hosts;
  for (size_t i = 0; i < hosts.size(); ++i) {
    const ClusterHost& h = hosts[(next_host_ + i) % hosts.size()];
    if (h.state != HostState::kReady) continue;
    next_host_ = (next_host_ + i + 1) % hosts.size();
    return h.address;
  }
  return std::nullopt;
}

void TcpProxyFactory::onConnectFailed() {
  if (!config_->cluster.host_names.empty()) hosts_.manager().requestRefresh(config_->cluster.name);
}

void TcpProxyConfig::describe(rapidjson::Value& out, JsonAllocator& alloc) const {
  out.AddMember("cluster", jsonString(cluster.name, alloc), alloc);
  out.AddMember("idle_timeout", jsonDuration(idle_timeout, alloc),
                alloc);
  out.AddMember("buffer_high_watermark", static_cast<uint64_t>(buffer_high_watermark), alloc);
}

class TcpProxyConfigFactory : public TypedFilterConfigFactory<TcpProxyConfig, TcpProxyFactory> {
 public:
  TcpProxyConfigFactory()
      : TypedFilterConfigFactory("tcp_proxy", FilterTraits::bytesTerminal(), kTcpProxySchema) {}

  std::shared_ptr<const TcpProxyConfig> parseConfig(const rapidjson::Value& json,
                                                    ParseContext& ctx) const override {
    auto cfg = std::make_shared<TcpProxyConfig>();
    if (const ClusterConfig* c = ctx.cluster(json, "cluster")) cfg->cluster = *c;
    cfg->idle_timeout =
        ctx.duration(json, "idle_timeout", cfg->idle_timeout, std::chrono::milliseconds(1));
    cfg->buffer_high_watermark =
        ctx.size(json, "buffer_high_watermark", cfg->buffer_high_watermark, 1024);
    return cfg;
  }
};

GW_REGISTER_FILTER(TcpProxyConfigFactory);

}  // namespace tcp_proxy
}  // namespace gw
