// Unity build, part 2 of 2: see unity_ops.cc. The vectorised kernels (the longest to compile), the
// distributed backend and the allocator.
#include "ops_fused.cc"
#include "dist.cc"
#include "alloc.cc"
