// test/harness/recording_backend.h — a raw backend for tests on the event
// loop of an EmbeddedChain.
//
// Defines RecordingBackend: a loopback listening socket on a port the kernel
// picks, polled by the test (non-blocking, no thread) between runs of the
// chain's event loop; it records every server frame gateways send it and can
// send frames back on the connections they opened. Single-threaded.
#pragma once

#include <cstddef>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "core/sdk/wire.h"
#include "test/harness/net.h"

namespace gw {
namespace test {

class RecordingBackend {
 public:
  RecordingBackend();
  uint16_t port() const { return port_; }
  // "127.0.0.1:PORT".
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }

  // Accepts pending connections and reads what is there, appending the whole
  // server frames to `frames` (never blocks).
  void poll();

  // Frames of `op` for `session` seen so far.
  std::vector<ServerFrame> of(wire::Opcode op, uint64_t session) const;
  // Sessions that sent data frames here.
  std::set<uint64_t> dataSessions() const;

  // Connections accepted so far.
  size_t connections() const { return conns_.size(); }
  // Sends `bytes` to the gateway on connection `i` (in accept order).
  void sendTo(size_t i, const std::string& bytes);
  // Sends `bytes` on every connection accepted so far.
  void sendToAll(const std::string& bytes);
  // Every byte received on connection `i` (in accept order), undecoded: for
  // byte-for-byte checks (frames with the 33-byte extended gate header
  // decode in `frames` with the trace bytes in front of the payload).
  const std::string& raw(size_t i) const { return conns_.at(i).raw; }
  // Whether the gateway closed connection `i` (a read returned EOF or an
  // error), as of the last poll().
  bool closedByGateway(size_t i) const { return conns_.at(i).closed; }
  // Closes connection `i` from the backend's side.
  void close(size_t i) { conns_.at(i).fd.reset(); }

  // Every server frame received, in arrival order per connection.
  std::vector<ServerFrame> frames;

 private:
  struct Conn {
    UniqueFd fd;
    std::string pending;  // a partial frame
    std::string raw;      // everything received
    bool closed = false;  // the gateway closed it
  };
  UniqueFd listen_;
  uint16_t port_ = 0;
  std::vector<Conn> conns_;
};

}  // namespace test
}  // namespace gw
