// Caching device allocator: freed blocks are kept and reused (best fit within a slack), cudaMalloc only on a miss.
// Optional hard budget over the bytes held from the driver (live + cached): over it, the cache is emptied first,
// then the request fails with an out-of-memory error that names the budget.
#pragma once
#include <cstddef>
#include <map>
#include <string>
#include <unordered_map>

struct OomError {
  std::string message;
  size_t requested;
  bool budget;
};

class CachingAllocator {
 public:
  void* alloc(size_t bytes);  // throws OomError
  void free(void* p);
  void emptyCache();
  void setBudget(size_t bytes) { budget_ = bytes; }
  size_t budget() const { return budget_; }
  size_t allocated() const { return allocated_; }
  size_t reserved() const { return reserved_; }
  size_t peakAllocated() const { return peakAllocated_; }
  size_t peakReserved() const { return peakReserved_; }
  size_t liveBlocks() const { return live_.size(); }
  size_t cachedBlocks() const { return free_.size(); }
  size_t driverAllocs() const { return driverAllocs_; }
  void resetPeak() { peakAllocated_ = allocated_, peakReserved_ = reserved_; }

 private:
  std::multimap<size_t, void*> free_;
  std::unordered_map<void*, size_t> live_;
  size_t allocated_ = 0, reserved_ = 0, peakAllocated_ = 0, peakReserved_ = 0, budget_ = 0, driverAllocs_ = 0;
};
