// core/connection.h — a non-blocking TCP connection on one dispatcher.
//
// Defines Connection: a socket with an input and an output evbuffer, batched
// writes (everything written during one loop turn leaves in one writev at the
// end of the turn), output watermarks, counted read pausing, half-close, and
// close with a reason. Used for client connections (accepted) and backend
// connections (connect()). Owned by one worker; not thread-safe.
//
// Memory: one allocation for the object, which embeds its two libevent
// events (read, write), plus the two evbuffers. The timer and the close
// reason of a flushing close (kFlush with output still buffered) are
// allocated only when such a close starts.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "core/address.h"
#include "core/close_reason.h"
#include "core/dispatcher.h"

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
  const Address& peer() const { return peer_; }
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
  // Largest read per socket readiness (default 16 KiB). Reads start at
  // kMinReadSize and adapt: a read that fills its space doubles the next
  // one (up to this size), two reads in a row under a quarter of it halve
  // it, so an idle or chatty connection never pins a large buffer.
  void setReadSize(size_t n) { read_size_ = static_cast<uint32_t>(n > kMaxReadSize ? kMaxReadSize : n); }

  // Sends FIN once output() has drained (half-close); reading goes on.
  void shutdownWrite();
  // Closes with `reason`; onClose runs once the fd is closed (for kFlush,
  // after the output drained or `flush_timeout` passed). Idempotent.
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
  // Bytes reserved in the object for each libevent `struct event`
  // (checked against sizeof(struct event) when connection.cc compiles).
  static constexpr size_t kEventBytes = 128;

 private:
  static void onReadable(int fd, short what, void* arg);
  static void onWritable(int fd, short what, void* arg);
  void doRead();
  // One readv() into reserved input space; returns what readv() did.
  ssize_t readSocket();
  void doWrite();
  void finishConnect();
  void updateReadEvent();
  void checkWatermarks();
  void closeNow(CloseReason reason, std::string detail);

  struct FlushState;  // a kFlush close waiting for the output to drain
  event* readEv() { return reinterpret_cast<event*>(read_ev_mem_); }
  event* writeEv() { return reinterpret_cast<event*>(write_ev_mem_); }

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
  bool read_ev_added_ = false;
  bool read_eof_ = false;
  bool redeliver_ = false;
  bool shutdown_pending_ = false;
  bool write_shut_ = false;
  bool above_high_ = false;
  Address peer_;
  // The events live in the object (event_assign): no allocation of their own.
  alignas(16) unsigned char read_ev_mem_[kEventBytes];
  alignas(16) unsigned char write_ev_mem_[kEventBytes];
};

}  // namespace gw
