// filters/session/affinity.h — a session's per-cluster host affinity, kept
// compact.
//
// Defines AffinityNames (the gateway config's cluster and host names by
// index; immutable, one per SessionConfig, so shared by every worker and
// record of that config) and SessionAffinity (the affinity of one session,
// a member of its SessionRecord).
//
// A session usually talks to one cluster: SessionAffinity keeps up to two
// entries inline as (cluster index, host index) into the record's
// AffinityNames, 4 bytes each, with no heap allocation. Names the config
// does not know (a record carried over from another config generation or
// replica, through resume or Redis) and entries past the second go to a
// list of names allocated only then. Every boundary (the observer,
// Redis records, resume results, the admin API) speaks names; conversion
// happens here.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/sdk/cluster.h"

namespace gw {
namespace session {

// (cluster name, host "ip:port") pairs: the form records take at the
// boundaries (Redis, resume results, admin output).
using AffinityPairs = std::vector<std::pair<std::string, std::string>>;

// The clusters of one gateway config and their hosts, by index. Immutable.
class AffinityNames {
 public:
  AffinityNames() = default;
  // Names as upstream's pools spell them: the cluster's name, each host's
  // Address::toString().
  explicit AffinityNames(const std::vector<ClusterConfig>& clusters);

  // Indexes of (cluster, host), or false if either is unknown (or an index
  // does not fit SessionAffinity's 16 bits).
  bool find(std::string_view cluster, std::string_view host, uint16_t* c, uint16_t* h) const;
  // Index of `cluster`, or -1.
  int findCluster(std::string_view cluster) const;
  const std::string& cluster(uint16_t c) const { return clusters_[c].name; }
  const std::string& host(uint16_t c, uint16_t h) const { return clusters_[c].hosts[h]; }

  // The empty table (records without a config, in tests).
  static const AffinityNames& empty();

 private:
  struct Cluster {
    std::string name;
    std::vector<std::string> hosts;
  };
  std::vector<Cluster> clusters_;
};

class SessionAffinity {
 public:
  SessionAffinity() = default;
  SessionAffinity(const SessionAffinity&) = delete;
  SessionAffinity& operator=(const SessionAffinity&) = delete;

  // Sets the host of `cluster`. Returns true if it changed.
  bool set(const AffinityNames& names, std::string_view cluster, std::string_view host);
  // The host of `cluster`, or "" (valid until the next change).
  std::string_view hostFor(const AffinityNames& names, std::string_view cluster) const;
  // Calls fn(cluster, host) (both std::string_view) per entry, in the order
  // the clusters were first set.
  template <class F>
  void forEach(const AffinityNames& names, F&& fn) const {
    for (const Entry& e : inline_) {
      if (e.cluster == kUnused) break;
      fn(std::string_view(names.cluster(e.cluster)),
         std::string_view(names.host(e.cluster, e.host)));
    }
    if (spill_) {
      for (const auto& [c, h] : *spill_) fn(std::string_view(c), std::string_view(h));
    }
  }
  AffinityPairs toPairs(const AffinityNames& names) const;
  // Replaces the entries with `pairs` (in that order).
  void assign(const AffinityNames& names, const AffinityPairs& pairs);
  // Replaces the entries with a copy of `other`'s (whose indexes refer to
  // `other_names`).
  void assign(const AffinityNames& names, const SessionAffinity& other,
              const AffinityNames& other_names);
  void clear();
  bool empty() const { return inline_[0].cluster == kUnused && !spill_; }
  size_t size() const;
  // True if some entry is kept as names (on the heap).
  bool spilled() const { return spill_ != nullptr; }

 private:
  static constexpr uint16_t kUnused = 0xFFFF;
  struct Entry {
    uint16_t cluster = kUnused;  // index into AffinityNames; kUnused: free
    uint16_t host = kUnused;
  };
  std::array<Entry, 2> inline_{};
  // Entries not inline, as names, or nullptr (the usual case). Once it
  // holds an entry, new clusters are appended here too (order is kept).
  std::unique_ptr<AffinityPairs> spill_;
};

}  // namespace session
}  // namespace gw
