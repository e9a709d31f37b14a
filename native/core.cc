#include "core.h"

#include <algorithm>
#include <cmath>
#include <sstream>

namespace hhkit {

// One table per JS thread (main thread and each worker_thread have their own).
Table& table() {
  thread_local Table t;
  return t;
}

// V8 hears about tensor memory in steps of 128 MiB, not per tensor: tidy()-scoped code allocates and frees
// hundreds of MiB per training step, and reporting each change made V8 run a mark-compact every few tens of
// milliseconds with concurrent marking threads (~10% of a core, measured), to collect nothing. Unscoped
// tensors still grow the reported amount and get collected, one step later at most.
static constexpr int64_t kReportStep = int64_t{128} << 20;

static void report(napi_env env, Table& tb) {
  const int64_t delta = tb.tracked_bytes - tb.reported_bytes;
  if (delta >= kReportStep || delta <= -kReportStep) {
    int64_t ignored;
    napi_adjust_external_memory(env, delta, &ignored);
    tb.reported_bytes = tb.tracked_bytes;
  }
}

uint32_t store(napi_env env, at::Tensor t) {
  if (!t.defined()) return 0;
  Table& tb = table();
  uint32_t id;
  if (!tb.free_list.empty()) {
    id = tb.free_list.back();
    tb.free_list.pop_back();
  } else {
    id = static_cast<uint32_t>(tb.slots.size());
    tb.slots.emplace_back();
  }
  Slot& s = tb.slots[id];
  s.bytes = storage_bytes(t);
  s.tensor = std::move(t);
  tb.live++;
  tb.live_bytes += s.bytes;
  if (s.bytes >= 4096) {
    tb.tracked_bytes += s.bytes;
    report(env, tb);
  }
  return id;
}

void release(napi_env env, uint32_t id) {
  Table& tb = table();
  if (id == 0 || id >= tb.slots.size() || !tb.slots[id].tensor.defined()) return;
  Slot& s = tb.slots[id];
  s.tensor.reset();
  tb.live--;
  tb.live_bytes -= s.bytes;
  if (s.bytes >= 4096) {
    tb.tracked_bytes -= s.bytes;
    report(env, tb);
  }
  s.bytes = 0;
  tb.free_list.push_back(id);
}

// Codes shared with src/engine/dtype.ts.
static const at::ScalarType kDtypes[] = {
    at::kFloat, at::kDouble, at::kHalf, at::kBFloat16, at::kLong, at::kInt, at::kBool, at::kByte, at::kChar,
};
static const char* kDtypeNames[] = {
    "float32", "float64", "float16", "bfloat16", "int64", "int32", "bool", "uint8", "int8",
};

at::ScalarType dtype_from_code(int32_t code) {
  if (code < 0 || code >= static_cast<int32_t>(sizeof(kDtypes) / sizeof(kDtypes[0]))) {
    throw ArgError{"unknown dtype code " + std::to_string(code)};
  }
  return kDtypes[code];
}

int32_t dtype_code(at::ScalarType t) {
  for (size_t i = 0; i < sizeof(kDtypes) / sizeof(kDtypes[0]); i++) {
    if (kDtypes[i] == t) return static_cast<int32_t>(i);
  }
  return -1;
}

const char* dtype_name(at::ScalarType t) {
  int32_t c = dtype_code(t);
  return c >= 0 ? kDtypeNames[c] : c10::toString(t);
}

std::string describe(const at::Tensor& t) {
  if (!t.defined()) return "undefined";
  std::ostringstream os;
  os << dtype_name(t.scalar_type()) << "[";
  for (int64_t d = 0; d < t.dim(); d++) os << (d ? "," : "") << t.size(d);
  os << "]";
  if (!t.device().is_cpu()) os << " " << t.device().str();
  return os.str();
}

Args::Args(napi_env env_, napi_callback_info info, const char* op_) : env(env_), op(op_) {
  argc = 10;
  napi_get_cb_info(env, info, &argc, argv, nullptr, nullptr);
}

static std::string arg_name(size_t i) { return "argument " + std::to_string(i); }

at::Tensor& Args::t(size_t i) {
  uint32_t id = 0;
  if (i >= argc || napi_get_value_uint32(env, argv[i], &id) != napi_ok) fail(arg_name(i) + ": expected a tensor");
  Table& tb = table();
  if (id == 0 || id >= tb.slots.size() || !tb.slots[id].tensor.defined()) {
    fail(arg_name(i) + ": the tensor was already disposed (or belongs to another thread)");
  }
  at::Tensor& ref = tb.slots[id].tensor;
  note_input(i, &ref);
  return ref;
}

bool Args::is_nullish(size_t i) {
  if (i >= argc) return true;
  napi_valuetype type;
  napi_typeof(env, argv[i], &type);
  return type == napi_undefined || type == napi_null;
}

c10::optional<at::Tensor> Args::opt_t(size_t i) {
  if (is_nullish(i)) return c10::nullopt;
  uint32_t id = 0;
  napi_get_value_uint32(env, argv[i], &id);
  if (id == 0) return c10::nullopt;
  return t(i);
}

double Args::f(size_t i) {
  double v;
  if (i >= argc || napi_get_value_double(env, argv[i], &v) != napi_ok) fail(arg_name(i) + ": expected a number");
  return v;
}

at::Scalar Args::s(size_t i) {
  double v = f(i);
  if (std::nearbyint(v) == v && std::fabs(v) < 9007199254740992.0) return at::Scalar(static_cast<int64_t>(v));
  return at::Scalar(v);
}

c10::optional<at::Scalar> Args::opt_s(size_t i) {
  if (is_nullish(i)) return c10::nullopt;
  return s(i);
}

int64_t Args::i(size_t idx) {
  int64_t v;
  if (idx >= argc || napi_get_value_int64(env, argv[idx], &v) != napi_ok) {
    fail(arg_name(idx) + ": expected an integer");
  }
  return v;
}

bool Args::b(size_t i) {
  bool v;
  if (i >= argc || napi_get_value_bool(env, argv[i], &v) != napi_ok) fail(arg_name(i) + ": expected a boolean");
  return v;
}

std::string Args::str(size_t i) {
  size_t len = 0;
  if (i >= argc || napi_get_value_string_utf8(env, argv[i], nullptr, 0, &len) != napi_ok) {
    fail(arg_name(i) + ": expected a string");
  }
  std::string s(len, '\0');
  napi_get_value_string_utf8(env, argv[i], s.data(), len + 1, &len);
  return s;
}

std::vector<int64_t> Args::ints(size_t i) {
  std::vector<int64_t> out;
  if (i >= argc) fail(arg_name(i) + ": expected an array of integers");
  bool is_array = false;
  napi_is_array(env, argv[i], &is_array);
  if (!is_array) {
    out.push_back(this->i(i));
    return out;
  }
  uint32_t n = 0;
  napi_get_array_length(env, argv[i], &n);
  out.resize(n);
  for (uint32_t k = 0; k < n; k++) {
    napi_value e;
    napi_get_element(env, argv[i], k, &e);
    if (napi_get_value_int64(env, e, &out[k]) != napi_ok) fail(arg_name(i) + ": expected an array of integers");
  }
  return out;
}

std::vector<at::Tensor> Args::tensors(size_t i) {
  std::vector<at::Tensor> out;
  bool is_array = false;
  if (i >= argc || napi_is_array(env, argv[i], &is_array) != napi_ok || !is_array) {
    fail(arg_name(i) + ": expected an array of tensors");
  }
  uint32_t n = 0;
  napi_get_array_length(env, argv[i], &n);
  Table& tb = table();
  out.reserve(n);
  for (uint32_t k = 0; k < n; k++) {
    napi_value e;
    uint32_t id = 0;
    napi_get_element(env, argv[i], k, &e);
    if (napi_get_value_uint32(env, e, &id) != napi_ok || id == 0 || id >= tb.slots.size() ||
        !tb.slots[id].tensor.defined()) {
      fail(arg_name(i) + ": element " + std::to_string(k) + " is not a live tensor");
    }
    out.push_back(tb.slots[id].tensor);
    note_input(i, &tb.slots[id].tensor);
  }
  return out;
}

at::ScalarType Args::dtype(size_t i) { return dtype_from_code(static_cast<int32_t>(this->i(i))); }

at::TensorOptions Args::options(size_t dtype_i, size_t device_i) {
  at::TensorOptions o = at::TensorOptions().dtype(dtype(dtype_i));
  if (!is_nullish(device_i)) o = o.device(c10::Device(str(device_i)));
  return o;
}

napi_value Args::ret(at::Tensor t) {
  napi_value v;
  napi_create_uint32(env, store(env, std::move(t)), &v);
  return v;
}

napi_value Args::ret_pair(const std::tuple<at::Tensor, at::Tensor>& pair) {
  napi_value arr, a0, a1;
  napi_create_array_with_length(env, 2, &arr);
  napi_create_uint32(env, store(env, std::get<0>(pair)), &a0);
  napi_create_uint32(env, store(env, std::get<1>(pair)), &a1);
  napi_set_element(env, arr, 0, a0);
  napi_set_element(env, arr, 1, a1);
  return arr;
}

napi_value Args::ret_list(const std::vector<at::Tensor>& list) {
  napi_value arr;
  napi_create_array_with_length(env, list.size(), &arr);
  for (size_t k = 0; k < list.size(); k++) {
    napi_value e;
    napi_create_uint32(env, store(env, list[k]), &e);
    napi_set_element(env, arr, static_cast<uint32_t>(k), e);
  }
  return arr;
}

napi_value Args::ret_num(double v) {
  napi_value r;
  napi_create_double(env, v, &r);
  return r;
}

napi_value Args::ret_int(int64_t v) {
  napi_value r;
  napi_create_int64(env, v, &r);
  return r;
}

napi_value Args::ret_bool(bool v) {
  napi_value r;
  napi_get_boolean(env, v, &r);
  return r;
}

napi_value Args::ret_undefined() {
  napi_value r;
  napi_get_undefined(env, &r);
  return r;
}

napi_value Args::ret_ints(c10::IntArrayRef v) {
  napi_value arr;
  napi_create_array_with_length(env, v.size(), &arr);
  for (size_t k = 0; k < v.size(); k++) {
    napi_value e;
    napi_create_int64(env, v[k], &e);
    napi_set_element(env, arr, static_cast<uint32_t>(k), e);
  }
  return arr;
}

napi_value Args::ret_str(const std::string& s) {
  napi_value r;
  napi_create_string_utf8(env, s.data(), s.size(), &r);
  return r;
}

void throw_error(napi_env env, const char* op, const std::string& what,
                 const std::pair<size_t, const at::Tensor*>* given, size_t n_inputs, const char* code) {
  // C++ evaluates call arguments in any order; list inputs in argument order.
  std::vector<std::pair<size_t, const at::Tensor*>> inputs(given, given + n_inputs);
  std::stable_sort(inputs.begin(), inputs.end(), [](auto& x, auto& y) { return x.first < y.first; });
  std::ostringstream os;
  // torch messages can be multi-line; the first line says what went wrong.
  std::string first = what.substr(0, what.find('\n'));
  os << op << ": " << first;
  if (!inputs.empty()) {
    os << " (inputs: ";
    for (size_t k = 0; k < inputs.size(); k++) os << (k ? ", " : "") << describe(*inputs[k].second);
    os << ")";
  }
  napi_value msg, code_v, err;
  std::string text = os.str();
  napi_create_string_utf8(env, text.data(), text.size(), &msg);
  napi_create_string_utf8(env, code, NAPI_AUTO_LENGTH, &code_v);
  napi_create_error(env, code_v, msg, &err);
  napi_throw(env, err);
}

void register_ops(napi_env env, napi_value exports, const OpEntry* entries, size_t count) {
  for (size_t k = 0; k < count; k++) {
    napi_value fn;
    napi_create_function(env, entries[k].name, NAPI_AUTO_LENGTH, entries[k].fn, nullptr, &fn);
    napi_set_named_property(env, exports, entries[k].name, fn);
  }
}

}  // namespace hhkit
