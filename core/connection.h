// core/connection.h — a non-blocking TCP connection on one dispatcher.
//
// Defines Connection: a socket with an input and an output evbuffer, batched
// writes (everything written during one loop turn leaves in one writev at the
// end of the turn), output watermarks, counted read pausing, half-close, and
// close with a reason. Used for client connections (accepted) and backend
// connections (connect()). Owned by one worker; not thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
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
  enum class State { kConnecting, kOpen, kClosing, kClosed };
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
  // Largest read per socket readiness (default 16 KiB).
  void setReadSize(size_t n) { read_size_ = n; }

  // Sends FIN once output() has drained (half-close); reading goes on.
  void shutdownWrite();
  // Closes with `reason`; onClose runs once the fd is closed (for kFlush,
  // after the output drained or `flush_timeout` passed). Idempotent.
  void close(CloseReason reason, std::string_view detail, CloseMode mode = CloseMode::kAbort);

  uint64_t bytesRead() const { return bytes_read_; }
  uint64_t bytesWritten() const { return bytes_written_; }

  // How long a kFlush close may wait for the peer to take the output.
  static constexpr int kFlushTimeoutMs = 1000;

 private:
  static void onReadable(int fd, short what, void* arg);
  static void onWritable(int fd, short what, void* arg);
  void doRead();
  void doWrite();
  void finishConnect();
  void updateReadEvent();
  void checkWatermarks();
  void closeNow(CloseReason reason, std::string detail);

  Dispatcher& dispatcher_;
  int fd_;
  Address peer_;
  State state_;
  ConnectionCallbacks* callbacks_ = nullptr;
  evbuffer* input_;
  evbuffer* output_;
  event* read_ev_;
  event* write_ev_;
  Timer flush_timer_;
  int read_disable_count_ = 0;
  bool read_ev_added_ = false;
  bool read_eof_ = false;
  bool redeliver_ = false;
  bool shutdown_pending_ = false;
  bool write_shut_ = false;
  bool above_high_ = false;
  size_t low_watermark_ = 0;
  size_t high_watermark_ = 0;
  size_t read_size_ = 16 * 1024;
  uint64_t bytes_read_ = 0;
  uint64_t bytes_written_ = 0;
  CloseReason pending_reason_ = CloseReason::kLocalClosed;
  std::string pending_detail_;
};

}  // namespace gw
