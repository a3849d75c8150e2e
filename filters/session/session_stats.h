// filters/session/session_stats.h — every metric of the `session` filter.
//
// Defines SessionStats: the metrics of one listener's sessions (thread-safe
// counters and gauges, shared by the listener's workers), and statsFor().
#pragma once

#include <memory>
#include <string>

#include "core/sdk/stats.h"

namespace gw {
namespace session {

struct SessionStats {
  explicit SessionStats(const std::string& listener);
  stats::Gauge* active;         // game_gateway_sessions_active
  stats::Gauge* lingering;      // game_gateway_sessions_lingering
  stats::Counter* created;      // game_gateway_sessions_created_total
  stats::Counter* resumed;      // game_gateway_sessions_resumed_total
  stats::Counter* resume_failed[5];  // ..._resume_failed_total{reason}, by ResumeResult::Status
  stats::Counter* kicked;       // game_gateway_sessions_kicked_total
  stats::Counter* idle_closed;  // game_gateway_sessions_idle_closed_total
  stats::Counter* duplicate_login;  // game_gateway_sessions_duplicate_login_total
  stats::Counter* linger_ended;     // game_gateway_sessions_linger_expired_total
};

// The listener's stats (shared by its workers' factories).
std::shared_ptr<SessionStats> statsFor(const std::string& listener);

}  // namespace session
}  // namespace gw
