// core/sdk/session_registry.h — the process-wide view of live sessions.
//
// Defines SessionRegistry: what the admin API (and anything else outside the
// data path) may ask about sessions — describe one, kick one, count them.
// Implemented by the `session` filter's store, which installs itself with
// SessionRegistry::install(); when no listener uses `session`, get() is
// nullptr and the admin API says so. Implementations are thread-safe: calls
// come from the main thread while workers serve traffic.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace gw {

class SessionRegistry {
 public:
  virtual ~SessionRegistry() = default;

  // A JSON object describing session `id` (replica, worker, client address,
  // backends it talks to, idle time, player id), or nullopt if unknown here.
  virtual std::optional<std::string> describeJson(uint64_t id) = 0;
  // Closes the session's client connection with reason `kicked` (asynchronously,
  // on its worker). Returns false if the session is unknown here.
  virtual bool kick(uint64_t id, std::string_view why) = 0;
  // Sessions currently live in this process.
  virtual size_t activeSessions() = 0;

  // The installed registry, or nullptr.
  static SessionRegistry* get() { return instance().load(std::memory_order_acquire); }
  // Installs `r` (nullptr to remove). The caller keeps ownership.
  static void install(SessionRegistry* r) { instance().store(r, std::memory_order_release); }

 private:
  static std::atomic<SessionRegistry*>& instance() {
    static std::atomic<SessionRegistry*> r{nullptr};
    return r;
  }
};

}  // namespace gw
