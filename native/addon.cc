// Module entry: registers every op table on the addon's exports.
#include "core.h"

namespace hhkit {
void init_tensor_ops(napi_env env, napi_value exports);
void init_shape_ops(napi_env env, napi_value exports);
void init_math_ops(napi_env env, napi_value exports);
void init_nn_ops(napi_env env, napi_value exports);
void init_dist_ops(napi_env env, napi_value exports);
}  // namespace hhkit

static napi_value Init(napi_env env, napi_value exports) {
  hhkit::init_tensor_ops(env, exports);
  hhkit::init_shape_ops(env, exports);
  hhkit::init_math_ops(env, exports);
  hhkit::init_nn_ops(env, exports);
  hhkit::init_dist_ops(env, exports);
  return exports;
}

NAPI_MODULE(NODE_GYP_MODULE_NAME, Init)
