// Tests of what backends see when a resumable session's client leaves:
// framing -> session -> the real `upstream`, against a raw backend socket
// made here. The lingering side lives in upstream (filters/upstream/linger.h)
// and asks the session owner at the end of the resume window.
#include <event2/buffer.h>
#include <gtest/gtest.h>

#include <thread>

#include "filters/session/session.h"
#include "filters/upstream/linger.h"
#include "test/filters/session/session_rig.h"
#include "test/harness/recording_backend.h"

namespace gw {
namespace test {
namespace {

using namespace std::chrono_literals;
using session::kResumeMsgId;
using session::Token;

constexpr uint32_t kGame = 200 << 8;

// framing -> session -> upstream(cluster "game" = the raw backend).
class Chain {
 public:
  Chain(const std::string& session_json, uint16_t backend_port) {
    ClusterConfig c;
    c.name = "game";
    c.hosts = {*Address::parse("127.0.0.1:" + std::to_string(backend_port))};
    clusters_ = {c};
    std::string error;
    auto framing = ec.registered("framing", "{}", {}, &error);
    auto session = ec.registered("session", session_json, {}, &error);
    auto upstream = ec.registered(
        "upstream", R"({"routes": [{"match": "200:0", "cluster": "game"}]})", clusters_, &error);
    if (!framing || !session || !upstream) throw std::runtime_error(error);
    elements_ = {*framing, *session, *upstream};
    ec.start(elements_);
  }
  std::vector<ClientFrame> takeFrames() {
    std::vector<ClientFrame> out;
    decodeClientFrames(ec.takeOutput(), &out);
    return out;
  }
  void send(uint16_t msg_id, std::string_view payload, uint32_t sid = kGame) {
    ec.feed(encodeClientFrame(msg_id, sid, payload));
  }
  std::pair<uint64_t, Token> hello() {
    send(kResumeMsgId, controlPayload(0, Token{}), 0);
    auto out = takeFrames();
    uint64_t id = 0;
    Token t{};
    if (out.empty() || !parseEstablished(out[0], &id, &t)) ADD_FAILURE() << "no established frame";
    return {id, t};
  }

  std::vector<ClusterConfig> clusters_;
  std::vector<ChainElement> elements_;
  EmbeddedChain ec;
};

// Another client connection on the same worker as `c` (same loop, same
// factories and worker services), as a worker serves its next client.
class Sibling {
 public:
  explicit Sibling(Chain& c)
      : chain_(std::make_unique<Connection>(c.ec.dispatcher(), -1, *Address::parse("127.0.0.1:7"),
                                            false),
               c.elements_, OutputLimits{},
               [this](FilterChain&, CloseReason, std::string_view) { closed = true; }) {
    chain_.start();
  }
  void send(uint16_t msg_id, std::string_view payload, uint32_t sid = kGame) {
    std::string bytes = encodeClientFrame(msg_id, sid, payload);
    evbuffer_add(chain_.connection().input(), bytes.data(), bytes.size());
    chain_.deliverInput(false);
  }
  std::vector<ClientFrame> takeFrames() {
    evbuffer* out = chain_.connection().output();
    std::string bytes(evbuffer_get_length(out), '\0');
    evbuffer_remove(out, bytes.data(), bytes.size());
    std::vector<ClientFrame> frames;
    decodeClientFrames(bytes, &frames);
    return frames;
  }
  void close() {
    chain_.connection().close(CloseReason::kRemoteClosed, "test", Connection::CloseMode::kAbort);
  }
  bool closed = false;

