// filters/upstream/reply_watchdog.h — turns a silent backend into a metric.
//
// Defines ReplyWatchdog: for a cluster without expect_reply (where the
// breaker measures no reply timeouts), a host to which frames were sent
// and from which no frame came back for the cluster's silence_timeout is
// "silent": game_gateway_upstream_host_silent{cluster,host} goes up (by
// one per worker that sees it), game_gateway_upstream_silences_total
// counts the episode, one warning is logged. The first frame from the
// host (or the host having no connection left) ends the episode. A
// blackholed backend that accepts and reads but never writes gives
// clients neither replies nor errors; this makes it visible and alertable
// (docs/ops/alerts.yaml, GameGatewayUpstreamHostSilent).
//
// Per worker per cluster (owned by its ClusterPool), one timer, armed only
// while some host has unanswered frames; not thread-safe. The hot path
// (onSent / onReceived) is a compare and at most a store.
#pragma once

#include <chrono>
#include <vector>

#include "core/sdk/clock.h"
#include "core/sdk/cluster.h"
#include "core/sdk/dispatcher.h"

namespace gw {
namespace upstream {

struct HostPool;

class ReplyWatchdog {
 public:
  // Off (every call a no-op) when `config` expects replies or its
  // silence_timeout is 0. `hosts` is the cluster's host count.
  ReplyWatchdog(Dispatcher& dispatcher, const ClusterConfig& config, size_t hosts);
  // Takes this worker's share out of the silent gauges.
  ~ReplyWatchdog();
  ReplyWatchdog(const ReplyWatchdog&) = delete;
  ReplyWatchdog& operator=(const ReplyWatchdog&) = delete;

  // A frame was written to `host`: starts its wait if none is running.
  void onSent(HostPool& host) {
    if (!enabled_) return;
    Watch& w = watch_[indexOf(host)];
    if (w.since == MonoTime{}) start(w);
  }
  // A frame came from `host`: ends its wait, and its silence if any.
  void onReceived(HostPool& host) {
    if (!enabled_) return;
    Watch& w = watch_[indexOf(host)];
    if (w.since != MonoTime{} || w.silent) answered(host, w, "a frame came");
  }
  // `host` has no backend connection left: nothing is awaited from it.
  void onHostDown(HostPool& host) {
    if (!enabled_) return;
    Watch& w = watch_[indexOf(host)];
    if (w.since != MonoTime{} || w.silent) answered(host, w, "no connection left");
  }
  // The pool's hosts, for the timer's walk (set once by the pool).
  void setHosts(std::vector<HostPool*> hosts) { hosts_ = std::move(hosts); }

 private:
  struct Watch {
    MonoTime since{};     // first frame sent since the last frame received
    bool silent = false;  // this worker counts the host silent
  };
  static size_t indexOf(const HostPool& host);
  void start(Watch& w);
  void answered(HostPool& host, Watch& w, const char* why);
  void check();

  const bool enabled_;
  const std::chrono::milliseconds timeout_;
  const std::string* cluster_;
  std::vector<Watch> watch_;  // by host index
  std::vector<HostPool*> hosts_;
  Timer timer_;
};

}  // namespace upstream
}  // namespace gw
