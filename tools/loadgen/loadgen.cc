// tools/loadgen — a load generator speaking the client frame (or raw bytes) to a gateway.
//
//   loadgen --target IP:PORT [--connections 64] [--duration 10s] [--warmup 1s] [--size 64]
//           [--mode pingpong|rate] [--pipeline 1] [--rate MSG/S] [--server-type 200]
//           [--world-id 0] [--msg-id 1] [--connect-rate N/s] [--connect-timeout 5s]
//           [--source-ip-range A-B] [--raw | --backend] [--tls [--tls-ciphersuites S]
//           [--tls-ca FILE]] [--ws [--ws-path /]] [--json]
//
// Framing: client frames by default (what a game client sends a gateway); --raw sends bare
// --size-byte messages (TCP echo servers, HAProxy tcp mode); --backend speaks the server frame
// as the gateway does to a backend (to measure backend_sim directly): connection i is session
// i + 1, opened with a session-open frame, and every message is a data frame for it.
// --tls wraps any of them in TLS (OpenSSL, TLS 1.2+, non-blocking on the same epoll loop): a
// connection counts as connected once its handshake completed; a failed handshake is a failed
// connect. --tls-ciphersuites picks the TLS 1.3 suites (e.g. TLS_AES_128_GCM_SHA256);
// --tls-ca FILE verifies the server against FILE (default: no verification, a benchmark).
// --ws speaks WebSocket (RFC 6455; with --tls, wss): after connecting (and the TLS
// handshake) each connection upgrades with GET --ws-path (default /) and checks the 101
// (Sec-WebSocket-Accept through OpenSSL SHA-1/base64); a refused or bad upgrade is a failed
// connect, also counted as a WebSocket handshake failure. Then every message goes in its own
// masked binary WebSocket message (a fresh mask per message from a xorshift PRNG), and
// replies are read from the server's binary messages (unmasked; each holds one whole frame,
// docs/protocol.md). Works with client frames (a gateway with `websocket` in its chain) and
// --raw. A server close frame ends the connection (a disconnect error).
//
// Phases: connect (all connections are started, at --connect-rate if given, and each either
// connects or fails), then warmup, then the measured window of --duration. Traffic on a
// connection starts as soon as it is connected; only replies received inside the window are
// counted, and only sends made inside it count as sent.
//
// Every message payload (at least 16 bytes) starts with the send time (u64, CLOCK_MONOTONIC
// ns), the connection index (u32) and a connection-local sequence number (u32); the rest is a
// fixed pattern. A reply must come back in order and byte-identical, else it is an error; a
// message skipped by the replies is an error unless the gateway refused it (error frame). A
// frame with another msg_id (--backend: another type, or a non-data opcode) is a push
// (counted, not an error). A gateway error frame (msg_id 65535, docs/protocol.md) answering a
// message is an error. RTTs go into a fixed-memory log-linear histogram. See docs/tools.md.
//
// One thread, epoll (level-triggered), one large shared read buffer, one write per
// connection per loop turn. SIGINT / SIGTERM end the run early and still print the results
// (the window is cut short). Exit status: 0 if every connection connected and no error was
// seen, 1 otherwise, 2 for bad flags.
#include <arpa/inet.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <csignal>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "core/sdk/address.h"
#include "core/sdk/wire.h"
#include "tools/loadgen/histogram.h"
#include "tools/loadgen/tool_flags.h"
#include "tools/loadgen/ws_client.h"

namespace {

using gw::tools::LatencyHistogram;
using gw::wire::ClientHeader;
using gw::wire::kClientHeaderSize;
using gw::wire::kServerFrameOverhead;
using gw::wire::kServerHeaderSize;
using gw::wire::Opcode;
using gw::wire::ServerHeader;

// Bytes at the start of each payload: send time u64, connection index u32, sequence u32.
constexpr size_t kStampSize = 16;
// Largest --size with --raw or --backend (client frames are capped by their u16 length).
constexpr size_t kMaxRawSize = 1 << 20;
// Shared read buffer: room for one partial message plus this much fresh data.
constexpr size_t kReadChunk = 1 << 20;
// Open-loop sends to a connection are skipped (counted as "throttled") while it has this
// much unsent output: the peer is not reading.
constexpr size_t kMaxQueued = 8 << 20;
// Connects started per loop turn when --connect-rate is unlimited.
constexpr int kConnectBatch = 256;
// msg_id of the gateway's error frames (docs/protocol.md, "Error frames").
constexpr uint16_t kErrorFrameMsgId = 0xFFFF;
// --ws: the largest upgrade response head accepted.
constexpr size_t kMaxUpgradeResponse = 16 * 1024;

enum class Mode { kPingPong, kRate };
// What each message looks like on the wire.
enum class Framing { kClient, kRaw, kBackend };

struct Options {
  std::optional<gw::Address> target;
  uint32_t connections = 64;
  int64_t duration_ns = 10'000'000'000;
  int64_t warmup_ns = 1'000'000'000;
  size_t size = 64;
  Mode mode = Mode::kPingPong;
  uint32_t pipeline = 1;
  double rate = 0;
  uint32_t server_type = 200;
  uint32_t world_id = 0;
  uint32_t msg_id = 1;
  double connect_rate = 0;  // 0 = unlimited
  int64_t connect_timeout_ns = 5'000'000'000;
  bool has_source_range = false;
  uint32_t source_first = 0;  // host byte order
  uint32_t source_last = 0;
  bool json = false;
  Framing framing = Framing::kClient;
  bool tls = false;
  std::string tls_ciphersuites;  // "" = OpenSSL's default
  std::string tls_ca;            // "" = no verification
  bool ws = false;
  std::string ws_path = "/";
};

// Set by SIGINT / SIGTERM: stop now and report.
volatile sig_atomic_t g_stop = 0;

void onStopSignal(int) { g_stop = 1; }

int64_t monoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

// A byte queue with a consumed prefix; compacts instead of reallocating when it can.
class OutBuf {
 public:
  size_t size() const { return data_.size() - head_; }
  const uint8_t* data() const { return data_.data() + head_; }
  // Returns a pointer to `n` new bytes at the tail.
  uint8_t* grow(size_t n) {
    if (head_ > 0 && head_ == data_.size()) {
      data_.clear();
      head_ = 0;
    } else if (head_ > 65536 && head_ * 2 > data_.size()) {
      data_.erase(data_.begin(), data_.begin() + static_cast<ptrdiff_t>(head_));
      head_ = 0;
    }
    size_t old = data_.size();
    data_.resize(old + n);
    return data_.data() + old;
  }
  void consume(size_t n) {
    head_ += n;
    if (head_ == data_.size()) {
      data_.clear();
      head_ = 0;
    }
  }

