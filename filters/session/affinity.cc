#include "filters/session/affinity.h"

namespace gw {
namespace session {

AffinityNames::AffinityNames(const std::vector<ClusterConfig>& clusters) {
  clusters_.reserve(clusters.size());
  for (const ClusterConfig& c : clusters) {
    Cluster n;
    n.name = c.name;
    n.hosts.reserve(c.hosts.size());
    for (const Address& h : c.hosts) n.hosts.push_back(h.toString());
    clusters_.push_back(std::move(n));
  }
}

const AffinityNames& AffinityNames::empty() {
  static const AffinityNames* e = new AffinityNames();
  return *e;
}

int AffinityNames::findCluster(std::string_view cluster) const {
  for (size_t c = 0; c < clusters_.size(); ++c)
    if (clusters_[c].name == cluster) return static_cast<int>(c);
  return -1;
}

bool AffinityNames::find(std::string_view cluster, std::string_view host, uint16_t* c,
                         uint16_t* h) const {
  int ci = findCluster(cluster);
  if (ci < 0 || ci >= 0xFFFF) return false;
  const auto& hosts = clusters_[static_cast<size_t>(ci)].hosts;
  for (size_t i = 0; i < hosts.size() && i < 0xFFFF; ++i) {
    if (hosts[i] == host) {
      *c = static_cast<uint16_t>(ci);
      *h = static_cast<uint16_t>(i);
      return true;
    }
  }
  return false;
}

bool SessionAffinity::set(const AffinityNames& names, std::string_view cluster,
                          std::string_view host) {
  // An existing entry of the cluster (inline or spilled) is updated in place.
  for (Entry& e : inline_) {
    if (e.cluster == kUnused) break;
    if (names.cluster(e.cluster) != cluster) continue;
    if (names.host(e.cluster, e.host) == host) return false;
    uint16_t c, h;
    if (names.find(cluster, host, &c, &h)) {
      e.host = h;
      return true;
    }
    // The new host has no index: the entry moves to the spill list (the
    // order of entries may change; only a config without that host causes
    // this, which upstream of the same config never reports).
    e.cluster = kUnused;
    if (&e == &inline_[0]) {
      inline_[0] = inline_[1];
      inline_[1] = Entry{};
    }
    if (!spill_) spill_ = std::make_unique<AffinityPairs>();
    spill_->emplace_back(std::string(cluster), std::string(host));
    return true;
  }
  if (spill_) {
    for (auto& [c, h] : *spill_) {
      if (c != cluster) continue;
      if (h == host) return false;
      h = std::string(host);
      return true;
    }
  }
  uint16_t c, h;
  if (!spill_ && names.find(cluster, host, &c, &h)) {
    for (Entry& e : inline_) {
      if (e.cluster != kUnused) continue;
      e.cluster = c;
      e.host = h;
      return true;
    }
  }
  if (!spill_) spill_ = std::make_unique<AffinityPairs>();
  spill_->emplace_back(std::string(cluster), std::string(host));
  return true;
}

std::string_view SessionAffinity::hostFor(const AffinityNames& names,
                                          std::string_view cluster) const {
  for (const Entry& e : inline_) {
    if (e.cluster == kUnused) break;
    if (names.cluster(e.cluster) == cluster) return names.host(e.cluster, e.host);
  }
  if (spill_) {
    for (const auto& [c, h] : *spill_)
      if (c == cluster) return h;
  }
  return {};
}

AffinityPairs SessionAffinity::toPairs(const AffinityNames& names) const {
  AffinityPairs out;
  forEach(names, [&](std::string_view c, std::string_view h) {
    out.emplace_back(std::string(c), std::string(h));
  });
  return out;
}

void SessionAffinity::assign(const AffinityNames& names, const AffinityPairs& pairs) {
  clear();
  for (const auto& [c, h] : pairs) set(names, c, h);
}

void SessionAffinity::assign(const AffinityNames& names, const SessionAffinity& other,
                             const AffinityNames& other_names) {
  if (&other == this) return;
  if (&names == &other_names) {
    inline_ = other.inline_;
    spill_ = other.spill_ ? std::make_unique<AffinityPairs>(*other.spill_) : nullptr;
    return;
  }
  assign(names, other.toPairs(other_names));
}

void SessionAffinity::clear() {
  inline_ = {};
  spill_.reset();
}

size_t SessionAffinity::size() const {
  size_t n = spill_ ? spill_->size() : 0;
  for (const Entry& e : inline_) n += e.cluster != kUnused ? 1 : 0;
  return n;
}

}  // namespace session
}  // namespace gw
