#include "core/sdk/connection.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <event2/event_struct.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace gw {

static_assert(sizeof(struct event) <= Connection::kEventBytes,
              "raise Connection::kEventBytes to sizeof(struct event)");
static_assert(alignof(struct event) <= 16, "struct event needs a larger alignment");
static_assert(sizeof(void*) != 8 || sizeof(Connection) <= 256,
              "Connection grew past 256 bytes (every client connection pays for it)");

struct Connection::FlushState {
  FlushState(Connection& conn, CloseReason r, std::string d)
      : timer(conn.dispatcher_,
              [&conn] {
                FlushState& self = *conn.flush_;
                conn.closeNow(self.reason, self.detail + " (output not drained in time)");
              }),
        reason(r),
        detail(std::move(d)) {}
  Timer timer;
  CloseReason reason;
  std::string detail;
};

Connection::Connection(Dispatcher& dispatcher, int fd, Address peer, bool connecting)
    : dispatcher_(dispatcher),
      input_(evbuffer_new()),
      output_(evbuffer_new()),
      fd_(fd),
      state_(connecting ? State::kConnecting : State::kOpen),
      ev_added_(false),
      flush_scheduled_(false),
      write_blocked_(false),
      read_eof_(false),
      redeliver_(false),
      shutdown_pending_(false),
      write_shut_(false),
      above_high_(false),
      peer_(peer) {
  // Assigned for no events yet: updateEvents() assigns what the state needs
  // (EV_WRITE while connecting: writable = connect finished or failed).
  event_assign(ev(), dispatcher.base(), fd, EV_PERSIST, &Connection::onEvent, this);
  updateEvents();
}

Connection::~Connection() {
  event_del(ev());
  if (fd_ >= 0) ::close(fd_);
  evbuffer_free(input_);
  evbuffer_free(output_);
}

void Connection::write(const void* data, size_t len) {
  evbuffer_add(output_, data, len);
  flushSoon();
}

void Connection::write(evbuffer* data) {
  evbuffer_add_buffer(output_, data);
  flushSoon();
}

void Connection::flushSoon() {
  if (state_ == State::kClosed) return;
  if (state_ == State::kConnecting || fd_ < 0) {
    checkWatermarks();  // detached (fd -1): output stays for the test to read
    return;
  }
  // Activating the event with EV_WRITE runs doWrite later in this loop turn,
  // after the callbacks already queued: all writes of a turn leave in one
  // write.
  scheduleFlush();
  checkWatermarks();
}

void Connection::scheduleFlush() {
  if (flush_scheduled_) return;
  flush_scheduled_ = true;
  event_active(ev(), EV_WRITE, 0);
}

size_t Connection::bufferedOutput() const { return evbuffer_get_length(output_); }

void Connection::readDisable(bool disable) {
  if (disable) {
    ++read_disable_count_;
  } else if (read_disable_count_ > 0) {
    --read_disable_count_;
    // Re-arm before activating: libevent does not register an event with
    // the poller while it is active, so event_add after event_active would
    // leave the socket unwatched once the redelivery ran (EOF never seen).
    updateEvents();
    if (read_disable_count_ == 0 && state_ == State::kOpen && evbuffer_get_length(input_) > 0) {
      // Bytes arrived before the pause: deliver them again on a later turn.
      redeliver_ = true;
      event_active(ev(), EV_READ, 0);
    }
    return;
  }
  updateEvents();
}

short Connection::wantedEvents() const {
  if (fd_ < 0) return 0;
  switch (state_) {
    case State::kConnecting:
      return EV_WRITE;
    case State::kClosed:
      return 0;
    case State::kOpen:
    case State::kClosing:
      break;
  }
  short want = 0;
  if (state_ == State::kOpen && read_disable_count_ == 0 && !read_eof_) want |= EV_READ;
  if (write_blocked_) want |= EV_WRITE;
  return want;
}

void Connection::updateEvents() {
  const short want = wantedEvents();
  if (want == (ev_added_ ? ev_assigned_ : 0)) return;
  // libevent has no "modify": an event's mask changes with del + assign +
  // add. The del comes first even when the event is not registered: it
  // also takes the event off the active queue (a queued flush or
  // redelivery), and libevent neither registers a queued event with the
  // poller on event_add (the socket would go unwatched) nor allows
  // event_assign on it. What the del dropped is queued again below.
  event_del(ev());
  ev_added_ = false;
  if (want != 0) {
    if (want != ev_assigned_) {
      event_assign(ev(), dispatcher_.base(), fd_, static_cast<short>(want | EV_PERSIST),
                   &Connection::onEvent, this);
      ev_assigned_ = static_cast<uint8_t>(want);
    }
    event_add(ev(), nullptr);
    ev_added_ = true;
  }
  // Re-queue what the del dropped: a scheduled flush, and a pending
  // redelivery while reading is on (with two events, neither was touched
  // by a change of the other's interest). A dropped readiness is reported
  // again by the (level-triggered) poller.
  short again = 0;
  if (flush_scheduled_) again |= EV_WRITE;
  if (redeliver_ && (want & EV_READ)) again |= EV_READ;
  if (again != 0) event_active(ev(), again, 0);
}

