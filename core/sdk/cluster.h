// core/sdk/cluster.h — parsed top-level `clusters` config.
//
// Defines ClusterConfig: a named group of backend hosts with a load-balancing
// policy and pool settings, and CompatConfig: the cluster's `compat` object
// (speak the Go gateway's TCP backend protocol). Immutable after config
// load; shared by workers.
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/sdk/address.h"

namespace gw {

enum class LbPolicy { kRoundRobin, kLeastRequest, kConsistentHash };

// The cluster's `compat` object: when `enabled` (the object is present) the
// gateway speaks the Go gateway's TCP mode to this cluster's backends: data
// frames (opcode 1) only, never session open/close (2/3), and every backend
// frame is data for the client whatever its opcode. The other fields default
// to the Go gateway's behaviour. docs/protocol.md, "Go gateway
// compatibility", lists every difference.
struct CompatConfig {
  enum class Routing : uint8_t {
    kPerConnection,  // the session's first frame routed here pins every later frame here
    kPerFrame,       // every frame is routed by its own server_id (this gateway's rule)
  };
  bool enabled = false;
  Routing routing = Routing::kPerConnection;
  // One backend connection per client session, opened on its first frame
  // and closed when it ends; the session ends when that connection closes.
  // false: sessions share the multiplexed connections.
  bool connection_per_session = true;
  // Data frames to backends carry the 33-byte extended gate header with the
  // session's trace id and span id (Go's tracing.enable_trace_propagation).
  bool trace_propagation = false;
};

// A cluster host given by DNS name ("game.svc:7000"): every address the
// name resolves to (A and AAAA) becomes a host on `port` (the runtime's
// resolver, docs/architecture.md "Cluster manager").
struct HostName {
  std::string name;  // lower-cased, no trailing dot
  uint16_t port = 0;
  // "name:port", as written in the config.
  std::string toString() const { return name + ":" + std::to_string(port); }
  bool operator==(const HostName& o) const { return name == o.name && port == o.port; }
};

struct ClusterConfig {
  std::string name;
  // The hosts given as IP addresses.
  std::vector<Address> hosts;
  // The hosts given as DNS names; with any, the cluster's hosts come from
  // the resolver (`hosts` plus every address of every name) once resolved.
  std::vector<HostName> host_names;
  // How often `host_names` are resolved again (`dns_refresh_interval`).
  std::chrono::milliseconds dns_refresh_interval{30000};
  LbPolicy lb = LbPolicy::kRoundRobin;
  std::chrono::milliseconds connect_timeout{5000};
  std::chrono::milliseconds idle_timeout{5 * 60 * 1000};
  // Backend connections per host, per process (split across workers):
  // multiplexed ones, or with compat.connection_per_session one per session.
  uint32_t max_connections_per_service = 4;
  // Cap on backend connections of this cluster per worker, all hosts.
  uint32_t max_connections = 64;
  // Reconnect backoff after a failed connect: base doubles up to max,
  // jittered. The host takes no sessions while in backoff, so max bounds
  // how long after a backend is back clients may still be refused.
  std::chrono::milliseconds reconnect_base{100};
  std::chrono::milliseconds reconnect_max{1000};
  // Connect retries before a connect counts as failed (`max_retries`, 0:
  // none): a failed attempt is tried again after retry_delay, doubling
  // each time (jittered, capped at kMaxRetryDelay); only the last failure
  // reaches the breaker and the reconnect backoff.
  uint32_t max_retries = 0;
  std::chrono::milliseconds retry_delay{100};
  static constexpr std::chrono::milliseconds kMaxRetryDelay{5000};
  // Frames waiting for a backend connection, per host per worker.
  uint32_t max_pending_frames = 1024;
  // Request/response cluster: a client frame expects a backend frame back.
  bool expect_reply = false;
  // Without expect_reply: frames sent to a host and none back for this
  // long mark it silent (upstream's reply watchdog: a metric and a log
  // line, no error frames). 0: off.
  std::chrono::milliseconds silence_timeout{30000};
  // Dead-peer detection on backend sockets (`tcp_keepalive`,
  // `tcp_user_timeout`; see TcpLiveness in address.h).
  TcpLiveness liveness;
  // `compat`: the Go gateway's backend protocol (disabled: this gateway's).
  CompatConfig compat;
};

// The cluster named `name` in `clusters`, or null.
inline const ClusterConfig* findCluster(const std::vector<ClusterConfig>& clusters,
                                        std::string_view name) {
  for (const auto& c : clusters)
    if (c.name == name) return &c;
  return nullptr;
}

// True when `address` (Address::toString(), as metric labels and the admin
// API write hosts) is one of c's hosts.
inline bool hasHost(const ClusterConfig& c, std::string_view address) {
  for (const auto& h : c.hosts)
    if (h.toString() == address) return true;
  return false;
}

}  // namespace gw
