#include "filters/upstream/reply_watchdog.h"

#include <algorithm>

#include "core/sdk/log.h"
#include "filters/upstream/cluster_pool.h"

namespace gw {
namespace upstream {

ReplyWatchdog::ReplyWatchdog(Dispatcher& dispatcher, const ClusterConfig& config, size_t hosts)
    : enabled_(!config.expect_reply && config.silence_timeout.count() > 0),
      timeout_(config.silence_timeout),
      cluster_(&config.name),
      watch_(hosts),
      timer_(dispatcher, [this] { check(); }) {}

ReplyWatchdog::~ReplyWatchdog() {
  for (HostPool* h : hosts_) {
    if (watch_[h->index].silent) h->stats->silent->dec();
  }
}

size_t ReplyWatchdog::indexOf(const HostPool& host) { return host.index; }

void ReplyWatchdog::start(Watch& w) {
  w.since = coarseNow();
  if (!timer_.enabled()) timer_.enable(timeout_);
}

void ReplyWatchdog::answered(HostPool& host, Watch& w, const char* why) {
  w.since = MonoTime{};
  if (!w.silent) return;
  w.silent = false;
  host.stats->silent->dec();
  GW_LOG(info, "upstream: cluster '{}' host {}: no longer silent ({})", *cluster_, host.name, why);
}

void ReplyWatchdog::check() {
  MonoTime now = coarseNow();
  MonoTime next{};
  for (HostPool* h : hosts_) {
    Watch& w = watch_[h->index];
    if (w.since == MonoTime{} || w.silent) continue;
    MonoTime due = w.since + timeout_;
    if (now >= due) {
      w.silent = true;
      h->stats->silent->inc();
      h->stats->silences->inc();
      GW_LOG(warn,
             "upstream: cluster '{}' host {}: silent: frames were sent to it and none came back "
             "for {}ms (silence_timeout); clients get neither replies nor errors",
             *cluster_, h->name,
             std::chrono::duration_cast<std::chrono::milliseconds>(now - w.since).count());
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
