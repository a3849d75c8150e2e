// core/main.cc — the `gateway` binary.
//
//   gateway --config FILE         run: SIGTERM drains then exits 0, SIGINT stops
//                                 at once, SIGHUP reloads FILE (core/server.h)
//   gateway --check-config FILE   validate FILE (loading its plugins, checked
//                                 as at start) and exit 0 (valid) or 1
//   gateway --list-filters [--config FILE]
//                                 print the built-in filter names, one a line;
//                                 with FILE, load its plugins and add a line
//                                 per plugin filter: "NAME (plugin P VERSION, PATH)"
//   gateway --version             print the version
// Exits 1 if the config is invalid, a plugin is refused, or a listener, the
// admin port or the access log cannot be opened; 2 on bad arguments.
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
#include "plugins/loader.h"

namespace {

void usage() {
  std::cerr << "usage: gateway --config FILE | --check-config FILE | --list-filters [--config "
               "FILE] | --version\n";
}

// Prints the built-in filters, then (with a config) the filters of the
// plugins it lists, loaded through `plugins`. Returns the exit code.
int listFilters(const std::string& config_path, gw::plugins::PluginLoader& plugins) {
  std::vector<std::string> builtin = gw::FilterRegistry::get().names();
  if (!config_path.empty()) {
    auto errors = gw::config::loadPluginsOf(config_path, plugins);
    if (!errors.empty()) {
      for (const auto& e : errors) std::cerr << e << "\n";
      return 1;
    }
  }
  for (const auto& n : builtin) std::cout << n << "\n";
  for (const auto* p : plugins.plugins()) {
    for (const auto& f : p->filters)
      std::cout << f << " (plugin " << p->name << " " << p->version << ", " << p->path << ")\n";
  }
  return 0;
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
  bool list_filters = false;
  // Lives as long as the process: loaded plugins are never unloaded.
  gw::plugins::PluginLoader plugins;
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    if ((arg == "--config" || arg == "--check-config") && i + 1 < argc) {
      config_path = argv[++i];
      check_only = arg == "--check-config";
    } else if (arg == "--list-filters") {
      list_filters = true;
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
  if (list_filters) {
    if (check_only) {
      usage();
      return 2;
    }
    return listFilters(config_path, plugins);
  }
  if (config_path.empty()) {
    usage();
    return 2;
  }
  auto result = gw::config::loadFile(config_path, &plugins);
  if (!result.errors.empty()) {
    for (const auto& e : result.errors) std::cerr << e << "\n";
    std::cerr << "gateway: " << result.errors.size() << " config error"
              << (result.errors.size() == 1 ? "" : "s") << "; not starting\n";
    return 1;
  }
  if (check_only) {
    std::cout << config_path << ": OK (" << result.config->listeners.size() << " listener(s), "
              << result.config->clusters.size() << " cluster(s))\n";
    for (const auto& c : result.config->clusters) {
      for (const auto& n : c.host_names) {
        std::cout << "cluster '" << c.name << "': host \"" << n.toString()
                  << "\" is a DNS name: checked for syntax only, resolved at run time\n";
      }
    }
    return 0;
  }
  gw::log::setLevel(result.config->log_level);
  std::shared_ptr<const gw::GatewayConfig> config = std::move(result.config);
  gw::Server server(config, plugins);
  std::string error;
  if (!server.init(&error)) {
    GW_LOG(error, "cannot start: {}", error);
    return 1;
  }
  return server.run();
}
