// Opening an NVIDIA library we have no headers or link-time dependency for (cuBLASLt, cuDNN): dlopen the first of a
// list of candidates that loads, then bind its functions by name.
#pragma once
#include <dlfcn.h>
#include <cstdlib>
#include <stdexcept>
#include <string>
#include <vector>

struct DynLib {
  void* handle = nullptr;
  std::string path;  // the candidate that loaded
  std::string tried;  // each failed candidate and dlerror(), each after `sep` (for the caller's message)
};

/**
 * Candidates in order: $envVar (a full path), `soname` (ld cache / LD_LIBRARY_PATH), $CUDA_HOME/lib64/soname,
 * /usr/local/cuda/lib64/soname, then `extra`.
 */
inline std::vector<std::string> libraryCandidates(const char* envVar, const std::string& soname, std::vector<std::string> extra) {
  std::vector<std::string> c;
  if (const char* e = getenv(envVar)) c.push_back(e);
  c.push_back(soname);
  if (const char* h = getenv("CUDA_HOME")) c.push_back(std::string(h) + "/lib64/" + soname);
  c.push_back("/usr/local/cuda/lib64/" + soname);
  for (auto& x : extra) c.push_back(std::move(x));
  return c;
}

/** The first candidate dlopen accepts (handle null when none did; `tried` says why for each). */
inline DynLib openFirst(const std::vector<std::string>& candidates, const char* sep) {
  DynLib lib;
  for (const auto& c : candidates) {
    lib.handle = dlopen(c.c_str(), RTLD_NOW | RTLD_LOCAL);
    if (lib.handle) {
      lib.path = c;
      return lib;
    }
    lib.tried += sep + c + ": " + dlerror();
  }
  return lib;
}

/** Bind `f` to the library's symbol `name`; throws naming the library (`what`, its path) and the missing symbol. */
template <typename F>
void bindSymbol(F& f, const DynLib& lib, const char* what, const char* name) {
  f = reinterpret_cast<F>(dlsym(lib.handle, name));
  if (!f) throw std::runtime_error(std::string(what) + " at " + lib.path + " lacks " + name);
}
