// Unity build, part 1 of 2 (binding.gyp compiles only the two unity_*.cc files). Nine of the ten sources
// include core.h and so parse <ATen/ATen.h>, ~6.5 s of g++ each before any code of ours: ~58 of the ~85 CPU
// seconds the ten units took to compile. Two units parse it twice: on this 2-core machine the addon built
// in 26 s instead of 57 (45 CPU seconds instead of 104, linking included), which leaves more of the cores
// to `npm ci` compiling SQLite beside it on a fresh clone.
// The sources share one translation unit per part, so their file-local names (statics, anonymous
// namespaces, macros) must not collide from file to file: each file's op table is k<File>Ops, and
// ops_fused.cc #undefs its fallback macros at its end.
// Balanced by compile time with unity_kernels.cc: ~20 s each.
#include "core.cc"
#include "ops_tensor.cc"
#include "ops_shape.cc"
#include "ops_math.cc"
#include "ops_nn.cc"
#include "ops_gemm.cc"
#include "addon.cc"