 private:
  std::vector<uint8_t> data_;
  size_t head_ = 0;
};

// kHandshaking: TLS handshake; kUpgrading: --ws upgrade request sent, awaiting the 101.
enum class State { kIdle, kConnecting, kHandshaking, kUpgrading, kConnected, kClosed, kFailed };

struct Conn {
  int fd = -1;
  SSL* ssl = nullptr;  // --tls
  uint32_t index = 0;
  State state = State::kIdle;
  int64_t connect_start_ns = 0;
  uint32_t next_seq = 0;    // sequence of the next message to send
  uint32_t expect_seq = 0;  // sequence of the next reply expected
  // A message the gateway refused (error frame) is never echoed, so the replies' sequence
  // skips it. Refusals not yet matched to a skip, and skipped messages not (yet) explained by
  // a refusal; whatever is unexplained at the end was lost.
  uint32_t refused_unmatched = 0;
  uint32_t skipped_unexplained = 0;
  bool want_out = false;         // EPOLLOUT registered
  bool dirty = false;            // on the flush list
  std::vector<uint8_t> partial;  // bytes of an incomplete reply carried to the next read
  std::string ws_key;            // --ws: the Sec-WebSocket-Key sent (until the 101)
  OutBuf out;
};

struct Results {
  uint64_t connect_ok = 0;
  uint64_t connect_failed = 0;
  uint64_t ws_handshake_failed = 0;  // --ws: upgrades refused or answered wrongly (also connect_failed)
  uint64_t disconnects = 0;
  uint64_t mismatched = 0;
  uint64_t malformed = 0;
  uint64_t error_frames = 0;  // gateway error frames (msg_id 65535) answering our messages
  uint64_t sent = 0;          // in the window
  uint64_t received = 0;      // in the window
  uint64_t pushes = 0;        // whole run
  uint64_t throttled = 0;     // open-loop sends skipped (window)
  uint64_t bytes_out = 0;     // wire bytes, window
  uint64_t bytes_in = 0;      // wire bytes, window
  uint64_t payload_in = 0;    // reply payload bytes, window
  std::string first_error;
  LatencyHistogram latency;
};

class LoadGen {
 public:
  explicit LoadGen(const Options& opt) : opt_(opt) {}
  // Runs all phases and prints the results. Returns the exit code.
  int run();

 private:
  void startConnect(Conn* c, int64_t now);
  void onConnectDone(Conn* c, int64_t now);
  // --tls: advances the handshake; on completion calls onReady().
  void driveHandshake(Conn* c, int64_t now);
  // TCP connected and the TLS handshake (if any) done: upgrades (--ws) or onReady().
  void onTransportReady(Conn* c, int64_t now);
  // --ws: reads the upgrade response; on a valid 101 calls onReady().
  void readUpgrade(Conn* c, int64_t now);
  // The connection is usable (TCP connected, TLS handshake done, WebSocket upgraded).
  void onReady(Conn* c, int64_t now);
  // Reads what the socket (or TLS) has into `buf`; as read(2).
  ssize_t readSome(Conn* c, uint8_t* buf, size_t cap);
  // --tls: SSL_read()s up to `cap` bytes into `buf` (several records). Returns the bytes
  // read; 0 on EOF or close_notify; -1 with errno EAGAIN when nothing is there, or -1 with
  // errno EPROTO on a TLS error.
  ssize_t tlsRead(Conn* c, uint8_t* buf, size_t cap);
  void freeTls(Conn* c);
  void failConnect(Conn* c, const char* why);
  void disconnect(Conn* c, const char* why);
  void readConn(Conn* c);
  // Verifies one reply payload (exactly opt_.size bytes) and records its RTT.
  void onReply(Conn* c, const uint8_t* payload, int64_t now);
  // Accounts for a message answered with an error frame or an unusable reply (it will not be
  // echoed) and, in pingpong mode, sends the next one.
  void onRefused(Conn* c, int64_t now);
  void enqueueMessage(Conn* c, int64_t now);
  void markDirty(Conn* c);
  void flush(Conn* c);
  void setWantOut(Conn* c, bool want);
  void error(uint64_t* counter, const std::string& what);
  bool inWindow(int64_t now) const { return measure_start_ != 0 && now >= measure_start_; }
  void report(double window_s);

  const Options& opt_;
  int ep_ = -1;
  SSL_CTX* tls_ctx_ = nullptr;  // --tls
  std::vector<Conn> conns_;
  std::vector<Conn*> dirty_;
  std::vector<uint8_t> template_;  // one message as sent, stamp bytes overwritten per message
  std::unique_ptr<uint8_t[]> scratch_;
  size_t scratch_cap_ = 0;
  size_t msg_wire_ = 0;     // bytes per message on the wire
  size_t header_size_ = 0;  // 0 raw, 8 client frame, 29 server frame
  size_t ws_header_ = 0;    // --ws: bytes of each message's WebSocket header (mask included)
  gw::tools::FastRng rng_{0x5eed};  // --ws: mask keys
  uint32_t resolved_ = 0;   // connections connected or failed
  uint32_t alive_ = 0;
  bool stopping_ = false;
  int64_t measure_start_ = 0;
  int64_t run_start_ = 0;
  Results res_;
};

void LoadGen::error(uint64_t* counter, const std::string& what) {
  ++*counter;
  if (res_.first_error.empty()) res_.first_error = what;
}

void LoadGen::startConnect(Conn* c, int64_t now) {
  const gw::Address& target = *opt_.target;
  c->connect_start_ns = now;
  int fd = ::socket(target.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    failConnect(c, std::strerror(errno));
    return;
  }
  if (opt_.has_source_range) {
    uint32_t span = opt_.source_last - opt_.source_first + 1;
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_addr.s_addr = htonl(opt_.source_first + c->index % span);
    int one = 1;
#ifdef IP_BIND_ADDRESS_NO_PORT
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof(one));
#endif
    if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0) {
      std::string why = std::string("bind source: ") + std::strerror(errno);
      ::close(fd);
      failConnect(c, why.c_str());
      return;
    }
  }
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
  int rc = ::connect(fd, target.sockaddr_ptr(), target.len());
  if (rc != 0 && errno != EINPROGRESS) {
    std::string why = std::strerror(errno);
    ::close(fd);
    failConnect(c, why.c_str());
    return;
  }
  c->fd = fd;
  c->state = State::kConnecting;
  epoll_event ev{};
  ev.events = EPOLLOUT;
  ev.data.ptr = c;
  epoll_ctl(ep_, EPOLL_CTL_ADD, fd, &ev);
  c->want_out = true;
  if (rc == 0) onConnectDone(c, now);
}

