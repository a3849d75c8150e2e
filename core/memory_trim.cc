// core/memory_trim.cc — see memory_trim.h.
#include "core/memory_trim.h"

#include <malloc.h>
#include <unistd.h>

#include <cstdio>

#include "core/sdk/log.h"

namespace gw {
namespace {

// Resident bytes of this process (/proc/self/statm), or 0.
size_t residentBytes() {
  FILE* f = std::fopen("/proc/self/statm", "r");
  if (!f) return 0;
  unsigned long size = 0, resident = 0;
  int n = std::fscanf(f, "%lu %lu", &size, &resident);
  std::fclose(f);
  return n == 2 ? resident * static_cast<size_t>(sysconf(_SC_PAGESIZE)) : 0;
}

}  // namespace

MemoryTrimmer::MemoryTrimmer(Dispatcher& main, std::function<std::chrono::milliseconds()> interval)
    : interval_(std::move(interval)),
      timer_(main, [this] { onTimer(); }),
      heap_free_(stats::StatsRegistry::get().gauge(
          "game_gateway_memory_heap_free_bytes",
          "Heap bytes malloc held free (all arenas) at the last memory_trim_interval check.")),
      trims_(stats::StatsRegistry::get().counter(
          "game_gateway_memory_trims_total",
          "malloc_trim() calls made because the free heap reached 8 MiB.")),
      trimmed_bytes_(stats::StatsRegistry::get().counter(
          "game_gateway_memory_trimmed_bytes_total",
          "Resident bytes given back to the kernel by malloc_trim().")) {}

void MemoryTrimmer::start() {
  auto every = interval_();
  if (every.count() > 0 && !timer_.enabled()) timer_.enable(every);
}

size_t MemoryTrimmer::checkNow() {
  struct mallinfo2 info = mallinfo2();
  heap_free_.set(static_cast<int64_t>(info.fordblks));
  if (info.fordblks < kTrimMinFreeBytes) return 0;
  size_t before = residentBytes();
  malloc_trim(0);
  size_t after = residentBytes();
  size_t given = before > after ? before - after : 0;
  trims_.inc();
  trimmed_bytes_.inc(given);
  GW_LOG(debug, "memory: trimmed the heap ({} KiB free in malloc, {} KiB resident given back)",
         info.fordblks / 1024, given / 1024);
  return given;
}

void MemoryTrimmer::onTimer() {
  checkNow();
  start();
}

}  // namespace gw
