// tools/backend_sim — a game-backend simulator speaking the server frame (gateway <-> backend).
//
//   backend_sim [--address 127.0.0.1:9000] [--mode echo|sink] [--push-interval 0]
//               [--push-type 9001] [--kick-msg-id N] [--bind-msg-id N] [--delay 0]
//               [--name NAME] [--reply-prefix STR] [--stats-interval 0] [--quiet]
//
// Accepts gateway connections, each multiplexing many sessions (the session id in every
// frame routes it), and answers data frames: echo mode replies with a data frame of the same
// type and payload (optionally prefixed) to the same session. It tracks which sessions are
// open per connection (session open / first data frame until session close or kick) so it can
// push unsolicited frames to them, kicks a session on a chosen msg id, and counts everything.
// docs/tools.md documents the flags; docs/protocol.md the opcodes.
//
// One thread, libevent raw events, one buffer per direction per connection: it reads in large
// chunks, parses every complete frame, and writes all replies of one readiness with one write.
// Prints "backend_sim listening on IP:PORT" when ready and a stats line on SIGUSR1, every
// --stats-interval and at exit. SIGTERM / SIGINT exit 0.
#include <event2/event.h>
#include <event2/listener.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <csignal>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <deque>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "core/sdk/address.h"
#include "core/sdk/wire.h"
#include "tools/loadgen/tool_flags.h"

namespace {

using gw::wire::kGateHeaderSize;
using gw::wire::kServerFrameOverhead;
using gw::wire::kServerHeaderSize;
using gw::wire::Opcode;
using gw::wire::ServerHeader;

// Largest accepted value of the server header's length field (bytes after the 20-byte header).
constexpr int64_t kMaxFrameLength = 16 * 1024 * 1024;
// Bytes of free space guaranteed before each read.
constexpr size_t kReadChunk = 256 * 1024;
// Stop reading from a connection while this much output is queued (the gateway is slow);
// resume below kLowWatermark.
constexpr size_t kHighWatermark = 32 * 1024 * 1024;
constexpr size_t kLowWatermark = 8 * 1024 * 1024;

enum class Mode { kEcho, kSink };

struct Options {
  std::string address = "127.0.0.1:9000";
  Mode mode = Mode::kEcho;
  int64_t push_interval_ns = 0;
  int32_t push_type = 9001;
  std::optional<int32_t> kick_msg_id;
  std::optional<int32_t> bind_msg_id;
  int64_t delay_ns = 0;
  std::string name;
  std::string reply_prefix;
  int64_t stats_interval_ns = 0;
  bool quiet = false;
};

struct Stats {
  uint64_t accepted = 0;
  uint64_t open_conns = 0;
  uint64_t frames_in = 0;   // data frames received
  uint64_t frames_out = 0;  // data frames sent (echoes and pushes)
  uint64_t sessions = 0;    // sessions currently known to be open, all connections
  uint64_t opens = 0;       // session-open frames received
  uint64_t closes = 0;      // session-close frames received
  uint64_t kicks = 0;       // kick frames sent
  uint64_t malformed = 0;   // connections closed for a malformed frame
  uint64_t pushes = 0;      // push data frames sent (also counted in frames_out)
  uint64_t binds = 0;       // bind-player frames sent
  uint64_t ignored = 0;     // frames with an opcode a backend does not expect
};

// A growable byte queue: bytes live in [begin_, end_) of one heap block. Appends go to the
// tail; consumption advances begin_. No allocation once it has grown to its working size.
class ByteBuf {
 public:
  uint8_t* data() { return buf_.get() + begin_; }
  size_t size() const { return end_ - begin_; }
  bool empty() const { return begin_ == end_; }
  // Makes room for at least `n` more bytes at the tail; returns the tail pointer.
  uint8_t* reserveTail(size_t n) {
    if (cap_ - end_ >= n) return buf_.get() + end_;
    size_t used = size();
    if (begin_ > 0 && cap_ - used >= n) {
      std::memmove(buf_.get(), buf_.get() + begin_, used);
    } else {
      size_t cap = cap_ == 0 ? 4096 : cap_;
      while (cap - used < n) cap *= 2;
      std::unique_ptr<uint8_t[]> nb(new uint8_t[cap]);
      if (used) std::memcpy(nb.get(), buf_.get() + begin_, used);
      buf_ = std::move(nb);
      cap_ = cap;
    }
    begin_ = 0;
    end_ = used;
    return buf_.get() + end_;
  }
  // Marks `n` bytes written at the tail as queued.
  void commit(size_t n) { end_ += n; }
  void append(const void* p, size_t n) {
    std::memcpy(reserveTail(n), p, n);
    end_ += n;
  }
  // Drops `n` bytes from the front.
  void consume(size_t n) {
    begin_ += n;
    if (begin_ == end_) begin_ = end_ = 0;
  }
  // Frees the block if it grew past `keep` bytes and is empty.
  void shrinkIfIdle(size_t keep) {
    if (empty() && cap_ > keep) {
      buf_.reset();
      cap_ = begin_ = end_ = 0;
    }
  }

