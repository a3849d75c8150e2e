// Tests of gw::Connection (core/connection.h) on a real socket pair: the one
// libevent event watches EV_WRITE only while output waits for the socket
// (a write hit EAGAIN), writes of one loop turn leave together, and
// watermarks, read pausing and flushing closes still work around it.
#include "core/sdk/connection.h"

#include <event2/buffer.h>
#include <event2/event.h>
#include <gtest/gtest.h>
#include <sys/socket.h>
#include <unistd.h>

#include <chrono>
#include <functional>
#include <string>
#include <thread>

namespace gw {
namespace {

using std::chrono::milliseconds;

// Records what the connection reports; onRead can run a hook.
struct Recorder : ConnectionCallbacks {
  void onRead(Connection& conn, bool end_stream) override {
    ++reads;
    if (end_stream) eof = true;
    if (on_read) on_read(conn);
  }
  void onClose(Connection&, CloseReason r, std::string_view d) override {
    ++closes;
    reason = r;
    detail = std::string(d);
  }
  void onAboveHighWatermark(Connection&) override { ++above; }
  void onBelowLowWatermark(Connection&) override { ++below; }
  std::function<void(Connection&)> on_read;
  int reads = 0;
  bool eof = false;
  int closes = 0;
  CloseReason reason = CloseReason::kCount;
  std::string detail;
  int above = 0;
  int below = 0;
};

// Events registered with the poller for EV_WRITE on `base` (checked after a
// loop turn, when nothing is left active).
int writeRegistrations(event_base* base) {
  int n = 0;
  event_base_foreach_event(
      base,
      [](const event_base*, const event* ev, void* arg) {
        if (event_get_events(ev) & EV_WRITE) ++*static_cast<int*>(arg);
        return 0;
      },
      &n);
  return n;
}

class ConnectionTest : public ::testing::Test {
 protected:
  void SetUp() override {
    int fds[2];
    ASSERT_EQ(::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds), 0);
    peer_ = fds[1];
    conn_ = std::make_unique<Connection>(d_, fds[0], Address(), false);
    conn_->setCallbacks(&rec_);
  }
  void TearDown() override {
    conn_.reset();
    if (peer_ >= 0) ::close(peer_);
  }
  // One loop turn without waiting.
  void turn() { event_base_loop(d_.base(), EVLOOP_NONBLOCK); }
  // Turns until `pred` holds (true) or 5 s pass (false).
  bool runUntil(const std::function<bool()>& pred) {
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
    while (!pred()) {
      if (std::chrono::steady_clock::now() > deadline) return false;
      event_base_loop(d_.base(), EVLOOP_ONCE | EVLOOP_NONBLOCK);
      std::this_thread::sleep_for(milliseconds(1));
    }
    return true;
  }
  // Reads what the peer has now (non-blocking).
  std::string peerRead() {
    std::string got;
    char buf[65536];
    ssize_t n;
    while ((n = ::recv(peer_, buf, sizeof(buf), 0)) > 0) got.append(buf, static_cast<size_t>(n));
    return got;
  }
  // Fills the connection's output until a write hits EAGAIN (the peer does
  // not read). Returns the bytes written to output().
  std::string fillUntilBlocked() {
    int small = 4096;
    ::setsockopt(conn_->fd(), SOL_SOCKET, SO_SNDBUF, &small, sizeof(small));
    ::setsockopt(peer_, SOL_SOCKET, SO_RCVBUF, &small, sizeof(small));
    std::string all;
    for (int i = 0; i < 64 && !conn_->writeBlocked(); ++i) {
      std::string chunk(64 * 1024, static_cast<char>('a' + i % 26));
      conn_->write(chunk.data(), chunk.size());
      all += chunk;
      turn();
    }
    return all;
  }