void LoadGen::failConnect(Conn* c, const char* why) {
  freeTls(c);
  if (c->fd >= 0) {
    ::close(c->fd);
    c->fd = -1;
  }
  c->state = State::kFailed;
  ++resolved_;
  error(&res_.connect_failed, std::string("connect #") + std::to_string(c->index) + ": " + why);
}

void LoadGen::onConnectDone(Conn* c, int64_t now) {
  int err = 0;
  socklen_t len = sizeof(err);
  if (getsockopt(c->fd, SOL_SOCKET, SO_ERROR, &err, &len) != 0) err = errno;
  if (err != 0) {
    failConnect(c, std::strerror(err));
    return;
  }
  if (opt_.tls) {
    c->ssl = SSL_new(tls_ctx_);
    SSL_set_fd(c->ssl, c->fd);
    SSL_set_connect_state(c->ssl);
    c->state = State::kHandshaking;
    driveHandshake(c, now);
    return;
  }
  onTransportReady(c, now);
}

void LoadGen::onTransportReady(Conn* c, int64_t now) {
  if (!opt_.ws) {
    onReady(c, now);
    return;
  }
  c->state = State::kUpgrading;
  c->ws_key = gw::tools::wsKeyFrom(rng_.next(), rng_.next());
  std::string req = gw::tools::wsUpgradeRequest(opt_.target->toString(), opt_.ws_path, c->ws_key);
  std::memcpy(c->out.grow(req.size()), req.data(), req.size());
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = c;
  epoll_ctl(ep_, EPOLL_CTL_MOD, c->fd, &ev);
  c->want_out = false;
  markDirty(c);
}

ssize_t LoadGen::readSome(Conn* c, uint8_t* buf, size_t cap) {
  return c->ssl != nullptr ? tlsRead(c, buf, cap) : ::read(c->fd, buf, cap);
}

void LoadGen::readUpgrade(Conn* c, int64_t now) {
  uint8_t buf[4096];
  ssize_t n = readSome(c, buf, sizeof(buf));
  if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)) return;
  std::string why;
  if (n <= 0) {
    why = n == 0 ? "closed during the upgrade" : std::strerror(errno);
  } else {
    c->partial.insert(c->partial.end(), buf, buf + n);
    std::string_view got(reinterpret_cast<const char*>(c->partial.data()), c->partial.size());
    size_t end = got.find("\r\n\r\n");
    if (end == std::string_view::npos) {
      if (got.size() <= kMaxUpgradeResponse) return;  // more to come
      why = "upgrade response head over 16 KiB";
    } else {
      why = gw::tools::wsCheckUpgradeResponse(got.substr(0, end + 4), c->ws_key);
      if (why.empty()) {
        // Bytes after the head are already WebSocket frames: keep them for readConn.
        c->partial.erase(c->partial.begin(), c->partial.begin() + static_cast<ptrdiff_t>(end + 4));
        c->ws_key.clear();
        c->ws_key.shrink_to_fit();
        onReady(c, now);
        if (!c->partial.empty() && c->state == State::kConnected) readConn(c);
        return;
      }
    }
  }
  ++res_.ws_handshake_failed;
  epoll_ctl(ep_, EPOLL_CTL_DEL, c->fd, nullptr);
  failConnect(c, ("WebSocket upgrade failed: " + why).c_str());
}

void LoadGen::freeTls(Conn* c) {
  if (c->ssl != nullptr) {
    SSL_free(c->ssl);
    c->ssl = nullptr;
  }
}

void LoadGen::driveHandshake(Conn* c, int64_t now) {
  ERR_clear_error();
  int r = SSL_do_handshake(c->ssl);
  if (r == 1) {
    onTransportReady(c, now);
    return;
  }
  int e = SSL_get_error(c->ssl, r);
  if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) {
    epoll_event ev{};
    ev.events = e == SSL_ERROR_WANT_READ ? EPOLLIN : EPOLLOUT;
    ev.data.ptr = c;
    epoll_ctl(ep_, EPOLL_CTL_MOD, c->fd, &ev);
    return;
  }
  unsigned long code = ERR_get_error();
  std::string why = std::string("TLS handshake failed: ") +
                    (code != 0 ? ERR_reason_error_string(code) : "connection closed");
  ERR_clear_error();
  epoll_ctl(ep_, EPOLL_CTL_DEL, c->fd, nullptr);
  failConnect(c, why.c_str());
}

ssize_t LoadGen::tlsRead(Conn* c, uint8_t* buf, size_t cap) {
  size_t got = 0;
  while (got < cap) {
    ERR_clear_error();
    int n = SSL_read(c->ssl, buf + got, static_cast<int>(std::min<size_t>(cap - got, 1 << 30)));
    if (n > 0) {
      got += static_cast<size_t>(n);
      continue;
    }
    int e = SSL_get_error(c->ssl, n);
    if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) break;
    if (got > 0) break;  // report the data now, the end on the next call
    if (e == SSL_ERROR_ZERO_RETURN || (e == SSL_ERROR_SYSCALL && ERR_peek_error() == 0)) return 0;
    errno = EPROTO;
    return -1;
  }
  if (got == 0) {
    errno = EAGAIN;
    return -1;
  }
  return static_cast<ssize_t>(got);
}

void LoadGen::onReady(Conn* c, int64_t now) {
  c->state = State::kConnected;
  ++resolved_;
  ++alive_;
  ++res_.connect_ok;
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.ptr = c;
  epoll_ctl(ep_, EPOLL_CTL_MOD, c->fd, &ev);
  c->want_out = false;
  if (opt_.framing == Framing::kBackend) {
    uint8_t* p = c->out.grow(kServerFrameOverhead);
    uint64_t session = static_cast<uint64_t>(c->index) + 1;
    ServerHeader::make(Opcode::kSessionOpen, 0, session, 0).encode(p);
    markDirty(c);
  }
  if (opt_.mode == Mode::kPingPong && !stopping_) {
    for (uint32_t i = 0; i < opt_.pipeline; ++i) enqueueMessage(c, now);
  }
}

