#include "core/sdk/registry.h"

namespace gw {

FilterRegistry& FilterRegistry::get() {
  static FilterRegistry* registry = new FilterRegistry();
  return *registry;
}

void FilterRegistry::add(std::unique_ptr<FilterConfigFactory> factory) {
  std::lock_guard<std::mutex> lock(mu_);
  std::string name(factory->name());
  if (factories_.count(name) != 0) {
    errors_.push_back("filter name '" + name +
                      "' is registered twice: rename one of the filters (names must be unique)");
    return;
  }
  factories_.emplace(std::move(name), std::move(factory));
}

const FilterConfigFactory* FilterRegistry::find(std::string_view name) const {
  std::lock_guard<std::mutex> lock(mu_);
  auto it = factories_.find(name);
  return it == factories_.end() ? nullptr : it->second.get();
}

std::vector<std::string> FilterRegistry::names() const {
  std::lock_guard<std::mutex> lock(mu_);
  std::vector<std::string> out;
  for (const auto& [name, f] : factories_) out.push_back(name);
  return out;
}

std::vector<std::string> FilterRegistry::errors() const {
  std::lock_guard<std::mutex> lock(mu_);
  return errors_;
}

}  // namespace gw