  Dispatcher d_{"test"};
  Recorder rec_;
  std::unique_ptr<Connection> conn_;
  int peer_ = -1;
};

TEST_F(ConnectionTest, IdleConnectionWatchesOnlyReads) {
  turn();
  EXPECT_EQ(writeRegistrations(d_.base()), 0);
  EXPECT_FALSE(conn_->writeBlocked());
  ASSERT_EQ(::send(peer_, "ping", 4, 0), 4);
  ASSERT_TRUE(runUntil([&] { return rec_.reads == 1; }));
  EXPECT_EQ(evbuffer_get_length(conn_->input()), 4u);
}

TEST_F(ConnectionTest, WritesOfOneTurnLeaveTogetherWithoutRegisteringWrite) {
  conn_->write("one ", 4);
  conn_->write("two ", 4);
  conn_->write("three", 5);
  EXPECT_EQ(conn_->bufferedOutput(), 13u);  // nothing leaves before the turn ends
  turn();
  EXPECT_EQ(conn_->bufferedOutput(), 0u);
  EXPECT_EQ(conn_->bytesWritten(), 13u);
  EXPECT_EQ(peerRead(), "one two three");
  EXPECT_FALSE(conn_->writeBlocked());
  EXPECT_EQ(writeRegistrations(d_.base()), 0);
}

TEST_F(ConnectionTest, OutputOfMoreChainsThanOneWriteTakesLeavesIntactInOrder) {
  // libevent caps a new chain at 4 KiB, so 3,000-byte writes make one chain
  // each: more than Connection::kMaxWriteChains, which takes several
  // sendmsg() calls, and one chain left alone for send().
  std::string sent;
  for (int i = 0; i < 3 * Connection::kMaxWriteChains + 1; ++i) {
    std::string piece(3000, static_cast<char>('A' + i % 26));
    piece[0] = static_cast<char>(i);
    conn_->write(piece.data(), piece.size());
    sent += piece;
  }
  ASSERT_GT(evbuffer_peek(conn_->output(), -1, nullptr, nullptr, 0),
            2 * Connection::kMaxWriteChains);
  std::string got;
  ASSERT_TRUE(runUntil([&] {
    got += peerRead();
    return got.size() >= sent.size();
  }));
  EXPECT_TRUE(got == sent) << "received " << got.size() << " bytes, different from sent";
  EXPECT_EQ(conn_->bytesWritten(), sent.size());
  EXPECT_EQ(rec_.closes, 0);
}

TEST_F(ConnectionTest, EchoFromTheReadCallbackIsFlushed) {
  rec_.on_read = [](Connection& c) { c.write(c.input()); };
  ASSERT_EQ(::send(peer_, "echo", 4, 0), 4);
  std::string got;
  ASSERT_TRUE(runUntil([&] {
    got += peerRead();
    return got.size() == 4;
  }));
  EXPECT_EQ(got, "echo");
  EXPECT_EQ(writeRegistrations(d_.base()), 0);
}

TEST_F(ConnectionTest, WriteReadinessIsRegisteredOnlyAfterEagainAndBackpressureWorks) {
  conn_->setWatermarks(8 * 1024, 32 * 1024);
  std::string sent = fillUntilBlocked();
  ASSERT_TRUE(conn_->writeBlocked());
  EXPECT_EQ(writeRegistrations(d_.base()), 1);
  EXPECT_TRUE(conn_->aboveHighWatermark());
  EXPECT_EQ(rec_.above, 1);
  EXPECT_EQ(rec_.below, 0);

  // Reads go on while writes wait.
  ASSERT_EQ(::send(peer_, "in", 2, 0), 2);
  ASSERT_TRUE(runUntil([&] { return rec_.reads == 1; }));

  // The peer drains: the rest is written on writability, then EV_WRITE is
  // unregistered and the low watermark reported.
  std::string got;
  ASSERT_TRUE(runUntil([&] {
    got += peerRead();
    return got.size() == sent.size();
  }));
  EXPECT_TRUE(got == sent);
  turn();
  EXPECT_FALSE(conn_->writeBlocked());
  EXPECT_EQ(writeRegistrations(d_.base()), 0);
  EXPECT_FALSE(conn_->aboveHighWatermark());
  EXPECT_EQ(rec_.below, 1);
  EXPECT_EQ(conn_->bytesWritten(), sent.size());
  EXPECT_EQ(rec_.closes, 0);
}

TEST_F(ConnectionTest, PausingReadsKeepsAScheduledFlush) {
  // The read callback answers, then pauses reading: the answer must still
  // leave this turn although the event is re-registered (without EV_READ).
  rec_.on_read = [](Connection& c) {
    c.write("answer", 6);
    c.readDisable(true);
  };
  ASSERT_EQ(::send(peer_, "q", 1, 0), 1);
  std::string got;
  ASSERT_TRUE(runUntil([&] {
    got += peerRead();
    return got.size() == 6;
  }));
  EXPECT_EQ(got, "answer");
  EXPECT_FALSE(conn_->readEnabled());

  // Paused: new bytes wait in the kernel; resuming reads them.
  rec_.on_read = nullptr;
  ASSERT_EQ(::send(peer_, "more", 4, 0), 4);
  for (int i = 0; i < 5; ++i) turn();
  EXPECT_EQ(rec_.reads, 1);
  conn_->readDisable(false);
  ASSERT_TRUE(runUntil([&] { return evbuffer_get_length(conn_->input()) == 5; }));
}

TEST_F(ConnectionTest, PausedWhileBlockedStillDrainsAndResumesWithRedelivery) {
  std::string sent = fillUntilBlocked();
  ASSERT_TRUE(conn_->writeBlocked());
  ASSERT_EQ(::send(peer_, "x", 1, 0), 1);
  ASSERT_TRUE(runUntil([&] { return rec_.reads == 1; }));
  conn_->readDisable(true);
  // Only EV_WRITE stays registered; the output drains.
  std::string got;
  ASSERT_TRUE(runUntil([&] {
    got += peerRead();
    return got.size() == sent.size();
  }));
  turn();
  EXPECT_FALSE(conn_->writeBlocked());
  EXPECT_EQ(writeRegistrations(d_.base()), 0);
  // Resume: the unconsumed byte is delivered again.
  conn_->readDisable(false);
  ASSERT_TRUE(runUntil([&] { return rec_.reads == 2; }));
  EXPECT_EQ(evbuffer_get_length(conn_->input()), 1u);
}

TEST_F(ConnectionTest, ResumingWithAFlushQueuedWhileUnregistered) {
  // Blocked, then paused, then drained: the event is registered for nothing
  // (last assigned EV_WRITE). A write queues a flush on the unregistered
  // event, and resuming re-assigns it for EV_READ before the flush ran: the
  // queued activation must survive (and the event must not be re-assigned
  // while queued).
  std::string sent = fillUntilBlocked();
  ASSERT_TRUE(conn_->writeBlocked());
  conn_->readDisable(true);
  std::string got;
  ASSERT_TRUE(runUntil([&] {
    got += peerRead();
    return got.size() == sent.size() && !conn_->writeBlocked();
  }));
  EXPECT_EQ(writeRegistrations(d_.base()), 0);
  conn_->write("z", 1);
  conn_->readDisable(false);
  ASSERT_TRUE(runUntil([&] { return peerRead() == "z"; }));
  EXPECT_EQ(writeRegistrations(d_.base()), 0);
  ASSERT_EQ(::send(peer_, "r", 1, 0), 1);
  ASSERT_TRUE(runUntil([&] { return rec_.reads == 1; }));
}

TEST_F(ConnectionTest, ResumingWithAFlushQueuedStillWatchesTheSocket) {
  // As a filter does after an asynchronous lookup: pause, answer (a flush
  // is queued on the unregistered event), resume before the flush ran.
  // libevent does not register a queued event on event_add: the resume
  // must still leave the socket watched for reads.
  conn_->readDisable(true);
  turn();
  conn_->write("answer", 6);
  conn_->readDisable(false);
  ASSERT_TRUE(runUntil([&] { return peerRead() == "answer"; }));
  ASSERT_EQ(::send(peer_, "next", 4, 0), 4);
  ASSERT_TRUE(runUntil([&] { return rec_.reads == 1; }));
  EXPECT_EQ(evbuffer_get_length(conn_->input()), 4u);
}

TEST_F(ConnectionTest, FlushingCloseWaitsForBlockedOutput) {
  std::string sent = fillUntilBlocked();
  ASSERT_TRUE(conn_->writeBlocked());
  conn_->close(CloseReason::kLocalClosed, "bye", Connection::CloseMode::kFlush);
  EXPECT_EQ(conn_->state(), Connection::State::kClosing);
  EXPECT_EQ(rec_.closes, 0);
  std::string got;
  ASSERT_TRUE(runUntil([&] {
    got += peerRead();
    return rec_.closes == 1;
  }));
  got += peerRead();
  EXPECT_TRUE(got == sent);
  EXPECT_EQ(rec_.reason, CloseReason::kLocalClosed);
  EXPECT_EQ(rec_.detail, "bye");
  EXPECT_EQ(writeRegistrations(d_.base()), 0);
}

// The reason of a flushing close is the one it was asked with, also when the
// peer goes away before the output is out (a write then fails with EPIPE or
// ECONNRESET): the close was decided here (rate_limited, kicked, ...), and the
// closes_total{reason} metrics must say so. The detail says how it ended.
TEST_F(ConnectionTest, FlushingCloseKeepsItsReasonWhenThePeerLeavesFirst) {
  fillUntilBlocked();
  ASSERT_TRUE(conn_->writeBlocked());
  conn_->close(CloseReason::kRateLimited, "over the limit", Connection::CloseMode::kFlush);
  ASSERT_EQ(conn_->state(), Connection::State::kClosing);
  // The peer resets the connection with unread data (RST).
  linger l{1, 0};
  ::setsockopt(peer_, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  ::close(peer_);
  peer_ = -1;
  ASSERT_TRUE(runUntil([&] { return rec_.closes == 1; }));
  EXPECT_EQ(rec_.reason, CloseReason::kRateLimited);
  EXPECT_NE(rec_.detail.find("over the limit"), std::string::npos) << rec_.detail;
}

TEST_F(ConnectionTest, ShutdownWriteSendsFinAfterTheOutput) {
  conn_->write("last", 4);
  conn_->shutdownWrite();
  std::string got;
  bool eof = false;
  ASSERT_TRUE(runUntil([&] {
    char buf[64];
    ssize_t n = ::recv(peer_, buf, sizeof(buf), 0);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
    if (n == 0) eof = true;
    return eof;
  }));
  EXPECT_EQ(got, "last");
  // Reading goes on after the half-close.
  ASSERT_EQ(::send(peer_, "after", 5, 0), 5);
  ASSERT_TRUE(runUntil([&] { return rec_.reads == 1; }));
}

TEST_F(ConnectionTest, PeerEofIsReportedOnce) {
  ASSERT_EQ(::shutdown(peer_, SHUT_WR), 0);
  ASSERT_TRUE(runUntil([&] { return rec_.eof; }));
  for (int i = 0; i < 5; ++i) turn();
  EXPECT_EQ(rec_.reads, 1);
  // Writing still works after the peer's FIN.
  conn_->write("ok", 2);
  turn();
  EXPECT_EQ(peerRead(), "ok");
}

TEST(ConnectionConnectTest, OutboundConnectCompletesAndSwitchesToReading) {
  Dispatcher d("test");
  int lfd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  ASSERT_GE(lfd, 0);
  auto any = Address::parse("127.0.0.1:0");
  ASSERT_TRUE(any);
  ASSERT_EQ(::bind(lfd, any->sockaddr_ptr(), any->len()), 0);
  ASSERT_EQ(::listen(lfd, 4), 0);
  Address target = localAddress(lfd);
  std::string error;
  int fd = connectSocket(target, TcpLiveness{}, &error);
  ASSERT_GE(fd, 0) << error;

  struct Cb : Recorder {
    void onConnected(Connection&) override { connected = true; }
    bool connected = false;
  } cb;
  Connection conn(d, fd, target, true);
  conn.setCallbacks(&cb);
  conn.write("hi", 2);  // held until connected
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!cb.connected && std::chrono::steady_clock::now() < deadline)
    event_base_loop(d.base(), EVLOOP_ONCE | EVLOOP_NONBLOCK);
  ASSERT_TRUE(cb.connected);
  int afd = ::accept(lfd, nullptr, nullptr);
  ASSERT_GE(afd, 0);
  std::string got;
  while (got.size() < 2 && std::chrono::steady_clock::now() < deadline) {
    event_base_loop(d.base(), EVLOOP_ONCE | EVLOOP_NONBLOCK);
    char buf[8];
    ssize_t n = ::recv(afd, buf, sizeof(buf), MSG_DONTWAIT);
    if (n > 0) got.append(buf, static_cast<size_t>(n));
  }
  EXPECT_EQ(got, "hi");
  EXPECT_EQ(writeRegistrations(d.base()), 0);
  ASSERT_EQ(::send(afd, "yo", 2, 0), 2);
  while (cb.reads == 0 && std::chrono::steady_clock::now() < deadline)
    event_base_loop(d.base(), EVLOOP_ONCE | EVLOOP_NONBLOCK);
  EXPECT_EQ(cb.reads, 1);
  ::close(afd);
  ::close(lfd);
}

TEST(ConnectionLayoutTest, ObjectStaysSmall) {
  // One event and a compact Address: an idle connection's largest object.
  EXPECT_LE(sizeof(Connection), 256u);
}

}  // namespace
}  // namespace gw
