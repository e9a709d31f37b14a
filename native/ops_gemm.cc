// linear() without autograd on CPU float32 (decoding steps, prefill, reference and value passes, scoring)
// with the weight kept packed between calls.
//
// at::linear reaches BLAS's sgemm, which packs the weight into its own panel layout on every call. With few
// rows (a decoding step multiplies B rows by each weight) that packing is a pass over the whole weight for
// little arithmetic. Here the weight is packed once into panels of NR output columns, [panel][k][NR], and
// kept in a cache until the weight changes; each call then streams the panels through a register-blocked
// kernel: MR rows × NR columns of accumulators, one broadcast of x and NR/lanes loads of the panel per k.
// Rows go in blocks whose slice of x stays in L2; (row block, panel) tasks are split between threads.
// Measured on one core of this machine's Zen 5 (M 32, K 512, N 1536): 190–205 GFLOP/s, against OpenBLAS's
// 121 with its AVX-512 kernels and 52–79 with OPENBLAS_CORETYPE=Haswell (as this machine's environment
// sets); with 2048 rows OpenBLAS's AVX-512 kernels and this one are level (~190).
//
// The cache is keyed by the weight's storage, offset, sizes and strides (GPT-2's Conv1D passes a transposed
// view, a new TensorImpl on every call) and validated by the version counter, which every in-place op, the
// optimisers included (adamw_step bumps it), increments and views share; a weak reference to the storage
// keeps its address from being reused by another tensor while the entry lives. Entries whose storage has died
// are dropped whenever a weight is packed; a weight that would take the cache over its budget
// (HHKIT_PACKED_LINEAR_MB, default 1024) is left to at::linear. Not covered: two tensors that share storage
// but not a version counter (`.set_()`, `.data`, `unsafe_split`, `from_blob` aliases) — a write through one
// leaves the other's copy stale. hhkit's API makes none (detach() shares the counter; from_buffer copies).
//
// Taken only when nothing needs a gradient, outside autocast, with x and the weight CPU float32, at most
// kMaxRows rows and at least 16 columns, on a CPU with AVX2+FMA or AVX-512F; everything else
// goes to at::linear. The sums run in another order than sgemm's, so results differ from it by float32
// rounding (~1e-6 relative). HHKIT_PACKED_LINEAR=0 at start, or set_packed_linear(false), turns it off.
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#if defined(__x86_64__)
#include <immintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cstdlib>
#include <cstring>
#include <mutex>
#include <unordered_map>

#include "core.h"

