#include "plugins/loader.h"

#include <dlfcn.h>

#include <mutex>
#include <set>

namespace gw {
namespace plugins {

bool load(const std::string& path, std::string* error) {
  static std::mutex mu;
  static std::set<std::string> loaded;
  std::lock_guard<std::mutex> lock(mu);
  if (loaded.count(path) != 0) return true;
  void* handle = dlopen(path.c_str(), RTLD_NOW | RTLD_GLOBAL);
  if (handle == nullptr) {
    const char* why = dlerror();
    *error = std::string("cannot load plugin: ") + (why ? why : "unknown error");
    return false;
  }
  loaded.insert(path);  // never dlclose: registered factories point into it
  return true;
}

}  // namespace plugins
}  // namespace gw
