// The allocator's driver calls on CUDA (allocator.h); the unit test links fakes instead.
#include <cuda_runtime.h>
#include "allocator.h"

bool devMalloc(void** p, size_t bytes) {
  if (cudaMalloc(p, bytes) == cudaSuccess) return true;
  cudaGetLastError();
  return false;
}
void devFree(void* p) { cudaFree(p); }
void devSync() { cudaDeviceSynchronize(); }
void devMemInfo(size_t* freeBytes, size_t* totalBytes) {
  *freeBytes = *totalBytes = 0;
  cudaMemGetInfo(freeBytes, totalBytes);
}
