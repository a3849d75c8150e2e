#include "filters/upstream/reply_watchdog.h"

#include <algorithm>

#include "core/sdk/log.h"
#include "filters/upstream/cluster_pool.h"

namespace gw {
namespace upstream {

ReplyWatchdog::ReplyWatchdog(Dispatcher& dispatcher, const std::string& cluster)
    : cluster_(cluster), timer_(dispatcher, [this] { check(); }) {}

void ReplyWatchdog::configure(const ClusterConfig& config) {
  bool on = !config.expect_reply && config.silence_timeout.count() > 0;
  timeout_ = config.silence_timeout;
  if (enabled_ && !on) {
    for (HostPool* h : hosts_) answered(*h, "silence_timeout turned off");
    timer_.disable();
  }
  enabled_ = on;
}

void ReplyWatchdog::setHosts(const std::vector<HostPool*>& hosts) {
  for (HostPool* h : hosts_) {
    if (std::find(hosts.begin(), hosts.end(), h) == hosts.end())
      answered(*h, "host left the cluster");
  }
  hosts_ = hosts;
}

void ReplyWatchdog::onSent(HostPool& host) {
  if (!enabled_ || host.awaiting_since != MonoTime{}) return;
  host.awaiting_since = coarseNow();
  if (!timer_.enabled()) timer_.enable(timeout_);
}

void ReplyWatchdog::onReceived(HostPool& host) {
  if (host.awaiting_since != MonoTime{} || host.silent) answered(host, "a frame came");
}

void ReplyWatchdog::onHostDown(HostPool& host) {
  if (host.awaiting_since != MonoTime{} || host.silent) answered(host, "no connection left");
}

void ReplyWatchdog::answered(HostPool& host, const char* why) {
  host.awaiting_since = MonoTime{};
  if (!host.silent) return;
  host.silent = false;
  host.stats->silent->dec();
  GW_LOG(info, "upstream: cluster '{}' host {}: no longer silent ({})", cluster_, host.name, why);
}

void ReplyWatchdog::check() {
  if (!enabled_) return;
  MonoTime now = coarseNow();
  MonoTime next{};
  for (HostPool* h : hosts_) {
    if (h->awaiting_since == MonoTime{} || h->silent) continue;
    MonoTime due = h->awaiting_since + timeout_;
    if (now >= due) {
      h->silent = true;
      h->stats->silent->inc();
      h->stats->silences->inc();
      GW_LOG(warn,
             "upstream: cluster '{}' host {}: silent: frames were sent to it and none came back "
             "for {}ms (silence_timeout); clients get neither replies nor errors",
             cluster_, h->name,
             std::chrono::duration_cast<std::chrono::milliseconds>(now - h->awaiting_since).count());
    } else if (next == MonoTime{} || due < next) {
      next = due;
    }
  }
  if (next != MonoTime{}) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(next - now);
    timer_.enable(std::max(left, std::chrono::milliseconds(1)));
  }
}

}  // namespace upstream
}  // namespace gw