void LoadGen::disconnect(Conn* c, const char* why) {
  if (!stopping_) {
    error(&res_.disconnects,
          std::string("connection #") + std::to_string(c->index) + " lost: " + why);
  }
  epoll_ctl(ep_, EPOLL_CTL_DEL, c->fd, nullptr);
  freeTls(c);
  ::close(c->fd);
  c->fd = -1;
  c->state = State::kClosed;
  --alive_;
}

void LoadGen::markDirty(Conn* c) {
  if (!c->dirty) {
    c->dirty = true;
    dirty_.push_back(c);
  }
}

void LoadGen::enqueueMessage(Conn* c, int64_t now) {
  uint8_t* ws = opt_.ws ? c->out.grow(ws_header_ + msg_wire_) : nullptr;
  uint8_t* p = ws != nullptr ? ws + ws_header_ : c->out.grow(msg_wire_);
  std::memcpy(p, template_.data(), msg_wire_);
  if (opt_.framing == Framing::kBackend) {
    uint64_t session = static_cast<uint64_t>(c->index) + 1;
    gw::wire::putU64(p + 12, session);  // object_id
    gw::wire::putU64(p + 21, session);  // session_id
  }
  uint8_t* stamp = p + header_size_;
  gw::wire::putU64(stamp, static_cast<uint64_t>(now));
  gw::wire::putU32(stamp + 8, c->index);
  gw::wire::putU32(stamp + 12, c->next_seq++);
  if (ws != nullptr) {
    const uint32_t key = static_cast<uint32_t>(rng_.next() >> 32);
    gw::tools::wsWriteHeader(ws, msg_wire_, key);
    gw::tools::wsMask(p, msg_wire_, key);
  }
  if (inWindow(now)) {
    ++res_.sent;
    res_.bytes_out += ws_header_ + msg_wire_;
  }
  markDirty(c);
}

void LoadGen::setWantOut(Conn* c, bool want) {
  if (c->want_out == want) return;
  c->want_out = want;
  epoll_event ev{};
  ev.events = EPOLLIN | (want ? EPOLLOUT : 0);
  ev.data.ptr = c;
  epoll_ctl(ep_, EPOLL_CTL_MOD, c->fd, &ev);
}

void LoadGen::flush(Conn* c) {
  c->dirty = false;
  if ((c->state != State::kConnected && c->state != State::kUpgrading) || c->out.size() == 0)
    return;
  ssize_t n;
  if (c->ssl != nullptr) {
    ERR_clear_error();
    int w = SSL_write(c->ssl, c->out.data(), static_cast<int>(std::min<size_t>(c->out.size(), 1 << 30)));
    if (w > 0) {
      n = w;
    } else {
      int e = SSL_get_error(c->ssl, w);
      if (e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) {
        setWantOut(c, true);
        return;
      }
      disconnect(c, "TLS write failed");
      return;
    }
  } else {
    n = ::send(c->fd, c->out.data(), c->out.size(), MSG_NOSIGNAL);
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) {
      setWantOut(c, true);
      return;
    }
    disconnect(c, std::strerror(errno));
    return;
  }
  c->out.consume(static_cast<size_t>(n));
  setWantOut(c, c->out.size() > 0);
}

void LoadGen::onReply(Conn* c, const uint8_t* payload, int64_t now) {
  bool window = inWindow(now);
  uint64_t sent_ns = gw::wire::getU64(payload);
  uint32_t index = gw::wire::getU32(payload + 8);
  uint32_t seq = gw::wire::getU32(payload + 12);
  // Messages skipped before this one (0 when in order); "negative" (huge) when it went back.
  uint32_t gap = seq - c->expect_seq;
  bool ok = index == c->index && gap < (1u << 31) && sent_ns >= static_cast<uint64_t>(run_start_) &&
            sent_ns <= static_cast<uint64_t>(now) &&
            std::memcmp(payload + kStampSize, template_.data() + header_size_ + kStampSize,
                        opt_.size - kStampSize) == 0;
  if (!ok) {
    char what[160];
    std::snprintf(what, sizeof(what),
                  "connection #%u: reply does not match what was sent (conn %u, seq %u, "
                  "expected seq %u)",
                  c->index, index, seq, c->expect_seq);
    error(&res_.mismatched, what);
    // A damaged reply to one of our messages still answers it: keep the sequence in step.
    if (index == c->index && gap < (1u << 31)) c->expect_seq = seq + 1;
  } else {
    uint32_t explained = std::min(gap, c->refused_unmatched);
    c->refused_unmatched -= explained;
    c->skipped_unexplained += gap - explained;
    c->expect_seq = seq + 1;
    if (window) {
      ++res_.received;
      res_.payload_in += opt_.size;
      res_.bytes_in += msg_wire_;
      res_.latency.record(static_cast<uint64_t>(now) - sent_ns);
    }
  }
  if (opt_.mode == Mode::kPingPong && !stopping_) enqueueMessage(c, now);
}

void LoadGen::onRefused(Conn* c, int64_t now) {
  if (c->skipped_unexplained > 0) {
    --c->skipped_unexplained;
  } else {
    ++c->refused_unmatched;
  }
  if (opt_.mode == Mode::kPingPong && !stopping_) enqueueMessage(c, now);
}