namespace hhkit {

namespace {

constexpr int64_t kMaxRows = 16384;

#if defined(__x86_64__)
const bool kHasAvx512 = __builtin_cpu_supports("avx512f");
const bool kHasAvx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
const bool kHasAvx512 = false;
const bool kHasAvx2 = false;
#endif
// HHKIT_PACKED_LINEAR_ISA=avx2 takes the AVX2 kernel on an AVX-512 CPU (for its tests).
const bool kUseAvx512 = kHasAvx512 && [] {
  const char* s = std::getenv("HHKIT_PACKED_LINEAR_ISA");
  return !(s && std::string(s) == "avx2");
}();
// Columns per panel: two vectors of lanes.
const int64_t kNr = kUseAvx512 ? 32 : 16;

std::atomic<bool> g_enabled{[] {
  const char* s = std::getenv("HHKIT_PACKED_LINEAR");
  return !(s && std::string(s) == "0");
}()};
// HHKIT_PACKED_LINEAR_MB: a whole number of MiB (0: pack nothing); anything else is reported and 1024 kept.
int64_t budget_bytes() {
  static const int64_t b = [] {
    unsigned long long mib = 1024;
    env_mib("HHKIT_PACKED_LINEAR_MB", 1ULL << 30, &mib);
    return static_cast<int64_t>(mib) << 20;
  }();
  return b;
}

// ---- kernels: y[MR rows, ncols ≤ NR] = x[MR rows] · panel (+ bias) ----
#if defined(__x86_64__)
template <int MR>
__attribute__((target("avx512f"))) void micro_avx512(const float* x, int64_t ldx, const float* panel, int64_t K,
                                                     const float* bias, float* y, int64_t ldy, int64_t ncols) {
  __mmask16 m0 = ncols >= 16 ? 0xFFFF : static_cast<__mmask16>((1u << ncols) - 1);
  int64_t c1 = ncols - 16;
  __mmask16 m1 = c1 >= 16 ? 0xFFFF : c1 <= 0 ? 0 : static_cast<__mmask16>((1u << c1) - 1);
  __m512 b0 = bias ? _mm512_maskz_loadu_ps(m0, bias) : _mm512_setzero_ps();
  __m512 b1 = bias ? _mm512_maskz_loadu_ps(m1, bias + 16) : _mm512_setzero_ps();
  __m512 acc0[MR], acc1[MR];
  for (int r = 0; r < MR; ++r) acc0[r] = b0, acc1[r] = b1;
  for (int64_t k = 0; k < K; ++k) {
    __m512 w0 = _mm512_loadu_ps(panel + k * 32);
    __m512 w1 = _mm512_loadu_ps(panel + k * 32 + 16);
#pragma GCC unroll 16
    for (int r = 0; r < MR; ++r) {
      __m512 a = _mm512_set1_ps(x[r * ldx + k]);
      acc0[r] = _mm512_fmadd_ps(a, w0, acc0[r]);
      acc1[r] = _mm512_fmadd_ps(a, w1, acc1[r]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    _mm512_mask_storeu_ps(y + r * ldy, m0, acc0[r]);
    _mm512_mask_storeu_ps(y + r * ldy + 16, m1, acc1[r]);
  }
}

template <int MR>
__attribute__((target("avx2,fma"))) void micro_avx2(const float* x, int64_t ldx, const float* panel, int64_t K,
                                                    const float* bias, float* y, int64_t ldy, int64_t ncols) {
  __m256 acc0[MR], acc1[MR];
  float bb[16] = {0};
  if (bias)
    for (int64_t j = 0; j < ncols; ++j) bb[j] = bias[j];
  for (int r = 0; r < MR; ++r) acc0[r] = _mm256_loadu_ps(bb), acc1[r] = _mm256_loadu_ps(bb + 8);
  for (int64_t k = 0; k < K; ++k) {
    __m256 w0 = _mm256_loadu_ps(panel + k * 16);
    __m256 w1 = _mm256_loadu_ps(panel + k * 16 + 8);
#pragma GCC unroll 8
    for (int r = 0; r < MR; ++r) {
      __m256 a = _mm256_broadcast_ss(x + r * ldx + k);
      acc0[r] = _mm256_fmadd_ps(a, w0, acc0[r]);
      acc1[r] = _mm256_fmadd_ps(a, w1, acc1[r]);
    }
  }
  for (int r = 0; r < MR; ++r) {
    if (ncols == 16) {
      _mm256_storeu_ps(y + r * ldy, acc0[r]);
      _mm256_storeu_ps(y + r * ldy + 8, acc1[r]);
    } else {
      float out[16];
      _mm256_storeu_ps(out, acc0[r]);
      _mm256_storeu_ps(out + 8, acc1[r]);
      for (int64_t j = 0; j < ncols; ++j) y[r * ldy + j] = out[j];
    }
  }
}
#endif

// Every row of x against one panel, in blocks of as many rows as the registers hold.
void panel_rows(const float* x, int64_t M, int64_t K, const float* panel, const float* bias, float* y, int64_t N,
                int64_t ncols) {
#if defined(__x86_64__)
  int64_t m = 0;
  if (kUseAvx512) {
    for (; m + 12 <= M; m += 12) micro_avx512<12>(x + m * K, K, panel, K, bias, y + m * N, N, ncols);
    for (; m + 4 <= M; m += 4) micro_avx512<4>(x + m * K, K, panel, K, bias, y + m * N, N, ncols);
    for (; m < M; ++m) micro_avx512<1>(x + m * K, K, panel, K, bias, y + m * N, N, ncols);
  } else {
    for (; m + 6 <= M; m += 6) micro_avx2<6>(x + m * K, K, panel, K, bias, y + m * N, N, ncols);
    for (; m + 2 <= M; m += 2) micro_avx2<2>(x + m * K, K, panel, K, bias, y + m * N, N, ncols);
    for (; m < M; ++m) micro_avx2<1>(x + m * K, K, panel, K, bias, y + m * N, N, ncols);
  }
#endif
}

// w (N, K) with any strides → panels [ceil(N/NR)][K][NR], columns past N zero.
at::Tensor pack_weight(const at::Tensor& w) {
  const int64_t N = w.size(0), K = w.size(1), nr = kNr, P = (N + nr - 1) / nr;
  at::Tensor packed = at::zeros({P, K, nr}, w.options());
  const float* src = w.data_ptr<float>();
  float* dst = packed.data_ptr<float>();
  const int64_t sn = w.stride(0), sk = w.stride(1);
  at::parallel_for(0, P, 1, [&](int64_t p0, int64_t p1) {
    for (int64_t p = p0; p < p1; ++p) {
      float* pd = dst + p * K * nr;
      const int64_t n0 = p * nr, nc = std::min(nr, N - n0);
      if (sn == 1) {  // the transposed view of a (K, N) weight (GPT-2's Conv1D): rows of the panel are contiguous
        for (int64_t k = 0; k < K; ++k) std::memcpy(pd + k * nr, src + k * sk + n0, nc * sizeof(float));
      } else {
        for (int64_t j = 0; j < nc; ++j) {
          const float* s = src + (n0 + j) * sn;
          for (int64_t k = 0; k < K; ++k) pd[k * nr + j] = s[k * sk];
        }
      }
    }
  });
  return packed;
}

struct Key {
  const void* storage;
  int64_t offset, n, k, sn, sk;
  bool operator==(const Key& o) const {
    return storage == o.storage && offset == o.offset && n == o.n && k == o.k && sn == o.sn && sk == o.sk;
  }
};
struct KeyHash {
  size_t operator()(const Key& key) const {
    size_t h = std::hash<const void*>()(key.storage);
    for (int64_t v : {key.offset, key.n, key.k, key.sn, key.sk}) h = h * 1000003u ^ std::hash<int64_t>()(v);
    return h;
  }
};
struct Entry {
  c10::weak_intrusive_ptr<c10::StorageImpl> storage;
  const void* data;
  int64_t version;
  at::Tensor packed;
  int64_t bytes;
};

std::mutex g_mutex;
std::unordered_map<Key, Entry, KeyHash> g_cache;
int64_t g_bytes = 0;

void drop_dead_entries() {
  for (auto it = g_cache.begin(); it != g_cache.end();) {
    if (it->second.storage.expired()) {
      g_bytes -= it->second.bytes;
      it = g_cache.erase(it);
    } else {
      ++it;
    }
  }
}

// The packed panels for w, packing (again) when missing or stale; undefined when over the budget.
at::Tensor packed_for(const at::Tensor& w) {
  const c10::Storage& storage = w.storage();
  Key key{storage.unsafeGetStorageImpl(), w.storage_offset(), w.size(0), w.size(1), w.stride(0), w.stride(1)};
  const int64_t version = w._version();
  std::lock_guard<std::mutex> lock(g_mutex);
  auto it = g_cache.find(key);
  if (it != g_cache.end()) {
    Entry& e = it->second;
    if (!e.storage.expired() && e.data == storage.data() && e.version == version) return e.packed;
    g_bytes -= e.bytes;
    g_cache.erase(it);
  }
  const int64_t bytes = ((w.size(0) + kNr - 1) / kNr) * kNr * w.size(1) * static_cast<int64_t>(sizeof(float));
  drop_dead_entries();  // the copies of freed weights go as soon as another weight is packed
  if (g_bytes + bytes > budget_bytes()) return at::Tensor();
  at::Tensor packed = pack_weight(w);
  g_cache.emplace(key, Entry{storage.getWeakStorageImpl(), storage.data(), version, packed, bytes});
  g_bytes += bytes;
  return packed;
}

}  // namespace

c10::optional<at::Tensor> packed_linear(const at::Tensor& x, const at::Tensor& w, const c10::optional<at::Tensor>& b) {
  if (!g_enabled.load(std::memory_order_relaxed) || !(kHasAvx512 || kHasAvx2)) return c10::nullopt;
  if (x.layout() != at::kStrided || w.layout() != at::kStrided || (b && b->defined() && b->layout() != at::kStrided))
    return c10::nullopt;
  if (x.scalar_type() != at::kFloat || w.scalar_type() != at::kFloat || !x.device().is_cpu() ||
      !w.device().is_cpu() || w.dim() != 2 || x.dim() < 1 || x.size(-1) != w.size(1) || w.size(0) < 16 ||
      w.size(1) == 0 || w.is_inference() || x.is_inference())
    return c10::nullopt;
  const bool bias = b && b->defined();
  if (bias && (b->scalar_type() != at::kFloat || !b->device().is_cpu() || b->dim() != 1 || b->size(0) != w.size(0) ||
               b->is_inference()))
    return c10::nullopt;
#if HHKIT_TORCH_AT_LEAST(2, 4)
  if (at::autocast::is_autocast_enabled(at::kCPU)) return c10::nullopt;
#else
  if (at::autocast::is_cpu_enabled()) return c10::nullopt;
#endif
  if (at::GradMode::is_enabled() && (x.requires_grad() || w.requires_grad() || (bias && b->requires_grad())))
    return c10::nullopt;
  const int64_t K = w.size(1), N = w.size(0), M = x.numel() / K;
  if (M == 0 || M > kMaxRows) return c10::nullopt;
  at::Tensor packed = packed_for(w);
  if (!packed.defined()) return c10::nullopt;

  at::Tensor xc = x.reshape({M, K}).contiguous();
  at::Tensor bc = bias ? b->contiguous() : at::Tensor();
  std::vector<int64_t> out_sizes(x.sizes().begin(), x.sizes().end());
  out_sizes.back() = N;
  at::Tensor y = at::empty({M, N}, x.options());
  const float* xp = xc.data_ptr<float>();
  const float* pp = packed.data_ptr<float>();
  const float* bp = bias ? bc.data_ptr<float>() : nullptr;
  float* yp = y.data_ptr<float>();
  const int64_t P = packed.size(0);
  // Rows in blocks whose slice of x stays in L2 (~192 KiB) while the panels stream past it; tasks are
  // (row block, panel) pairs, a thread taking consecutive panels of a block.
  const int64_t rows = std::min(M, std::clamp<int64_t>((192 << 10) / (K * 4) / 12 * 12, 12, 240));
  const int64_t blocks = (M + rows - 1) / rows;
  // A task of at least ~1M multiply-adds (~10 µs on one core): waking the other threads costs about that, so
  // the tiny models' products stay on the calling thread.
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 20) / std::max<int64_t>(1, rows * K * kNr));
  at::parallel_for(0, blocks * P, grain, [&](int64_t t0, int64_t t1) {
    for (int64_t t = t0; t < t1; ++t) {
      const int64_t m0 = (t / P) * rows, p = t % P, n0 = p * kNr;
      panel_rows(xp + m0 * K, std::min(rows, M - m0), K, pp + p * K * kNr, bp ? bp + n0 : nullptr,
                 yp + m0 * N + n0, N, std::min(kNr, N - n0));
    }
  });
  return y.view(out_sizes);
}

namespace {

// set_packed_linear(on): turns the path on or off; packed_linear_stats(): [entries, bytes, budget bytes,
// columns per panel (32 AVX-512, 16 AVX2, 0 none)].
HHKIT_OP(set_packed_linear, {
  g_enabled = a.b(0);
  if (!g_enabled) {
    std::lock_guard<std::mutex> lock(g_mutex);
    g_cache.clear();
    g_bytes = 0;
  }
  return a.ret_undefined();
})
HHKIT_OP(packed_linear_stats, {
  std::lock_guard<std::mutex> lock(g_mutex);
  drop_dead_entries();
  const int64_t columns = kHasAvx512 || kHasAvx2 ? kNr : 0;
  return a.ret_ints({static_cast<int64_t>(g_cache.size()), g_bytes, budget_bytes(), columns});
})

const OpEntry kGemmOps[] = {
    {"set_packed_linear", op_set_packed_linear},
    {"packed_linear_stats", op_packed_linear_stats},
};

}  // namespace

void init_gemm_ops(napi_env env, napi_value exports) {
  register_ops(env, exports, kGemmOps, sizeof(kGemmOps) / sizeof(kGemmOps[0]));
}

}  // namespace hhkit
