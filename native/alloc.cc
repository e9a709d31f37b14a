// A cache of large CPU blocks in front of libtorch's CPU allocator.
//
// glibc serves blocks of 32 MiB and more (its largest mmap threshold) with mmap and gives them back with
// munmap on free, so every step of a model with a real vocabulary pays for fresh pages: its logits, their
// log-softmax and gradients (4 x 128 x 49152 floats is 100 MB) are mapped, faulted in page by page, zeroed
// by the kernel and unmapped again, step after step. This allocator keeps such blocks once freed (sizes
// rounded up to 2 MiB) and hands the same pages out again, to a request of the block's size or up to a fifth
// smaller; smaller requests go to libtorch's own allocator (glibc's heap, which the addon already tells to
// keep freed memory; see addon.cc). It holds at most HHKIT_CPU_CACHE_MB of freed blocks (default: a quarter
// of physical memory; the oldest go first when a newer one needs the room), and when mmap itself fails it
// gives every cached block back and tries once more (under Linux's overcommit the OOM killer usually acts
// first: set the cap below a container's limit). HHKIT_MALLOC=system leaves libtorch's allocator alone.
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <unordered_map>
#include <utility>
#include <vector>

#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

namespace hhkit {

// Declared in core.h (this file does not include core.h itself: it needs only c10's allocator headers).
bool env_mib(const char* name, unsigned long long max_mib, unsigned long long* mib);

namespace {

constexpr size_t kLarge = size_t(32) << 20;  // glibc's largest mmap threshold: what it would unmap on free
constexpr size_t kGranule = size_t(2) << 20;

class LargeBlockCache;
LargeBlockCache* the_cache = nullptr;

class LargeBlockCache final : public c10::Allocator {
 public:
  LargeBlockCache(c10::Allocator* base, size_t limit) : base_(base), limit_(limit) {}

  // libtorch before 2.3 declares allocate() const, and 2.3 on non-const with a pure copy_data(): both
  // allocate() signatures and copy_data() are defined, without `override`, so each version finds its own.
  c10::DataPtr allocate(size_t n) const { return self().allocate_block(n); }
  c10::DataPtr allocate(size_t n) { return allocate_block(n); }
  void copy_data(void* dest, const void* src, std::size_t count) const { std::memcpy(dest, src, count); }

  // Kernels' scratch buffers come through raw_allocate()/raw_deallocate(), which need a deleter that takes the
  // data pointer alone (each large block's context is its own address) and frees small ones as well.
  c10::DeleterFnPtr raw_deleter() const override { return &give_back; }

 private:
  c10::DataPtr allocate_block(size_t n) {
    if (n < kLarge) return base_->allocate(n);
    size_t size = (n + kGranule - 1) / kGranule * kGranule;
    void* p = take(size);
    if (p == nullptr) p = map(size);
    if (p == nullptr) {
      release_all();
      p = map(size);
    }
    TORCH_CHECK(p != nullptr, "hhkit: out of memory allocating ", n, " bytes on the CPU");
    {
      std::lock_guard<std::mutex> lock(mu_);
      live_.emplace(p, size);
    }
    return {p, p, &give_back, c10::Device(c10::DeviceType::CPU)};
  }

  // The const allocate() of libtorch before 2.3: the cache is the allocator's own mutable state.
  LargeBlockCache& self() const { return const_cast<LargeBlockCache&>(*this); }

  static void* map(size_t size) {
    void* p = mmap(nullptr, size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    return p == MAP_FAILED ? nullptr : p;
  }

  static void give_back(void* p) { the_cache->release(p); }

  void release(void* p) {
    size_t size = 0;
    {
      std::lock_guard<std::mutex> lock(mu_);
      auto it = live_.find(p);
      if (it != live_.end()) {
        size = it->second;
        live_.erase(it);
      }
    }
    if (size == 0) {
      base_->raw_deleter()(p);  // a small block of the base allocator, freed through raw_deallocate()
      return;
    }
    put(p, size);
  }

  // The smallest cached block that holds `size` bytes, if it is at most a quarter larger (a batch of other
  // lengths reuses a block instead of mapping one more); its whole size travels with it.
  void* take(size_t& size) {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = free_.lower_bound(size);
    if (it == free_.end() || it->first > size + size / 4) return nullptr;
    void* p = it->second.ptr;
    size = it->first;
    free_.erase(it);
    cached_ -= size;
    return p;
  }

  // Caches a freed block, first giving back the oldest cached blocks while it would not fit under the cap
  // (blocks of shapes no longer used, e.g. a warm-up's, make way for the current ones).
  void put(void* p, size_t size) {
    std::vector<std::pair<size_t, void*>> evicted;
    bool keep = size <= limit_;
    {
      std::lock_guard<std::mutex> lock(mu_);
      while (keep && cached_ + size > limit_ && !free_.empty()) {
        auto oldest = free_.begin();
        for (auto it = free_.begin(); it != free_.end(); ++it)
          if (it->second.stamp < oldest->second.stamp) oldest = it;
        evicted.emplace_back(oldest->first, oldest->second.ptr);
        cached_ -= oldest->first;
        free_.erase(oldest);
      }
      if (keep) {
        free_.emplace(size, Cached{p, ++clock_});
        cached_ += size;
      }
    }
    for (auto& [bytes, q] : evicted) munmap(q, bytes);
    if (!keep) munmap(p, size);
  }

  void release_all() {
    std::multimap<size_t, Cached> blocks;
    {
      std::lock_guard<std::mutex> lock(mu_);
      blocks.swap(free_);
      cached_ = 0;
    }
    for (auto& [size, c] : blocks) munmap(c.ptr, size);
  }

  struct Cached {
    void* ptr;
    uint64_t stamp;  // when it was cached: the oldest is given back first
  };

  c10::Allocator* base_;
  size_t limit_;
  std::mutex mu_;
  std::unordered_map<void*, size_t> live_;
  std::multimap<size_t, Cached> free_;
  size_t cached_ = 0;
  uint64_t clock_ = 0;
};

size_t default_limit() {
  const long pages = sysconf(_SC_PHYS_PAGES);
  const long page = sysconf(_SC_PAGE_SIZE);
  return pages > 0 && page > 0 ? size_t(pages) * size_t(page) / 4 : size_t(4) << 30;
}

// HHKIT_CPU_CACHE_MB: a whole number of MiB (0: cache nothing); anything else is reported and the default kept.
size_t cache_limit() {
  unsigned long long mib = 0;
  return env_mib("HHKIT_CPU_CACHE_MB", 1ULL << 40, &mib) ? size_t(mib) << 20 : default_limit();
}

}  // namespace

bool env_mib(const char* name, unsigned long long max_mib, unsigned long long* mib) {
  const char* s = std::getenv(name);
  if (s == nullptr || *s == '\0') return false;
  char* end = nullptr;
  errno = 0;
  const unsigned long long v = std::strtoull(s, &end, 10);
  if (*s == '-' || errno != 0 || *end != '\0' || v > max_mib) {
    std::fprintf(stderr, "hhkit: %s=%s is not a whole number of MiB; using the default\n", name, s);
    return false;
  }
  *mib = v;
  return true;
}

void install_large_block_cache() {
  // Once per process, though every Node environment (worker threads) loads the addon. Never destroyed:
  // tensors freed during exit still return their blocks to it.
  static std::once_flag once;
  std::call_once(once, [] {
    the_cache = new LargeBlockCache(c10::GetCPUAllocator(), cache_limit());
    c10::SetCPUAllocator(the_cache, /*priority=*/1);
  });
}

}  // namespace hhkit
