// SocketTable: a reactor's fixed table of sockets, addressed by generation-checked SocketIds.
#pragma once

#include <cstdint>
#include <vector>

#include "transport/reactor.h"

namespace confab::transport {

// One socket owned by a reactor.
struct SocketEntry {
  int fd = -1;
  DatagramHandler* handler = nullptr;
  uint16_t generation = 0;  // bumped on removal, so ids and in-flight operations of a removed socket go stale
  bool in_use = false;
  SocketCounters counters;
};

// A SocketId packs the table index (plus one, so that 0 is never valid) in its low 16 bits and the
// entry's generation in its high 16 bits. The table is sized once; insert never allocates.
class SocketTable {
 public:
  static constexpr uint32_t kMaxSockets = 0xFFFE;  // index + 1 must fit the 16 index bits
  static constexpr uint32_t kIndexBits = 16;
  static constexpr uint32_t kIndexMask = (1u << kIndexBits) - 1;

  explicit SocketTable(uint32_t capacity) : entries_(capacity < kMaxSockets ? capacity : kMaxSockets) {}

  static SocketId make_id(uint32_t index, uint16_t generation) {
    return (SocketId{generation} << kIndexBits) | (index + 1);
  }
  static uint32_t index_of(SocketId id) { return (id & kIndexMask) - 1; }
  static uint16_t generation_of(SocketId id) { return static_cast<uint16_t>(id >> kIndexBits); }

  // Returns 0 when the table is full.
  SocketId insert(int fd, DatagramHandler* handler) {
    for (uint32_t i = 0; i < entries_.size(); ++i) {
      SocketEntry& e = entries_[i];
      if (e.in_use) continue;
      e.fd = fd;
      e.handler = handler;
      e.in_use = true;
      e.counters = SocketCounters{};
      return make_id(i, e.generation);
    }
    return 0;
  }

  // Null for ids that are 0, out of range, free, or of an earlier occupant of the entry.
  SocketEntry* find(SocketId id) { return id == 0 ? nullptr : at(index_of(id), generation_of(id)); }
  const SocketEntry* find(SocketId id) const {
    return const_cast<SocketTable*>(this)->find(id);
  }
  SocketEntry* at(uint32_t index, uint16_t generation) {
    if (index >= entries_.size()) return nullptr;
    SocketEntry& e = entries_[index];
    return e.in_use && e.generation == generation ? &e : nullptr;
  }

  // Frees the entry (the caller has closed the fd).
  void erase(SocketEntry* e) {
    e->in_use = false;
    e->fd = -1;
    e->handler = nullptr;
    ++e->generation;
  }

  uint32_t capacity() const { return static_cast<uint32_t>(entries_.size()); }
  SocketEntry& entry(uint32_t index) { return entries_[index]; }

 private:
  std::vector<SocketEntry> entries_;
};

}  // namespace confab::transport
