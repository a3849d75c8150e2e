// core/sdk/slots.h — typed per-connection slots through which filters share data.
//
// Filters never include each other. A filter that publishes data (e.g.
// `session` publishes a SessionInfo) stores a pointer to its own member in
// the connection's Slots; a later filter (e.g. `upstream`) reads it by type.
// The shared types live in core/ (core/sdk/session_info.h). The pointee must
// outlive the connection's filters (a member of the publishing filter is
// fine: all filters of a chain are destroyed together). Per connection; not
// thread-safe.
#pragma once

#include <array>
#include <cstddef>

namespace gw {

class Slots {
 public:
  // Publishes `value` under its type T (replacing any earlier one).
  // At most kMaxSlots distinct types per connection; returns false if full.
  template <class T>
  bool set(T* value) {
    const void* key = keyOf<T>();
    for (auto& e : entries_) {
      if (e.key == key || e.key == nullptr) {
        e.key = key;
        e.value = value;
        return true;
      }
    }
    return false;
  }
  // Returns the published T, or nullptr if none was published.
  template <class T>
  T* get() const {
    const void* key = keyOf<T>();
    for (const auto& e : entries_) {
      if (e.key == key) return static_cast<T*>(e.value);
      if (e.key == nullptr) break;
    }
    return nullptr;
  }

  static constexpr size_t kMaxSlots = 4;

 private:
  template <class T>
  static const void* keyOf() {
    static const char key = 0;
    return &key;
  }
  struct Entry {
    const void* key = nullptr;
    void* value = nullptr;
  };
  std::array<Entry, kMaxSlots> entries_{};
};

}  // namespace gw
