// Module entry: registers every op table on the addon's exports.
#include <malloc.h>

#include <cstdlib>
#include <cstring>

#include "core.h"

namespace hhkit {
void init_tensor_ops(napi_env env, napi_value exports);
void init_shape_ops(napi_env env, napi_value exports);
void init_math_ops(napi_env env, napi_value exports);
void init_nn_ops(napi_env env, napi_value exports);
void init_fused_ops(napi_env env, napi_value exports);
void init_gemm_ops(napi_env env, napi_value exports);
void init_dist_ops(napi_env env, napi_value exports);
void install_large_block_cache();
}  // namespace hhkit

// glibc returns freed memory to the kernel eagerly: blocks above its mmap threshold are unmapped on free,
// and the heap top is trimmed past 128 KiB. A training step frees and reallocates the same activation and
// gradient buffers every step, so each step pays for fresh pages (page faults, munmap, and zeroing by the
// kernel). Keeping freed memory in the process (a fixed 32 MiB mmap threshold, the most glibc allows, and no
// trimming) measured +15-24 % tokens/s on pretraining and halved system time. Blocks of 32 MiB and more,
// which glibc would still map and unmap on every use, go to a cache of their own (alloc.cc).
// HHKIT_MALLOC=system keeps glibc's defaults and libtorch's allocator (e.g. for a long-lived process that
// must give memory back).
static void retain_freed_memory() {
  const char* mode = std::getenv("HHKIT_MALLOC");
  if (mode && std::strcmp(mode, "system") == 0) return;
#if defined(__GLIBC__)
  mallopt(M_MMAP_THRESHOLD, 32 * 1024 * 1024);
  mallopt(M_TRIM_THRESHOLD, 1 << 30);
  mallopt(M_TOP_PAD, 64 * 1024 * 1024);
#endif
  hhkit::install_large_block_cache();
}

static napi_value Init(napi_env env, napi_value exports) {
  retain_freed_memory();
  hhkit::init_tensor_ops(env, exports);
  hhkit::init_shape_ops(env, exports);
  hhkit::init_math_ops(env, exports);
  hhkit::init_nn_ops(env, exports);
  hhkit::init_fused_ops(env, exports);
  hhkit::init_gemm_ops(env, exports);
  hhkit::init_dist_ops(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
