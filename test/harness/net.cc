#include "test/harness/net.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

namespace gw {
namespace test {
namespace {

using Clock = std::chrono::steady_clock;

sockaddr_in loopback(uint16_t port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  return a;
}

// Milliseconds left until `deadline` (0 when past), for poll().
int msLeft(Clock::time_point deadline) {
  auto left = std::chrono::duration_cast<Millis>(deadline - Clock::now()).count();
  return left > 0 ? static_cast<int>(left) : 0;
}

// Polls `fd` for `events` until `deadline`. Returns true when ready.
bool pollUntil(int fd, short events, Clock::time_point deadline) {
  for (;;) {
    pollfd p{fd, events, 0};
    int r = ::poll(&p, 1, msLeft(deadline));
    if (r > 0) return true;
    if (r == 0) return false;
    if (errno != EINTR) return false;
  }
}

}  // namespace

void UniqueFd::reset(int fd) {
  if (fd_ >= 0) ::close(fd_);
  fd_ = fd;
}

uint16_t freePort() {
  UniqueFd fd = listenTcp(0, 1);
  return fd.valid() ? localPort(fd.get()) : 0;
}

UniqueFd listenTcp(uint16_t port, int backlog) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0));
  if (!fd.valid()) return fd;
  int one = 1;
  ::setsockopt(fd.get(), SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  sockaddr_in a = loopback(port);
  if (::bind(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0 ||
      ::listen(fd.get(), backlog) != 0) {
    return UniqueFd();
  }
  return fd;
}

uint16_t localPort(int fd) {
  sockaddr_in a{};
  socklen_t len = sizeof(a);
  if (::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &len) != 0) return 0;
  return ntohs(a.sin_port);
}

UniqueFd acceptTcp(int listen_fd, Millis timeout) {
  if (!pollUntil(listen_fd, POLLIN, Clock::now() + timeout)) return UniqueFd();
  return UniqueFd(::accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC));
}

bool setNonBlocking(int fd, bool on) {
  int flags = ::fcntl(fd, F_GETFL, 0);
  if (flags < 0) return false;
  flags = on ? (flags | O_NONBLOCK) : (flags & ~O_NONBLOCK);
  return ::fcntl(fd, F_SETFL, flags) == 0;
}

