#include "core/sdk/registry.h"

namespace gw {

FilterRegistry& FilterRegistry::get() {
  static FilterRegistry* registry = new FilterRegistry();
  return *registry;
}

void FilterRegistry::add(std::unique_ptr<FilterConfigFactory> factory) {
  std::lock_guard<std::mutex> lock(mu_);
  if (!staging_) {
    addLocked(std::move(factory));
    return;
  }
  std::string name(factory->name());
  bool seen = factories_.count(name) != 0;
  for (const auto& n : staged_info_.names) seen = seen || n == name;
  if (seen) staged_info_.duplicates.push_back(name);
  staged_info_.names.push_back(std::move(name));
  staged_.push_back(std::move(factory));
}

void FilterRegistry::addLocked(std::unique_ptr<FilterConfigFactory> factory) {
  std::string name(factory->name());
  if (factories_.count(name) != 0) {
    errors_.push_back("filter name '" + name +
                      "' is registered twice: rename one of the filters (names must be unique)");
    return;
  }
  factories_.emplace(std::move(name), std::move(factory));
}

void FilterRegistry::beginStaging() {
  std::lock_guard<std::mutex> lock(mu_);
  staging_ = true;
  staged_.clear();
  staged_info_ = Staged();
}

FilterRegistry::Staged FilterRegistry::staged() const {
  std::lock_guard<std::mutex> lock(mu_);
  return staged_info_;
}

void FilterRegistry::commitStaging() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& f : staged_) {
    if (factories_.count(std::string(f->name())) == 0) addLocked(std::move(f));
    else refused_.push_back(f.release());  // the loader refuses duplicates first
  }
  staging_ = false;
  staged_.clear();
  staged_info_ = Staged();
}

void FilterRegistry::discardStaging() {
  std::lock_guard<std::mutex> lock(mu_);
  for (auto& f : staged_) refused_.push_back(f.release());  // never destroyed: see the header
  staging_ = false;
  staged_.clear();
  staged_info_ = Staged();
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
