// Creation, inspection, conversion, memory and runtime settings (threads, seeds, devices).
#include <dlfcn.h>
#include <link.h>

#include <cstring>

#include "core.h"

#ifdef HHKIT_CUDA
#include <c10/cuda/CUDAFunctions.h>
#endif

#include <ATen/Parallel.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <torch/version.h>

namespace hhkit {

// ---- creation ----
HHKIT_OP(empty, { return a.ret(at::empty(a.ints(0), a.options(1, 2))); })
HHKIT_OP(zeros, { return a.ret(at::zeros(a.ints(0), a.options(1, 2))); })
HHKIT_OP(ones, { return a.ret(at::ones(a.ints(0), a.options(1, 2))); })
HHKIT_OP(full, { return a.ret(at::full(a.ints(0), a.f(1), a.options(2, 3))); })
HHKIT_OP(arange, { return a.ret(at::arange(a.f(0), a.f(1), a.f(2), a.options(3, 4))); })
HHKIT_OP(linspace, { return a.ret(at::linspace(a.f(0), a.f(1), a.i(2), a.options(3, 4))); })
HHKIT_OP(eye, { return a.ret(at::eye(a.i(0), a.options(1, 2))); })
HHKIT_OP(randn, { return a.ret(at::randn(a.ints(0), a.options(1, 2))); })
HHKIT_OP(rand, { return a.ret(at::rand(a.ints(0), a.options(1, 2))); })
HHKIT_OP(randint, { return a.ret(at::randint(a.i(0), a.i(1), a.ints(2), a.options(3, 4))); })
HHKIT_OP(randperm, { return a.ret(at::randperm(a.i(0), a.options(1, 2))); })
HHKIT_OP(zeros_like, { return a.ret(at::zeros_like(a.t(0))); })
HHKIT_OP(ones_like, { return a.ret(at::ones_like(a.t(0))); })
HHKIT_OP(full_like, { return a.ret(at::full_like(a.t(0), a.f(1))); })
HHKIT_OP(randn_like, { return a.ret(at::randn_like(a.t(0))); })
HHKIT_OP(rand_like, { return a.ret(at::rand_like(a.t(0))); })
HHKIT_OP(bernoulli, { return a.ret(at::bernoulli(a.t(0))); })
HHKIT_OP(multinomial, { return a.ret(at::multinomial(a.t(0), a.i(1), a.b(2))); })

// from_buffer(typedArray, dtypeCode, shape): copies the bytes into a new CPU tensor.
HHKIT_OP(from_buffer, {
  bool is_typed = false;
  napi_is_typedarray(env, a.argv[0], &is_typed);
  void* data = nullptr;
  size_t byte_length = 0;
  if (is_typed) {
    napi_typedarray_type type;
    size_t length, offset;
    napi_value ab;
    napi_get_typedarray_info(env, a.argv[0], &type, &length, &data, &ab, &offset);
    size_t elem = 1;
    switch (type) {
      case napi_int16_array: case napi_uint16_array: elem = 2; break;
      case napi_int32_array: case napi_uint32_array: case napi_float32_array: elem = 4; break;
      case napi_float64_array: case napi_bigint64_array: case napi_biguint64_array: elem = 8; break;
      default: elem = 1;
    }
    byte_length = length * elem;
  } else {
    bool is_ab = false;
    napi_is_arraybuffer(env, a.argv[0], &is_ab);
    if (!is_ab) a.fail("argument 0: expected a TypedArray or ArrayBuffer");
    napi_get_arraybuffer_info(env, a.argv[0], &data, &byte_length);
  }
  at::Tensor t = at::empty(a.ints(2), at::TensorOptions().dtype(a.dtype(1)));
  size_t want = t.numel() * t.element_size();
  if (want != byte_length) {
    a.fail("buffer has " + std::to_string(byte_length) + " bytes but shape and dtype need " + std::to_string(want));
  }
  if (want) std::memcpy(t.data_ptr(), data, want);
  return a.ret(t);
})

// to_buffer(t): the tensor's bytes (CPU, contiguous) as a new ArrayBuffer.
HHKIT_OP(to_buffer, {
  at::Tensor t = a.t(0).detach().to(at::kCPU).contiguous();
  size_t n = t.numel() * t.element_size();
  void* out = nullptr;
  napi_value ab;
  napi_create_arraybuffer(env, n, &out, &ab);
  if (n) std::memcpy(out, t.data_ptr(), n);
  return ab;
})

// ---- inspection ----
HHKIT_OP(shape, { return a.ret_ints(a.t(0).sizes()); })
HHKIT_OP(strides, { return a.ret_ints(a.t(0).strides()); })
HHKIT_OP(dtype, { return a.ret_int(dtype_code(a.t(0).scalar_type())); })
HHKIT_OP(device, { return a.ret_str(a.t(0).device().str()); })
HHKIT_OP(numel, { return a.ret_int(a.t(0).numel()); })
HHKIT_OP(ndim, { return a.ret_int(a.t(0).dim()); })
HHKIT_OP(is_contiguous, { return a.ret_bool(a.t(0).is_contiguous()); })
HHKIT_OP(item, { return a.ret_num(a.t(0).item<double>()); })
HHKIT_OP(describe, { return a.ret_str(describe(a.t(0))); })
HHKIT_OP(same_storage, {
  const at::Tensor& x = a.t(0);
  const at::Tensor& y = a.t(1);
  return a.ret_bool(x.has_storage() && y.has_storage() && x.storage().is_alias_of(y.storage()));
})

// ---- conversion ----
HHKIT_OP(to_dtype, { return a.ret(a.t(0).to(a.dtype(1))); })
HHKIT_OP(to_device, { return a.ret(a.t(0).to(c10::Device(a.str(1)))); })
HHKIT_OP(clone, { return a.ret(a.t(0).clone()); })
HHKIT_OP(contiguous, { return a.ret(a.t(0).contiguous()); })
HHKIT_OP(detach, { return a.ret(a.t(0).detach()); })
HHKIT_OP(alias, { return a.ret(a.t(0)); })  // a second handle to the same tensor (shares everything)

// ---- memory ----
HHKIT_OP(free, {
  uint32_t id = 0;
  napi_get_value_uint32(env, a.argv[0], &id);
  release(env, id);
  return a.ret_undefined();
})
HHKIT_OP(free_many, {
  uint32_t n = 0;
  napi_get_array_length(env, a.argv[0], &n);
  for (uint32_t k = 0; k < n; k++) {
    napi_value e;
    uint32_t id = 0;
    napi_get_element(env, a.argv[0], k, &e);
    napi_get_value_uint32(env, e, &id);
    release(env, id);
  }
  return a.ret_undefined();
})
HHKIT_OP(live_tensors, { return a.ret_int(table().live); })
HHKIT_OP(live_bytes, { return a.ret_int(table().live_bytes); })

// ---- runtime ----
static int find_openblas(struct dl_phdr_info* info, size_t, void* out) {
  if (info->dlpi_name && std::strstr(info->dlpi_name, "openblas")) {
    void* h = dlopen(info->dlpi_name, RTLD_NOLOAD | RTLD_LAZY);
    if (h) {
      void* fn = dlsym(h, "openblas_set_num_threads");
      if (fn) {
        *static_cast<void**>(out) = fn;
        return 1;
      }
    }
  }
  return 0;
}

// OpenBLAS keeps its own thread pool that at::set_num_threads does not reach; set both.
HHKIT_OP(set_num_threads, {
  int64_t n = a.i(0);
  at::set_num_threads(static_cast<int>(n));
  void* fn = nullptr;
  dl_iterate_phdr(find_openblas, &fn);
  if (fn) reinterpret_cast<void (*)(int)>(fn)(static_cast<int>(n));
  return a.ret_bool(fn != nullptr);
})
HHKIT_OP(get_num_threads, { return a.ret_int(at::get_num_threads()); })
HHKIT_OP(manual_seed, {
  at::manual_seed(static_cast<uint64_t>(a.i(0)));
  return a.ret_undefined();
})
static at::Generator generator_for(Args& a, size_t i) {
  if (a.is_nullish(i)) return at::detail::getDefaultCPUGenerator();
  c10::Device d(a.str(i));
  if (d.is_cpu()) return at::detail::getDefaultCPUGenerator();
  return at::globalContext().defaultGenerator(d);
}
// The generator state as a uint8 tensor, for bit-exact resume.
HHKIT_OP(get_rng_state, {
  at::Generator g = generator_for(a, 0);
  std::lock_guard<std::mutex> lock(g.mutex());
  return a.ret(g.get_state());
})
HHKIT_OP(set_rng_state, {
  at::Tensor state = a.t(0);
  at::Generator g = generator_for(a, 1);
  std::lock_guard<std::mutex> lock(g.mutex());
  g.set_state(state);
  return a.ret_undefined();
})
HHKIT_OP(cuda_available, { return a.ret_bool(at::hasCUDA()); })
HHKIT_OP(cuda_device_count, { return a.ret_int(at::detail::getCUDAHooks().getNumGPUs()); })
HHKIT_OP(cuda_synchronize, {
#ifdef HHKIT_CUDA
  c10::cuda::device_synchronize();
#endif
  return a.ret_undefined();
})
HHKIT_OP(torch_version, { return a.ret_str(TORCH_VERSION); })
HHKIT_OP(built_with_cuda, {
#ifdef HHKIT_CUDA
  return a.ret_bool(true);
#else
  return a.ret_bool(false);
#endif
})

static const OpEntry kTensorOps[] = {
    {"empty", op_empty}, {"zeros", op_zeros}, {"ones", op_ones}, {"full", op_full}, {"arange", op_arange},
    {"linspace", op_linspace}, {"eye", op_eye}, {"randn", op_randn}, {"rand", op_rand}, {"randint", op_randint},
    {"randperm", op_randperm}, {"zeros_like", op_zeros_like}, {"ones_like", op_ones_like},
    {"full_like", op_full_like}, {"randn_like", op_randn_like}, {"rand_like", op_rand_like},
    {"bernoulli", op_bernoulli}, {"multinomial", op_multinomial}, {"from_buffer", op_from_buffer},
    {"to_buffer", op_to_buffer}, {"shape", op_shape}, {"strides", op_strides}, {"dtype", op_dtype},
    {"device", op_device}, {"numel", op_numel}, {"ndim", op_ndim}, {"is_contiguous", op_is_contiguous},
    {"item", op_item}, {"describe", op_describe}, {"same_storage", op_same_storage}, {"to_dtype", op_to_dtype},
    {"to_device", op_to_device}, {"clone", op_clone}, {"contiguous", op_contiguous}, {"detach", op_detach},
    {"alias", op_alias}, {"free", op_free}, {"free_many", op_free_many}, {"live_tensors", op_live_tensors},
    {"live_bytes", op_live_bytes}, {"set_num_threads", op_set_num_threads},
    {"get_num_threads", op_get_num_threads}, {"manual_seed", op_manual_seed},
    {"get_rng_state", op_get_rng_state}, {"set_rng_state", op_set_rng_state},
    {"cuda_available", op_cuda_available}, {"cuda_device_count", op_cuda_device_count},
    {"cuda_synchronize", op_cuda_synchronize}, {"torch_version", op_torch_version},
    {"built_with_cuda", op_built_with_cuda},
};

void init_tensor_ops(napi_env env, napi_value exports) {
  register_ops(env, exports, kTensorOps, sizeof(kTensorOps) / sizeof(kTensorOps[0]));
}

}  // namespace hhkit
