#include "test/harness/recording_backend.h"

#include <sys/socket.h>

#include <cerrno>
#include <chrono>

namespace gw {
namespace test {

RecordingBackend::RecordingBackend() : listen_(listenTcp(0)) {
  port_ = localPort(listen_.get());
  setNonBlocking(listen_.get(), true);
}

void RecordingBackend::poll() {
  for (;;) {
    UniqueFd c = acceptTcp(listen_.get(), std::chrono::milliseconds(0));
    if (!c.valid()) break;
    setNonBlocking(c.get(), true);
    conns_.push_back({std::move(c), ""});
  }
  for (auto& c : conns_) {
    if (!c.fd.valid()) continue;  // closed by the test
    char buf[65536];
    for (;;) {
      ssize_t n = ::recv(c.fd.get(), buf, sizeof(buf), 0);
      if (n == 0 || (n < 0 && errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR))
        c.closed = true;
      if (n <= 0) break;
      c.pending.append(buf, static_cast<size_t>(n));
      c.raw.append(buf, static_cast<size_t>(n));
    }
    size_t used = decodeServerFrames(c.pending, &frames);
    c.pending.erase(0, used);
  }
}

std::vector<ServerFrame> RecordingBackend::of(wire::Opcode op, uint64_t session) const {
  std::vector<ServerFrame> out;
  for (const auto& f : frames)
    if (f.header.opcode == static_cast<uint8_t>(op) &&
        static_cast<uint64_t>(f.header.session_id) == session)
      out.push_back(f);
  return out;
}

std::set<uint64_t> RecordingBackend::dataSessions() const {
  std::set<uint64_t> out;
  for (const auto& f : frames)
    if (f.header.opcode == static_cast<uint8_t>(wire::Opcode::kData))
      out.insert(static_cast<uint64_t>(f.header.session_id));
  return out;
}

void RecordingBackend::sendTo(size_t i, const std::string& bytes) {
  sendAll(conns_.at(i).fd.get(), bytes);
}

void RecordingBackend::sendToAll(const std::string& bytes) {
  for (auto& c : conns_) sendAll(c.fd.get(), bytes);
}

}  // namespace test
}  // namespace gw