UniqueFd connectTcp(uint16_t port, Millis timeout) {
  UniqueFd fd(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0));
  if (!fd.valid()) return fd;
  int one = 1;
  ::setsockopt(fd.get(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  sockaddr_in a = loopback(port);
  if (::connect(fd.get(), reinterpret_cast<sockaddr*>(&a), sizeof(a)) != 0) {
    if (errno != EINPROGRESS) return UniqueFd();
    if (!pollUntil(fd.get(), POLLOUT, Clock::now() + timeout)) {
      errno = ETIMEDOUT;
      return UniqueFd();
    }
    int err = 0;
    socklen_t len = sizeof(err);
    ::getsockopt(fd.get(), SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      errno = err;
      return UniqueFd();
    }
  }
  if (!setNonBlocking(fd.get(), false)) return UniqueFd();
  return fd;
}

bool sendAll(int fd, std::string_view data) {
  size_t off = 0;
  while (off < data.size()) {
    ssize_t n = ::send(fd, data.data() + off, data.size() - off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {  // a non-blocking socket
        pollfd p{fd, POLLOUT, 0};
        ::poll(&p, 1, 100);
        continue;
      }
      return false;
    }
    off += static_cast<size_t>(n);
  }
  return true;
}

bool recvExact(int fd, size_t n, Millis timeout, std::string* out) {
  out->clear();
  out->reserve(n);
  auto deadline = Clock::now() + timeout;
  char buf[65536];
  while (out->size() < n) {
    if (!pollUntil(fd, POLLIN, deadline)) return false;
    size_t want = std::min(sizeof(buf), n - out->size());
    ssize_t r = ::recv(fd, buf, want, MSG_DONTWAIT);
    if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (r <= 0) return false;
    out->append(buf, static_cast<size_t>(r));
  }
  return true;
}

bool recvUntilEof(int fd, Millis timeout, std::string* out) {
  auto deadline = Clock::now() + timeout;
  char buf[65536];
  for (;;) {
    if (!pollUntil(fd, POLLIN, deadline)) return false;
    ssize_t r = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (r < 0 && (errno == EINTR || errno == EAGAIN || errno == EWOULDBLOCK)) continue;
    if (r == 0 || (r < 0 && errno == ECONNRESET)) return true;
    if (r < 0) return false;
    out->append(buf, static_cast<size_t>(r));
  }
}

bool waitClosed(int fd, Millis timeout) {
  auto deadline = Clock::now() + timeout;
  char buf[65536];
  for (;;) {
    if (!pollUntil(fd, POLLIN, deadline)) return false;
    ssize_t r = ::recv(fd, buf, sizeof(buf), MSG_DONTWAIT);
    if (r == 0) return true;
    if (r < 0 && errno == ECONNRESET) return true;
    if (r < 0 && errno != EINTR && errno != EAGAIN && errno != EWOULDBLOCK) return false;
  }
}

std::string encodeClientFrame(uint16_t msg_id, uint32_t server_id, std::string_view payload) {
  if (payload.size() > wire::kMaxClientPayload)
    payload = payload.substr(0, wire::kMaxClientPayload);
  wire::ClientHeader h;
  h.length = static_cast<uint16_t>(payload.size());
  h.msg_id = msg_id;
  h.server_id = server_id;
  std::string out(wire::kClientHeaderSize, '\0');
  h.encode(reinterpret_cast<uint8_t*>(out.data()));
  out.append(payload);
  return out;
}

size_t decodeClientFrames(std::string_view bytes, std::vector<ClientFrame>* out) {
  size_t off = 0;
  while (bytes.size() - off >= wire::kClientHeaderSize) {
    auto h = wire::ClientHeader::decode(reinterpret_cast<const uint8_t*>(bytes.data() + off));
    if (bytes.size() - off - wire::kClientHeaderSize < h.length) break;
    out->push_back({h, std::string(bytes.substr(off + wire::kClientHeaderSize, h.length))});
    off += wire::kClientHeaderSize + h.length;
  }
  return off;
}

bool recvClientFrame(int fd, Millis timeout, ClientFrame* out) {
  auto deadline = Clock::now() + timeout;
  std::string head;
  if (!recvExact(fd, wire::kClientHeaderSize, timeout, &head)) return false;
  out->header = wire::ClientHeader::decode(reinterpret_cast<const uint8_t*>(head.data()));
  return recvExact(fd, out->header.length, Millis(msLeft(deadline)), &out->payload);
}

std::string encodeServerFrame(wire::Opcode op, int32_t type, uint64_t session,
                              std::string_view payload) {
  auto h = wire::ServerHeader::make(op, type, session, payload.size());
  std::string out(wire::kServerFrameOverhead, '\0');
  h.encode(reinterpret_cast<uint8_t*>(out.data()));
  out.append(payload);
  return out;
}

size_t decodeServerFrames(std::string_view bytes, std::vector<ServerFrame>* out, bool* malformed) {
  if (malformed) *malformed = false;
  size_t off = 0;
  while (bytes.size() - off >= wire::kServerFrameOverhead) {
    auto h = wire::ServerHeader::decode(reinterpret_cast<const uint8_t*>(bytes.data() + off));
    if (h.payloadLength() < 0) {
      if (malformed) *malformed = true;
      break;
    }
    size_t len = static_cast<size_t>(h.payloadLength());
    if (bytes.size() - off - wire::kServerFrameOverhead < len) break;
    out->push_back({h, std::string(bytes.substr(off + wire::kServerFrameOverhead, len))});
    off += wire::kServerFrameOverhead + len;
  }
  return off;
}

bool recvServerFrame(int fd, Millis timeout, ServerFrame* out) {
  auto deadline = Clock::now() + timeout;
  std::string head;
  if (!recvExact(fd, wire::kServerFrameOverhead, timeout, &head)) return false;
  out->header = wire::ServerHeader::decode(reinterpret_cast<const uint8_t*>(head.data()));
  if (out->header.payloadLength() < 0) return false;
  return recvExact(fd, static_cast<size_t>(out->header.payloadLength()), Millis(msLeft(deadline)),
                   &out->payload);
}

}  // namespace test
}  // namespace gw
