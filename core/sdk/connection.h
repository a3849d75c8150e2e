// core/sdk/connection.h — a non-blocking TCP connection on one dispatcher.
//
// Defines Connection: a socket with an input and an output evbuffer, batched
// writes (everything written during one loop turn leaves in one write at the
// end of the turn), output watermarks, counted read pausing, half-close, and
// close with a reason. Used for client connections (accepted) and backend
// connections (connect()). Owned by one worker; not thread-safe.
//
// Memory: one allocation for the object (256 bytes), which embeds its one
// libevent event and its peer's Address (32 bytes), plus the two evbuffers.
// The timer and the close reason of a flushing close (kFlush with output
// still buffered) are allocated only when such a close starts.
//
// One event, not a read and a write event: it is registered for EV_READ
// while reading is on, and for EV_WRITE only while output waits for the
// socket (a write hit EAGAIN), so an idle connection watches only
// EV_READ. Batched writes activate the same event with EV_WRITE
// (event_active): the flush runs at the end of this loop turn's queue, after
// the callbacks already queued. When one callback brings both a read
// readiness and a flush, the read is handled and the flush is queued again
// at the back, so writes made later in the turn still join the same write.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/sdk/address.h"
#include "core/sdk/close_reason.h"
#include "core/sdk/dispatcher.h"

struct evbuffer;
struct event;

namespace gw {

class Connection;

// Events a connection reports to its owner. All run on the dispatcher thread.
class ConnectionCallbacks {
 public:
  virtual ~ConnectionCallbacks() = default;
  // New bytes are in input(), or (end_stream) the peer half-closed; input()
  // may still hold unread bytes then.
  virtual void onRead(Connection& conn, bool end_stream) = 0;
  // An outbound connect() completed; reading is enabled.
  virtual void onConnected(Connection&) {}
  // The connection closed (the fd is already closed). Called exactly once.
  // The owner should release the connection (deferredDelete) from here.
  virtual void onClose(Connection& conn, CloseReason reason, std::string_view detail) = 0;
  // output() grew past the high watermark (once per crossing).
  virtual void onAboveHighWatermark(Connection&) {}
  // output() drained below the low watermark after being above the high one.
  virtual void onBelowLowWatermark(Connection&) {}
};

class Connection {
 public:
  enum class State : uint8_t { kConnecting, kOpen, kClosing, kClosed };
  enum class CloseMode {
    kFlush,  // stop reading, write what is buffered (bounded in time), then close
    kAbort,  // close now, drop buffered output
  };

  // Takes ownership of `fd` (non-blocking). `connecting` is true for an
  // outbound socket whose connect() is in progress. fd -1 makes a detached
  // connection for tests: nothing is read or written, input() and output()
  // are driven by hand.
  Connection(Dispatcher& dispatcher, int fd, Address peer, bool connecting);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void setCallbacks(ConnectionCallbacks* cb) { callbacks_ = cb; }
  Dispatcher& dispatcher() { return dispatcher_; }
  // The client's address: the socket's peer, unless setPeer() replaced it.
  const Address& peer() const { return peer_; }
  // Replaces what peer() returns from now on: for a filter that learns the
  // real client's address from a trusted source (ip_limiter's PROXY
  // protocol header from a balancer), so later filters, the access log and
  // sessions see the client, not the balancer.
  void setPeer(const Address& peer) { peer_ = peer; }
  int fd() const { return fd_; }
  State state() const { return state_; }
  bool open() const { return state_ == State::kOpen; }

  // Bytes read from the socket and not yet consumed by the owner.
  evbuffer* input() { return input_; }
  // Bytes waiting to be written. After appending directly, call flushSoon().
  evbuffer* output() { return output_; }

  // Appends to output() and schedules a flush at the end of this loop turn.
  void write(const void* data, size_t len);
  // Moves all of `data` into output() (zero-copy) and schedules a flush.
  void write(evbuffer* data);
  // Schedules a flush of output() at the end of this loop turn.
  void flushSoon();
  // Bytes buffered in output().
  size_t bufferedOutput() const;

  // Pauses (true) or resumes (false) reading. Counted: each disable needs a
  // matching enable. Used for backpressure.
  void readDisable(bool disable);
  bool readEnabled() const { return read_disable_count_ == 0; }

  // Output watermarks: above `high` bytes buffered -> onAboveHighWatermark;
  // back under `low` -> onBelowLowWatermark. 0 disables them.
  void setWatermarks(size_t low, size_t high);
  bool aboveHighWatermark() const { return above_high_; }
  // True while buffered output waits for the socket to become writable (a
  // write hit EAGAIN): only then is EV_WRITE registered with the poller.
  bool writeBlocked() const { return write_blocked_; }
  // Largest read per socket readiness (default 16 KiB). Reads start at
  // kMinReadSize and adapt: a read that fills its space doubles the next
  // one (up to this size), two reads in a row under a quarter of it halve
  // it, so an idle or chatty connection never pins a large buffer.
  void setReadSize(size_t n) { read_size_ = static_cast<uint32_t>(n > kMaxReadSize ? kMaxReadSize : n); }

