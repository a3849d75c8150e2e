#include "core/sdk/timeout_list.h"

#include "core/sdk/clock.h"

namespace gw {

namespace {

std::chrono::milliseconds positive(std::chrono::milliseconds d) {
  return d.count() > 0 ? d : std::chrono::milliseconds(1);
}

}  // namespace

TimeoutList::TimeoutList(Dispatcher& dispatcher, std::chrono::milliseconds timeout,
                         ExpireCallback on_expire)
    : timeout_(positive(timeout)),
      timeout_ns_(static_cast<int64_t>(timeout_.count()) * 1'000'000),
      on_expire_(std::move(on_expire)),
      timer_(dispatcher, [this] { onTimer(); }) {
  head_.prev_ = head_.next_ = &head_;
}

TimeoutList::~TimeoutList() {
  Entry* e = head_.next_;
  while (e != &head_) {
    Entry* next = e->next_;
    e->prev_ = e->next_ = nullptr;
    e = next;
  }
  head_.prev_ = head_.next_ = nullptr;
}

void TimeoutList::touch(Entry& e, int64_t now_ns) {
  Entry* tail = head_.prev_;
  if (tail == &e) {  // already last: only the stamp moves (forward)
    if (now_ns > e.touched_ns_) e.touched_ns_ = now_ns;
    return;
  }
  e.unlink();
  bool was_empty = head_.next_ == &head_;
  if (!was_empty && now_ns < tail->touched_ns_) now_ns = tail->touched_ns_;
  e.touched_ns_ = now_ns;
  e.prev_ = tail;
  e.next_ = &head_;
  tail->next_ = &e;
  head_.prev_ = &e;
  // A non-empty list always has the timer armed no later than its head's
  // deadline, so only the first entry needs to arm it.
  if (was_empty) {
    int64_t deadline = now_ns + timeout_ns_;
    if (!armed_ || armed_for_ns_ > deadline) arm(deadline, now_ns);
  }
}

size_t TimeoutList::sizeSlow() const {
  size_t n = 0;
  for (const Entry* e = head_.next_; e != &head_; e = e->next_) ++n;
  return n;
}

void TimeoutList::arm(int64_t deadline_ns, int64_t now_ns) {
  int64_t wait_ns = deadline_ns - now_ns;
  // Whole milliseconds, rounded up, at least 1: never early by the timer.
  int64_t wait_ms = wait_ns <= 0 ? 1 : (wait_ns + 999'999) / 1'000'000;
  timer_.enable(std::chrono::milliseconds(wait_ms));
  armed_for_ns_ = deadline_ns;
  armed_ = true;
}

void TimeoutList::onTimer() {
  armed_ = false;
  const int64_t now = std::chrono::duration_cast<std::chrono::nanoseconds>(
                          preciseNow().time_since_epoch())
                          .count();
  // Re-read the head each time: a callback may unlink or touch any entry.
  while (head_.next_ != &head_) {
    Entry* e = head_.next_;
    int64_t deadline = e->touched_ns_ + timeout_ns_;
    if (deadline > now) {
      if (!armed_ || armed_for_ns_ > deadline) arm(deadline, now);
      return;
    }
    e->unlink();
    on_expire_(*e, now);
  }
}

}  // namespace gw
