// Unity build, part 1 of 2 (binding.gyp compiles only the two unity_*.cc files). Every source parses
// <ATen/ATen.h> through core.h, ~6.5 s of g++ per translation unit before any code of ours; ten units spent
// ~55 of the build's ~85 CPU seconds there. Two units parse it twice: the addon builds in ~20 s on two
// cores instead of ~58, and beside `npm ci` compiling SQLite it no longer competes for both cores.
// The sources share one translation unit per part, so their file-local names (statics, anonymous
// namespaces) must differ from file to file: each file's op table is k<File>Ops.
// Balanced by compile time with unity_kernels.cc: ~20 s each.
#include "core.cc"
#include "ops_tensor.cc"
#include "ops_shape.cc"
#include "ops_math.cc"
#include "ops_nn.cc"
#include "ops_gemm.cc"
#include "addon.cc"