 private:
  std::unique_ptr<uint8_t[]> buf_;
  size_t cap_ = 0;
  size_t begin_ = 0;
  size_t end_ = 0;
};

int64_t monoNs() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
}

timeval toTimeval(int64_t ns) {
  if (ns < 0) ns = 0;
  timeval tv;
  tv.tv_sec = static_cast<time_t>(ns / 1000000000);
  tv.tv_usec = static_cast<suseconds_t>((ns % 1000000000) / 1000);
  return tv;
}

class Sim;

// One accepted gateway connection.
struct Conn {
  Sim* sim = nullptr;
  uint64_t id = 0;
  int fd = -1;
  std::string peer;
  event* read_ev = nullptr;
  event* write_ev = nullptr;
  event* delay_ev = nullptr;
  ByteBuf in;
  ByteBuf out;
  // Delayed replies: bytes in `delayed`, one entry per batch (due time, byte count), FIFO.
  ByteBuf delayed;
  std::deque<std::pair<int64_t, size_t>> delayed_batches;
  std::unordered_set<int64_t> sessions;
  bool reading = true;
  bool writing = false;
  bool logged_ignored = false;
};

class Sim {
 public:
  explicit Sim(Options opt) : opt_(std::move(opt)) {}

  // Binds, prints the ready line and runs until SIGTERM/SIGINT. Returns the exit code.
  int run();

 private:
  static void onAccept(evconnlistener*, evutil_socket_t fd, sockaddr* sa, int len, void* arg);
  static void onReadable(evutil_socket_t, short, void* arg);
  static void onWritable(evutil_socket_t, short, void* arg);
  static void onDelayTimer(evutil_socket_t, short, void* arg);
  static void onPushTimer(evutil_socket_t, short, void* arg);
  static void onStatsTimer(evutil_socket_t, short, void* arg);
  static void onSignal(evutil_socket_t sig, short, void* arg);

  void readConn(Conn* c);
  // Parses every complete frame in c->in. Returns false if the connection was closed.
  bool parseFrames(Conn* c);
  // Appends one frame (header + prefix + payload) to `buf`.
  void emit(ByteBuf* buf, Opcode op, int32_t type, int64_t session, const std::string& prefix,
            const uint8_t* payload, size_t len);
  // Writes as much of c->out as the socket takes (one write). Returns false if it closed c.
  bool flush(Conn* c);
  void updateReadInterest(Conn* c);
  void armDelayTimer(Conn* c);
  void closeConn(Conn* c, const char* why);
  void addSession(Conn* c, int64_t session);
  void removeSession(Conn* c, int64_t session);
  void printStats();
  void log(const char* fmt, ...) __attribute__((format(printf, 2, 3)));

  Options opt_;
  Stats stats_;
  event_base* base_ = nullptr;
  uint64_t next_conn_id_ = 1;
  uint64_t push_seq_ = 0;
  std::unordered_map<uint64_t, std::unique_ptr<Conn>> conns_;
};

void Sim::log(const char* fmt, ...) {
  if (opt_.quiet) return;
  char line[512];
  va_list ap;
  va_start(ap, fmt);
  std::vsnprintf(line, sizeof(line), fmt, ap);
  va_end(ap);
  if (opt_.name.empty()) {
    std::fprintf(stderr, "backend_sim: %s\n", line);
  } else {
    std::fprintf(stderr, "backend_sim[%s]: %s\n", opt_.name.c_str(), line);
  }
}