void LoadGen::readConn(Conn* c) {
  size_t have = c->partial.size();
  if (have) std::memcpy(scratch_.get(), c->partial.data(), have);
  ssize_t n = readSome(c, scratch_.get() + have, scratch_cap_ - have);
  if (n == 0) {
    disconnect(c, "closed by peer");
    return;
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    disconnect(c, std::strerror(errno));
    return;
  }
  int64_t now = monoNs();
  const uint8_t* p = scratch_.get();
  size_t avail = have + static_cast<size_t>(n);
  // --ws: the raw bytes after the last whole server frame wait in `partial`;
  // the unwrapped stream must hold whole replies (one frame per message).
  const uint8_t* ws_tail = nullptr;
  size_t ws_tail_len = 0;
  if (opt_.ws) {
    gw::tools::WsUnwrap u = gw::tools::unwrapServerMessages(scratch_.get(), avail);
    if (u.status == gw::tools::WsUnwrap::Status::kError) {
      error(&res_.malformed, "connection #" + std::to_string(c->index) + ": WebSocket: " + u.error);
      disconnect(c, "malformed WebSocket frame");
      return;
    }
    ws_tail = scratch_.get() + u.consumed;
    ws_tail_len = avail - u.consumed;
    avail = u.stream_len;
    if (u.status == gw::tools::WsUnwrap::Status::kClose) {
      std::string why = "WebSocket close " + std::to_string(u.close_code);
      disconnect(c, why.c_str());
      return;
    }
  }
  if (opt_.framing == Framing::kRaw) {
    while (avail >= opt_.size) {
      onReply(c, p, now);
      p += opt_.size;
      avail -= opt_.size;
    }
  } else if (opt_.framing == Framing::kBackend) {
    while (avail >= 4) {
      int64_t length = static_cast<int32_t>(gw::wire::getU32(p));
      if (length < static_cast<int64_t>(gw::wire::kGateHeaderSize) || length > (16 << 20)) {
        char what[96];
        std::snprintf(what, sizeof(what), "connection #%u: server frame with length %lld", c->index,
                      static_cast<long long>(length));
        error(&res_.malformed, what);
        disconnect(c, "malformed server frame");
        return;
      }
      size_t total = kServerHeaderSize + static_cast<size_t>(length);
      if (avail < total) break;
      ServerHeader h = ServerHeader::decode(p);
      if (h.opcode != static_cast<uint8_t>(Opcode::kData) ||
          h.type != static_cast<int32_t>(opt_.msg_id)) {
        ++res_.pushes;
      } else if (h.session_id != static_cast<int64_t>(c->index) + 1 ||
                 static_cast<size_t>(h.payloadLength()) != opt_.size) {
        char what[128];
        std::snprintf(what, sizeof(what),
                      "connection #%u: reply for session %lld with %lld payload bytes, sent %zu",
                      c->index, static_cast<long long>(h.session_id),
                      static_cast<long long>(h.payloadLength()), opt_.size);
        error(&res_.malformed, what);
        onRefused(c, now);
      } else {
        onReply(c, p + kServerFrameOverhead, now);
      }
      p += total;
      avail -= total;
    }
  } else {
    while (avail >= kClientHeaderSize) {
      ClientHeader h = ClientHeader::decode(p);
      size_t total = kClientHeaderSize + h.length;
      if (avail < total) break;
      if (h.msg_id == kErrorFrameMsgId && opt_.msg_id != kErrorFrameMsgId) {
        // The gateway refused one of our messages: it will not be echoed.
        if (res_.first_error.empty()) {
          const char* name = reinterpret_cast<const char*>(p + kClientHeaderSize + 4);
          res_.first_error = "connection #" + std::to_string(c->index) + ": gateway error frame '" +
                             (h.length > 4 ? std::string(name, h.length - 4) : "?") + "'";
        }
        ++res_.error_frames;
        onRefused(c, now);
      } else if (h.msg_id != opt_.msg_id) {
        ++res_.pushes;
      } else if (h.length != opt_.size) {
        char what[128];
        std::snprintf(what, sizeof(what),
                      "connection #%u: reply with msg_id %u has %u payload bytes, sent %zu",
                      c->index, h.msg_id, h.length, opt_.size);
        error(&res_.malformed, what);
        onRefused(c, now);
      } else {
        onReply(c, p + kClientHeaderSize, now);
      }
      p += total;
      avail -= total;
    }
  }
  if (opt_.ws) {
    if (avail > 0) {
      error(&res_.malformed, "connection #" + std::to_string(c->index) +
                                 ": a WebSocket message did not hold whole replies");
    }
    c->partial.assign(ws_tail, ws_tail + ws_tail_len);
    return;
  }
  c->partial.assign(p, p + avail);
}

void LoadGen::report(double window_s) {
  const LatencyHistogram& h = res_.latency;
  auto ms = [](uint64_t ns) { return static_cast<double>(ns) / 1e6; };
  double msgs = window_s > 0 ? static_cast<double>(res_.received) / window_s : 0;
  double mbs = window_s > 0 ? static_cast<double>(res_.payload_in) / window_s / 1e6 : 0;
  uint64_t errors =
      res_.connect_failed + res_.disconnects + res_.mismatched + res_.malformed + res_.error_frames;
  const char* mode = opt_.mode == Mode::kPingPong ? "pingpong" : "rate";
  std::string framing = opt_.framing == Framing::kRaw       ? "raw"
                        : opt_.framing == Framing::kBackend ? "backend"
                                                            : "client";
  if (opt_.ws) framing += "+ws";
  if (opt_.tls) framing += "+tls";
  if (opt_.json) {
    std::printf(
        "{\"target\":\"%s\",\"mode\":\"%s\",\"framing\":\"%s\",\"size\":%zu,\"pipeline\":%u,"
        "\"rate\":%.1f,\"duration_s\":%.3f,\"connections\":%u,\"connections_ok\":%llu,"
        "\"connections_failed\":%llu,\"sent\":%llu,\"received\":%llu,\"pushes\":%llu,"
        "\"throttled\":%llu,\"msg_per_s\":%.1f,\"mb_per_s\":%.3f,\"bytes_out\":%llu,"
        "\"bytes_in\":%llu,\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
        "\"p99_9\":%.3f,\"max\":%.3f,\"samples\":%llu},\"errors\":{\"total\":%llu,"
        "\"connect\":%llu,\"disconnect\":%llu,\"mismatch\":%llu,\"malformed\":%llu,"
        "\"error_frames\":%llu,\"ws_handshake\":%llu}}\n",
        opt_.target->toString().c_str(), mode, framing.c_str(), opt_.size, opt_.pipeline, opt_.rate,
        window_s, opt_.connections, static_cast<unsigned long long>(res_.connect_ok),
        static_cast<unsigned long long>(res_.connect_failed),
        static_cast<unsigned long long>(res_.sent), static_cast<unsigned long long>(res_.received),
        static_cast<unsigned long long>(res_.pushes),
        static_cast<unsigned long long>(res_.throttled), msgs, mbs,
        static_cast<unsigned long long>(res_.bytes_out),
        static_cast<unsigned long long>(res_.bytes_in), ms(h.percentile(50)), ms(h.percentile(90)),
        ms(h.percentile(99)), ms(h.percentile(99.9)), ms(h.max()),
        static_cast<unsigned long long>(h.count()), static_cast<unsigned long long>(errors),
        static_cast<unsigned long long>(res_.connect_failed),
        static_cast<unsigned long long>(res_.disconnects),
        static_cast<unsigned long long>(res_.mismatched),
        static_cast<unsigned long long>(res_.malformed),
        static_cast<unsigned long long>(res_.error_frames),
        static_cast<unsigned long long>(res_.ws_handshake_failed));
  } else {
    std::printf("loadgen: target %s, mode %s, %s framing, %u connections, size %zu",
                opt_.target->toString().c_str(), mode, framing.c_str(), opt_.connections, opt_.size);
    if (opt_.mode == Mode::kPingPong) {
      std::printf(", pipeline %u", opt_.pipeline);
    } else {
      std::printf(", rate %.0f msg/s", opt_.rate);
    }
    std::printf(", window %.2fs\n", window_s);
    std::printf("connections: %llu ok, %llu failed",
                static_cast<unsigned long long>(res_.connect_ok),
                static_cast<unsigned long long>(res_.connect_failed));
    if (opt_.ws) {
      std::printf(" (%llu WebSocket handshakes failed)",
                  static_cast<unsigned long long>(res_.ws_handshake_failed));
    }
    std::printf("\n");
    std::printf("messages:    %llu sent, %llu received, %llu pushes",
                static_cast<unsigned long long>(res_.sent),
                static_cast<unsigned long long>(res_.received),
                static_cast<unsigned long long>(res_.pushes));
    if (res_.throttled) {
      std::printf(", %llu throttled", static_cast<unsigned long long>(res_.throttled));
    }
    std::printf("\nthroughput:  %.1f msg/s, %.3f MB/s\n", msgs, mbs);
    std::printf("latency ms:  p50 %.3f  p90 %.3f  p99 %.3f  p99.9 %.3f  max %.3f\n",
                ms(h.percentile(50)), ms(h.percentile(90)), ms(h.percentile(99)),
                ms(h.percentile(99.9)), ms(h.max()));
    std::printf(
        "errors:      %llu (connect %llu, disconnect %llu, mismatch %llu, "
        "malformed %llu, error frames %llu)\n",
        static_cast<unsigned long long>(errors),
        static_cast<unsigned long long>(res_.connect_failed),
        static_cast<unsigned long long>(res_.disconnects),
        static_cast<unsigned long long>(res_.mismatched),
        static_cast<unsigned long long>(res_.malformed),
        static_cast<unsigned long long>(res_.error_frames));
  }
  if (!res_.first_error.empty()) {
    std::fprintf(stderr, "loadgen: first error: %s\n", res_.first_error.c_str());
  }
  std::fflush(stdout);
}

