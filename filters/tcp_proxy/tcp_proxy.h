// filters/tcp_proxy/tcp_proxy.h — the `tcp_proxy` filter: raw 1:1 TCP proxy.
//
// Terminal, bytes layer. For each client connection opens one connection to
// a ready host of `cluster` (round robin per worker over the cluster
// manager's hosts, core/sdk/cluster_manager.h; drain, maint and unhealthy
// hosts get no new connections, and proxied connections already open stay:
// a raw byte stream cannot move to another host; hosts given by DNS name
// come and go the same way) and copies bytes both ways.
//   client ──onData──▶ TcpProxyFilter ──▶ upstream.output()
//   client ◀─writeBytes── TcpProxyFilter ◀── upstream.input()
// Backpressure: a side whose output passes buffer_high_watermark pauses
// reading on the other side until it drains to a quarter of it, so neither
// buffer grows without bound. Half-close (FIN) is propagated each way; the
// pair closes when both sides finished. State: TcpProxyFilter is per
// connection; TcpProxyFactory (per worker) holds the round-robin cursor and
// the worker's two timeout lists (connect timeout, idle timeout): one
// libevent timer each for all of the worker's proxied connections, instead
// of two Timers (an allocation and a libevent event each) per connection.
// A connection is in the connect list until its backend answers, then in
// the idle list, moved to its tail by every read on either side.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "core/sdk/cluster_manager.h"
#include "core/sdk/connection.h"
#include "core/sdk/dispatcher.h"
#include "core/sdk/registry.h"
#include "core/sdk/timeout_list.h"

namespace gw {
namespace tcp_proxy {

struct TcpProxyConfig : FilterConfig {
  ClusterConfig cluster;
  std::chrono::milliseconds idle_timeout{10 * 60 * 1000};
  size_t buffer_high_watermark = 64 * 1024;

  // {"cluster": "<name>", "idle_timeout": "10m", "buffer_high_watermark": N}:
  // the cluster by name (its hosts are on GET /clusters).
  void describe(rapidjson::Value& out, JsonAllocator& alloc) const override;
};

class TcpProxyFactory;

class TcpProxyFilter : public Filter, private ConnectionCallbacks, private TimeoutList::Entry {
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

  friend class TcpProxyFactory;
  void closeBoth(CloseReason reason, const std::string& detail);
  void maybeFinish();
  // Traffic either way: restarts the idle timeout (moves the entry to the
  // idle list's tail).
  void touchIdle();
  // The entry's list expired it (already unlinked).
  void onConnectTimeout();
  void onIdleTimeout();

  TcpProxyFactory& factory_;
  const TcpProxyConfig& config_;
  std::unique_ptr<Connection> upstream_;
  bool client_eof_ = false;
  bool upstream_eof_ = false;
  bool client_paused_ = false;    // we paused client reads (upstream output high)
  bool upstream_paused_ = false;  // we paused upstream reads (client output high)
  bool closing_ = false;
};

class TcpProxyFactory : public FilterFactory {
 public:
  TcpProxyFactory(std::shared_ptr<const TcpProxyConfig> config, WorkerContext& worker);
  std::unique_ptr<Filter> createFilter() override;
  // Next ready host, round robin; nullopt when the cluster has none.
  std::optional<Address> pickHost();
  // A connect to the cluster failed: a cluster given by DNS names is looked
  // up again (ClusterManager::requestRefresh; the resolver rate-limits).
  void onConnectFailed();
  Dispatcher& dispatcher() { return dispatcher_; }
  // The cluster's connect_timeout, and the filter's idle_timeout.
  TimeoutList& connectTimeouts() { return connect_timeouts_; }
  TimeoutList& idleTimeouts() { return idle_timeouts_; }

 private:
  std::shared_ptr<const TcpProxyConfig> config_;
  Dispatcher& dispatcher_;
  ClusterHosts hosts_;  // this worker's view of the cluster's hosts
  size_t next_host_ = 0;
  TimeoutList connect_timeouts_;
  TimeoutList idle_timeouts_;
};

}  // namespace tcp_proxy
}  // namespace gw
