// Caching device allocator.
// - Small requests (<= 1 MiB) come from a cache of exact-size blocks (512-byte granules).
// - Large requests are carved from segments (one cudaMalloc each): best fit over the free blocks of all segments,
//   a block bigger than the request is split, and a freed block merges with its free neighbours in the segment, so
//   activations of changing sizes reuse the same memory instead of piling up one cached block per size.
// - Optional hard budget over the bytes held from the driver (segments + small blocks): at the cap only as many
//   wholly free segments as the request needs go back to the driver (largest first), then the request fails with an
//   out-of-memory error that names the budget.
// The driver calls (devMalloc/devFree/devSync) are declared here and defined in allocator_cuda.cpp, so the logic can
// be unit-tested on the CPU with a fake device (test/native/allocator_test.cpp).
#pragma once
#include <cstddef>
#include <map>
#include <set>
#include <string>
#include <unordered_map>

struct OomError {
  std::string message;
  size_t requested;
  bool budget;
};

/** Driver memory: false when the driver has no memory left. */
bool devMalloc(void** p, size_t bytes);
void devFree(void* p);
/** Waits for queued device work (a cached block may still be read by it before it goes back to the driver). */
void devSync();
/** Free and total device memory, for error messages. */
void devMemInfo(size_t* freeBytes, size_t* totalBytes);

class CachingAllocator {
 public:
  void* alloc(size_t bytes);  // throws OomError
  void free(void* p);
  /** Returns every wholly free segment and every cached small block to the driver. */
  void emptyCache();
  void setBudget(size_t bytes) { budget_ = bytes; }
  size_t budget() const { return budget_; }
  size_t allocated() const { return allocated_; }
  size_t reserved() const { return reserved_; }
  size_t peakAllocated() const { return peakAllocated_; }
  size_t peakReserved() const { return peakReserved_; }
  size_t liveBlocks() const { return live_.size(); }
  size_t cachedBlocks() const { return smallFree_.size() + largeFree_.size(); }
  size_t driverAllocs() const { return driverAllocs_; }
  size_t segments() const { return segments_.size(); }
  void resetPeak() { peakAllocated_ = allocated_, peakReserved_ = reserved_; }

 private:
  struct Block {
    char* ptr;
    size_t size;
    char* segment;  // base of the owning segment (nullptr: a small block)
    bool free;
  };
  void* allocLarge(size_t size);
  void* allocSmall(size_t size);
  void* fromDriver(size_t size);  // within the budget (releasing idle segments first); throws OomError
  char* newSegment(size_t size);  // throws OomError
  bool releaseFreeSegments(size_t needed);  // frees wholly free segments until `needed` bytes fit the budget
  void freeLarge(std::map<char*, Block>::iterator it);
  [[noreturn]] void oom(size_t size, bool budget);

  // large blocks of every segment, by address (neighbours are adjacent entries of the same segment)
  std::map<char*, Block> blocks_;
  std::set<std::pair<size_t, char*>> largeFree_;  // (size, ptr) of free large blocks: best fit = lower_bound
  std::map<char*, size_t> segments_;  // base -> size
  std::multimap<size_t, void*> smallFree_;
  std::unordered_map<void*, size_t> live_;  // live block -> its size (small and large)
  size_t allocated_ = 0, reserved_ = 0, peakAllocated_ = 0, peakReserved_ = 0, budget_ = 0, driverAllocs_ = 0;
};
