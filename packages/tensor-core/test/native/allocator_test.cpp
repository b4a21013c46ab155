// Unit test of the caching allocator's logic (native/src/allocator.cpp) on the CPU: the driver is a fake with a
// fixed capacity and increasing addresses. Built and run by test/native-allocator.test.ts with the host compiler.
#include <cstdio>
#include <cstdlib>
#include <set>
#include <vector>
#include "../../native/src/allocator.h"

static size_t g_capacity = size_t(1) << 40, g_used = 0, g_syncs = 0;
static char* g_next = reinterpret_cast<char*>(size_t(1) << 32);
static std::set<std::pair<char*, size_t>> g_live;
bool devMalloc(void** p, size_t bytes) {
  if (g_used + bytes > g_capacity) return false;
  *p = g_next;
  g_live.insert({g_next, bytes});
  g_next += bytes + (size_t(1) << 21);  // a gap: segments are never adjacent, as on the real driver
  g_used += bytes;
  return true;
}
void devFree(void* p) {
  auto it = g_live.lower_bound({static_cast<char*>(p), 0});
  if (it == g_live.end() || it->first != p) {
    fprintf(stderr, "FAIL: devFree of a pointer the driver did not hand out\n");
    exit(1);
  }
  g_used -= it->second;
  g_live.erase(it);
}
void devSync() { g_syncs++; }
void devMemInfo(size_t* f, size_t* t) { *f = g_capacity - g_used, *t = g_capacity; }

static int failures = 0;
#define CHECK(c)                                                   \
  do {                                                             \
    if (!(c)) {                                                    \
      fprintf(stderr, "FAIL line %d: %s\n", __LINE__, #c);         \
      failures++;                                                  \
    }                                                              \
  } while (0)
constexpr size_t MiB = size_t(1) << 20;

int main() {
  {  // reuse, split, merge
    CachingAllocator a;
    void* p = a.alloc(100 * MiB);
    CHECK(a.driverAllocs() == 1 && a.allocated() == 100 * MiB && a.reserved() == 100 * MiB);
    a.free(p);
    CHECK(a.allocated() == 0 && a.reserved() == 100 * MiB);
    void* x = a.alloc(40 * MiB);
    void* y = a.alloc(50 * MiB);  // both carved from the cached 100 MiB segment
    CHECK(a.driverAllocs() == 1 && a.segments() == 1);
    CHECK(x == p && y == static_cast<char*>(p) + 40 * MiB);
    a.free(x);
    a.free(y);  // merges with the free left block and the free 10 MiB tail
    void* z = a.alloc(100 * MiB);
    CHECK(z == p && a.driverAllocs() == 1 && a.cachedBlocks() == 0);
    a.free(z);
    a.emptyCache();
    CHECK(a.reserved() == 0 && a.segments() == 0 && g_used == 0);
  }
  {  // activations of changing sizes reuse memory: the driver sees no new segments after the first pass
    CachingAllocator a;
    const size_t sizes[] = {37, 12, 80, 5, 64, 23, 91, 3};
    for (int pass = 0; pass < 6; pass++) {
      std::vector<void*> ps;
      for (size_t i = 0; i < 8; i++) {
        ps.push_back(a.alloc((sizes[(i + pass) % 8] + pass) * MiB));
        if (i % 3 == 2) a.free(ps[i - 1]), ps[i - 1] = nullptr;
      }
      for (void* q : ps) a.free(q);
    }
    CHECK(a.allocated() == 0);
    CHECK(a.reserved() <= a.peakAllocated() * 2);
    printf("varying sizes: peak live %.0f MiB, held %.0f MiB, %zu driver allocations\n", a.peakAllocated() / 1048576.0, a.reserved() / 1048576.0, a.driverAllocs());
    a.emptyCache();
    CHECK(g_used == 0);
  }
  {  // budget: at the cap only what the request needs goes back to the driver, largest idle segment first
    CachingAllocator a;
    a.setBudget(64 * MiB);
    void* s30 = a.alloc(30 * MiB);
    void* s20 = a.alloc(20 * MiB);  // no fit in the live 30: a second segment
    CHECK(a.segments() == 2);
    a.free(s30);
    a.free(s20);
    void* med = a.alloc(16 * MiB);  // fits the idle 20: split it, no driver call
    CHECK(a.driverAllocs() == 2 && med == s20);
    a.free(med);
    void* big = a.alloc(40 * MiB);  // no free block fits and 50 held + 40 > 64: only the idle 30 goes back
    CHECK(a.segments() == 2 && a.driverAllocs() == 3 && a.reserved() == 60 * MiB);
    a.free(big);
    void* big2 = a.alloc(44 * MiB);  // again: the idle 40 (largest) goes back, the 20 stays
    CHECK(a.reserved() == 64 * MiB && a.segments() == 2);
    CHECK(g_syncs >= 1);
    bool threw = false;
    try {
      a.alloc(30 * MiB);  // 44 live + 20 idle + 30 > 64 even after releasing the idle 20
    } catch (const OomError& e) {
      threw = e.budget;
    }
    CHECK(threw);
    CHECK(a.allocated() == 44 * MiB);
    a.free(big2);
    a.emptyCache();
    CHECK(g_used == 0);
  }
  {  // small blocks, unknown pointers, driver exhaustion
    CachingAllocator a;
    void* s = a.alloc(1000);
    CHECK(a.allocated() == 1024);
    a.free(s);
    void* s2 = a.alloc(900);
    CHECK(s2 == s && a.driverAllocs() == 1);
    a.free(reinterpret_cast<void*>(0x1234));  // ignored
    a.free(s2);
    g_capacity = g_used + 10 * MiB;  // 1 KiB cached + 10 MiB more
    void* l = a.alloc(8 * MiB);
    bool threw = false;
    try {
      a.alloc(8 * MiB);
    } catch (const OomError& e) {
      threw = !e.budget;
    }
    CHECK(threw);
    a.free(l);
    a.emptyCache();
    CHECK(g_used == 0);
  }
  if (failures) return 1;
  printf("allocator: all checks passed\n");
  return 0;
}