void Sim::printStats() {
  std::printf(
      "backend_sim stats: accepted=%llu open_conns=%llu frames_in=%llu frames_out=%llu "
      "sessions=%llu opens=%llu closes=%llu kicks=%llu malformed=%llu pushes=%llu binds=%llu "
      "ignored=%llu%s%s\n",
      static_cast<unsigned long long>(stats_.accepted),
      static_cast<unsigned long long>(stats_.open_conns),
      static_cast<unsigned long long>(stats_.frames_in),
      static_cast<unsigned long long>(stats_.frames_out),
      static_cast<unsigned long long>(stats_.sessions),
      static_cast<unsigned long long>(stats_.opens), static_cast<unsigned long long>(stats_.closes),
      static_cast<unsigned long long>(stats_.kicks),
      static_cast<unsigned long long>(stats_.malformed),
      static_cast<unsigned long long>(stats_.pushes), static_cast<unsigned long long>(stats_.binds),
      static_cast<unsigned long long>(stats_.ignored),
      opt_.name.empty() ? "" : " name=", opt_.name.c_str());
  std::fflush(stdout);
}

void Sim::onAccept(evconnlistener*, evutil_socket_t fd, sockaddr* sa, int len, void* arg) {
  Sim* sim = static_cast<Sim*>(arg);
  gw::setNoDelay(fd);
  auto c = std::make_unique<Conn>();
  c->sim = sim;
  c->id = sim->next_conn_id_++;
  c->fd = fd;
  c->peer = gw::Address(sa, static_cast<socklen_t>(len)).toString();
  c->read_ev = event_new(sim->base_, fd, EV_READ | EV_PERSIST, onReadable, c.get());
  c->write_ev = event_new(sim->base_, fd, EV_WRITE | EV_PERSIST, onWritable, c.get());
  c->delay_ev = evtimer_new(sim->base_, onDelayTimer, c.get());
  event_add(c->read_ev, nullptr);
  ++sim->stats_.accepted;
  ++sim->stats_.open_conns;
  sim->log("conn #%llu from %s accepted", static_cast<unsigned long long>(c->id), c->peer.c_str());
  sim->conns_.emplace(c->id, std::move(c));
}

void Sim::onReadable(evutil_socket_t, short, void* arg) {
  Conn* c = static_cast<Conn*>(arg);
  c->sim->readConn(c);
}

void Sim::readConn(Conn* c) {
  // Reserve enough for the frame being assembled (bounded by kMaxFrameLength), at least a chunk.
  size_t want = kReadChunk;
  if (c->in.size() >= 4) {
    int64_t len = static_cast<int32_t>(gw::wire::getU32(c->in.data()));
    if (len > 0 && len <= kMaxFrameLength) {
      size_t total = kServerHeaderSize + static_cast<size_t>(len);
      if (total > c->in.size() && total - c->in.size() > want) want = total - c->in.size();
    }
  }
  uint8_t* tail = c->in.reserveTail(want);
  ssize_t n = ::read(c->fd, tail, want);
  if (n == 0) {
    closeConn(c, "closed by peer");
    return;
  }
  if (n < 0) {
    if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) return;
    closeConn(c, std::strerror(errno));
    return;
  }
  c->in.commit(static_cast<size_t>(n));
  if (!parseFrames(c)) return;
  c->in.shrinkIfIdle(4 * kReadChunk);
  if (!c->out.empty()) flush(c);
}

void Sim::emit(ByteBuf* buf, Opcode op, int32_t type, int64_t session, const std::string& prefix,
               const uint8_t* payload, size_t len) {
  size_t total_payload = prefix.size() + len;
  uint8_t* p = buf->reserveTail(kServerFrameOverhead + total_payload);
  ServerHeader::make(op, type, static_cast<uint64_t>(session), total_payload).encode(p);
  p += kServerFrameOverhead;
  if (!prefix.empty()) std::memcpy(p, prefix.data(), prefix.size());
  if (len) std::memcpy(p + prefix.size(), payload, len);
  buf->commit(kServerFrameOverhead + total_payload);
}

void Sim::addSession(Conn* c, int64_t session) {
  if (c->sessions.insert(session).second) ++stats_.sessions;
}

void Sim::removeSession(Conn* c, int64_t session) {
  if (c->sessions.erase(session)) --stats_.sessions;
}

