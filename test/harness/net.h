// test/harness/net.h — blocking loopback sockets and wire helpers for tests.
//
// Defines UniqueFd (closes its fd), freePort(), listenTcp()/acceptTcp() for
// raw test backends, connectTcp(), sendAll(), recvExact(), recvSome(),
// waitClosed(), and encoders/decoders for client and server frames built on
// core/wire.h. Everything is 127.0.0.1 only, blocking with timeouts, and
// never raises SIGPIPE (MSG_NOSIGNAL).
#pragma once

#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/sdk/wire.h"

namespace gw {
namespace test {

using Millis = std::chrono::milliseconds;

// Owns a file descriptor; closes it on destruction. Movable.
class UniqueFd {
 public:
  UniqueFd() = default;
  explicit UniqueFd(int fd) : fd_(fd) {}
  ~UniqueFd() { reset(); }
  UniqueFd(UniqueFd&& o) noexcept : fd_(o.release()) {}
  UniqueFd& operator=(UniqueFd&& o) noexcept {
    if (this != &o) reset(o.release());
    return *this;
  }
  UniqueFd(const UniqueFd&) = delete;
  UniqueFd& operator=(const UniqueFd&) = delete;

  int get() const { return fd_; }
  bool valid() const { return fd_ >= 0; }
  // Gives up ownership; returns the fd.
  int release() {
    int fd = fd_;
    fd_ = -1;
    return fd;
  }
  // Closes the current fd (if any) and takes `fd`.
  void reset(int fd = -1);

 private:
  int fd_ = -1;
};

// A TCP port on 127.0.0.1 that was free a moment ago (bind to port 0, read
// the port, close). Another process may take it before the caller binds it;
// tests accept that small race.
uint16_t freePort();

// A listening socket on 127.0.0.1:`port` (0: any free port) with
// SO_REUSEADDR, blocking. Returns an invalid fd on failure.
UniqueFd listenTcp(uint16_t port = 0, int backlog = 128);
// The local port a socket is bound to (0 on error).
uint16_t localPort(int fd);
// Accepts one connection on `listen_fd`, waiting up to `timeout`. Returns an
// invalid fd on timeout or error. The accepted socket is blocking.
UniqueFd acceptTcp(int listen_fd, Millis timeout);

// Connects to 127.0.0.1:`port`, giving up after `timeout`. Returns a
// blocking socket with TCP_NODELAY, or an invalid fd (errno set) if the
// connect failed or timed out. One attempt; no retry on ECONNREFUSED.
UniqueFd connectTcp(uint16_t port, Millis timeout = Millis(2000));

// Writes all of `data` (blocking). Returns false on error (peer reset, ...).
bool sendAll(int fd, std::string_view data);

// Reads exactly `n` bytes into *out (replacing its contents) within
// `timeout`. Returns false on timeout, EOF or error; *out then holds what
// arrived.
bool recvExact(int fd, size_t n, Millis timeout, std::string* out);

// Reads until EOF (or `timeout`), appending to *out. Returns true if EOF
// was seen (a reset counts as EOF), false on timeout.
bool recvUntilEof(int fd, Millis timeout, std::string* out);

// Waits until the peer closed the connection: a read returns 0 (FIN) or
// fails with ECONNRESET. Bytes arriving meanwhile are discarded. Returns
// false if the connection is still open after `timeout`.
bool waitClosed(int fd, Millis timeout);

// Sets or clears O_NONBLOCK. Returns false on failure.
bool setNonBlocking(int fd, bool on);

// --- Client frames (8-byte header, see core/wire.h) ---

// A decoded client frame.
struct ClientFrame {
  wire::ClientHeader header;
  std::string payload;
};

// Header + payload bytes of one client frame; `length` is payload.size()
// (payloads over 65535 bytes are cut at 65535).
std::string encodeClientFrame(uint16_t msg_id, uint32_t server_id, std::string_view payload);

// Decodes as many whole frames as `bytes` holds, appending them to *out.
// Returns the number of bytes consumed (a partial frame at the end is left).
size_t decodeClientFrames(std::string_view bytes, std::vector<ClientFrame>* out);

// Reads one whole client frame from `fd` within `timeout`. Returns false on
// timeout, EOF or error.
bool recvClientFrame(int fd, Millis timeout, ClientFrame* out);

// --- Server frames (20-byte server header + 9-byte gate header) ---

// A decoded server frame.
struct ServerFrame {
  wire::ServerHeader header;
  std::string payload;
};

// The 29 header bytes + payload of a server frame for `session`.
std::string encodeServerFrame(wire::Opcode op, int32_t type, uint64_t session,
                              std::string_view payload);

// Decodes whole server frames from `bytes` into *out. Returns the bytes
// consumed; stops (consuming nothing more) at a partial frame or at a header
// whose length is below 9 (malformed), setting *malformed if given.
size_t decodeServerFrames(std::string_view bytes, std::vector<ServerFrame>* out,
                          bool* malformed = nullptr);

// Reads one whole server frame from `fd` within `timeout`.
bool recvServerFrame(int fd, Millis timeout, ServerFrame* out);

}  // namespace test
}  // namespace gw
