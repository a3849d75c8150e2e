// core/sdk/registry.h — filters registered by JSON name.
//
// Defines FilterConfig (a filter's parsed, immutable config), WorkerContext
// (what a per-worker factory gets), FilterConfigFactory (the registered
// filter type: name, traits, JSON Schema, parser, factory builder, admin
// view), TypedFilterConfigFactory (the same without the casts: what every
// filter derives from), FilterRegistry, and GW_REGISTER_FILTER. The parser's
// context is in core/sdk/parse_context.h.
//
// Registration happens during static initialization of the filter's own
// Bazel package (cc_library with alwayslink = True) or when a plugin shared
// object is loaded. A duplicate name at static initialization is recorded
// and reported at start (FilterRegistry::errors()); the gateway refuses to
// start. A plugin's registrations are staged (see FilterRegistry) and made
// visible only once the loader accepted the plugin.
#pragma once

#include <rapidjson/document.h>

#include <chrono>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <vector>

#include "core/sdk/admin_view.h"
#include "core/sdk/cluster.h"
#include "core/sdk/filter.h"
#include "core/sdk/parse_context.h"
#include "core/sdk/plugin.h"
#include "core/sdk/worker_services.h"

namespace gw {

class Dispatcher;

// Base of every filter's parsed config. Immutable once parsed; shared by all
// workers' factories (so anything mutable in it must be thread-safe).
class FilterConfig {
 public:
  virtual ~FilterConfig() = default;
  // Describes the parsed config as a JSON object (`out` is an object;
  // allocate with `alloc`) for GET /config's effective view: the values in
  // force, defaults filled in, secrets left out. Default: no members.
  virtual void describe(rapidjson::Value& /*out*/, JsonAllocator& /*alloc*/) const {}
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
  // What this filter type shows on the admin API (core/sdk/admin_view.h), or
  // nullptr (the default). The view lives as long as the factory.
  virtual const AdminView* adminView() const { return nullptr; }
};

// FilterConfigFactory for a filter whose parsed config is `Config` (a
// FilterConfig) and whose per-worker factory is `Factory` (a FilterFactory
// constructible from `(std::shared_ptr<const Config>, WorkerContext&)`).
// A filter type passes its name, traits and schema to the constructor and
// implements parseConfig(); the cast from FilterConfig back to Config is
// done here, once, for every filter:
//
//   class FramingConfigFactory
//       : public TypedFilterConfigFactory<FramingConfig, FramingFactory> {
//    public:
//     FramingConfigFactory()
//         : TypedFilterConfigFactory("framing", FilterTraits::codec(), kFramingSchema) {}
//     std::shared_ptr<const FramingConfig> parseConfig(const rapidjson::Value& json,
//                                                      ParseContext& ctx) const override;
//   };
//   GW_REGISTER_FILTER(FramingConfigFactory);
template <class Config, class Factory>
class TypedFilterConfigFactory : public FilterConfigFactory {
 public:
  TypedFilterConfigFactory(std::string_view name, FilterTraits traits, std::string_view schema)
      : name_(name), traits_(traits), schema_(schema) {}

  // Turns a schema-valid `config` object into Config. Record semantic errors
  // with ctx (ctx.fail(), or its helpers, which record their own); when any
  // was recorded the result is discarded, so returning a partly filled
  // config is fine.
  virtual std::shared_ptr<const Config> parseConfig(const rapidjson::Value& config,
                                                    ParseContext& ctx) const = 0;

  std::string_view name() const final { return name_; }
  FilterTraits traits() const final { return traits_; }
  std::string_view schema() const final { return schema_; }
  std::shared_ptr<const FilterConfig> parse(const rapidjson::Value& config,
                                            ParseContext& ctx) const final {
    std::shared_ptr<const Config> parsed = parseConfig(config, ctx);
    if (!ctx.ok()) return nullptr;
    return parsed;
  }
  std::unique_ptr<FilterFactory> createFactory(std::shared_ptr<const FilterConfig> config,
                                               WorkerContext& worker) const final {
    // parse() made every FilterConfig this type is handed.
    return std::make_unique<Factory>(std::static_pointer_cast<const Config>(std::move(config)),
                                     worker);
  }

 private:
  std::string_view name_;
  FilterTraits traits_;
  std::string_view schema_;
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

  // Staging, for the plugin loader (plugins/loader.h): between
  // beginStaging() and commitStaging()/discardStaging(), add() puts filter
  // types aside instead of registering them, so find() and names() do not
  // see them until the loader has checked the plugin that registered them.
  // One staging at a time (the loader's, on the main thread).

  // What add() set aside since beginStaging().
  struct Staged {
    std::vector<std::string> names;       // in registration order
    std::vector<std::string> duplicates;  // names already registered, or staged twice
  };
  void beginStaging();
  Staged staged() const;
  // Registers the staged filter types (the caller checked there are no
  // duplicates: a duplicate is dropped, as in add()) and ends staging.
  void commitStaging();
  // Ends staging without registering anything. The staged factories are
  // kept (unreachable by name) and never destroyed: their code and vtable
  // layout belong to a refused shared object whose ABI may not be this
  // gateway's, so not even their destructor may be called.
  void discardStaging();

 private:
  void addLocked(std::unique_ptr<FilterConfigFactory> factory);

  mutable std::mutex mu_;
  std::map<std::string, std::unique_ptr<FilterConfigFactory>, std::less<>> factories_;
  std::vector<std::string> errors_;
  bool staging_ = false;
  std::vector<std::unique_ptr<FilterConfigFactory>> staged_;
  Staged staged_info_;
  std::vector<FilterConfigFactory*> refused_;  // see discardStaging()
};

// Registers `T` (a FilterConfigFactory with a default constructor) at static
// initialization, and records its name in this shared object's own list
// (core/sdk/plugin.h: a plugin's manifest lists it).
template <class T>
struct FilterRegistrar {
  FilterRegistrar() {
    auto factory = std::make_unique<T>();
    localFilterNames().emplace_back(factory->name());
    FilterRegistry::get().add(std::move(factory));
  }
};

// GW_REGISTER_FILTER(TcpProxyConfigFactory); at namespace scope in the filter's .cc.
#define GW_REGISTER_FILTER(T) static ::gw::FilterRegistrar<T> gw_filter_registrar_##T

}  // namespace gw