int LoadGen::run() {
  // One message as sent: header (framed mode) + stamp placeholder + pattern.
  header_size_ = opt_.framing == Framing::kRaw       ? 0
                 : opt_.framing == Framing::kBackend ? kServerFrameOverhead
                                                     : kClientHeaderSize;
  msg_wire_ = header_size_ + opt_.size;
  ws_header_ = opt_.ws ? gw::tools::wsClientHeaderSize(msg_wire_) : 0;
  rng_ = gw::tools::FastRng(static_cast<uint64_t>(monoNs()) ^ (static_cast<uint64_t>(getpid()) << 32));
  template_.assign(msg_wire_, 0);
  if (opt_.framing == Framing::kBackend) {
    ServerHeader::make(Opcode::kData, static_cast<int32_t>(opt_.msg_id), 0, opt_.size)
        .encode(template_.data());
  } else if (opt_.framing == Framing::kClient) {
    ClientHeader h;
    h.length = static_cast<uint16_t>(opt_.size);
    h.msg_id = static_cast<uint16_t>(opt_.msg_id);
    h.server_id = ClientHeader::makeServerId(static_cast<uint16_t>(opt_.world_id),
                                             static_cast<uint8_t>(opt_.server_type), 0);
    h.encode(template_.data());
  }
  for (size_t i = kStampSize; i < opt_.size; ++i) {
    template_[header_size_ + i] = static_cast<uint8_t>('a' + (i * 7) % 26);
  }
  scratch_cap_ = kReadChunk + msg_wire_;
  scratch_.reset(new uint8_t[scratch_cap_]);

  if (opt_.tls) {
    tls_ctx_ = SSL_CTX_new(TLS_client_method());
    SSL_CTX_set_min_proto_version(tls_ctx_, TLS1_2_VERSION);
    SSL_CTX_set_mode(tls_ctx_, SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER | SSL_MODE_ENABLE_PARTIAL_WRITE);
    SSL_CTX_set_session_cache_mode(tls_ctx_, SSL_SESS_CACHE_OFF);
    if (!opt_.tls_ciphersuites.empty() &&
        SSL_CTX_set_ciphersuites(tls_ctx_, opt_.tls_ciphersuites.c_str()) != 1) {
      std::fprintf(stderr, "loadgen: --tls-ciphersuites: no usable suite in %s\n",
                   opt_.tls_ciphersuites.c_str());
      return 2;
    }
    if (!opt_.tls_ca.empty()) {
      if (SSL_CTX_load_verify_locations(tls_ctx_, opt_.tls_ca.c_str(), nullptr) != 1) {
        std::fprintf(stderr, "loadgen: --tls-ca: cannot load %s\n", opt_.tls_ca.c_str());
        return 2;
      }
      SSL_CTX_set_verify(tls_ctx_, SSL_VERIFY_PEER, nullptr);
    }
  }
  ep_ = epoll_create1(EPOLL_CLOEXEC);
  if (ep_ < 0) {
    std::perror("loadgen: epoll_create1");
    return 1;
  }
  conns_.resize(opt_.connections);
  for (uint32_t i = 0; i < opt_.connections; ++i) conns_[i].index = i;

  run_start_ = monoNs();
  uint32_t next_connect = 0;
  int64_t window_end = 0;
  int64_t last_timeout_scan = run_start_;
  // Open loop: messages due since the window clock started, and the round-robin cursor.
  uint64_t rate_sent = 0;
  uint32_t rate_cursor = 0;
  std::vector<epoll_event> events(1024);

  while (true) {
    int64_t now = monoNs();
    // Start connects: all at once in batches, or paced by --connect-rate.
    if (next_connect < opt_.connections) {
      uint64_t allowed = opt_.connections;
      if (opt_.connect_rate > 0) {
        double due = static_cast<double>(now - run_start_) / 1e9 * opt_.connect_rate + 1;
        allowed = std::min<uint64_t>(opt_.connections, static_cast<uint64_t>(due));
      }
      for (int batch = 0; next_connect < allowed && batch < kConnectBatch; ++batch) {
        startConnect(&conns_[next_connect++], now);
      }
    }
    // Connect timeouts, scanned every 50ms.
    if (resolved_ < next_connect && now - last_timeout_scan > 50'000'000) {
      last_timeout_scan = now;
      for (uint32_t i = 0; i < next_connect; ++i) {
        Conn& c = conns_[i];
        if ((c.state == State::kConnecting || c.state == State::kHandshaking ||
             c.state == State::kUpgrading) &&
            now - c.connect_start_ns > opt_.connect_timeout_ns) {
          epoll_ctl(ep_, EPOLL_CTL_DEL, c.fd, nullptr);
          failConnect(&c, "connect timeout");
        }
      }
    }
    // Phase changes: every connection resolved -> warmup -> measured window -> stop.
    if (measure_start_ == 0 && resolved_ == opt_.connections) {
      measure_start_ = now + opt_.warmup_ns;
      window_end = measure_start_ + opt_.duration_ns;
    }
    if (window_end != 0 && now >= window_end) break;
    if (g_stop) {
      if (window_end == 0 || now < measure_start_) {
        measure_start_ = window_end = now;
      } else {
        window_end = std::min(window_end, now);
      }
      break;
    }
    if (resolved_ == opt_.connections && alive_ == 0) {
      // Every connection is gone: end now (the window shrinks to what was measured).
      if (window_end == 0 || now < measure_start_) {
        measure_start_ = window_end = now;
      } else {
        window_end = std::min(window_end, now);
      }
      break;
    }
    // Open loop: spread --rate over all connection slots; unconnected slots skip their turn.
    if (opt_.mode == Mode::kRate && opt_.rate > 0) {
      double due_f = static_cast<double>(now - run_start_) / 1e9 * opt_.rate;
      uint64_t due = static_cast<uint64_t>(due_f);
      while (rate_sent < due) {
        Conn& c = conns_[rate_cursor];
        rate_cursor = rate_cursor + 1 == opt_.connections ? 0 : rate_cursor + 1;
        ++rate_sent;
        if (c.state != State::kConnected) continue;
        if (c.out.size() > kMaxQueued) {
          if (inWindow(now)) ++res_.throttled;
          continue;
        }
        enqueueMessage(&c, now);
      }
    }
    for (Conn* c : dirty_) flush(c);
    dirty_.clear();

    int timeout_ms;
    if (next_connect < opt_.connections && opt_.connect_rate == 0) {
      timeout_ms = 0;
    } else if (opt_.mode == Mode::kRate || next_connect < opt_.connections) {
      timeout_ms = 1;
    } else if (window_end != 0) {
      timeout_ms = static_cast<int>(std::min<int64_t>(50, (window_end - now) / 1000000 + 1));
    } else {
      timeout_ms = 50;
    }
    int n = epoll_wait(ep_, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      std::perror("loadgen: epoll_wait");
      break;
    }
    for (int i = 0; i < n; ++i) {
      Conn* c = static_cast<Conn*>(events[i].data.ptr);
      uint32_t what = events[i].events;
      if (c->state == State::kConnecting) {
        onConnectDone(c, monoNs());
        continue;
      }
      if (c->state == State::kHandshaking) {
        driveHandshake(c, monoNs());
        continue;
      }
      if (c->state == State::kUpgrading) {
        if (what & (EPOLLIN | EPOLLHUP | EPOLLERR)) readUpgrade(c, monoNs());
        if (c->state == State::kUpgrading && (what & EPOLLOUT)) flush(c);
        continue;
      }
      if (c->state != State::kConnected) continue;
      if (what & (EPOLLIN | EPOLLHUP | EPOLLERR)) readConn(c);
      if (c->state == State::kConnected && (what & EPOLLOUT)) flush(c);
    }
    for (Conn* c : dirty_) flush(c);
    dirty_.clear();
  }

  stopping_ = true;
  uint64_t lost = 0;
  for (const Conn& c : conns_) lost += c.skipped_unexplained;
  if (lost > 0) {
    error(&res_.mismatched,
          std::to_string(lost) + " message(s) never answered while later ones were (replies lost)");
    res_.mismatched += lost - 1;
  }
  double window_s = static_cast<double>(window_end - measure_start_) / 1e9;
  if (window_s < 0) window_s = 0;
  for (Conn& c : conns_) {
    freeTls(&c);
    if (c.fd >= 0) ::close(c.fd);
    c.fd = -1;
  }
  if (tls_ctx_ != nullptr) SSL_CTX_free(tls_ctx_);
  ::close(ep_);
  report(window_s);
  bool failed = res_.connect_failed + res_.disconnects + res_.mismatched + res_.malformed +
                    res_.error_frames >
                0;
  return failed ? 1 : 0;
}

