// config/config.h — the gateway's parsed configuration.
//
// Defines GatewayConfig and its parts, produced by config::load() (see
// config/loader.h) from one JSON file. Immutable once loaded; every worker
// reads it. See docs/config.md for each field.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/sdk/address.h"
#include "core/sdk/cluster.h"
#include "core/sdk/filter_chain.h"
#include "core/sdk/registry.h"

namespace gw {

// One filter of a listener's chain, parsed.
struct FilterEntry {
  std::string name;
  const FilterConfigFactory* factory = nullptr;
  FilterTraits traits;
  std::shared_ptr<const FilterConfig> config;
};

struct ListenerConfig {
  std::string name;
  Address address;
  int backlog = 1024;
  OutputLimits output;
  // Dead-peer detection on accepted client sockets (`tcp_keepalive`,
  // `tcp_user_timeout`; TcpLiveness in core/sdk/address.h).
  TcpLiveness liveness;
  std::vector<FilterEntry> filters;
};

// Top-level `admin`: the admin HTTP API (docs/admin.md, "Security").
struct AdminConfig {
  bool enabled = true;
  Address address;  // default 127.0.0.1:9901
  // Where the bearer token of the mutating endpoints came from:
  // admin.token_file, else $GATEWAY_ADMIN_TOKEN_FILE; "" when neither names
  // a file (the mutating endpoints are then disabled).
  std::string token_file;
  // The token read from token_file at load (start and every reload),
  // surrounding whitespace trimmed; 16+ printable ASCII characters, no
  // spaces. Empty iff token_file is. Never shown (not even by /config).
  std::string token;
  // Host header values allowed besides the built-in ones (127.0.0.1,
  // localhost, [::1] and the admin bind address), lower-cased: "name"
  // allows any port, "name:port" that port only.
  std::vector<std::string> allowed_hosts;
  // Origin header values allowed ("scheme://host[:port]", lower-cased);
  // none by default, so any request with an Origin is refused.
  std::vector<std::string> allowed_origins;
  // Admin connections open at once; a new one beyond it closes the oldest
  // (docs/config.md). Keeps idle admin clients from eating the fd budget.
  uint32_t max_connections = 64;
};

// Top-level `access_log`: one JSON line per closed client connection.
struct AccessLogConfig {
  bool enabled = false;         // absent object: off; present: on unless "enabled": false
  std::string path = "stderr";  // "stderr", "stdout" or a file (appended to)
  double sample_rate = 1.0;     // 0..1: the share of connections logged
};

// Top-level `dns`: how the runtime resolves cluster hosts given by name
// (core/dns_resolver.h). Used only when some cluster has such a host.
struct DnsConfig {
  // Nameservers, search domains and options, in resolv.conf syntax (a
  // `nameserver` line may carry a port: "nameserver 127.0.0.1:5353").
  std::string resolv_conf = "/etc/resolv.conf";
  // An /etc/hosts-style file consulted before the nameservers; "" = none
  // besides the system's /etc/hosts.
  std::string hosts_file;
  // How long one query waits for an answer before it counts as a timeout.
  std::chrono::milliseconds timeout{5000};
};

struct GatewayConfig {
  size_t workers = 0;  // 0 in JSON or absent: hardware threads
  std::string log_level = "info";
  std::chrono::milliseconds drain_timeout{15000};
  // How often the main thread checks for free heap to give back to the
  // kernel (core/memory_trim.h); 0 = never.
  std::chrono::milliseconds memory_trim_interval{5000};
  AdminConfig admin;
  // Top-level `health_listener` / `metrics_listener`: optional read-only
  // HTTP listeners (the Go gateway's 9090 / 9091 layout) serving only GET
  // of /healthz, /health, /ready, respectively /metrics. Unset: none.
  std::optional<Address> health_listener;
  std::optional<Address> metrics_listener;
  AccessLogConfig access_log;
  DnsConfig dns;
  std::vector<ListenerConfig> listeners;
  std::vector<ClusterConfig> clusters;
  std::vector<std::string> plugins;
  std::string source;  // the file it came from
  std::string json;    // the JSON text as loaded (for /config)
};

}  // namespace gw
