// hhkit native core: the handle table, argument readers and error conversion shared by every op.
//
// Tensors live in a per-thread table of at::Tensor slots; JavaScript holds the slot index (a plain number).
// A number costs nothing to create, unlike an ObjectWrap per result (~4.6 us per op measured), which keeps
// the per-op overhead near PyTorch's own. TypeScript frees slots deterministically (scopes, dispose) and a
// FinalizationRegistry is the safety net; napi_adjust_external_memory tells V8's GC what the slots hold.
#pragma once

#include <node_api.h>

#include <ATen/ATen.h>
#include <ATen/Config.h>
#include <c10/util/Exception.h>
#include <torch/version.h>

// libtorch's version at build time (1.13 from Debian, 2.x from a pip torch): some APIs moved between them.
#define HHKIT_TORCH_AT_LEAST(MAJOR, MINOR) \
  (TORCH_VERSION_MAJOR > (MAJOR) || (TORCH_VERSION_MAJOR == (MAJOR) && TORCH_VERSION_MINOR >= (MINOR)))

// Only where libtorch itself runs on OpenMP: then libgomp is loaded with it, and its thread count is torch's.
#if defined(_OPENMP) && AT_PARALLEL_OPENMP
#define HHKIT_TORCH_OPENMP 1
#include <omp.h>
#endif

#include <cstdint>
#include <string>
#include <vector>

namespace hhkit {

struct Slot {
  at::Tensor tensor;
  int64_t bytes = 0;  // what was reported to V8 for this slot
};

struct Table {
  std::vector<Slot> slots{1};  // slot 0 = "no tensor" (an undefined at::Tensor, e.g. a missing .grad)
  std::vector<uint32_t> free_list;
  int64_t live = 0;
  int64_t live_bytes = 0;
  int64_t tracked_bytes = 0;   // of slots big enough to matter to the GC (>= 4 KiB)
  int64_t reported_bytes = 0;  // what V8 has been told (tracked_bytes, updated in steps of kReportStep)
};

Table& table();

// Bytes of the tensor's storage; views share storage, so this over-reports for views: fine for GC pressure.
inline int64_t storage_bytes(const at::Tensor& t) {
  if (!t.defined() || !t.has_storage()) return 0;
  return static_cast<int64_t>(t.storage().nbytes());
}

uint32_t store(napi_env env, at::Tensor t);
void release(napi_env env, uint32_t id);

// While alive, ops on a small CPU tensor run on the calling thread: OpenMP's thread count for this thread
// is set to 1 (libtorch's parallel_for then runs inline) and restored after. Several of torch's CPU kernels
// split even a few rows over the threads (layer norm and index_select use grain 1), and waking an idle
// worker costs 20-30 us on this 2-core VM, more than the work of a decoding step's norm.
class SerialBelow {
 public:
  // Torch's usual grain: below it a CPU op is not worth a second thread.
  static constexpr int64_t kElements = 32768;
  // `work`: the elements the op touches (e.g. an embedding's output, not its weight).
  SerialBelow(const at::Tensor& x, int64_t work) {
#ifdef HHKIT_TORCH_OPENMP
    if (x.device().is_cpu() && work < kElements) {
      saved_ = omp_get_max_threads();
      if (saved_ > 1) omp_set_num_threads(1);
    }
#endif
  }
  ~SerialBelow() {
#ifdef HHKIT_TORCH_OPENMP
    if (saved_ > 1) omp_set_num_threads(saved_);
#endif
  }
  SerialBelow(const SerialBelow&) = delete;
  SerialBelow& operator=(const SerialBelow&) = delete;