void raiseFdLimit() {
  rlimit rl;
  if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
  }
}

// Parses "A-B" (IPv4, host order into *first/*last). Returns false if malformed or A > B.
bool parseSourceRange(const std::string& text, uint32_t* first, uint32_t* last) {
  size_t dash = text.find('-');
  if (dash == std::string::npos) {
    in_addr a;
    if (inet_pton(AF_INET, text.c_str(), &a) != 1) return false;
    *first = *last = ntohl(a.s_addr);
    return true;
  }
  in_addr a, b;
  if (inet_pton(AF_INET, text.substr(0, dash).c_str(), &a) != 1) return false;
  if (inet_pton(AF_INET, text.substr(dash + 1).c_str(), &b) != 1) return false;
  *first = ntohl(a.s_addr);
  *last = ntohl(b.s_addr);
  return *first <= *last;
}

void usage() {
  std::fprintf(
      stderr,
      "usage: loadgen --target IP:PORT [--connections 64] [--duration 10s] [--warmup 1s]\n"
      "               [--size 64] [--mode pingpong|rate] [--pipeline 1] [--rate MSG/S]\n"
      "               [--server-type 200] [--world-id 0] [--msg-id 1] [--connect-rate N/s]\n"
      "               [--connect-timeout 5s] [--source-ip-range A-B] [--raw | --backend]\n"
      "               [--tls [--tls-ciphersuites SUITES] [--tls-ca FILE]]\n"
      "               [--ws [--ws-path /]] [--json]\n"
      "  DURATION: a number with ns|us|ms|s|m|h, e.g. 500ms. See docs/tools.md.\n");
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  bool rate_given = false;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    std::string inline_value;
    size_t eq = flag.find('=');
    bool has_inline = flag.rfind("--", 0) == 0 && eq != std::string::npos;
    if (has_inline) {
      inline_value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    auto value = [&]() -> std::optional<std::string> {
      if (has_inline) return inline_value;
      if (i + 1 >= argc) return std::nullopt;
      return std::string(argv[++i]);
    };
    auto bad = [&](const std::string& what) {
      std::fprintf(stderr, "loadgen: %s: %s\n", flag.c_str(), what.c_str());
      usage();
      return 2;
    };
    auto uint_flag = [&](uint64_t min, uint64_t max, uint32_t* out) {
      auto v = value();
      auto n = v ? gw::tools::parseUint(*v, max) : std::nullopt;
      if (!n || *n < min) return false;
      *out = static_cast<uint32_t>(*n);
      return true;
    };
    auto duration_flag = [&](int64_t* out) {
      auto v = value();
      auto d = v ? gw::tools::parseDurationNs(*v) : std::nullopt;
      if (!d) return false;
      *out = *d;
      return true;
    };
    if (flag == "--help" || flag == "-h") {
      usage();
      return 0;
    } else if (flag == "--target") {
      auto v = value();
      std::string why = "needs IP:PORT";
      if (v) opt.target = gw::Address::parse(*v, &why);
      if (!opt.target) return bad(why);
    } else if (flag == "--connections") {
      if (!uint_flag(1, 1000000, &opt.connections)) return bad("expected 1..1000000");
    } else if (flag == "--duration") {
      if (!duration_flag(&opt.duration_ns) || opt.duration_ns <= 0) {
        return bad("expected a positive duration such as 10s");
      }
    } else if (flag == "--warmup") {
      if (!duration_flag(&opt.warmup_ns)) return bad("expected a duration such as 1s or 0");
    } else if (flag == "--connect-timeout") {
      if (!duration_flag(&opt.connect_timeout_ns) || opt.connect_timeout_ns <= 0) {
        return bad("expected a positive duration such as 5s");
      }
    } else if (flag == "--size") {
      uint32_t v;
      if (!uint_flag(kStampSize, kMaxRawSize, &v)) {
        return bad("expected a payload size of at least 16 bytes (the latency stamp)");
      }
      opt.size = v;
    } else if (flag == "--mode") {
      auto v = value();
      if (v && *v == "pingpong") {
        opt.mode = Mode::kPingPong;
      } else if (v && *v == "rate") {
        opt.mode = Mode::kRate;
      } else {
        return bad("expected pingpong or rate");
      }
    } else if (flag == "--pipeline") {
      if (!uint_flag(1, 1 << 20, &opt.pipeline)) return bad("expected a positive integer");
    } else if (flag == "--rate") {
      auto v = value();
      auto r = v ? gw::tools::parseRate(*v) : std::nullopt;
      if (!r || *r <= 0) return bad("expected a positive message rate such as 50000");
      opt.rate = *r;
      rate_given = true;
    } else if (flag == "--server-type") {
      if (!uint_flag(0, 255, &opt.server_type)) return bad("expected 0..255");
    } else if (flag == "--world-id") {
      if (!uint_flag(0, 0x7fff, &opt.world_id)) return bad("expected 0..32767");
    } else if (flag == "--msg-id") {
      if (!uint_flag(0, 65535, &opt.msg_id)) return bad("expected 0..65535");
    } else if (flag == "--connect-rate") {
      auto v = value();
      auto r = v ? gw::tools::parseRate(*v) : std::nullopt;
      if (!r) return bad("expected connections per second such as 100/s (0 = unlimited)");
      opt.connect_rate = *r;
    } else if (flag == "--source-ip-range") {
      auto v = value();
      if (!v || !parseSourceRange(*v, &opt.source_first, &opt.source_last)) {
        return bad("expected an IPv4 range such as 127.0.0.2-127.0.255.254");
      }
      opt.has_source_range = true;
    } else if (flag == "--json") {
      opt.json = true;
    } else if (flag == "--raw") {
      opt.framing = Framing::kRaw;
    } else if (flag == "--backend") {
      opt.framing = Framing::kBackend;
    } else if (flag == "--tls") {
      opt.tls = true;
    } else if (flag == "--tls-ciphersuites") {
      auto v = value();
      if (!v || v->empty()) return bad("expected TLS 1.3 suites such as TLS_AES_128_GCM_SHA256");
      opt.tls_ciphersuites = *v;
    } else if (flag == "--ws") {
      opt.ws = true;
    } else if (flag == "--ws-path") {
      auto v = value();
      if (!v || v->empty() || (*v)[0] != '/' || v->find_first_of(" \r\n") != std::string::npos)
        return bad("expected a path starting with / (no spaces)");
      opt.ws_path = *v;
    } else if (flag == "--tls-ca") {
      auto v = value();
      if (!v || v->empty()) return bad("expected a PEM CA file");
      opt.tls_ca = *v;
    } else {
      std::fprintf(stderr, "loadgen: unknown flag %s\n", argv[i]);
      usage();
      return 2;
    }
  }
  if (!opt.target) {
    std::fprintf(stderr, "loadgen: --target is required\n");
    usage();
    return 2;
  }
  if (opt.framing == Framing::kClient && opt.size > gw::wire::kMaxClientPayload) {
    std::fprintf(stderr, "loadgen: --size: a client frame carries at most %zu bytes\n",
                 gw::wire::kMaxClientPayload);
    return 2;
  }
  if (opt.ws && opt.framing == Framing::kBackend) {
    std::fprintf(stderr, "loadgen: --ws speaks to a gateway: not with --backend\n");
    return 2;
  }
  if (opt.mode == Mode::kRate && !rate_given) {
    std::fprintf(stderr, "loadgen: --mode rate needs --rate MSG/S\n");
    return 2;
  }
  if (opt.has_source_range && opt.target->family() != AF_INET) {
    std::fprintf(stderr, "loadgen: --source-ip-range needs an IPv4 --target\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  struct sigaction sa {};
  sa.sa_handler = onStopSignal;
  sigaction(SIGINT, &sa, nullptr);  // no SA_RESTART: epoll_wait returns EINTR
  sigaction(SIGTERM, &sa, nullptr);
  raiseFdLimit();
  LoadGen gen(opt);
  return gen.run();
}