bool Sim::parseFrames(Conn* c) {
  static const std::string kNoPrefix;
  ByteBuf* replies = opt_.delay_ns > 0 ? &c->delayed : &c->out;
  size_t replies_before = replies->size();
  while (c->in.size() >= 4) {
    const uint8_t* p = c->in.data();
    int64_t length = static_cast<int32_t>(gw::wire::getU32(p));
    if (length < static_cast<int64_t>(kGateHeaderSize) || length > kMaxFrameLength) {
      ++stats_.malformed;
      log("conn #%llu from %s: malformed frame (length=%lld, allowed %zu..%lld), closing",
          static_cast<unsigned long long>(c->id), c->peer.c_str(), static_cast<long long>(length),
          kGateHeaderSize, static_cast<long long>(kMaxFrameLength));
      // Best effort: send the replies to the frames before the bad one, then close.
      if (flush(c)) closeConn(c, nullptr);
      return false;
    }
    size_t total = kServerHeaderSize + static_cast<size_t>(length);
    if (c->in.size() < total) break;
    ServerHeader h = ServerHeader::decode(p);
    const uint8_t* payload = p + kServerFrameOverhead;
    size_t plen = static_cast<size_t>(h.payloadLength());
    switch (static_cast<Opcode>(h.opcode)) {
      case Opcode::kData:
        ++stats_.frames_in;
        addSession(c, h.session_id);
        if (opt_.kick_msg_id && h.type == *opt_.kick_msg_id) {
          emit(replies, Opcode::kKick, h.type, h.session_id, kNoPrefix, nullptr, 0);
          ++stats_.kicks;
          removeSession(c, h.session_id);
          break;
        }
        if (opt_.bind_msg_id && h.type == *opt_.bind_msg_id) {
          uint8_t player[8];
          if (plen >= 8) {
            std::memcpy(player, payload, 8);
          } else {
            gw::wire::putU64(player, static_cast<uint64_t>(h.session_id));
          }
          emit(replies, Opcode::kBindPlayer, h.type, h.session_id, kNoPrefix, player, 8);
          ++stats_.binds;
        }
        if (opt_.mode == Mode::kEcho) {
          emit(replies, Opcode::kData, h.type, h.session_id, opt_.reply_prefix, payload, plen);
          ++stats_.frames_out;
        }
        break;
      case Opcode::kSessionOpen:
        ++stats_.opens;
        addSession(c, h.session_id);
        break;
      case Opcode::kSessionClose:
        ++stats_.closes;
        removeSession(c, h.session_id);
        break;
      default:
        ++stats_.ignored;
        if (!c->logged_ignored) {
          c->logged_ignored = true;
          log("conn #%llu: ignoring frame with opcode %u (session %lld); logged once per conn",
              static_cast<unsigned long long>(c->id), static_cast<unsigned>(h.opcode),
              static_cast<long long>(h.session_id));
        }
        break;
    }
    c->in.consume(total);
  }
  if (opt_.delay_ns > 0 && c->delayed.size() > replies_before) {
    c->delayed_batches.emplace_back(monoNs() + opt_.delay_ns, c->delayed.size() - replies_before);
    if (c->delayed_batches.size() == 1) armDelayTimer(c);
  }
  return true;
}

void Sim::armDelayTimer(Conn* c) {
  if (c->delayed_batches.empty()) return;
  timeval tv = toTimeval(c->delayed_batches.front().first - monoNs());
  evtimer_add(c->delay_ev, &tv);
}

void Sim::onDelayTimer(evutil_socket_t, short, void* arg) {
  Conn* c = static_cast<Conn*>(arg);
  Sim* sim = c->sim;
  int64_t now = monoNs();
  while (!c->delayed_batches.empty() && c->delayed_batches.front().first <= now) {
    size_t n = c->delayed_batches.front().second;
    c->out.append(c->delayed.data(), n);
    c->delayed.consume(n);
    c->delayed_batches.pop_front();
  }
  sim->armDelayTimer(c);
  if (!c->out.empty()) sim->flush(c);
}

