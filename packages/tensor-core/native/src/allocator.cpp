#include "allocator.h"
#include <algorithm>
#include <cstdio>
#include <iterator>
#include <vector>

namespace {
constexpr size_t SMALL = size_t(1) << 20;        // requests up to 1 MiB: the small-block cache
constexpr size_t LARGE_GRANULE = size_t(1) << 17;  // 128 KiB
constexpr size_t SEGMENT_GRANULE = size_t(2) << 20;  // segments in 2 MiB steps
constexpr size_t MIN_SPLIT = size_t(1) << 20;      // keep the remainder of a split only when it is at least 1 MiB

size_t roundUp(size_t b, size_t g) { return (b + g - 1) / g * g; }
std::string gib(size_t b) {
  char buf[64];
  snprintf(buf, sizeof buf, "%.2f GiB", b / 1073741824.0);
  return buf;
}
}  // namespace

void CachingAllocator::oom(size_t size, bool budget) {
  if (budget)
    throw OomError{"CUDA out of memory under the VRAM budget: allocating " + gib(size) + " with " + gib(allocated_) + " in use would exceed the budget of " +
                       gib(budget_) + " (FRAMEPACK_VRAM_BUDGET / setVramBudget). Free tensors (dispose/tidy), lower the resolution, or raise the budget.",
                   size, true};
  size_t freeB = 0, total = 0;
  devMemInfo(&freeB, &total);
  throw OomError{"CUDA out of memory: allocating " + gib(size) + " failed with " + gib(allocated_) + " in use by tensors, " + gib(freeB) + " free of " + gib(total) +
                     " on the device. Free tensors (dispose/tidy), lower the resolution, or use the low-VRAM mode.",
                 size, false};
}

void* CachingAllocator::alloc(size_t bytes) {
  if (bytes == 0) return nullptr;
  void* p = bytes <= SMALL ? allocSmall((bytes + 511) & ~size_t(511)) : allocLarge(roundUp(bytes, LARGE_GRANULE));
  if (allocated_ > peakAllocated_) peakAllocated_ = allocated_;
  if (reserved_ > peakReserved_) peakReserved_ = reserved_;
  return p;
}

void* CachingAllocator::allocSmall(size_t size) {
  // best fit among cached small blocks, up to 2x the request
  auto it = smallFree_.lower_bound(size);
  if (it != smallFree_.end() && it->first <= 2 * size) {
    void* p = it->second;
    const size_t bsize = it->first;
    smallFree_.erase(it);
    live_[p] = bsize;
    allocated_ += bsize;
    return p;
  }
  void* p = fromDriver(size);
  live_[p] = size;
  allocated_ += size;
  return p;
}

void* CachingAllocator::fromDriver(size_t size) {
  if (budget_ && reserved_ + size > budget_ && !releaseFreeSegments(size)) oom(size, true);
  void* p = nullptr;
  if (!devMalloc(&p, size)) {
    emptyCache();
    if (!devMalloc(&p, size)) oom(size, false);
  }
  driverAllocs_++;
  reserved_ += size;
  return p;
}

void* CachingAllocator::allocLarge(size_t size) {
  auto fit = largeFree_.lower_bound({size, nullptr});
  char* base;
  if (fit != largeFree_.end()) {
    base = fit->second;
    largeFree_.erase(fit);
  } else {
    base = newSegment(roundUp(size, SEGMENT_GRANULE));
  }
  Block& b = blocks_.at(base);
  if (b.size - size >= MIN_SPLIT) {
    // split: the tail stays free (and merges with a free right neighbour, if any)
    char* rest = base + size;
    const size_t restSize = b.size - size;
    b.size = size;
    auto next = blocks_.find(rest + restSize);
    size_t merged = restSize;
    if (next != blocks_.end() && next->second.free && next->second.segment == b.segment) {
      merged += next->second.size;
      largeFree_.erase({next->second.size, next->first});
      blocks_.erase(next);
    }
    blocks_[rest] = Block{rest, merged, b.segment, true};
    largeFree_.insert({merged, rest});
  }
  b.free = false;
  live_[base] = b.size;
  allocated_ += b.size;
  return base;
}

char* CachingAllocator::newSegment(size_t size) {
  char* base = static_cast<char*>(fromDriver(size));
  segments_[base] = size;
  blocks_[base] = Block{base, size, base, true};
  return base;
}

bool CachingAllocator::releaseFreeSegments(size_t needed) {
  // wholly free segments (one free block spanning the segment), largest first, until the request fits
  std::vector<std::pair<size_t, char*>> idle;
  for (auto& [base, size] : segments_) {
    const Block& b = blocks_.at(base);
    if (b.free && b.size == size) idle.push_back({size, base});
  }
  std::sort(idle.rbegin(), idle.rend());
  bool synced = false;
  for (auto& [size, base] : idle) {
    if (reserved_ + needed <= budget_) break;
    if (!synced) devSync(), synced = true;
    largeFree_.erase({size, base});
    blocks_.erase(base);
    segments_.erase(base);
    devFree(base);
    reserved_ -= size;
  }
  // then cached small blocks
  for (auto it = smallFree_.begin(); reserved_ + needed > budget_ && it != smallFree_.end();) {
    if (!synced) devSync(), synced = true;
    devFree(it->second);
    reserved_ -= it->first;
    it = smallFree_.erase(it);
  }
  return reserved_ + needed <= budget_;
}

void CachingAllocator::free(void* p) {
  if (!p) return;
  auto lv = live_.find(p);
  if (lv == live_.end()) return;
  const size_t size = lv->second;
  allocated_ -= size;
  live_.erase(lv);
  auto it = blocks_.find(static_cast<char*>(p));
  if (it == blocks_.end()) smallFree_.emplace(size, p);
  else freeLarge(it);
}

void CachingAllocator::freeLarge(std::map<char*, Block>::iterator it) {
  Block b = it->second;
  b.free = true;
  // merge with the right neighbour
  auto next = std::next(it);
  if (next != blocks_.end() && next->second.free && next->second.segment == b.segment) {
    largeFree_.erase({next->second.size, next->first});
    b.size += next->second.size;
    blocks_.erase(next);
  }
  // and with the left one
  if (it != blocks_.begin()) {
    auto prev = std::prev(it);
    if (prev->second.free && prev->second.segment == b.segment) {
      largeFree_.erase({prev->second.size, prev->first});
      prev->second.size += b.size;
      blocks_.erase(it);
      largeFree_.insert({prev->second.size, prev->first});
      return;
    }
  }
  it->second = b;
  largeFree_.insert({b.size, b.ptr});
}

void CachingAllocator::emptyCache() {
  if (smallFree_.empty() && largeFree_.empty()) return;
  devSync();  // a cached block may still be read by queued work
  for (auto& kv : smallFree_) {
    devFree(kv.second);
    reserved_ -= kv.first;
  }
  smallFree_.clear();
  for (auto s = segments_.begin(); s != segments_.end();) {
    const Block& b = blocks_.at(s->first);
    if (b.free && b.size == s->second) {
      largeFree_.erase({b.size, b.ptr});
      blocks_.erase(s->first);
      devFree(s->first);
      reserved_ -= s->second;
      s = segments_.erase(s);
    } else {
      ++s;
    }
  }
}