 private:
  FilterChain chain_;
};

// Runs the chains' loops and polls the backend until pred() or timeout.
bool pump(RecordingBackend& b, std::vector<Chain*> chains, const std::function<bool()>& pred,
          std::chrono::milliseconds timeout = 3s) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    for (Chain* c : chains) c->ec.runFor(5ms);
    b.poll();
    if (pred()) return true;
    if (std::chrono::steady_clock::now() > deadline) return false;
  }
}

const char* kResume60 = R"({"resume": {"enabled": true, "window": "60s"}})";

TEST(LingerTest, WithoutResumeBackendsHearTheCloseAtOnce) {
  RecordingBackend backend;
  Chain a("{}", backend.port());
  a.send(7, "hi");
  ASSERT_TRUE(pump(backend, {&a}, [&] { return !backend.frames.empty(); }));
  uint64_t id = static_cast<uint64_t>(backend.frames[0].header.session_id);
  a.ec.feedEof();
  ASSERT_TRUE(pump(backend, {&a}, [&] { return !backend.of(wire::Opcode::kSessionClose, id).empty(); }));
}

TEST(LingerTest, ResumeOnAnotherWorkerLooksLikeOneSessionToTheBackend) {
  RecordingBackend backend;
  auto a = std::make_unique<Chain>(kResume60, backend.port());
  auto [id, token] = a->hello();
  a->send(7, "first");
  ASSERT_TRUE(pump(backend, {a.get()}, [&] { return !backend.of(wire::Opcode::kData, id).empty(); }));
  ASSERT_EQ(backend.of(wire::Opcode::kSessionOpen, id).size(), 1u);
  EXPECT_EQ(backend.of(wire::Opcode::kSessionOpen, id)[0].payload, "");
  a->ec.feedEof();  // the client's network dropped
  pump(backend, {a.get()}, [] { return false; }, 300ms);
  EXPECT_TRUE(backend.of(wire::Opcode::kSessionClose, id).empty());  // lingering, not closed

  Chain b(kResume60, backend.port());  // another worker
  b.send(kResumeMsgId, controlPayload(id, token), 0);
  b.send(7, "second");
  ASSERT_TRUE(pump(backend, {a.get(), &b},
                   [&] { return backend.of(wire::Opcode::kData, id).size() == 2; }));
  auto opens = backend.of(wire::Opcode::kSessionOpen, id);
  ASSERT_EQ(opens.size(), 2u);
  EXPECT_EQ(opens[1].payload, "resume");  // the session continues, no new login
  EXPECT_EQ(backend.connections(), 2u);   // each worker has its own backend connection
  // The first worker's linger is released (the session moved): still no close.
  pump(backend, {a.get(), &b}, [] { return false; }, 300ms);
  EXPECT_TRUE(backend.of(wire::Opcode::kSessionClose, id).empty());
  // The resumed session ends for real later: one close.
  b.send(session::kLeaveMsgId, "", 0);
  b.ec.feedEof();
  ASSERT_TRUE(pump(backend, {a.get(), &b},
                   [&] { return !backend.of(wire::Opcode::kSessionClose, id).empty(); }));
  pump(backend, {a.get(), &b}, [] { return false; }, 100ms);
  EXPECT_EQ(backend.of(wire::Opcode::kSessionClose, id).size(), 1u);
}

TEST(LingerTest, ResumeOnTheSameWorkerTakesOverTheBinding) {
  RecordingBackend backend;
  Chain a(kResume60, backend.port());
  auto [id, token] = a.hello();
  a.send(7, "first");
  ASSERT_TRUE(pump(backend, {&a}, [&] { return !backend.of(wire::Opcode::kData, id).empty(); }));
  a.ec.feedEof();
  pump(backend, {&a}, [] { return false; }, 100ms);
  auto& keeper = a.ec.services().get<upstream::LingerKeeper>();
  EXPECT_TRUE(keeper.lingering(id));

  Sibling next(a);  // the client reconnects; the kernel hands it to the same worker
  next.send(kResumeMsgId, controlPayload(id, token), 0);
  auto out = next.takeFrames();
  ASSERT_EQ(out.size(), 1u);
  uint64_t resumed = 0;
  Token t2;
  ASSERT_TRUE(parseEstablished(out[0], &resumed, &t2));
  EXPECT_EQ(resumed, id);
  next.send(7, "second");
  ASSERT_TRUE(pump(backend, {&a}, [&] { return backend.of(wire::Opcode::kData, id).size() == 2; }));
  EXPECT_FALSE(keeper.lingering(id));  // taken over at once
  auto opens = backend.of(wire::Opcode::kSessionOpen, id);
  ASSERT_EQ(opens.size(), 2u);
  EXPECT_EQ(opens[1].payload, "resume");
  EXPECT_EQ(backend.connections(), 1u);  // the worker's one backend connection
  EXPECT_TRUE(backend.of(wire::Opcode::kSessionClose, id).empty());
  EXPECT_EQ(a.ec.services().get<session::WorkerSessions>().lingeringCount(), 0u);
  next.close();
  pump(backend, {&a}, [] { return false; }, 50ms);
}

TEST(LingerTest, UnresumedSessionsAreClosedWhenTheWindowEnds) {
  RecordingBackend backend;
  Chain a(R"({"resume": {"enabled": true, "window": "1s"}})", backend.port());
  auto [id, token] = a.hello();
  a.send(7, "x");
  ASSERT_TRUE(pump(backend, {&a}, [&] { return !backend.of(wire::Opcode::kData, id).empty(); }));
  auto left = std::chrono::steady_clock::now();
  a.ec.feedEof();
  ASSERT_TRUE(pump(backend, {&a},
                   [&] { return !backend.of(wire::Opcode::kSessionClose, id).empty(); }, 5s));
  EXPECT_GE(std::chrono::steady_clock::now() - left, 900ms);
  EXPECT_EQ(a.ec.services().get<upstream::LingerKeeper>().size(), 0u);
  EXPECT_EQ(a.ec.services().get<session::WorkerSessions>().lingeringCount(), 0u);
}

TEST(LingerTest, BackendKickEndsALingeringSession) {
  RecordingBackend backend;
  Chain a(kResume60, backend.port());
  auto [id, token] = a.hello();
  a.send(7, "x");
  ASSERT_TRUE(pump(backend, {&a}, [&] { return !backend.of(wire::Opcode::kData, id).empty(); }));
  a.ec.feedEof();
  pump(backend, {&a}, [] { return false; }, 100ms);
  ASSERT_EQ(a.ec.services().get<session::WorkerSessions>().lingeringCount(), 1u);
  backend.sendTo(0, encodeServerFrame(wire::Opcode::kKick, 0, id, ""));
  ASSERT_TRUE(pump(backend, {&a},
                   [&] { return !backend.of(wire::Opcode::kSessionClose, id).empty(); }));
  EXPECT_EQ(a.ec.services().get<session::WorkerSessions>().lingeringCount(), 0u);
  session::SessionView v;
  EXPECT_FALSE(session::SessionManager::process(16)->get(id, &v));  // cannot be resumed
}

TEST(LingerTest, PlayerBindingFromTheBackendReachesTheSessionOwner) {
  RecordingBackend backend;
  Chain a("{}", backend.port());
  a.send(7, "x");
  ASSERT_TRUE(pump(backend, {&a}, [&] { return !backend.frames.empty(); }));
  uint64_t id = static_cast<uint64_t>(backend.frames[0].header.session_id);
  std::string player(8, '\0');
  wire::putU64(reinterpret_cast<uint8_t*>(&player[0]), 31337);
  backend.sendTo(0, encodeServerFrame(wire::Opcode::kBindPlayer, 0, id, player));
  pump(backend, {&a}, [] { return false; }, 100ms);
  EXPECT_EQ(session::SessionManager::process(16)->sessionOfPlayer(31337), id);
  session::SessionView v;
  ASSERT_TRUE(session::SessionManager::process(16)->get(id, &v));
  EXPECT_EQ(v.record->player_id, 31337u);
  // And the affinity upstream picked is recorded for the admin API.
  auto json = session::SessionManager::process(16)->describeJson(id);
  ASSERT_TRUE(json.has_value());
  EXPECT_NE(json->find("\"game\":\"127.0.0.1:" + std::to_string(backend.port()) + "\""),
            std::string::npos)
      << *json;
}

}  // namespace
}  // namespace test
}  // namespace gw
