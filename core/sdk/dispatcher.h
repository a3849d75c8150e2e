// core/sdk/dispatcher.h — one libevent event loop per thread.
//
// Defines Dispatcher (owns an event_base; runs tasks posted from other
// threads; defers deletion of objects to the end of the current loop turn)
// and Timer (a one-shot timer on a dispatcher). Everything except post() and
// exit() must be called on the dispatcher's own thread.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

struct event;
struct event_base;

namespace gw {

// An object whose destruction may be deferred to the end of a loop turn,
// so callbacks already on the stack can finish touching it.
class DeferredDeletable {
 public:
  virtual ~DeferredDeletable() = default;
};

class Dispatcher;

// A one-shot timer. Not thread-safe: use on its dispatcher's thread only.
// Destroying the timer cancels it.
class Timer {
 public:
  Timer(Dispatcher& dispatcher, std::function<void()> cb);
  ~Timer();
  Timer(const Timer&) = delete;
  Timer& operator=(const Timer&) = delete;

  // (Re)arms the timer to fire once after `d`. A zero duration fires on the
  // next loop turn.
  void enable(std::chrono::milliseconds d);
  // Disarms the timer; a no-op if it is not armed.
  void disable();
  // True while armed.
  bool enabled() const;

 private:
  static void onFire(int, short, void* arg);
  event* ev_;
  std::function<void()> cb_;
};

// Owns one event_base. post() and exit() are thread-safe; everything else
// runs on the thread that calls run().
class Dispatcher {
 public:
  // `name` appears in logs ("worker-0", "main").
  explicit Dispatcher(std::string name);
  ~Dispatcher();
  Dispatcher(const Dispatcher&) = delete;
  Dispatcher& operator=(const Dispatcher&) = delete;

  event_base* base() { return base_; }
  const std::string& name() const { return name_; }

  // Runs the loop until exit() is called. Returns when the loop stops.
  void run();
  // Stops the loop after the current turn. Thread-safe.
  void exit();

  // Runs `task` on this dispatcher's thread during a later loop turn.
  // Thread-safe; tasks run in the order they were posted. Tasks posted after
  // the dispatcher is destroyed are never run (the caller must not do that).
  void post(std::function<void()> task);

  // Destroys `obj` at the end of the current loop turn (or when the
  // dispatcher is destroyed). Call on the dispatcher's thread.
  void deferredDelete(std::unique_ptr<DeferredDeletable> obj);

  // True if the calling thread is the one running this dispatcher.
  bool isThreadSafe() const;

 private:
  static void onPost(int fd, short, void* arg);
  static void onDeferredDelete(int, short, void* arg);

  std::string name_;
  event_base* base_;
  int wake_fd_;  // eventfd used by post() to wake the loop
  event* wake_ev_;
  event* deferred_ev_;
  std::mutex post_mu_;
  std::vector<std::function<void()>> posted_;
  std::vector<std::unique_ptr<DeferredDeletable>> to_delete_;
  std::vector<std::unique_ptr<DeferredDeletable>> deleting_;
  std::thread::id thread_id_{};
};

}  // namespace gw
