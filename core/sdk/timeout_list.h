// core/sdk/timeout_list.h — many per-connection timeouts of one constant length
// on a single libevent timer.
//
// Defines TimeoutList and TimeoutList::Entry. A TimeoutList is per worker
// (typically owned by a FilterFactory): it holds one timeout length, one
// Timer on the worker's dispatcher and the head of an intrusive FIFO. An
// Entry is per connection: it is embedded in the object that owns the
// timeout (a Filter, as a member or a base class) and costs 24 bytes (two
// links and the time it was last touched), with no allocation and no
// libevent event of its own.
//
// Because every entry of a list has the same timeout, appending on each
// touch keeps the FIFO ordered by deadline: touch() is unlink + append at
// the tail, O(1); the timer only ever needs to fire at the head's deadline.
// When it fires, every entry whose deadline has passed is unlinked and its
// callback runs (oldest first); the timer is then re-armed for the new head.
//
//   list:  head ─▶ [conn 7, t=100] ─▶ [conn 3, t=140] ─▶ [conn 9, t=180] ◀─ tail
//          timer armed for 100 + timeout; touch(conn 7, 200) moves it behind conn 9.
//
// Times are nanoseconds of the monotonic clock (core/sdk/clock.h: pass
// coarseNowNs() on hot paths; callbacks get the precise time of the firing).
// Expiry is checked against the clock when the timer fires, so a coarse
// stamp may make an entry expire up to one kernel tick (<= 4 ms) early, as
// with any coarse-clock timeout.
//
// Limits:
//  - Single-threaded: use a list and its entries on the dispatcher's thread.
//  - Stamps must not go backwards within a list; touch() clamps a stamp that
//    is older than the tail's to the tail's (so the FIFO stays ordered), which
//    can lengthen that entry's timeout by the difference.
//  - The callback must not destroy the list. It may do anything else: touch
//    or unlink any entry (including the expired one), close connections,
//    destroy entries.
//  - An Entry must not move while linked (it is not copyable or movable).
#pragma once

#include <chrono>
#include <cstdint>
#include <functional>

#include "core/sdk/dispatcher.h"

namespace gw {

class TimeoutList {
 public:
  // A position in one list at a time. Unlinks itself when destroyed. Plain
  // data otherwise: a class may inherit from it (privately) to get back from
  // the entry to itself in the expiry callback with static_cast.
  class Entry {
   public:
    Entry() = default;
    ~Entry() { unlink(); }
    Entry(const Entry&) = delete;
    Entry& operator=(const Entry&) = delete;

    // True while the entry is in a list (its timeout is running).
    bool linked() const { return next_ != nullptr; }
    // Stops the timeout: removes the entry from its list. A no-op if not
    // linked. O(1); needs no reference to the list.
    void unlink() {
      if (next_ == nullptr) return;
      prev_->next_ = next_;
      next_->prev_ = prev_;
      prev_ = next_ = nullptr;
    }
    // The stamp of the last touch (ns); meaningful while linked, and in the
    // expiry callback (the stamp that expired).
    int64_t touchedNs() const { return touched_ns_; }

   private:
    friend class TimeoutList;
    Entry* prev_ = nullptr;
    Entry* next_ = nullptr;
    int64_t touched_ns_ = 0;
  };

  // Runs for each expired entry, already unlinked, with the time (ns) the
  // timer fired. See the banner for what it may do.
  using ExpireCallback = std::function<void(Entry& entry, int64_t now_ns)>;

  // `timeout` must be > 0 (a non-positive one is treated as 1 ms). The timer
  // is created on `dispatcher` at once but armed only while entries exist.
  TimeoutList(Dispatcher& dispatcher, std::chrono::milliseconds timeout, ExpireCallback on_expire);
  // Unlinks every remaining entry (they stay valid, unlinked; their later
  // unlink()/destruction is a no-op) and cancels the timer. No callback runs.
  ~TimeoutList();
  TimeoutList(const TimeoutList&) = delete;
  TimeoutList& operator=(const TimeoutList&) = delete;

  // (Re)starts `e`'s timeout from `now_ns`: it expires at now_ns + timeout().
  // Moves `e` to the tail of this list, from wherever it was (this list,
  // another list, or none). O(1): a few pointer writes, plus an evtimer_add
  // when the list was empty. Does not read the clock.
  void touch(Entry& e, int64_t now_ns);

  std::chrono::milliseconds timeout() const { return timeout_; }
  bool empty() const { return head_.next_ == &head_; }
  // Entries linked, O(n): for tests and diagnostics.
  size_t sizeSlow() const;
  // When the timer is armed to fire next (ns), or -1 if it is not armed.
  int64_t armedForNs() const { return armed_ ? armed_for_ns_ : -1; }

 private:
  void onTimer();
  void arm(int64_t deadline_ns, int64_t now_ns);

  const std::chrono::milliseconds timeout_;
  const int64_t timeout_ns_;
  ExpireCallback on_expire_;
  Entry head_;  // sentinel of the circular list: head_.next_ is the oldest
  Timer timer_;
  int64_t armed_for_ns_ = 0;
  bool armed_ = false;
};

}  // namespace gw
