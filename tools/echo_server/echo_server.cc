// tools/echo_server — a TCP echo backend for tests, demos and benchmarks.
//
//   echo_server [--address 127.0.0.1:9000] [--quiet]
//
// Echoes every byte back on the same connection; honours half-close (a FIN
// from the client is answered with a FIN once everything was echoed).
// Prints "echo_server listening on ADDR" when ready (port 0 picks a free one
// and prints it).
//
// It is the backend of tools/e2e_bench's raw targets, where it shares one
// core with the load generator; every syscall it makes per message is taken
// from the proxy being measured. So each readable event costs one read() and
// one send() straight from a stack buffer: no FIONREAD probe, no output
// buffer, no write-event toggling. Only when a send is short (the peer is not
// reading) is the rest kept and the write event armed; reading pauses until
// it is sent, so a connection holds at most one read's worth (64 KiB).
#include <arpa/inet.h>
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdio>
#include <cstring>
#include <string>

#include "core/sdk/address.h"

namespace {

constexpr size_t kReadBytes = 64 * 1024;

// One accepted connection; freed with its events on close.
struct Conn {
  int fd = -1;
  event* readable = nullptr;
  event* writable = nullptr;
  std::string pending;  // echo bytes a short send left over; reading waits
};

void closeConn(Conn* c) {
  event_free(c->readable);
  event_free(c->writable);
  ::close(c->fd);
  delete c;
}

// The client sent FIN and everything was echoed: answer with FIN and close.
void finish(Conn* c) {
  ::shutdown(c->fd, SHUT_WR);
  closeConn(c);
}

// Whether a failed send or read leaves the connection usable.
bool retryable() { return errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR; }

void onReadable(evutil_socket_t fd, short, void* arg) {
  auto* c = static_cast<Conn*>(arg);
  char buf[kReadBytes];
  ssize_t n = ::read(fd, buf, sizeof(buf));
  if (n == 0) {
    finish(c);  // EOF is only read with nothing pending
    return;
  }
  if (n < 0) {
    if (!retryable()) closeConn(c);
    return;
  }
  ssize_t sent = ::send(fd, buf, static_cast<size_t>(n), MSG_NOSIGNAL);
  if (sent < 0) {
    if (!retryable()) {
      closeConn(c);
      return;
    }
    sent = 0;
  }
  if (sent < n) {  // the peer is not reading: keep the rest, stop reading
    c->pending.assign(buf + sent, static_cast<size_t>(n - sent));
    event_del(c->readable);
    event_add(c->writable, nullptr);
  }
}

void onWritable(evutil_socket_t fd, short, void* arg) {
  auto* c = static_cast<Conn*>(arg);
  ssize_t sent = ::send(fd, c->pending.data(), c->pending.size(), MSG_NOSIGNAL);
  if (sent < 0) {
    if (!retryable()) closeConn(c);
    return;
  }
  c->pending.erase(0, static_cast<size_t>(sent));
  if (!c->pending.empty()) return;  // still short: the write event stays
  event_del(c->writable);
  event_add(c->readable, nullptr);
}

void onAccept(evconnlistener* l, evutil_socket_t fd, sockaddr*, int, void*) {
  event_base* base = evconnlistener_get_base(l);
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  auto* c = new Conn;
  c->fd = fd;
  c->readable = event_new(base, fd, EV_READ | EV_PERSIST, onReadable, c);
  c->writable = event_new(base, fd, EV_WRITE | EV_PERSIST, onWritable, c);
  event_add(c->readable, nullptr);
}

void onSignal(evutil_socket_t, short, void* arg) {
  event_base_loopbreak(static_cast<event_base*>(arg));
}

}  // namespace

int main(int argc, char** argv) {
  std::string address = "127.0.0.1:9000";
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (a == "--address" && i + 1 < argc) {
      address = argv[++i];
    } else if (a == "--quiet") {
      // Accepted for compatibility: the server logs nothing per connection.
    } else {
      std::fprintf(stderr, "usage: echo_server [--address IP:PORT] [--quiet]\n");
      return 2;
    }
  }
  std::string why;
  auto addr = gw::Address::parse(address, &why);
  if (!addr) {
    std::fprintf(stderr, "echo_server: --address: %s\n", why.c_str());
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  event_base* base = event_base_new();
  evconnlistener* l = evconnlistener_new_bind(
      base, onAccept, nullptr, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE, 1024,
      addr->sockaddr_ptr(), static_cast<int>(addr->len()));
  if (l == nullptr) {
    std::fprintf(stderr, "echo_server: cannot listen on %s: %s\n", address.c_str(),
                 std::strerror(errno));
    return 1;
  }
  sockaddr_storage ss;
  socklen_t len = sizeof(ss);
  getsockname(evconnlistener_get_fd(l), reinterpret_cast<sockaddr*>(&ss), &len);
  gw::Address bound(reinterpret_cast<sockaddr*>(&ss), len);
  std::printf("echo_server listening on %s\n", bound.toString().c_str());
  std::fflush(stdout);
  event* sigterm = evsignal_new(base, SIGTERM, onSignal, base);
  event* sigint = evsignal_new(base, SIGINT, onSignal, base);
  event_add(sigterm, nullptr);
  event_add(sigint, nullptr);
  event_base_dispatch(base);
  event_free(sigterm);
  event_free(sigint);
  evconnlistener_free(l);
  event_base_free(base);
  return 0;
}
