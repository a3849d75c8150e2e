// filters/breaker/breaker_stats.h — every metric of the `breaker` filter,
// declared in one place.
//
// BreakerStateStats belongs to one breaker (a cluster's, host="*", or one
// host's); ClusterBreakerStats to one cluster. All are process-wide
// metrics from the StatsRegistry, shared by every worker (counters are
// sharded per thread, so updating them takes no lock).
//
//   game_gateway_circuit_breaker_state{cluster,host}           gauge 0 closed, 1 open, 2 half-open
//   game_gateway_circuit_breaker_state{cluster,backend}        the same for host breakers, with
//                                                              the Go gateway's label (backend)
//   game_gateway_circuit_breaker_transitions_total{cluster,host,to}
//   game_gateway_circuit_breaker_rejected_total{cluster,reason=open|overflow}
//   game_gateway_circuit_breaker_failures_total{cluster,host,kind}
//   game_gateway_circuit_breaker_forgiven_failures_total{cluster,host}  within reconnect_grace
//   game_gateway_circuit_breaker_pending{cluster}              frames in flight (expect_reply)
//   game_gateway_circuit_breaker_ejected_hosts{cluster}
// host is the host's address ("127.0.0.1:9000"), or "*" for the breaker of
// the cluster as a whole.
#pragma once

#include <array>
#include <string>
#include <vector>

#include "core/sdk/stats.h"

namespace gw {
namespace breaker {

// The state gauge's family name (read back by the admin view,
// breaker_admin_view.h) and its values.
inline constexpr char kStateMetric[] = "game_gateway_circuit_breaker_state";
// The host label of a cluster's own breaker.
inline constexpr char kClusterHost[] = "*";
// Every family above (all have a cluster label, some a host label): what
// the admin view deletes when a reload removes the cluster or host.
inline constexpr const char* kClusterScopedMetrics[] = {
    kStateMetric,
    "game_gateway_circuit_breaker_transitions_total",
    "game_gateway_circuit_breaker_rejected_total",
    "game_gateway_circuit_breaker_failures_total",
    "game_gateway_circuit_breaker_forgiven_failures_total",
    "game_gateway_circuit_breaker_pending",
    "game_gateway_circuit_breaker_ejected_hosts",
};

struct BreakerStateStats {
  BreakerStateStats(const std::string& cluster, const std::string& host) {
    auto& r = stats::StatsRegistry::get();
    state = &r.gauge(kStateMetric,
                     "Circuit breaker state: 0 closed, 1 open, 2 half-open (host \"*\": the "
                     "cluster as a whole).",
                     {{"cluster", cluster}, {"host", host}});
    // The Go gateway's series (label backend): host breakers only.
    if (host != kClusterHost) {
      go_state = &r.gauge(kStateMetric, "", {{"cluster", cluster}, {"backend", host}});
    }
    static const char* const kTo[3] = {"closed", "open", "half_open"};
    for (size_t i = 0; i < 3; ++i) {
      transitions[i] = &r.counter("game_gateway_circuit_breaker_transitions_total",
                                  "Circuit breaker state changes, by the state entered.",
                                  {{"cluster", cluster}, {"host", host}, {"to", kTo[i]}});
    }
  }
  stats::Gauge* state;
  stats::Gauge* go_state = nullptr;  // {cluster, backend}; nullptr for host "*"
  std::array<stats::Counter*, 3> transitions{};  // by CircuitState value
  // Sets both state series.
  void set(int64_t v) {
    state->set(v);
    if (go_state != nullptr) go_state->set(v);
  }
};

struct ClusterBreakerStats {
  ClusterBreakerStats(const std::string& cluster, const std::vector<std::string>& hosts) {
    auto& r = stats::StatsRegistry::get();
    const char* rejected_help =
        "Client frames the breaker answered with an error frame instead of forwarding.";
    rejected_open = &r.counter("game_gateway_circuit_breaker_rejected_total", rejected_help,
                               {{"cluster", cluster}, {"reason", "open"}});
    routing_open = &r.counter("game_gateway_routing_errors_total",
                              "Client frames not routed to a backend, by error_type (the Go "
                              "gateway's name).",
                              {{"error_type", "circuit_breaker_open"}});
    rejected_overflow = &r.counter("game_gateway_circuit_breaker_rejected_total", rejected_help,
                                   {{"cluster", cluster}, {"reason", "overflow"}});
    pending = &r.gauge("game_gateway_circuit_breaker_pending",
                       "Frames sent to an expect_reply cluster and not yet answered.",
                       {{"cluster", cluster}});
    ejected = &r.gauge("game_gateway_circuit_breaker_ejected_hosts",
                       "Hosts the breaker took out of load balancing.", {{"cluster", cluster}});
    static const char* const kKinds[3] = {"connect_failed", "connection_lost", "reply_timeout"};
    for (const auto& h : hosts) {
      std::array<stats::Counter*, 3> f{};
      for (size_t k = 0; k < 3; ++k) {
        f[k] = &r.counter("game_gateway_circuit_breaker_failures_total",
                          "Failures the breaker counted, by host and kind.",
                          {{"cluster", cluster}, {"host", h}, {"kind", kKinds[k]}});
      }
      failures.push_back(f);
      forgiven.push_back(&r.counter(
          "game_gateway_circuit_breaker_forgiven_failures_total",
          "Connection failures of a host within reconnect_grace: not counted toward opening.",
          {{"cluster", cluster}, {"host", h}}));
    }
  }
  stats::Counter* rejected_open;
  stats::Counter* rejected_overflow;
  // game_gateway_routing_errors_total{error_type="circuit_breaker_open"}
  // (process-wide; counted with rejected_open).
  stats::Counter* routing_open;
  stats::Gauge* pending;
  stats::Gauge* ejected;
  std::vector<std::array<stats::Counter*, 3>> failures;  // [host index][FailureKind]
  std::vector<stats::Counter*> forgiven;           // [host index]
};

}  // namespace breaker
}  // namespace gw
