// core/session_info.h — the session a client connection belongs to.
//
// Defines SessionInfo, published in the connection's Slots by whichever
// filter owns session identity (`session`; `upstream` makes one itself when
// no filter did), and SessionIdGenerator: 64-bit ids unique across gateway
// replicas without coordination (12 bits of a hash of the node name, 40 bits
// of milliseconds, 12 bits of sequence — the Go gateway's layout).
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace gw {

struct SessionInfo {
  uint64_t id = 0;
  uint64_t player_id = 0;  // 0 until a backend binds one
  // Set by the owner when the session came back through resume: backends
  // then see it continue (no new open).
  bool resumed = false;
};

class SessionIdGenerator {
 public:
  // `node` names this replica (pod name, host name); only its hash is used.
  explicit SessionIdGenerator(std::string_view node);

  // Next id. Thread-safe and lock-free. Never returns 0. If more than 4096
  // ids are requested in one millisecond, borrows the next millisecond.
  uint64_t next();

  // The 12-bit node hash this generator stamps.
  uint16_t nodeBits() const { return node_bits_; }

  // The process-wide generator, named by $GATEWAY_NODE_NAME, else $HOSTNAME,
  // else the host name.
  static SessionIdGenerator& process();

 private:
  uint16_t node_bits_;
  std::atomic<uint64_t> state_{0};  // (ms << 12) | seq of the last id
};

}  // namespace gw
