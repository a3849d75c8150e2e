// core/main.cc — the `gateway` binary.
//
//   gateway --config FILE         run: SIGTERM drains then exits 0, SIGINT stops
//                                 at once, SIGHUP reloads FILE (core/server.h)
//   gateway --check-config FILE   validate FILE and exit 0 (valid) or 1
//   gateway --list-filters        print the registered filter names
//   gateway --version             print the version
// Exits 1 if the config is invalid or a listener, the admin port or the
// access log cannot be opened; 2 on bad arguments.
#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "config/loader.h"
#include "core/admin.h"
#include "core/log.h"
#include "core/registry.h"
#include "core/server.h"

namespace {

void usage() {
  std::cerr << "usage: gateway --config FILE | --check-config FILE | --list-filters | --version\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::string config_path;
  bool check_only = false;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "--config" || arg == "--check-config") && i + 1 < argc) {
      config_path = argv[++i];
      check_only = arg == "--check-config";
    } else if (arg == "--list-filters") {
      for (const auto& n : gw::FilterRegistry::get().names()) std::cout << n << "\n";
      return 0;
    } else if (arg == "--version") {
      std::cout << "gateway " << gw::kGatewayVersion << "\n";
      return 0;
    } else if (arg == "--help" || arg == "-h") {
      usage();
      return 0;
    } else {
      std::cerr << "gateway: unknown argument '" << arg << "'\n";
      usage();
      return 2;
    }
  }
  if (config_path.empty()) {
    usage();
    return 2;
  }
  auto result = gw::config::loadFile(config_path);
  if (!result.errors.empty()) {
    for (const auto& e : result.errors) std::cerr << e << "\n";
    std::cerr << "gateway: " << result.errors.size() << " config error"
              << (result.errors.size() == 1 ? "" : "s") << "; not starting\n";
    return 1;
  }
  if (check_only) {
    std::cout << config_path << ": OK (" << result.config->listeners.size() << " listener(s), "
              << result.config->clusters.size() << " cluster(s))\n";
    return 0;
  }
  gw::log::setLevel(result.config->log_level);
  std::shared_ptr<const gw::GatewayConfig> config = std::move(result.config);
  gw::Server server(config);
  std::string error;
  if (!server.init(&error)) {
    GW_LOG(error, "cannot start: {}", error);
    return 1;
  }
  return server.run();
}
