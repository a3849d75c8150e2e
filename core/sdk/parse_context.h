// core/sdk/parse_context.h — what a filter's config parser may consult, and
// how it reports errors.
//
// Defines ParseContext: the clusters and listener a filter's config is
// parsed for, the error list, and helpers for what every parser repeats —
// durations (one policy for out-of-range values), cluster lookup (one
// message naming the defined clusters) and byte sizes. Every helper records
// its own error (with a JSON pointer relative to the filter's `config`
// object; the loader prefixes the file and the absolute pointer) and returns
// a usable value, so a parser can read every field, then check ok() once and
// report all mistakes in one run.
#pragma once

#include <rapidjson/document.h>

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "core/sdk/cluster.h"

namespace gw {

// The longest duration config accepts (parseDuration's limit): 30 days.
inline constexpr std::chrono::milliseconds kMaxConfigDuration{30ull * 24 * 3600 * 1000};

class ParseContext {
 public:
  ParseContext(const std::vector<ClusterConfig>& clusters, std::string listener)
      : clusters_(clusters), listener_(std::move(listener)) {}

  // The top-level clusters of the config being parsed.
  const std::vector<ClusterConfig>& clusters() const { return clusters_; }
  // The cluster named `name`, or nullptr (records nothing).
  const ClusterConfig* findCluster(std::string_view name) const;
  // The name of the listener whose chain is being parsed.
  const std::string& listener() const { return listener_; }

  // The listener's chain as the config lists it: every filter's name in
  // order, and the position of the one being parsed. Lets a filter adapt to
  // its neighbours (detect treats ClientHellos as TLS when a `tls` filter
  // follows it). Set by the config loader; unknown (chainKnown() false)
  // when a filter is parsed on its own (test::buildFilter).
  void setChain(std::vector<std::string> names, size_t position) {
    chain_ = std::move(names);
    position_ = position;
    chain_known_ = true;
  }
  bool chainKnown() const { return chain_known_; }
  const std::vector<std::string>& chain() const { return chain_; }
  size_t position() const { return position_; }
  // True when a filter named `name` comes after the one being parsed (false
  // while the chain is unknown).
  bool followedBy(std::string_view name) const {
    for (size_t i = position_ + 1; i < chain_.size(); ++i)
      if (chain_[i] == name) return true;
    return false;
  }

  // Records an error at `pointer` ("" for the config object itself, or
  // "/routes/0/cluster"). Returns nullptr so parsers can `return ctx.fail()`.
  std::nullptr_t fail(std::string pointer, std::string message);

  // True while no error was recorded.
  bool ok() const { return errors_.empty(); }

  // The optional duration member `key` of `obj` ("5m", "30s", "250ms"; the
  // schema checks the pattern with kDurationPattern). Returns `fallback`
  // when the member is absent. A value outside [min, max] — including one
  // too large to parse, such as "721h" — records "<at>/<key>: must be a
  // duration from <min> to <max> ..., got "<text>"" and returns `fallback`.
  std::chrono::milliseconds duration(const rapidjson::Value& obj, std::string_view key,
                                     std::chrono::milliseconds fallback,
                                     std::chrono::milliseconds min = std::chrono::milliseconds(0),
                                     std::chrono::milliseconds max = kMaxConfigDuration,
                                     std::string_view at = "");

  // The cluster that member `key` of `obj` names (a string). Absent member
  // or unknown name: records "<at>/<key>: unknown cluster "x"; defined
  // clusters: a, b" (or how to add one) and returns nullptr.
  const ClusterConfig* cluster(const rapidjson::Value& obj, std::string_view key,
                               std::string_view at = "");
  // The same for a name already read; `pointer` is where it came from.
  const ClusterConfig* cluster(std::string_view name, std::string_view pointer);

  // The optional unsigned integer member `key` of `obj`, a size in bytes (or
  // a count). Returns `fallback` when absent; a value outside [min, max]
  // records "<at>/<key>: must be from <min> to <max>, got N" and returns
  // `fallback`.
  uint64_t size(const rapidjson::Value& obj, std::string_view key, uint64_t fallback,
                uint64_t min = 0, uint64_t max = UINT64_MAX, std::string_view at = "");

  struct Error {
    std::string pointer;
    std::string message;
  };
  const std::vector<Error>& errors() const { return errors_; }

 private:
  const std::vector<ClusterConfig>& clusters_;
  std::string listener_;
  std::vector<std::string> chain_;
  size_t position_ = 0;
  bool chain_known_ = false;
  std::vector<Error> errors_;
};

// "250ms", "30s", "5m", "2h": the largest whole unit, as config writes it.
std::string formatDuration(std::chrono::milliseconds d);

}  // namespace gw
