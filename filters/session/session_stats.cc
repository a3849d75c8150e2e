#include "filters/session/session_stats.h"

#include "filters/session/session_store.h"

namespace gw {
namespace session {

SessionStats::SessionStats(const std::string& listener) {
  auto& r = stats::StatsRegistry::get();
  stats::Labels l = {{"listener", listener}};
  active = &r.gauge("game_gateway_sessions_active", "Sessions with a connected client.", l);
  lingering = &r.gauge("game_gateway_sessions_lingering",
                       "Sessions whose client left and that may still be resumed.", l);
  created = &r.counter("game_gateway_sessions_created_total", "Sessions created.", l);
  resumed = &r.counter("game_gateway_sessions_resumed_total",
                       "Sessions a reconnecting client resumed.", l);
  const char* failed_help = "Resume requests refused (the client got a new session), by reason.";
  for (int s = 0; s < 5; ++s) {
    auto status = static_cast<ResumeResult::Status>(s);
    resume_failed[s] = &r.counter("game_gateway_sessions_resume_failed_total", failed_help,
                                  {{"listener", listener},
                                   {"reason", std::string(status == ResumeResult::Status::kOk
                                                              ? "malformed"
                                                              : resumeStatusName(status))}});
  }
  kicked = &r.counter("game_gateway_sessions_kicked_total",
                      "Sessions kicked by an operator (admin API), here or through the fleet.", l);
  idle_closed = &r.counter("game_gateway_sessions_idle_closed_total",
                           "Sessions the idle sweep closed.", l);
  duplicate_login = &r.counter("game_gateway_sessions_duplicate_login_total",
                               "Player ids bound to a second live session (the older one was "
                               "kicked, or the newer one refused).",
                               l);
  linger_ended = &r.counter("game_gateway_sessions_linger_expired_total",
                            "Lingering sessions whose resume window ran out.", l);
}

std::shared_ptr<SessionStats> statsFor(const std::string& listener) {
  return std::make_shared<SessionStats>(listener);
}

}  // namespace session
}  // namespace gw