void Connection::setWatermarks(size_t low, size_t high) {
  low_watermark_ = low;
  high_watermark_ = high;
  checkWatermarks();
}

void Connection::checkWatermarks() {
  if (high_watermark_ == 0 || callbacks_ == nullptr) return;
  size_t len = evbuffer_get_length(output_);
  if (!above_high_ && len > high_watermark_) {
    above_high_ = true;
    callbacks_->onAboveHighWatermark(*this);
  } else if (above_high_ && len <= low_watermark_) {
    above_high_ = false;
    callbacks_->onBelowLowWatermark(*this);
  }
}

void Connection::shutdownWrite() {
  if (write_shut_ || state_ == State::kClosed) return;
  shutdown_pending_ = true;
  flushSoon();
}

void Connection::close(CloseReason reason, std::string_view detail, CloseMode mode) {
  if (state_ == State::kClosed) return;
  if (mode == CloseMode::kAbort || state_ == State::kConnecting || fd_ < 0 ||
      evbuffer_get_length(output_) == 0) {
    closeNow(reason, std::string(detail));
    return;
  }
  if (state_ == State::kClosing) return;
  state_ = State::kClosing;
  flush_ = std::make_unique<FlushState>(*this, reason, std::string(detail));
  updateEvents();
  scheduleFlush();
  flush_->timer.enable(std::chrono::milliseconds(kFlushTimeoutMs));
}

void Connection::closeNow(CloseReason reason, std::string detail) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  if (flush_) flush_->timer.disable();
  event_del(ev());  // unregisters it and drops any activation
  ev_added_ = false;
  flush_scheduled_ = false;
  write_blocked_ = false;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (callbacks_ != nullptr) callbacks_->onClose(*this, reason, detail);
}

void Connection::onEvent(int, short what, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  // This activation carried every flag queued for the event: a scheduled
  // flush (EV_WRITE) is being delivered now.
  self->flush_scheduled_ = false;
  if (self->state_ == State::kConnecting) {
    if (what & EV_WRITE) self->finishConnect();
    return;
  }
  if (what & EV_READ) {
    self->doRead();
    // A flush (or writability) that arrived with the read goes to the back
    // of the queue: callbacks queued after this one may still add output
    // this turn, and all of it should leave in one write.
    if ((what & EV_WRITE) && self->state_ != State::kClosed) self->scheduleFlush();
    return;
  }
  if (what & EV_WRITE) self->doWrite();
}

void Connection::finishConnect() {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(fd_, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) {
    closeNow(CloseReason::kUpstreamConnectFailed,
             "connect " + peer_.toString() + ": " + std::strerror(err));
    return;
  }
  state_ = State::kOpen;
  updateEvents();
  if (callbacks_ != nullptr) callbacks_->onConnected(*this);
  if (state_ == State::kOpen && evbuffer_get_length(output_) > 0) flushSoon();
}

void Connection::doRead() {
  if (state_ != State::kOpen) return;
  if (redeliver_) {
    redeliver_ = false;
    if (read_disable_count_ == 0 && callbacks_ != nullptr) callbacks_->onRead(*this, false);
    return;
  }
  if (fd_ < 0 || read_disable_count_ > 0) return;
  ssize_t n = readSocket();
  if (n > 0) {
    bytes_read_ += static_cast<uint64_t>(n);
    if (callbacks_ != nullptr) callbacks_->onRead(*this, false);
    return;
  }
  if (n == 0) {
    read_eof_ = true;
    updateEvents();
    if (callbacks_ != nullptr) callbacks_->onRead(*this, true);
    return;
  }
  if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
  closeNow(errno == ECONNRESET ? CloseReason::kRemoteClosed : CloseReason::kSocketError,
           std::string("read: ") + std::strerror(errno));
}