bool Sim::flush(Conn* c) {
  if (c->out.empty()) return true;
  ssize_t n = ::send(c->fd, c->out.data(), c->out.size(), MSG_NOSIGNAL);
  if (n < 0) {
    if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
      closeConn(c, std::strerror(errno));
      return false;
    }
    n = 0;
  }
  c->out.consume(static_cast<size_t>(n));
  bool want_write = !c->out.empty();
  if (want_write != c->writing) {
    c->writing = want_write;
    if (want_write) {
      event_add(c->write_ev, nullptr);
    } else {
      event_del(c->write_ev);
    }
  }
  if (!want_write) c->out.shrinkIfIdle(4 * kReadChunk);
  updateReadInterest(c);
  return true;
}

void Sim::updateReadInterest(Conn* c) {
  size_t queued = c->out.size() + c->delayed.size();
  if (c->reading && queued > kHighWatermark) {
    c->reading = false;
    event_del(c->read_ev);
  } else if (!c->reading && queued < kLowWatermark) {
    c->reading = true;
    event_add(c->read_ev, nullptr);
  }
}

void Sim::onWritable(evutil_socket_t, short, void* arg) {
  Conn* c = static_cast<Conn*>(arg);
  c->sim->flush(c);
}

void Sim::closeConn(Conn* c, const char* why) {
  if (why) {
    log("conn #%llu from %s: %s (%zu sessions dropped)", static_cast<unsigned long long>(c->id),
        c->peer.c_str(), why, c->sessions.size());
  }
  stats_.sessions -= c->sessions.size();
  --stats_.open_conns;
  event_free(c->read_ev);
  event_free(c->write_ev);
  event_free(c->delay_ev);
  ::close(c->fd);
  conns_.erase(c->id);  // destroys c
}

void Sim::onPushTimer(evutil_socket_t, short, void* arg) {
  Sim* sim = static_cast<Sim*>(arg);
  char text[32];
  int len = std::snprintf(text, sizeof(text), "push %llu",
                          static_cast<unsigned long long>(++sim->push_seq_));
  static const std::string kNoPrefix;
  // Collect ids first: flush() may close (and erase) a connection.
  std::vector<uint64_t> ids;
  ids.reserve(sim->conns_.size());
  for (auto& [id, c] : sim->conns_) ids.push_back(id);
  for (uint64_t id : ids) {
    auto it = sim->conns_.find(id);
    if (it == sim->conns_.end()) continue;
    Conn* c = it->second.get();
    if (c->out.size() > kHighWatermark) continue;  // the gateway is not reading: skip this tick
    for (int64_t session : c->sessions) {
      sim->emit(&c->out, Opcode::kData, sim->opt_.push_type, session, kNoPrefix,
                reinterpret_cast<const uint8_t*>(text), static_cast<size_t>(len));
      ++sim->stats_.pushes;
      ++sim->stats_.frames_out;
    }
    sim->flush(c);
  }
}

void Sim::onStatsTimer(evutil_socket_t, short, void* arg) { static_cast<Sim*>(arg)->printStats(); }

void Sim::onSignal(evutil_socket_t sig, short, void* arg) {
  Sim* sim = static_cast<Sim*>(arg);
  if (sig == SIGUSR1) {
    sim->printStats();
    return;
  }
  event_base_loopbreak(sim->base_);
}

