// Tests of the test harness itself: Process, runfiles and temp files, the
// socket helpers and the frame encoders. Later tests trust these.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <fstream>
#include <sstream>
#include <thread>

#include "test/harness/gateway.h"
#include "test/harness/net.h"
#include "test/harness/process.h"
#include "test/harness/runfiles.h"

namespace gw {
namespace test {
namespace {

using std::chrono::milliseconds;
using std::chrono::seconds;

TEST(ProcessTest, CapturesStdoutAndStderrAndTheExitCode) {
  Process p;
  std::string error;
  ASSERT_TRUE(p.start({"/bin/sh", "-c", "echo out; echo err >&2; exit 3"}, &error)) << error;
  EXPECT_GT(p.pid(), 0);
  EXPECT_EQ(p.wait(seconds(5)), 3);
  EXPECT_FALSE(p.running());
  EXPECT_EQ(p.exitCode(), 3);
  std::string out = p.output();
  EXPECT_NE(out.find("out\n"), std::string::npos) << out;
  EXPECT_NE(out.find("err\n"), std::string::npos) << out;
  EXPECT_FALSE(p.signal(SIGTERM));  // already reaped
}

TEST(ProcessTest, WaitForOutputSeesLinesAsTheyArrive) {
  Process p;
  ASSERT_TRUE(p.start({"/bin/sh", "-c", "echo ready; sleep 10"}));
  EXPECT_TRUE(p.waitForOutput("ready", seconds(5)));
  EXPECT_FALSE(p.waitForOutput("never printed", milliseconds(50)));
  EXPECT_TRUE(p.running());
  EXPECT_EQ(p.wait(milliseconds(20)), std::nullopt);  // still running
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_TRUE(p.signal(SIGTERM));  // also reaches the shell's `sleep`
  EXPECT_EQ(p.wait(seconds(5)), 128 + SIGTERM);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(2));
}

TEST(ProcessTest, DestructorDoesNotHangOnAGrandchildHoldingTheOutput) {
  auto t0 = std::chrono::steady_clock::now();
  {
    Process p;
    ASSERT_TRUE(p.start({"/bin/sh", "-c", "sleep 30 & echo started"}));
    EXPECT_TRUE(p.waitForOutput("started", seconds(5)));
  }
  EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(5));
}

TEST(ProcessTest, WaitForOutputReturnsEarlyWhenTheChildExits) {
  Process p;
  ASSERT_TRUE(p.start({"/bin/sh", "-c", "exit 0"}));
  auto t0 = std::chrono::steady_clock::now();
  EXPECT_FALSE(p.waitForOutput("listening", seconds(10)));
  EXPECT_LT(std::chrono::steady_clock::now() - t0, seconds(5));
}

TEST(ProcessTest, MissingBinaryIsReported) {
  Process p;
  std::string error;
  EXPECT_FALSE(p.start({"/nonexistent/gateway"}, &error));
  EXPECT_EQ(error, "cannot execute /nonexistent/gateway: No such file or directory");
  EXPECT_EQ(p.pid(), -1);
  EXPECT_EQ(p.wait(milliseconds(1)), std::nullopt);
}

TEST(ProcessTest, DestructorKillsAndReapsARunningChild) {
  pid_t pid;
  {
    Process p;
    ASSERT_TRUE(p.start({"/bin/sleep", "30"}));
    pid = p.pid();
    EXPECT_EQ(::kill(pid, 0), 0);
  }
  // Reaped: the pid no longer names a process (not even a zombie).
  EXPECT_EQ(::kill(pid, 0), -1);
  EXPECT_EQ(errno, ESRCH);
}

TEST(ProcessTest, ResidentBytesReadsVmRss) {
  EXPECT_GT(residentBytes(::getpid()), 1024u * 1024);
  EXPECT_EQ(residentBytes(-5), 0u);
}

TEST(ListeningPortTest, ReadsThePortAServerReports) {
  EXPECT_EQ(listeningPort("hello\necho_server listening on 127.0.0.1:4242\n", "echo_server"), 4242);
  EXPECT_EQ(listeningPort("listener 'game' listening on 127.0.0.1:8080 (2 workers)\n",
                          "listener 'game'"),
            8080);
  EXPECT_EQ(listeningPort("echo_server listening on 127.0.0.1:42", "echo_server"), 0)
      << "the line is not complete yet";
  EXPECT_EQ(listeningPort("backend_sim listening on 127.0.0.1:1\n", "echo_server"), 0);
  EXPECT_EQ(listeningPort("echo_server listening on 127.0.0.1:\n", "echo_server"), 0);
}

TEST(ListeningPortTest, WaitsForTheWholeLine) {
  Process p;
  ASSERT_TRUE(p.start({"/bin/sh", "-c",
                       "printf 'srv listening on 127.0.0.1:'; sleep 0.2; echo 5151; sleep 10"}));
  EXPECT_EQ(waitForListeningPort(p, "srv", seconds(5)), 5151);
  Process quiet;
  ASSERT_TRUE(quiet.start({"/bin/sh", "-c", "echo no port here"}));
  EXPECT_EQ(waitForListeningPort(quiet, "srv", seconds(5)), 0);
}

TEST(RunfilesTest, PathsAreAbsolute) {
  EXPECT_EQ(runfile("config/tcp_proxy.json").front(), '/');
  EXPECT_FALSE(tempDir().empty());
}

TEST(RunfilesTest, WriteTempFileCreatesUniqueFiles) {
  std::string a = writeTempFile("{\"a\": 1}", "cfg-", ".json");
  std::string b = writeTempFile("second", "cfg-", ".json");
  ASSERT_FALSE(a.empty());
  ASSERT_FALSE(b.empty());
  EXPECT_NE(a, b);
  EXPECT_EQ(a.rfind(tempDir() + "/cfg-", 0), 0u) << a;
  EXPECT_EQ(a.substr(a.size() - 5), ".json");
  std::ifstream in(a);
  std::stringstream ss;
  ss << in.rdbuf();
  EXPECT_EQ(ss.str(), "{\"a\": 1}");
  ::unlink(a.c_str());
  ::unlink(b.c_str());
}

TEST(NetTest, ConnectSendReceiveAndClose) {
  UniqueFd listener = listenTcp();
  ASSERT_TRUE(listener.valid());
  uint16_t port = localPort(listener.get());
  ASSERT_NE(port, 0);
  UniqueFd client = connectTcp(port);
  ASSERT_TRUE(client.valid());
  UniqueFd server = acceptTcp(listener.get(), seconds(2));
  ASSERT_TRUE(server.valid());

  ASSERT_TRUE(sendAll(client.get(), "hello world"));
  std::string got;
  ASSERT_TRUE(recvExact(server.get(), 11, seconds(2), &got));
  EXPECT_EQ(got, "hello world");
  // Nothing more: a timeout, not a hang.
  EXPECT_FALSE(recvExact(server.get(), 1, milliseconds(50), &got));
  EXPECT_FALSE(waitClosed(server.get(), milliseconds(50)));

  ASSERT_TRUE(sendAll(client.get(), "tail"));
  ASSERT_EQ(::shutdown(client.get(), SHUT_WR), 0);
  std::string rest;
  EXPECT_TRUE(recvUntilEof(server.get(), seconds(2), &rest));
  EXPECT_EQ(rest, "tail");
  // recvExact stops at EOF with what it has.
  EXPECT_FALSE(recvExact(server.get(), 1, seconds(2), &got));

  client.reset();
  EXPECT_TRUE(waitClosed(server.get(), seconds(2)));
}

TEST(NetTest, ConnectToAClosedPortFails) {
  uint16_t port = freePort();
  ASSERT_NE(port, 0);
  UniqueFd fd = connectTcp(port, milliseconds(500));
  EXPECT_FALSE(fd.valid());
  EXPECT_EQ(errno, ECONNREFUSED);
}

TEST(NetTest, UniqueFdMovesAndCloses) {
  int raw = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(raw, 0);
  UniqueFd a(raw);
  UniqueFd b(std::move(a));
  EXPECT_FALSE(a.valid());
  EXPECT_EQ(b.get(), raw);
  b.reset();
  EXPECT_EQ(::fcntl(raw, F_GETFD), -1);  // closed
}

TEST(WireHelpersTest, ClientFramesRoundTrip) {
  uint32_t sid = wire::ClientHeader::makeServerId(3, 200, 1);
  std::string bytes = encodeClientFrame(10, sid, "abc") + encodeClientFrame(11, 0, "");
  ASSERT_EQ(bytes.size(), 8u + 3 + 8);
  // Little-endian header: length 3, msg_id 10.
  EXPECT_EQ(bytes.substr(0, 4), std::string("\x03\x00\x0a\x00", 4));
  std::vector<ClientFrame> frames;
  EXPECT_EQ(decodeClientFrames(bytes + "\x05", &frames), bytes.size());  // partial tail left
  ASSERT_EQ(frames.size(), 2u);
  EXPECT_EQ(frames[0].header.msg_id, 10);
  EXPECT_EQ(frames[0].header.serverType(), 200);
  EXPECT_EQ(frames[0].header.worldId(), 3);
  EXPECT_EQ(frames[0].payload, "abc");
  EXPECT_EQ(frames[1].payload, "");
  // Payloads are capped at the u16 length.
  EXPECT_EQ(encodeClientFrame(1, 0, std::string(70000, 'x')).size(), 8u + 65535);
}

TEST(WireHelpersTest, ServerFramesRoundTripAndMalformedLengthsStop) {
  std::string bytes = encodeServerFrame(wire::Opcode::kData, 1001, 0x1122334455667788ull, "hi");
  ASSERT_EQ(bytes.size(), 29u + 2);
  std::vector<ServerFrame> frames;
  bool malformed = true;
  EXPECT_EQ(decodeServerFrames(bytes, &frames, &malformed), bytes.size());
  EXPECT_FALSE(malformed);
  ASSERT_EQ(frames.size(), 1u);
  EXPECT_EQ(frames[0].header.length, 9 + 2);
  EXPECT_EQ(frames[0].header.type, 1001);
  EXPECT_EQ(frames[0].header.session_id, static_cast<int64_t>(0x1122334455667788ull));
  EXPECT_EQ(frames[0].payload, "hi");

  std::string bad = bytes;
  bad[0] = 3;  // length 3 < 9: no room for the gate header
  frames.clear();
  EXPECT_EQ(decodeServerFrames(bad, &frames, &malformed), 0u);
  EXPECT_TRUE(malformed);
  EXPECT_TRUE(frames.empty());
}

TEST(WireHelpersTest, RecvFrameReadsExactlyOneFrame) {
  UniqueFd listener = listenTcp();
  UniqueFd client = connectTcp(localPort(listener.get()));
  UniqueFd server = acceptTcp(listener.get(), seconds(2));
  ASSERT_TRUE(server.valid());
  std::thread writer([&] {
    std::string two = encodeClientFrame(1, 0, "first") + encodeClientFrame(2, 0, "second");
    // Byte by byte: the reader must reassemble.
    for (char c : two) sendAll(client.get(), std::string(1, c));
  });
  ClientFrame f;
  ASSERT_TRUE(recvClientFrame(server.get(), seconds(5), &f));
  EXPECT_EQ(f.header.msg_id, 1);
  EXPECT_EQ(f.payload, "first");
  ASSERT_TRUE(recvClientFrame(server.get(), seconds(5), &f));
  EXPECT_EQ(f.payload, "second");
  writer.join();
}

}  // namespace
}  // namespace test
}  // namespace gw