 private:
  int saved_ = 0;
};

// Thrown by argument readers; converted to a JS TypeError/Error by the op guard.
struct ArgError {
  std::string message;
};

const char* dtype_name(at::ScalarType t);
at::ScalarType dtype_from_code(int32_t code);
int32_t dtype_code(at::ScalarType t);
std::string describe(const at::Tensor& t);

class Args {
 public:
  Args(napi_env env, napi_callback_info info, const char* op);
  napi_env env;
  const char* op;
  size_t argc = 0;
  napi_value argv[10];
  // (argument index, tensor) read so far, for error messages; a fixed array, since a heap-allocated vector
  // costs a malloc/free per op on the hot path.
  static constexpr size_t kMaxInputs = 16;
  std::pair<size_t, const at::Tensor*> inputs[kMaxInputs];
  size_t n_inputs = 0;
  void note_input(size_t i, const at::Tensor* t) {
    if (n_inputs < kMaxInputs) inputs[n_inputs++] = {i, t};
  }

  at::Tensor& t(size_t i);
  c10::optional<at::Tensor> opt_t(size_t i);  // 0 / undefined / null -> none
  double f(size_t i);
  // A JS number as a torch Scalar: integral values become integer Scalars so `intTensor.add(1)` stays int64,
  // as in PyTorch.
  at::Scalar s(size_t i);
  c10::optional<at::Scalar> opt_s(size_t i);
  int64_t i(size_t i);
  bool b(size_t i);
  bool is_nullish(size_t i);
  std::string str(size_t i);
  std::vector<int64_t> ints(size_t i);
  std::vector<at::Tensor> tensors(size_t i);
  at::ScalarType dtype(size_t i);
  at::TensorOptions options(size_t dtype_i, size_t device_i);

  napi_value ret(at::Tensor t);
  napi_value ret_pair(const std::tuple<at::Tensor, at::Tensor>& pair);
  napi_value ret_list(const std::vector<at::Tensor>& list);
  napi_value ret_num(double v);
  napi_value ret_int(int64_t v);
  napi_value ret_bool(bool v);
  napi_value ret_undefined();
  napi_value ret_ints(c10::IntArrayRef v);
  napi_value ret_str(const std::string& s);

  [[noreturn]] void fail(const std::string& msg) const { throw ArgError{msg}; }
};

void throw_error(napi_env env, const char* op, const std::string& what,
                 const std::pair<size_t, const at::Tensor*>* inputs, size_t n_inputs,
                 const char* code);

// Wraps an op body: torch's c10::Error (shape/dtype/device mismatches) and argument errors become JS Errors
// naming the op and its inputs, never an abort of the process.
#define HHKIT_OP(NAME, ...)                                                                      \
  static napi_value op_##NAME(napi_env env, napi_callback_info info) {                            \
    ::hhkit::Args a(env, info, #NAME);                                                            \
    try {                                                                                         \
      __VA_ARGS__                                                                                 \
    } catch (const ::hhkit::ArgError& e) {                                                        \
      ::hhkit::throw_error(env, #NAME, e.message, a.inputs, a.n_inputs, "HHKIT_ARGUMENT");        \
    } catch (const c10::Error& e) {                                                               \
      ::hhkit::throw_error(env, #NAME, e.what_without_backtrace(), a.inputs, a.n_inputs,          \
                           "HHKIT_TORCH");                                                        \
    } catch (const std::exception& e) {                                                           \
      ::hhkit::throw_error(env, #NAME, e.what(), a.inputs, a.n_inputs, "HHKIT_TORCH");            \
    }                                                                                             \
    return nullptr;                                                                               \
  }

// alloc.cc: the environment variable `name` as a whole number of MiB ≤ max_mib into *mib; false when it is
// unset or empty, and when it is anything else, which is reported on stderr (the caller keeps its default).
bool env_mib(const char* name, unsigned long long max_mib, unsigned long long* mib);

// ops_gemm.cc: linear() without autograd for few CPU float32 rows, the weight kept packed between calls;
// none when the call is not one it takes (at::linear then does it).
c10::optional<at::Tensor> packed_linear(const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b);

struct OpEntry {
  const char* name;
  napi_callback fn;
};

// Each ops_*.cc file contributes a table of entries; init registers them all on the module.
void register_ops(napi_env env, napi_value exports, const OpEntry* entries, size_t count);

}  // namespace hhkit
