// test/fuzz/server_frame_fuzz.cc — fuzz target: the server-frame decoder.
//
// The input is what a backend sends the gateway. The `upstream` filter's
// backend read path (filters/upstream/backend_connection.cc, over
// core/sdk/wire.h's ServerHeader) decodes it; it is reachable only through
// the filter, so this drives framing -> (session 7) -> upstream in an
// EmbeddedChain against a loopback "backend" socket owned by the target:
// a client frame makes upstream connect; the backend accepts, sends the
// input, half-closes, and waits until the gateway has read it all (the
// gateway closes the backend connection at EOF or at a malformed header).
// Invariants (against a reference decode of the input): the client gets
// exactly the data frames for session 7 whose type is not the gateway's own
// (0xFFFF, 0xFFFE) and whose payload fits a client frame (<= 65535), in
// order, with their msg_id and payload, and nothing after a kick of session
// 7 (which closes the client, reason kicked); the client's stream is whole
// frames; nothing is decoded after a malformed length (< 9 or > 16 MiB);
// the client closes at most once. Each input takes a TCP connect on
// loopback: slower than the other targets.
#include <event2/event.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "core/sdk/address.h"
#include "core/sdk/cluster.h"
#include "core/sdk/log.h"
#include "core/sdk/session_info.h"
#include "core/sdk/testing/embedded_chain.h"
#include "core/sdk/wire.h"
#include "test/fuzz/check.h"
#include "test/harness/net.h"

namespace {

using gw::CloseReason;
using gw::test::EmbeddedChain;
namespace wire = gw::wire;

constexpr uint64_t kSession = 7;
constexpr int64_t kMaxServerFrameLength = 16 * 1024 * 1024;  // backend_connection.cc

// Publishes the SessionInfo of session 7, as the `session` filter would.
class PublishSession : public gw::Filter {
 public:
  PublishSession() { info_.id = kSession; }
  gw::FilterStatus onNewConnection() override {
    callbacks().slots().set<gw::SessionInfo>(&info_);
    return gw::FilterStatus::kContinue;
  }

 private:
  gw::SessionInfo info_;
};

struct Expected {
  std::vector<gw::test::ClientFrame> frames;  // what the client must get
  bool kicked = false;                        // a kick of session 7 came first
};

// The reference decode: the frames session 7's client must get.
Expected referenceDecode(std::string_view in) {
  Expected e;
  size_t pos = 0;
  while (!e.kicked && in.size() - pos >= wire::kServerFrameOverhead) {
    auto h = wire::ServerHeader::decode(reinterpret_cast<const uint8_t*>(in.data() + pos));
    const int64_t payload = h.payloadLength();
    if (payload < 0 || h.length > kMaxServerFrameLength) break;  // malformed: closes
    if (in.size() - pos - wire::kServerFrameOverhead < static_cast<uint64_t>(payload)) break;
    const std::string_view body = in.substr(pos + wire::kServerFrameOverhead, payload);
    pos += wire::kServerFrameOverhead + payload;
    if (static_cast<uint64_t>(h.session_id) != kSession) continue;
    const auto type = static_cast<uint16_t>(h.type);
    if (h.opcode == static_cast<uint8_t>(wire::Opcode::kKick)) {
      e.kicked = true;
    } else if (h.opcode == static_cast<uint8_t>(wire::Opcode::kData) && type != 0xFFFF &&
               type != 0xFFFE && payload <= 65535) {
      gw::test::ClientFrame f;
      f.header.length = static_cast<uint16_t>(payload);
      f.header.msg_id = type;
      f.payload = std::string(body);
      e.frames.push_back(std::move(f));
    }
  }
  return e;
}

// Runs the chain's loop without blocking until `done` holds; false after 5 s.
bool pump(EmbeddedChain& ec, const std::function<bool()>& done) {
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(5);
  while (!done()) {
    event_base_loop(ec.dispatcher().base(), EVLOOP_NONBLOCK);
    if (std::chrono::steady_clock::now() > deadline) return false;
  }
  return true;
}

// Closes with a reset, so loopback ports do not pile up in TIME_WAIT.
void closeHard(int fd) {
  linger l{1, 0};
  setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof(l));
  ::close(fd);
}