ssize_t Connection::readSocket() {
  // Not evbuffer_read(): it asks the kernel how much is readable (an ioctl,
  // one more system call per read) before reading. Space is reserved in the
  // input buffer instead (the tail of the last chain, or a new chain) and
  // read into directly.
  uint32_t want = next_read_ < read_size_ ? next_read_ : read_size_;
  evbuffer_iovec vec[2];
  int nvec = evbuffer_reserve_space(input_, want, vec, 2);
  if (nvec <= 0) {
    errno = ENOMEM;
    return -1;
  }
  // The reservation may be larger (a chain's tail plus a new chain): read
  // at most `want`, so the read size bounds what one read adds.
  iovec iov[2];
  size_t space = 0;
  int used = 0;
  for (int i = 0; i < nvec && space < want; ++i) {
    size_t len = vec[i].iov_len < want - space ? vec[i].iov_len : want - space;
    iov[i].iov_base = vec[i].iov_base;
    iov[i].iov_len = len;
    space += len;
    used = i + 1;
  }
  // One vector (the usual case) goes to recv(): readv() also copies the
  // vector array in from user space, ~1.5 % of tcp_proxy's CPU in perf.
  ssize_t n = used == 1 ? ::recv(fd_, iov[0].iov_base, iov[0].iov_len, 0)
                        : ::readv(fd_, iov, used);
  if (n <= 0) {
    int saved = errno;
    evbuffer_commit_space(input_, vec, 0);  // releases the reservation
    errno = saved;
    return n;
  }
  // Hand the bytes read to the buffer: fill the vectors in order.
  size_t left = static_cast<size_t>(n);
  for (int i = 0; i < used; ++i) {
    size_t take = left < iov[i].iov_len ? left : iov[i].iov_len;
    vec[i].iov_len = take;
    left -= take;
  }
  evbuffer_commit_space(input_, vec, used);
  // Adapt the next read to what this one got.
  if (static_cast<size_t>(n) >= space && want < read_size_) {
    next_read_ = want * 2 < read_size_ ? want * 2 : read_size_;
    small_reads_ = 0;
  } else if (static_cast<uint32_t>(n) < want / 4 && want > kMinReadSize) {
    if (++small_reads_ >= 2) {
      next_read_ = want / 2 > kMinReadSize ? want / 2 : kMinReadSize;
      small_reads_ = 0;
    }
  } else {
    small_reads_ = 0;
  }
  return n;
}

ssize_t Connection::writeSocket() {
  // Not evbuffer_write(): it always uses writev(). Output that sits in one
  // chain (the usual case: a loop turn's replies appended to one chain) goes
  // out with send(), which does not copy a vector array in from user space.
  evbuffer_iovec vec[kMaxWriteChains];
  int nvec = evbuffer_peek(output_, -1, nullptr, vec, kMaxWriteChains);
  if (nvec > kMaxWriteChains) nvec = kMaxWriteChains;  // the rest goes next time
  ssize_t n;
  if (nvec == 1) {
    n = ::send(fd_, vec[0].iov_base, vec[0].iov_len, MSG_NOSIGNAL);
  } else {
    iovec iov[kMaxWriteChains];
    for (int i = 0; i < nvec; ++i) iov[i] = {vec[i].iov_base, vec[i].iov_len};
    msghdr msg{};
    msg.msg_iov = iov;
    msg.msg_iovlen = static_cast<size_t>(nvec);
    n = ::sendmsg(fd_, &msg, MSG_NOSIGNAL);
  }
  if (n > 0) evbuffer_drain(output_, static_cast<size_t>(n));
  return n;
}

void Connection::doWrite() {
  if (state_ == State::kClosed || state_ == State::kConnecting) return;
  while (evbuffer_get_length(output_) > 0) {
    ssize_t n = writeSocket();
    if (n > 0) {
      bytes_written_ += static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
    std::string why = std::string("write: ") + std::strerror(errno);
    if (state_ == State::kClosing) {
      // A flushing close keeps the reason it was decided for (the peer left
      // before the rest of the output went out: the detail says so).
      closeNow(flush_->reason, flush_->detail + " (flush cut: " + why + ")");
      return;
    }
    closeNow(errno == EPIPE || errno == ECONNRESET ? CloseReason::kRemoteClosed
                                                    : CloseReason::kSocketError,
             std::move(why));
    return;
  }
  const bool blocked = evbuffer_get_length(output_) > 0;
  if (blocked != write_blocked_) {
    // Watch for writability only while output waits for the socket.
    write_blocked_ = blocked;
    updateEvents();
  }
  if (!blocked) {
    if (shutdown_pending_ && !write_shut_) {
      ::shutdown(fd_, SHUT_WR);
      write_shut_ = true;
      shutdown_pending_ = false;
    }
    if (state_ == State::kClosing) {
      closeNow(flush_->reason, flush_->detail);
      return;
    }
  }
  checkWatermarks();
}

}  // namespace gw
