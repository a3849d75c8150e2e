#include "core/accept_guard.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/sdk/log.h"

namespace gw {

ReserveFd::~ReserveFd() { release(); }

bool ReserveFd::release() {
  bool any = false;
  for (size_t i = 0; i < count_; ++i) {
    if (fds_[i] < 0) continue;
    ::close(fds_[i]);
    fds_[i] = -1;
    any = true;
  }
  return any;
}

bool ReserveFd::restore() {
  for (size_t i = 0; i < count_; ++i) {
    if (fds_[i] < 0) fds_[i] = ::open("/dev/null", O_RDONLY | O_CLOEXEC);
  }
  return held();
}

bool ReserveFd::held() const {
  for (size_t i = 0; i < count_; ++i) {
    if (fds_[i] < 0) return false;
  }
  return true;
}

const char* acceptErrorReason(int err) {
  switch (err) {
    case EMFILE: return "emfile";
    case ENFILE: return "enfile";
    default: return "other";
  }
}

namespace {
size_t reasonIndex(int err) { return err == EMFILE ? 0 : err == ENFILE ? 1 : 2; }
}  // namespace

AcceptGuard::AcceptGuard(Dispatcher& dispatcher, std::string listener,
                         std::function<void(bool)> set_watching, std::function<void()> on_resume)
    : listener_(std::move(listener)),
      set_watching_(std::move(set_watching)),
      on_resume_(std::move(on_resume)),
      retry_(dispatcher, [this] { resume(); }) {
  auto& reg = stats::StatsRegistry::get();
  const char* help = "accept() failures on a listening socket, by reason (emfile, enfile, other).";
  for (int err : {EMFILE, ENFILE, 0}) {
    errors_[reasonIndex(err)] = &reg.counter("game_gateway_accept_errors_total", help,
                                             {{"listener", listener_},
                                              {"reason", acceptErrorReason(err)}});
  }
  shed_ = &reg.counter("game_gateway_accept_shed_total",
                       "Connections accepted and closed at once because the fd limit was reached.",
                       {{"listener", listener_}});
  paused_gauge_ = &reg.gauge("game_gateway_listener_paused",
                             "Workers whose accepting on the listener is paused after an accept "
                             "failure (0: accepting).",
                             {{"listener", listener_}});
}

AcceptGuard::~AcceptGuard() { cancel(); }

void AcceptGuard::failed(int err, const std::string& detail) {
  counted(err, detail + "; pausing it for " + std::to_string(backoff_.count()) + " ms");
  if (!paused_) {
    paused_ = true;
    paused_gauge_->inc();
    set_watching_(false);
  }
  retry_.enable(backoff_);
  backoff_ = std::min(backoff_ * 2, kMaxBackoff);
}

void AcceptGuard::counted(int err, const std::string& detail) {
  errors_[reasonIndex(err)]->inc();
  ++unlogged_;
  MonoTime now = coarseNow();
  if (!logged_ || now - last_log_ >= kLogInterval) {
    GW_LOG(warn, "listener {}: accept: {}{}{} (raise the fd limit: docs/ops/capacity.md)",
           listener_, std::strerror(err), detail,
           unlogged_ > 1 ? "; " + std::to_string(unlogged_ - 1) +
                               " failures since the last such line"
                         : std::string());
    logged_ = true;
    last_log_ = now;
    unlogged_ = 0;
  }
}

void AcceptGuard::resume() {
  if (!paused_) return;
  paused_ = false;
  paused_gauge_->dec();
  if (on_resume_) on_resume_();
  set_watching_(true);
}

void AcceptGuard::cancel() {
  retry_.disable();
  if (paused_) {
    paused_ = false;
    paused_gauge_->dec();
  }
}

}  // namespace gw
