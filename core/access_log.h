// core/access_log.h — one JSON line per closed client connection.
//
// Defines AccessLogEntry (what is known about a connection when it closes)
// and AccessLog: the sink configured by the top-level `access_log` config
// (stderr, stdout or a file), sampled by `sample_rate`. Lines are formatted
// on the worker thread that closed the connection and written by the log's
// own background thread (an spdlog async logger with a private queue of
// kQueueLines lines), so a slow disk never stalls a worker; when the queue
// is full the oldest queued line is dropped. Thread-safe: every worker
// shares one AccessLog per config generation.
//
// A line (one JSON object, keys always present, in this order):
//   {"time":"2024-05-01T12:00:00.123Z","listener":"game","worker":0,
//    "client":"127.0.0.1:53412","session_id":"1234",
//    "trace_id":"4bf92f3577b34da6a3ce929d0e0e4736","duration_ms":5012.345,
//    "bytes_in":120,"bytes_out":64,"frames_in":3,"frames_out":2,
//    "reason":"remote_closed","detail":"peer closed"}
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>

#include "config/config.h"
#include "core/sdk/address.h"
#include "core/sdk/close_reason.h"
#include "core/sdk/session_info.h"

namespace spdlog {
class logger;
namespace details {
class thread_pool;
}
}  // namespace spdlog

namespace gw {

// What the access log records about one closed connection.
struct AccessLogEntry {
  std::chrono::system_clock::time_point time;  // when it closed
  std::string_view listener;
  size_t worker = 0;
  const Address* client = nullptr;  // the peer; "" if null
  uint64_t session_id = 0;          // 0: no session was published
  // The session's W3C trace id (SessionInfo::trace); null: no session ("").
  const TraceContext* trace = nullptr;
  std::chrono::nanoseconds duration{0};
  uint64_t bytes_in = 0;  // read from the client
  uint64_t bytes_out = 0;  // written to the client
  uint64_t frames_in = 0;
  uint64_t frames_out = 0;
  CloseReason reason = CloseReason::kLocalClosed;
  std::string_view detail;
};

class AccessLog {
 public:
  // Lines that may wait for the background writer before the oldest drops.
  static constexpr size_t kQueueLines = 8192;

  // Opens the sink that `config.path` names ("stderr", "stdout", else a file
  // opened for appending; its directory must exist: it is not created).
  // Returns nullptr with *error set ("access_log: cannot open /x/y.log:
  // ...") if the file cannot be opened. A disabled
  // config opens nothing and gives a log whose sample() is always false.
  static std::shared_ptr<AccessLog> open(const AccessLogConfig& config, std::string* error);
  // Writes out every queued line, then closes the sink.
  ~AccessLog();
  AccessLog(const AccessLog&) = delete;
  AccessLog& operator=(const AccessLog&) = delete;

  const AccessLogConfig& config() const { return config_; }
  // True if this connection's line should be written: false when disabled,
  // else true with probability sample_rate (a per-thread generator; no lock).
  bool sample() const;
  // Queues `e`'s line for writing. Call only when sample() said so.
  void write(const AccessLogEntry& e);
  // The JSON object for `e`, without a newline.
  static std::string format(const AccessLogEntry& e);

 private:
  explicit AccessLog(AccessLogConfig config) : config_(std::move(config)) {}

  AccessLogConfig config_;
  std::shared_ptr<spdlog::details::thread_pool> pool_;
  std::shared_ptr<spdlog::logger> logger_;
};

}  // namespace gw
