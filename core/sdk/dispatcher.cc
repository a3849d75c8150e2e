#include "core/sdk/dispatcher.h"

#include <event2/event.h>
#include <sys/eventfd.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <stdexcept>

#include "core/sdk/log.h"

namespace gw {

Timer::Timer(Dispatcher& dispatcher, std::function<void()> cb) : cb_(std::move(cb)) {
  ev_ = evtimer_new(dispatcher.base(), &Timer::onFire, this);
}

Timer::~Timer() { event_free(ev_); }

void Timer::enable(std::chrono::milliseconds d) {
  timeval tv;
  tv.tv_sec = d.count() / 1000;
  tv.tv_usec = (d.count() % 1000) * 1000;
  evtimer_add(ev_, &tv);
}

void Timer::disable() { evtimer_del(ev_); }

bool Timer::enabled() const { return evtimer_pending(ev_, nullptr) != 0; }

void Timer::onFire(int, short, void* arg) {
  auto* self = static_cast<Timer*>(arg);
  self->cb_();
}

Dispatcher::Dispatcher(std::string name) : name_(std::move(name)) {
  event_config* cfg = event_config_new();
  // Each dispatcher is used by one thread only: no libevent locking.
  event_config_set_flag(cfg, EVENT_BASE_FLAG_NOLOCK);
  base_ = event_base_new_with_config(cfg);
  event_config_free(cfg);
  if (base_ == nullptr) throw std::runtime_error("event_base_new failed");
  wake_fd_ = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
  if (wake_fd_ < 0) throw std::runtime_error("eventfd failed");
  wake_ev_ = event_new(base_, wake_fd_, EV_READ | EV_PERSIST, &Dispatcher::onPost, this);
  event_add(wake_ev_, nullptr);
  deferred_ev_ = event_new(base_, -1, 0, &Dispatcher::onDeferredDelete, this);
}

Dispatcher::~Dispatcher() {
  to_delete_.clear();
  deleting_.clear();
  event_free(deferred_ev_);
  event_free(wake_ev_);
  close(wake_fd_);
  event_base_free(base_);
}

void Dispatcher::run() {
  thread_id_ = std::this_thread::get_id();
  event_base_loop(base_, 0);
  // Anything still queued for deletion goes now, on the loop's thread.
  while (!to_delete_.empty()) {
    auto batch = std::move(to_delete_);
    batch.clear();
  }
}

void Dispatcher::exit() {
  post([this] { event_base_loopbreak(base_); });
}

void Dispatcher::post(std::function<void()> task) {
  {
    std::lock_guard<std::mutex> lock(post_mu_);
    posted_.push_back(std::move(task));
  }
  uint64_t one = 1;
  ssize_t n = write(wake_fd_, &one, sizeof(one));
  (void)n;  // EAGAIN means the counter is already non-zero: the loop will wake.
}

void Dispatcher::onPost(int fd, short, void* arg) {
  auto* self = static_cast<Dispatcher*>(arg);
  uint64_t count;
  ssize_t n = read(fd, &count, sizeof(count));
  (void)n;
  std::vector<std::function<void()>> tasks;
  {
    std::lock_guard<std::mutex> lock(self->post_mu_);
    tasks.swap(self->posted_);
  }
  for (auto& t : tasks) t();
}

void Dispatcher::deferredDelete(std::unique_ptr<DeferredDeletable> obj) {
  to_delete_.push_back(std::move(obj));
  if (to_delete_.size() == 1) event_active(deferred_ev_, EV_TIMEOUT, 0);
}

void Dispatcher::onDeferredDelete(int, short, void* arg) {
  auto* self = static_cast<Dispatcher*>(arg);
  // Destructors may defer more deletions; those run on a later turn.
  self->deleting_.swap(self->to_delete_);
  self->deleting_.clear();
  if (!self->to_delete_.empty()) event_active(self->deferred_ev_, EV_TIMEOUT, 0);
}

bool Dispatcher::isThreadSafe() const { return std::this_thread::get_id() == thread_id_; }

}  // namespace gw
