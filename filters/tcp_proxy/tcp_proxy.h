// filters/tcp_proxy/tcp_proxy.h — the `tcp_proxy` filter: raw 1:1 TCP proxy.
//
// Terminal, bytes layer. For each client connection opens one connection to
// a host of `cluster` (round robin per worker) and copies bytes both ways.
//   client ──onData──▶ TcpProxyFilter ──▶ upstream.output()
//   client ◀─writeBytes── TcpProxyFilter ◀── upstream.input()
// Backpressure: a side whose output passes buffer_high_watermark pauses
// reading on the other side until it drains to a quarter of it, so neither
// buffer grows without bound. Half-close (FIN) is propagated each way; the
// pair closes when both sides finished. State: TcpProxyFilter is per
// connection; TcpProxyFactory (per worker) holds the round-robin cursor.
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "core/connection.h"
#include "core/dispatcher.h"
#include "core/registry.h"

namespace gw {
namespace tcp_proxy {

struct TcpProxyConfig : FilterConfig {
  ClusterConfig cluster;
  std::chrono::milliseconds idle_timeout{10 * 60 * 1000};
  size_t buffer_high_watermark = 64 * 1024;
};

class TcpProxyFactory;

class TcpProxyFilter : public Filter, private ConnectionCallbacks {
 public:
  TcpProxyFilter(TcpProxyFactory& factory, const TcpProxyConfig& config);
  ~TcpProxyFilter() override;

  FilterStatus onNewConnection() override;
  FilterStatus onData(evbuffer* data, bool end_stream) override;
  void onClose(CloseReason reason) override;
  void onAboveWriteBufferHighWatermark() override;
  void onBelowWriteBufferLowWatermark() override;

 private:
  // Upstream connection events.
  void onRead(Connection& conn, bool end_stream) override;
  void onConnected(Connection& conn) override;
  void onClose(Connection& conn, CloseReason reason, std::string_view detail) override;
  void onAboveHighWatermark(Connection& conn) override;
  void onBelowLowWatermark(Connection& conn) override;

  void closeBoth(CloseReason reason, const std::string& detail);
  void maybeFinish();
  void onIdleCheck();

  TcpProxyFactory& factory_;
  const TcpProxyConfig& config_;
  std::unique_ptr<Connection> upstream_;
  std::unique_ptr<Timer> connect_timer_;
  std::unique_ptr<Timer> idle_timer_;
  std::chrono::steady_clock::time_point last_activity_;
  bool client_eof_ = false;
  bool upstream_eof_ = false;
  bool client_paused_ = false;    // we paused client reads (upstream output high)
  bool upstream_paused_ = false;  // we paused upstream reads (client output high)
  bool closing_ = false;
};

class TcpProxyFactory : public FilterFactory {
 public:
  TcpProxyFactory(std::shared_ptr<const TcpProxyConfig> config, Dispatcher& dispatcher)
      : config_(std::move(config)), dispatcher_(dispatcher) {}
  std::unique_ptr<Filter> createFilter() override;
  // Next host, round robin.
  const Address& pickHost();
  Dispatcher& dispatcher() { return dispatcher_; }

 private:
  std::shared_ptr<const TcpProxyConfig> config_;
  Dispatcher& dispatcher_;
  size_t next_host_ = 0;
};

}  // namespace tcp_proxy
}  // namespace gw