int backendListener() {
  static gw::test::UniqueFd fd = [] {
    gw::test::UniqueFd l = gw::test::listenTcp(0);
    gw::test::setNonBlocking(l.get(), true);
    return l;
  }();
  return fd.get();
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  gw::log::setLevel("off");
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string_view in(reinterpret_cast<const char*>(data), size);
  const int listen_fd = backendListener();

  gw::ClusterConfig game;
  game.name = "game";
  game.hosts.push_back(*gw::Address::parse("127.0.0.1:" +
                                           std::to_string(gw::test::localPort(listen_fd))));
  game.max_connections_per_service = 1;
  std::vector<gw::ClusterConfig> clusters = {game};
  gw::test::FunctionFilterFactory publish([] { return std::make_unique<PublishSession>(); });

  EmbeddedChain ec;
  std::string error;
  auto framing = ec.registered("framing", "{}", {}, &error);
  FUZZ_CHECK(framing.has_value(), "framing: %s", error.c_str());
  // Frames to server type 1, world 0 ("type:world") go to the backend.
  auto upstream = ec.registered(
      "upstream", R"({"routes": [{"match": "1:0", "cluster": "game"}]})", clusters, &error);
  FUZZ_CHECK(upstream.has_value(), "upstream: %s", error.c_str());
  ec.start({*framing, {&publish, gw::FilterTraits::frames()}, *upstream});
  ec.feed(gw::test::encodeClientFrame(100, wire::ClientHeader::makeServerId(0, 1, 0), "hi"));

  int backend = -1;
  FUZZ_CHECK(pump(ec,
                  [&] {
                    backend = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC);
                    return backend >= 0;
                  }),
             "upstream never connected to the backend");
  // What the gateway sends (session open, the data frame) is read and
  // dropped below; the input goes out whole (loopback buffers hold the
  // fuzzer's inputs), then the half-close.
  FUZZ_CHECK(gw::test::sendAll(backend, in), "send to the gateway failed");
  shutdown(backend, SHUT_WR);
  gw::test::setNonBlocking(backend, true);
  bool gateway_closed = false;
  FUZZ_CHECK(pump(ec,
                  [&] {
                    char buf[4096];
                    ssize_t n = recv(backend, buf, sizeof(buf), 0);
                    gateway_closed = n == 0 || (n < 0 && errno != EAGAIN && errno != EINTR);
                    return gateway_closed;
                  }),
             "the gateway did not close the backend connection within 5 s of EOF");
  closeHard(backend);
  for (int extra; (extra = accept4(listen_fd, nullptr, nullptr, SOCK_CLOEXEC)) >= 0;) {
    closeHard(extra);  // a second connection would be a bug, but not this one's
  }

  const Expected want = referenceDecode(in);
  const std::string out = ec.takeOutput();
  std::vector<gw::test::ClientFrame> got;
  const size_t whole = gw::test::decodeClientFrames(out, &got);
  FUZZ_CHECK(whole == out.size(), "the client got %zu bytes, of which %zu are whole frames",
             out.size(), whole);
  std::vector<gw::test::ClientFrame> data_frames;
  for (auto& f : got) {
    if (f.header.msg_id != 0xFFFF) data_frames.push_back(std::move(f));  // the gateway's errors
  }
  FUZZ_CHECK(data_frames.size() == want.frames.size(), "the client got %zu frames, expected %zu",
             data_frames.size(), want.frames.size());
  for (size_t i = 0; i < want.frames.size(); ++i) {
    FUZZ_CHECK(data_frames[i].header.msg_id == want.frames[i].header.msg_id &&
                   data_frames[i].payload == want.frames[i].payload,
               "client frame %zu differs from the backend's", i);
  }
  FUZZ_CHECK(ec.closeCount() <= 1, "the client closed %d times", ec.closeCount());
  if (want.kicked) {
    FUZZ_CHECK(ec.closed() && ec.closeReason() == CloseReason::kKicked,
               "a kick did not close the client with reason kicked");
  }
  return 0;
}
