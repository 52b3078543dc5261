// A caching CPU allocator registered with c10 at addon load. libtorch's default CPU allocator
// hands every activation to glibc, which serves anything above its mmap threshold (128 KiB,
// adaptive up to a hard cap of 32 MiB) with a fresh mmap: every UNet step page-faults its
// activations in and unmaps them again, and most of a CPU run's time went to the kernel
// (issue 10; bench/NOTES.md). This allocator keeps freed blocks of 64 KiB and more, by size, and
// hands them out again; small blocks still go to glibc. The cache is released by emptyCache()
// and capped (TORCHVID_CPU_CACHE_MB); TORCHVID_CPU_ALLOCATOR=system turns it off.
#pragma once

#include <cstdint>

namespace torchvid {

struct CpuCacheStats {
  bool enabled;
  int64_t cachedBytes;   // freed blocks held for reuse
  int64_t liveBytes;     // blocks handed out and not yet freed (large blocks only)
  int64_t hits, misses;  // large allocations served from the cache / from the system
  int64_t limitBytes;    // most cached bytes kept
};

// Installs the allocator unless TORCHVID_CPU_ALLOCATOR=system. Call once, before tensors exist.
void installCpuAllocator();
// Returns every cached free block to the system.
void emptyCpuCache();
CpuCacheStats cpuCacheStats();

}  // namespace torchvid