int Sim::run() {
  std::string why;
  auto addr = gw::Address::parse(opt_.address, &why);
  if (!addr) {
    std::fprintf(stderr, "backend_sim: --address: %s\n", why.c_str());
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  base_ = event_base_new();
  evconnlistener* listener =
      evconnlistener_new_bind(base_, onAccept, this, LEV_OPT_CLOSE_ON_FREE | LEV_OPT_REUSEABLE,
                              1024, addr->sockaddr_ptr(), static_cast<int>(addr->len()));
  if (listener == nullptr) {
    std::fprintf(stderr, "backend_sim: cannot listen on %s: %s\n", opt_.address.c_str(),
                 std::strerror(errno));
    event_base_free(base_);
    return 1;
  }
  gw::Address bound = gw::localAddress(evconnlistener_get_fd(listener));
  std::vector<event*> events;
  for (int sig : {SIGTERM, SIGINT, SIGUSR1}) {
    event* ev = evsignal_new(base_, sig, onSignal, this);
    event_add(ev, nullptr);
    events.push_back(ev);
  }
  if (opt_.push_interval_ns > 0) {
    event* ev = event_new(base_, -1, EV_PERSIST, onPushTimer, this);
    timeval tv = toTimeval(opt_.push_interval_ns);
    event_add(ev, &tv);
    events.push_back(ev);
  }
  if (opt_.stats_interval_ns > 0) {
    event* ev = event_new(base_, -1, EV_PERSIST, onStatsTimer, this);
    timeval tv = toTimeval(opt_.stats_interval_ns);
    event_add(ev, &tv);
    events.push_back(ev);
  }
  std::printf("backend_sim listening on %s\n", bound.toString().c_str());
  std::fflush(stdout);
  event_base_dispatch(base_);
  log("shutting down");
  printStats();
  while (!conns_.empty()) closeConn(conns_.begin()->second.get(), nullptr);
  for (event* ev : events) event_free(ev);
  evconnlistener_free(listener);
  event_base_free(base_);
  return 0;
}

void usage() {
  std::fprintf(stderr,
               "usage: backend_sim [--address IP:PORT] [--mode echo|sink] [--push-interval DUR]\n"
               "                   [--push-type N] [--kick-msg-id N] [--bind-msg-id N]\n"
               "                   [--delay DUR] [--name NAME] [--reply-prefix STR]\n"
               "                   [--stats-interval DUR] [--quiet]\n"
               "  DUR: 0 or a number with ns|us|ms|s|m|h, e.g. 100ms. See docs/tools.md.\n");
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    std::string flag = argv[i];
    std::string value;
    size_t eq = flag.find('=');
    bool has_inline = flag.rfind("--", 0) == 0 && eq != std::string::npos;
    if (has_inline) {
      value = flag.substr(eq + 1);
      flag = flag.substr(0, eq);
    }
    auto next = [&]() -> std::optional<std::string> {
      if (has_inline) return value;
      if (i + 1 >= argc) return std::nullopt;
      return std::string(argv[++i]);
    };
    auto bad = [&](const char* what) {
      std::fprintf(stderr, "backend_sim: %s: %s\n", flag.c_str(), what);
      usage();
      return 2;
    };
    auto duration = [&](int64_t* out) {
      auto v = next();
      auto d = v ? gw::tools::parseDurationNs(*v) : std::nullopt;
      if (!d) return false;
      *out = *d;
      return true;
    };
    auto int32 = [&](int32_t* out) {
      auto v = next();
      auto n = v ? gw::tools::parseUint(*v, INT32_MAX) : std::nullopt;
      if (!n) return false;
      *out = static_cast<int32_t>(*n);
      return true;
    };
    if (flag == "--help" || flag == "-h") {
      usage();
      return 0;
    } else if (flag == "--quiet") {
      opt.quiet = true;
    } else if (flag == "--address") {
      auto v = next();
      if (!v) return bad("needs IP:PORT");
      opt.address = *v;
    } else if (flag == "--mode") {
      auto v = next();
      if (v && *v == "echo") {
        opt.mode = Mode::kEcho;
      } else if (v && *v == "sink") {
        opt.mode = Mode::kSink;
      } else {
        return bad("expected echo or sink");
      }
    } else if (flag == "--push-interval") {
      if (!duration(&opt.push_interval_ns)) return bad("expected a duration such as 100ms");
    } else if (flag == "--delay") {
      if (!duration(&opt.delay_ns)) return bad("expected a duration such as 5ms");
    } else if (flag == "--stats-interval") {
      if (!duration(&opt.stats_interval_ns)) return bad("expected a duration such as 1s");
    } else if (flag == "--push-type") {
      if (!int32(&opt.push_type)) return bad("expected a non-negative integer");
    } else if (flag == "--kick-msg-id") {
      int32_t v;
      if (!int32(&v)) return bad("expected a non-negative integer");
      opt.kick_msg_id = v;
    } else if (flag == "--bind-msg-id") {
      int32_t v;
      if (!int32(&v)) return bad("expected a non-negative integer");
      opt.bind_msg_id = v;
    } else if (flag == "--name") {
      auto v = next();
      if (!v) return bad("needs a value");
      opt.name = *v;
    } else if (flag == "--reply-prefix") {
      auto v = next();
      if (!v) return bad("needs a value");
      opt.reply_prefix = *v;
    } else {
      std::fprintf(stderr, "backend_sim: unknown flag %s\n", argv[i]);
      usage();
      return 2;
    }
  }
  Sim sim(std::move(opt));
  return sim.run();
}
