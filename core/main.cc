// core/main.cc — the `gateway` binary.
//
//   gateway --config FILE         run: SIGTERM drains then exits 0, SIGINT stops
//                                 at once, SIGHUP reloads FILE (core/server.h)
//   gateway --check-config FILE   validate FILE and exit 0 (valid) or 1
//   gateway --list-filters        print the registered filter names
//   gateway --version             print the version
// Exits 1 if the config is invalid or a listener, the admin port or the
// access log cannot be opened; 2 on bad arguments.
#include <malloc.h>

#include <cstdio>
#include <cstring>
#include <iostream>
#include <string>

#include "config/loader.h"
#include "core/admin.h"
#include "core/sdk/log.h"
#include "core/sdk/registry.h"
#include "core/server.h"

namespace {

void usage() {
  std::cerr << "usage: gateway --config FILE | --check-config FILE | --list-filters | --version\n";
}

// Keeps glibc malloc from handing freed heap back to the kernel and taking
// it again many times a second. By default an arena returns its top to the
// kernel once 128 KiB there are free; with 1,000 proxied connections the
// read buffers in flight hover around that, and the gateway took ~9,000 page
// faults per second (each a zeroed page, plus the brk/madvise calls) where
// HAProxy, with its own pools, takes none (docs/performance.md). Above 8 MiB
// free the top is still trimmed, so a burst's memory goes back eventually.
void tuneMalloc() {
  mallopt(M_TRIM_THRESHOLD, 8 * 1024 * 1024);
  mallopt(M_TOP_PAD, 1024 * 1024);
}

}  // namespace

int main(int argc, char** argv) {
  tuneMalloc();
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
