#include "core/sdk/log.h"

#include <spdlog/sinks/stdout_sinks.h>

namespace gw {
namespace log {

spdlog::logger& get() {
  static std::shared_ptr<spdlog::logger> logger = [] {
    auto l = std::make_shared<spdlog::logger>(
        "gateway", std::make_shared<spdlog::sinks::stderr_sink_mt>());
    l->set_pattern("[%Y-%m-%dT%H:%M:%S.%e] [%l] [t%t] %v");
    l->set_level(spdlog::level::info);
    l->flush_on(spdlog::level::info);
    return l;
  }();
  return *logger;
}

bool setLevel(std::string_view level) {
  auto lvl = spdlog::level::from_str(std::string(level));
  if (lvl == spdlog::level::off && level != "off") return false;
  get().set_level(lvl);
  return true;
}

}  // namespace log
}  // namespace gw
