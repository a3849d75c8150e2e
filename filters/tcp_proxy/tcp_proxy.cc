#include "filters/tcp_proxy/tcp_proxy.h"

#include <event2/buffer.h>

#include "core/clock.h"
#include "config/duration.h"
#include "core/log.h"
#include "filters/tcp_proxy/tcp_proxy_schema.h"

namespace gw {
namespace tcp_proxy {

TcpProxyFilter::TcpProxyFilter(TcpProxyFactory& factory, const TcpProxyConfig& config)
    : factory_(factory), config_(config) {}

TcpProxyFilter::~TcpProxyFilter() {
  if (upstream_) upstream_->setCallbacks(nullptr);
}

FilterStatus TcpProxyFilter::onNewConnection() {
  const Address& host = factory_.pickHost();
  std::string why;
  int fd = connectSocket(host, &why);
  if (fd < 0) {
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
                                 Dispatcher& dispatcher)
    : config_(std::move(config)),
      dispatcher_(dispatcher),
      connect_timeouts_(dispatcher, config_->cluster.connect_timeout,
                        [](TimeoutList::Entry& e, int64_t) {
                          static_cast<TcpProxyFilter&>(e).onConnectTimeout();
                        }),
      idle_timeouts_(dispatcher, config_->idle_timeout, [](TimeoutList::Entry& e, int64_t) {
        static_cast<TcpProxyFilter&>(e).onIdleTimeout();
      }) {}

std::unique_ptr<Filter> TcpProxyFactory::createFilter() {
  return std::make_unique<TcpProxyFilter>(*this, *config_);
}

const Address& TcpProxyFactory::pickHost() {
  const auto& hosts = config_->cluster.hosts;
  const Address& a = hosts[next_host_ % hosts.size()];
  ++next_host_;
  return a;
}

class TcpProxyConfigFactory : public FilterConfigFactory {
 public:
  std::string_view name() const override { return "tcp_proxy"; }
  FilterTraits traits() const override {
    FilterTraits t;
    t.consumes = Layer::kBytes;
    t.terminal = true;
    return t;
  }
  std::string_view schema() const override { return kTcpProxySchema; }
  std::shared_ptr<const FilterConfig> parse(const rapidjson::Value& json,
                                            ParseContext& ctx) const override {
    auto cfg = std::make_shared<TcpProxyConfig>();
    std::string cluster = json["cluster"].GetString();
    const ClusterConfig* found = ctx.findCluster(cluster);
    if (found == nullptr) {
      std::string known;
      for (const auto& c : ctx.clusters()) known += (known.empty() ? "" : ", ") + c.name;
      return ctx.fail("/cluster", "unknown cluster \"" + cluster + "\"; defined clusters: " +
                                      (known.empty() ? "(none: add one under /clusters)" : known));
    }
    cfg->cluster = *found;
    if (json.HasMember("idle_timeout"))
      cfg->idle_timeout = *config::parseDuration(json["idle_timeout"].GetString());
    if (cfg->idle_timeout.count() == 0) return ctx.fail("/idle_timeout", "must be > 0");
    if (json.HasMember("buffer_high_watermark"))
      cfg->buffer_high_watermark = json["buffer_high_watermark"].GetUint64();
    return cfg;
  }
  std::unique_ptr<FilterFactory> createFactory(std::shared_ptr<const FilterConfig> config,
                                               WorkerContext& worker) const override {
    return std::make_unique<TcpProxyFactory>(
        std::static_pointer_cast<const TcpProxyConfig>(config), worker.dispatcher);
  }
};

GW_REGISTER_FILTER(TcpProxyConfigFactory);

}  // namespace tcp_proxy
}  // namespace gw
