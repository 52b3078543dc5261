#include "cpu_allocator.h"

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>
#include <c10/core/impl/alloc_cpu.h>
#include <c10/util/Exception.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

namespace torchvid {

namespace {

// Below this, glibc's bins are fast and nothing is mmap'd: not worth a lock and a map lookup.
constexpr size_t kMinCached = 64 * 1024;

size_t roundSize(size_t n) {
  const size_t step = n < (4u << 20) ? 4096 : (64u << 10);
  return (n + step - 1) / step * step;
}

int64_t defaultLimit() {
  if (const char* mb = std::getenv("TORCHVID_CPU_CACHE_MB")) {
    char* end = nullptr;
    long long v = std::strtoll(mb, &end, 10);
    if (end != mb && v >= 0) return static_cast<int64_t>(v) << 20;
  }
  // A quarter of physical memory, at most 8 GiB: the cache only ever holds what a run freed, and
  // a diffusion loop allocates the same sizes step after step.
  long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGE_SIZE);
  int64_t quarter = pages > 0 && page > 0 ? static_cast<int64_t>(pages) * page / 4 : (int64_t(2) << 30);
  return std::min<int64_t>(quarter, int64_t(8) << 30);
}

class CachingCpuAllocator final : public c10::Allocator {
 public:
  c10::DataPtr allocate(size_t nbytes) const override {
    if (nbytes < kMinCached) {
      void* p = c10::alloc_cpu(nbytes);
      return {p, p, &freeSmall, c10::Device(c10::DeviceType::CPU)};
    }
    void* p = self().take(roundSize(nbytes));
    return {p, p, &freeLarge, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &freeAny; }

  static CachingCpuAllocator& self() {
    static CachingCpuAllocator* instance = new CachingCpuAllocator();  // never destroyed (frees at exit)
    return *instance;
  }

  void* take(size_t size) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = free_.find(size);
      if (it != free_.end() && !it->second.empty()) {
        void* p = it->second.back();
        it->second.pop_back();
        cached_ -= static_cast<int64_t>(size);
        live_[p] = size;
        liveBytes_ += static_cast<int64_t>(size);
        hits_++;
        return p;
      }
      misses_++;
    }
    void* p = nullptr;
    try {
      p = c10::alloc_cpu(size);
    } catch (const c10::Error&) {
      // Cached blocks of other sizes may be what stands between us and success.
      release();
      p = c10::alloc_cpu(size);
    }
    std::lock_guard<std::mutex> lock(mutex_);
    live_[p] = size;
    liveBytes_ += static_cast<int64_t>(size);
    return p;
  }

  // Returns false when `p` is not one of our large blocks.
  bool give(void* p) {
    size_t size;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = live_.find(p);
      if (it == live_.end()) return false;
      size = it->second;
      live_.erase(it);
      liveBytes_ -= static_cast<int64_t>(size);
      if (cached_ + static_cast<int64_t>(size) <= limit_) {
        free_[size].push_back(p);
        cached_ += static_cast<int64_t>(size);
        return true;
      }
    }
    c10::free_cpu(p);
    return true;
  }

  void release() {
    std::vector<void*> blocks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      for (auto& [size, list] : free_) blocks.insert(blocks.end(), list.begin(), list.end());
      free_.clear();
      cached_ = 0;
    }
    for (void* p : blocks) c10::free_cpu(p);
  }

  CpuCacheStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return {true, cached_, liveBytes_, hits_, misses_, limit_};
  }

 private:
  CachingCpuAllocator() : limit_(defaultLimit()) {}

  static void freeSmall(void* p) { c10::free_cpu(p); }
  static void freeLarge(void* p) {
    if (!self().give(p)) c10::free_cpu(p);
  }
  static void freeAny(void* p) {
    if (p != nullptr && !self().give(p)) c10::free_cpu(p);
  }

  std::mutex mutex_;
  std::unordered_map<size_t, std::vector<void*>> free_;
  std::unordered_map<void*, size_t> live_;
  int64_t cached_ = 0, liveBytes_ = 0, hits_ = 0, misses_ = 0;
  int64_t limit_;
};

bool g_installed = false;

}  // namespace

void installCpuAllocator() {
  if (g_installed) return;
  const char* mode = std::getenv("TORCHVID_CPU_ALLOCATOR");
  if (mode != nullptr && std::string(mode) == "system") return;
  // Priority above libtorch's default (0), so a later default registration cannot replace it.
  c10::SetCPUAllocator(&CachingCpuAllocator::self(), /*priority=*/1);
  g_installed = true;
}

void emptyCpuCache() {
  if (g_installed) CachingCpuAllocator::self().release();
}

CpuCacheStats cpuCacheStats() {
  if (!g_installed) return {false, 0, 0, 0, 0, 0};
  return CachingCpuAllocator::self().stats();
}

}  // namespace torchvid
