#include "core/connection.h"

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
      peer_(peer) {
  event_assign(readEv(), dispatcher.base(), fd, EV_READ | EV_PERSIST, &Connection::onReadable,
               this);
  event_assign(writeEv(), dispatcher.base(), fd, EV_WRITE, &Connection::onWritable, this);
  if (connecting) {
    event_add(writeEv(), nullptr);  // writable = connect finished (or failed)
  } else {
    updateReadEvent();
  }
}

Connection::~Connection() {
  event_del(readEv());
  event_del(writeEv());
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
  // Activating the write event runs onWritable later in this loop turn, after
  // the callbacks already queued: all writes of a turn leave in one writev.
  event_active(writeEv(), EV_WRITE, 0);
  checkWatermarks();
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
    updateReadEvent();
    if (read_disable_count_ == 0 && state_ == State::kOpen && evbuffer_get_length(input_) > 0) {
      // Bytes arrived before the pause: deliver them again on a later turn.
      redeliver_ = true;
      event_active(readEv(), EV_READ, 0);
    }
    return;
  }
  updateReadEvent();
}

void Connection::updateReadEvent() {
  bool want = state_ == State::kOpen && read_disable_count_ == 0 && !read_eof_ && fd_ >= 0;
  if (want && !read_ev_added_) {
    event_add(readEv(), nullptr);
    read_ev_added_ = true;
  } else if (!want && read_ev_added_) {
    event_del(readEv());
    read_ev_added_ = false;
  }
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
  updateReadEvent();
  event_active(writeEv(), EV_WRITE, 0);
  flush_->timer.enable(std::chrono::milliseconds(kFlushTimeoutMs));
}

void Connection::closeNow(CloseReason reason, std::string detail) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  if (flush_) flush_->timer.disable();
  event_del(readEv());
  event_del(writeEv());
  read_ev_added_ = false;
  if (fd_ >= 0) ::close(fd_);
  fd_ = -1;
  if (callbacks_ != nullptr) callbacks_->onClose(*this, reason, detail);
}

void Connection::onReadable(int, short, void* arg) { static_cast<Connection*>(arg)->doRead(); }

void Connection::onWritable(int, short, void* arg) {
  auto* self = static_cast<Connection*>(arg);
  if (self->state_ == State::kConnecting) {
    self->finishConnect();
  } else {
    self->doWrite();
  }
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
  updateReadEvent();
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
    updateReadEvent();
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
  ssize_t n = ::readv(fd_, iov, used);
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

void Connection::doWrite() {
  if (state_ == State::kClosed || state_ == State::kConnecting) return;
  while (evbuffer_get_length(output_) > 0) {
    int n = evbuffer_write(output_, fd_);
    if (n > 0) {
      bytes_written_ += static_cast<uint64_t>(n);
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) break;
    closeNow(errno == EPIPE || errno == ECONNRESET ? CloseReason::kRemoteClosed
                                                    : CloseReason::kSocketError,
             std::string("write: ") + std::strerror(errno));
    return;
  }
  if (evbuffer_get_length(output_) > 0) {
    event_add(writeEv(), nullptr);  // wait until the socket takes more
  } else {
    event_del(writeEv());
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
