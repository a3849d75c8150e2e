#include "core/connection.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

namespace gw {

Connection::Connection(Dispatcher& dispatcher, int fd, Address peer, bool connecting)
    : dispatcher_(dispatcher),
      fd_(fd),
      peer_(peer),
      state_(connecting ? State::kConnecting : State::kOpen),
      input_(evbuffer_new()),
      output_(evbuffer_new()),
      flush_timer_(dispatcher, [this] {
        closeNow(pending_reason_, pending_detail_ + " (output not drained in time)");
      }) {
  read_ev_ = event_new(dispatcher.base(), fd, EV_READ | EV_PERSIST, &Connection::onReadable, this);
  write_ev_ = event_new(dispatcher.base(), fd, EV_WRITE, &Connection::onWritable, this);
  if (connecting) {
    event_add(write_ev_, nullptr);  // writable = connect finished (or failed)
  } else {
    updateReadEvent();
  }
}

Connection::~Connection() {
  event_free(read_ev_);
  event_free(write_ev_);
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
  event_active(write_ev_, EV_WRITE, 0);
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
      event_active(read_ev_, EV_READ, 0);
    }
    return;
  }
  updateReadEvent();
}

void Connection::updateReadEvent() {
  bool want = state_ == State::kOpen && read_disable_count_ == 0 && !read_eof_ && fd_ >= 0;
  if (want && !read_ev_added_) {
    event_add(read_ev_, nullptr);
    read_ev_added_ = true;
  } else if (!want && read_ev_added_) {
    event_del(read_ev_);
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
  pending_reason_ = reason;
  pending_detail_ = std::string(detail);
  updateReadEvent();
  event_active(write_ev_, EV_WRITE, 0);
  flush_timer_.enable(std::chrono::milliseconds(kFlushTimeoutMs));
}

void Connection::closeNow(CloseReason reason, std::string detail) {
  if (state_ == State::kClosed) return;
  state_ = State::kClosed;
  flush_timer_.disable();
  event_del(read_ev_);
  event_del(write_ev_);
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
  int n = evbuffer_read(input_, fd_, static_cast<int>(read_size_));
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
    event_add(write_ev_, nullptr);  // wait until the socket takes more
  } else {
    event_del(write_ev_);
    if (shutdown_pending_ && !write_shut_) {
      ::shutdown(fd_, SHUT_WR);
      write_shut_ = true;
      shutdown_pending_ = false;
    }
    if (state_ == State::kClosing) {
      closeNow(pending_reason_, pending_detail_);
      return;
    }
  }
  checkWatermarks();
}

}  // namespace gw
