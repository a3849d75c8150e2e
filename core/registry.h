// core/registry.h — filters registered by JSON name.
//
// Defines FilterConfig (a filter's parsed, immutable config), ParseContext
// (what a filter's parser may consult and how it reports errors),
// WorkerContext (what a per-worker factory gets), FilterConfigFactory (the
// registered plugin: name, traits, JSON Schema, parser, factory builder),
// FilterRegistry, and GW_REGISTER_FILTER.
//
// Registration happens during static initialization of the filter's own
// Bazel package (cc_library with alwayslink = True) or when a plugin shared
// object is loaded. A duplicate name is recorded and reported at start
// (FilterRegistry::errors()); the gateway refuses to start.
#pragma once

#include <rapidjson/document.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/cluster.h"
#include "core/filter.h"
#include "core/worker_services.h"

namespace gw {

class Dispatcher;

// Base of every filter's parsed config. Immutable once parsed; shared by all
// workers' factories (so anything mutable in it must be thread-safe).
class FilterConfig {
 public:
  virtual ~FilterConfig() = default;
};

// Given to a filter's parser. Errors are reported with a JSON pointer
// relative to the filter's `config` object; the loader prefixes the file and
// the absolute pointer.
class ParseContext {
 public:
  ParseContext(const std::vector<ClusterConfig>& clusters, std::string listener)
      : clusters_(clusters), listener_(std::move(listener)) {}

  const std::vector<ClusterConfig>& clusters() const { return clusters_; }
  const ClusterConfig* findCluster(std::string_view name) const {
    for (const auto& c : clusters_)
      if (c.name == name) return &c;
    return nullptr;
  }
  const std::string& listener() const { return listener_; }

  // Records an error at `pointer` ("" for the config object itself, or
  // "/routes/0/cluster"). Returns nullptr so parsers can `return ctx.fail()`.
  std::nullptr_t fail(std::string pointer, std::string message) {
    errors_.push_back({std::move(pointer), std::move(message)});
    return nullptr;
  }
  struct Error {
    std::string pointer;
    std::string message;
  };
  const std::vector<Error>& errors() const { return errors_; }

 private:
  const std::vector<ClusterConfig>& clusters_;
  std::string listener_;
  std::vector<Error> errors_;
};

// Given to a per-worker factory when it is built.
struct WorkerContext {
  Dispatcher& dispatcher;
  size_t worker_index;
  size_t worker_count;
  const std::vector<ClusterConfig>& clusters;
  std::string listener;
  // This worker's shared per-worker objects (event bus, ...).
  WorkerServices& services;
};

// A registered filter type. One instance per process; must be stateless or
// thread-safe.
class FilterConfigFactory {
 public:
  virtual ~FilterConfigFactory() = default;
  // The JSON name ("ip_limiter"). Also the Bazel package, doc and metric prefix.
  virtual std::string_view name() const = 0;
  virtual FilterTraits traits() const = 0;
  // A JSON Schema (draft-04 subset RapidJSON validates) for `config`. The
  // loader validates before parse(); set additionalProperties:false so
  // unknown keys are errors.
  virtual std::string_view schema() const = 0;
  // Turns a schema-valid config into the immutable FilterConfig. Semantic
  // errors (unknown cluster, min > max) go to ctx.fail(); return nullptr then.
  virtual std::shared_ptr<const FilterConfig> parse(const rapidjson::Value& config,
                                                    ParseContext& ctx) const = 0;
  // Builds the factory of one worker (called on the main thread before the
  // worker's loop starts, and on the worker's own thread when a SIGHUP reload
  // is applied; the factory is then used only on that worker). After a
  // reload the old and the new factory live side by side on the worker until
  // the last connection made by the old one closes.
  virtual std::unique_ptr<FilterFactory> createFactory(std::shared_ptr<const FilterConfig> config,
                                                       WorkerContext& worker) const = 0;
};

class FilterRegistry {
 public:
  // The process-wide registry.
  static FilterRegistry& get();

  // Adds a filter type. A second type with the same name is not added; the
  // clash is recorded in errors().
  void add(std::unique_ptr<FilterConfigFactory> factory);
  // Returns the factory registered as `name`, or nullptr.
  const FilterConfigFactory* find(std::string_view name) const;
  // Registered names, sorted.
  std::vector<std::string> names() const;
  // Registration problems (duplicate names). Empty when all is well.
  std::vector<std::string> errors() const;

 private:
  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<FilterConfigFactory>, std::less<>> factories_;
  std::vector<std::string> errors_;
};

// Registers `T` (a FilterConfigFactory with a default constructor) at static
// initialization: GW_REGISTER_FILTER(TcpProxyConfigFactory);
template <class T>
struct FilterRegistrar {
  FilterRegistrar() { FilterRegistry::get().add(std::make_unique<T>()); }
};

#define GW_REGISTER_FILTER(T) static ::gw::FilterRegistrar<T> gw_filter_registrar_##T

}  // namespace gw
