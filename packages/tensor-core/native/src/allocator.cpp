#include "allocator.h"
#include <cuda_runtime.h>
#include <cstdio>

static size_t roundSize(size_t b) {
  if (b <= (1u << 20)) return (b + 511) & ~size_t(511);  // small: 512 B granules
  return (b + (size_t(1) << 17) - 1) & ~((size_t(1) << 17) - 1);  // large: 128 KiB granules
}
static std::string gib(size_t b) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.2f GiB", b / 1073741824.0);
  return buf;
}

void* CachingAllocator::alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  const size_t size = roundSize(bytes);
  // best fit among cached blocks, accepting up to 1/8 (min 1 MiB for large, 2x for small) of slack
  auto it = free_.lower_bound(size);
  const size_t slack = size <= (1u << 20) ? size : (size / 8 > (1u << 20) ? size / 8 : (1u << 20));
  if (it != free_.end() && it->first <= size + slack) {
    void* p = it->second;
    size_t bsize = it->first;
    free_.erase(it);
    live_[p] = bsize;
    allocated_ += bsize;
    if (allocated_ > peakAllocated_) peakAllocated_ = allocated_;
    return p;
  }
  if (budget_ && reserved_ + size > budget_) emptyCache();
  if (budget_ && reserved_ + size > budget_) {
    throw OomError{"CUDA out of memory under the VRAM budget: allocating " + gib(size) + " with " + gib(allocated_) + " in use would exceed the budget of " +
                       gib(budget_) + " (FRAMEPACK_VRAM_BUDGET / setVramBudget). Free tensors (dispose/tidy), lower the resolution, or raise the budget.",
                   size, true};
  }
  void* p = nullptr;
  cudaError_t e = cudaMalloc(&p, size);
  if (e != cudaSuccess) {
    cudaGetLastError();
    emptyCache();
    e = cudaMalloc(&p, size);
  }
  if (e != cudaSuccess) {
    cudaGetLastError();
    size_t freeB = 0, total = 0;
    cudaMemGetInfo(&freeB, &total);
    throw OomError{"CUDA out of memory: allocating " + gib(size) + " failed with " + gib(allocated_) + " in use by tensors, " + gib(freeB) + " free of " + gib(total) +
                       " on the device. Free tensors (dispose/tidy), lower the resolution, or use the low-VRAM mode.",
                   size, false};
  }
  driverAllocs_++;
  live_[p] = size;
  allocated_ += size;
  reserved_ += size;
  if (allocated_ > peakAllocated_) peakAllocated_ = allocated_;
  if (reserved_ > peakReserved_) peakReserved_ = reserved_;
  return p;
}

void CachingAllocator::free(void* p) {
  if (!p) return;
  auto it = live_.find(p);
  if (it == live_.end()) return;
  allocated_ -= it->second;
  free_.emplace(it->second, p);
  live_.erase(it);
}

void CachingAllocator::emptyCache() {
  if (free_.empty()) return;
  cudaDeviceSynchronize();  // a cached block may still be read by queued work
  for (auto& kv : free_) {
    cudaFree(kv.second);
    reserved_ -= kv.first;
  }
  free_.clear();
}