  // Sends FIN once output() has drained (half-close); reading goes on.
  void shutdownWrite();
  // Closes with `reason`; onClose runs once the fd is closed (for kFlush,
  // after the output drained or `flush_timeout` passed). A kFlush close keeps
  // `reason` even when the peer leaves before the output is out (the write
  // error goes in the detail). Idempotent.
  void close(CloseReason reason, std::string_view detail, CloseMode mode = CloseMode::kAbort);

  uint64_t bytesRead() const { return bytes_read_; }
  uint64_t bytesWritten() const { return bytes_written_; }

  // How long a kFlush close may wait for the peer to take the output.
  static constexpr int kFlushTimeoutMs = 1000;
  // Largest setReadSize() (larger values are clamped).
  static constexpr size_t kMaxReadSize = 64 * 1024 * 1024;
  // The first read's size, and the least the adaptive size shrinks to.
  // libevent rounds a new chain (this plus its ~50-byte header) up to a
  // power of two of at least 1 KiB: 960 bytes make a 1 KiB allocation,
  // which malloc serves from its per-thread cache (tcache holds chunks up
  // to ~1 KiB); 2 KiB would cost a 4 KiB allocation from the arena per read.
  static constexpr uint32_t kMinReadSize = 960;
  // Bytes reserved in the object for its libevent `struct event`
  // (checked against sizeof(struct event) when connection.cc compiles).
  static constexpr size_t kEventBytes = 128;
  // Output chains one write hands to the kernel; more wait for the next.
  static constexpr int kMaxWriteChains = 32;

 private:
  // The event's callback: EV_READ (readable, or a redelivery), EV_WRITE
  // (writable, a scheduled flush, or a finished connect).
  static void onEvent(int fd, short what, void* arg);
  void doRead();
  // One read into reserved input space (recv(), or readv() when the space
  // spans two chains); returns what that call returned.
  ssize_t readSocket();
  // One send() of the output's first chain, or one sendmsg() of its first
  // kMaxWriteChains chains; drains what was sent and returns what the call
  // returned.
  ssize_t writeSocket();
  void doWrite();
  void finishConnect();
  // What the socket should be watched for in this state (EV_READ, EV_WRITE).
  short wantedEvents() const;
  // Registers the event for wantedEvents() if that changed (re-assigning
  // it: del, assign, add), and re-queues the activations the del dropped.
  void updateEvents();
  // Activates the event with EV_WRITE (once until it runs): doWrite at the
  // end of this loop turn.
  void scheduleFlush();
  void checkWatermarks();
  void closeNow(CloseReason reason, std::string detail);

  struct FlushState;  // a kFlush close waiting for the output to drain
  event* ev() { return reinterpret_cast<event*>(ev_mem_); }

  Dispatcher& dispatcher_;
  ConnectionCallbacks* callbacks_ = nullptr;
  evbuffer* input_;
  evbuffer* output_;
  std::unique_ptr<FlushState> flush_;  // created when a kFlush close has to wait
  uint64_t bytes_read_ = 0;
  uint64_t bytes_written_ = 0;
  size_t low_watermark_ = 0;
  size_t high_watermark_ = 0;
  int fd_;
  int read_disable_count_ = 0;
  uint32_t read_size_ = 16 * 1024;
  uint32_t next_read_ = kMinReadSize;  // adaptive size of the next read (<= read_size_)
  uint8_t small_reads_ = 0;            // reads in a row under a quarter of next_read_
  State state_;
  uint8_t ev_assigned_ = 0;  // EV_READ/EV_WRITE the event was last assigned with
  // Flags in one byte (initialized by the constructor), so that the object
  // stays at 256 bytes.
  bool ev_added_ : 1;         // the event is registered (event_add) for ev_assigned_
  bool flush_scheduled_ : 1;  // activated with EV_WRITE, callback not yet run
  bool write_blocked_ : 1;    // output waits for writability (EV_WRITE registered)
  bool read_eof_ : 1;
  bool redeliver_ : 1;
  bool shutdown_pending_ : 1;
  bool write_shut_ : 1;
  bool above_high_ : 1;
  Address peer_;
  // The event lives in the object (event_assign): no allocation of its own.
  alignas(16) unsigned char ev_mem_[kEventBytes];
};

}  // namespace gw
