// filters/upstream/reply_watchdog.h — turns a silent backend into a metric.
//
// Defines ReplyWatchdog: for a cluster without expect_reply (where the
// breaker measures no reply timeouts), a host to which frames were sent
// and from which no frame came back for the cluster's silence_timeout is
// "silent": game_gateway_upstream_host_silent{cluster,host} goes up (by
// one per worker that sees it), game_gateway_upstream_silences_total
// counts the episode, one warning is logged. The first frame from the
// host, the host having no connection left, or the host leaving the
// cluster's set ends the episode. A blackholed backend that accepts and
// reads but never writes gives clients neither replies nor errors; this
// makes it visible and alertable (docs/ops/alerts.yaml,
// GameGatewayUpstreamHostSilent).
//
// Per worker per cluster (owned by its ClusterPool, which outlives config
// generations); the per-host state (awaiting_since, silent) lives on each
// HostPool. One timer, armed only while some host has unanswered frames;
// not thread-safe. The hot path (onSent / onReceived) is a compare and at
// most a store.
#pragma once

#include <chrono>
#include <string>
#include <vector>

#include "core/sdk/clock.h"
#include "core/sdk/cluster.h"
#include "core/sdk/dispatcher.h"

namespace gw {
namespace upstream {

struct HostPool;

class ReplyWatchdog {
 public:
  // `cluster` (the pool's name) must outlive the watchdog. Off until
  // configure() turns it on.
  ReplyWatchdog(Dispatcher& dispatcher, const std::string& cluster);
  ReplyWatchdog(const ReplyWatchdog&) = delete;
  ReplyWatchdog& operator=(const ReplyWatchdog&) = delete;

  // Applies a generation's cluster config: on when it expects no replies
  // and its silence_timeout is not 0. Turning off ends every episode.
  void configure(const ClusterConfig& config);
  // The hosts to watch (the cluster's current set). Hosts that leave it end
  // their episode (their share of the gauge goes), so the watchdog never
  // holds a host the pool may delete. The pool's destructor passes {}.
  void setHosts(const std::vector<HostPool*>& hosts);

  // A frame was written to `host`: starts its wait if none is running.
  void onSent(HostPool& host);
  // A frame came from `host`: ends its wait, and its silence if any.
  void onReceived(HostPool& host);
  // `host` has no backend connection left: nothing is awaited from it.
  void onHostDown(HostPool& host);

 private:
  void answered(HostPool& host, const char* why);
  void check();

  bool enabled_ = false;
  std::chrono::milliseconds timeout_{0};
  const std::string& cluster_;
  std::vector<HostPool*> hosts_;
  Timer timer_;
};

}  // namespace upstream
}  // namespace gw
