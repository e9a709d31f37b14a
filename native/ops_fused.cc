// Fused kernels for the decoding loop, where libtorch's general ops pay more in per-call overhead than in
// arithmetic: attention of a few new queries over the KV cache (torch 1.13's CPU bmm calls sgemm once per
// (batch, head): 256 calls for B 32 × 8 heads, ~0.5 ms per layer for 2.6 MFLOP), and drawing one token per
// row from a categorical distribution (torch's multinomial draws an exponential per vocabulary entry: one
// scalar log each, ~0.2 ms for 32 × 512). Both are CPU float32 only; the TypeScript side falls back to the
// general ops for anything else (GPU, other dtypes, autograd). at::parallel_for is inline: binding.gyp
// compiles with -fopenmp so its OpenMP loop is real, and the GOMP_* calls resolve at load to the libgomp
// that libtorch already brings (one thread pool with torch's); setup checks that with LD_BIND_NOW.
// Beside them, two kernels for elementwise work libtorch 1.13 does slowly on the CPU: AdamW's update in one pass
// over each parameter (adamw_step) and GPT-2's tanh GELU with its own backward (gelu_tanh); and attention over
// whole sequences with its own backward (seq_attention), for training, prefill and PM scoring.
#include <ATen/Parallel.h>
#include <ATen/core/grad_mode.h>
#include <torch/csrc/autograd/custom_function.h>

#include <cfloat>
#include <cmath>
#if defined(__x86_64__)
#include <immintrin.h>
#endif
#include <algorithm>
#include <initializer_list>
#include <vector>
#include <cstring>

#include "core.h"

namespace hhkit {

namespace {
// How many cache rows ahead the attention loops ask for K and V (a row of D = 64 floats is 256 bytes). In a 6×512
// decoding loop the kernel reads ~10 MB of K and V a layer from DRAM on one core (OpenBLAS's spinning worker
// holds the other), where the hardware prefetcher alone reached ~12 GB/s: 16 rows ahead took a call from 827-866
// to 682-711 us (24 rows: 732-759; 32: 759-781).
constexpr int64_t kPrefetchRows = 16;

// The inner loops over one head's D floats, written once over W-float vectors (GCC/Clang vector extensions)
// and compiled twice on x86-64: 8 floats (AVX2 + FMA) where the CPU has them, checked once at load, else 4
// (SSE2, every x86-64). Loads go through memcpy (no alignment assumed).
template <int W>
struct Lanes {
  typedef float type __attribute__((vector_size(W * sizeof(float))));
};

template <int W>
__attribute__((always_inline)) inline typename Lanes<W>::type load(const float* p) {
  typename Lanes<W>::type x;
  std::memcpy(&x, p, sizeof x);
  return x;
}

template <int W>
__attribute__((always_inline)) inline float lane_sum(typename Lanes<W>::type x) {
  float total = 0;
  for (int j = 0; j < W; j++) total += x[j];
  return total;
}

// scores[s] = scale · q · k_s for s < S (k rows `k_stride` floats apart), blocked ones set to -FLT_MAX (the
// manual path's mask value: a fully blocked row softmaxes to uniform, not NaN).
template <int W>
__attribute__((always_inline)) inline void scores_row_impl(const float* __restrict q, const float* __restrict k,
                                                           int64_t k_stride, int64_t S, int64_t D, float scale,
                                                           const bool* blocked, int64_t blocked_stride,
                                                           float* __restrict scores) {
  typedef typename Lanes<W>::type V;
  for (int64_t s = 0; s < S; s++) {
    if (blocked && blocked[s * blocked_stride]) {
      scores[s] = -FLT_MAX;
      continue;
    }
    const float* ks = k + s * k_stride;
    for (int64_t d = 0; d < D; d += 16) __builtin_prefetch(ks + kPrefetchRows * k_stride + d);  // a 64-byte line each
    V acc0 = {}, acc1 = {};
    int64_t d = 0;
    for (; d + 2 * W <= D; d += 2 * W) {
      acc0 += load<W>(q + d) * load<W>(ks + d);
      acc1 += load<W>(q + d + W) * load<W>(ks + d + W);
    }
    for (; d + W <= D; d += W) acc0 += load<W>(q + d) * load<W>(ks + d);
    float total = lane_sum<W>(acc0 + acc1);
    for (; d < D; d++) total += q[d] * ks[d];
    scores[s] = total * scale;
  }
}

// out = Σ_s p[s] · v_s over D floats, 4W columns at a time in four independent accumulators.
template <int W>
__attribute__((always_inline)) inline void weighted_sum_impl(const float* __restrict p, const float* __restrict v,
                                                             int64_t v_stride, int64_t S, int64_t D,
                                                             float* __restrict out) {
  typedef typename Lanes<W>::type V;
  int64_t d = 0;
  for (; d + 4 * W <= D; d += 4 * W) {
    V a0 = {}, a1 = {}, a2 = {}, a3 = {};
    for (int64_t s = 0; s < S; s++) {
      const float* vs = v + s * v_stride + d;
      __builtin_prefetch(vs + kPrefetchRows * v_stride);  // this block's 4W floats: one or two lines
      __builtin_prefetch(vs + kPrefetchRows * v_stride + 16);
      const float w = p[s];
      a0 += w * load<W>(vs);
      a1 += w * load<W>(vs + W);
      a2 += w * load<W>(vs + 2 * W);
      a3 += w * load<W>(vs + 3 * W);
    }
    std::memcpy(out + d, &a0, sizeof a0);
    std::memcpy(out + d + W, &a1, sizeof a1);
    std::memcpy(out + d + 2 * W, &a2, sizeof a2);
    std::memcpy(out + d + 3 * W, &a3, sizeof a3);
  }
  for (; d + W <= D; d += W) {
    V a0 = {};
    for (int64_t s = 0; s < S; s++) a0 += p[s] * load<W>(v + s * v_stride + d);
    std::memcpy(out + d, &a0, sizeof a0);
  }
  for (; d < D; d++) {
    float total = 0;
    for (int64_t s = 0; s < S; s++) total += p[s] * v[s * v_stride + d];
    out[d] = total;
  }
}

void scores_row_base(const float* q, const float* k, int64_t k_stride, int64_t S, int64_t D, float scale,
                     const bool* blocked, int64_t blocked_stride, float* scores) {
  scores_row_impl<4>(q, k, k_stride, S, D, scale, blocked, blocked_stride, scores);
}
void weighted_sum_base(const float* p, const float* v, int64_t v_stride, int64_t S, int64_t D, float* out) {
  weighted_sum_impl<4>(p, v, v_stride, S, D, out);
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) void scores_row_avx2(const float* q, const float* k, int64_t k_stride,
                                                          int64_t S, int64_t D, float scale, const bool* blocked,
                                                          int64_t blocked_stride, float* scores) {
  scores_row_impl<8>(q, k, k_stride, S, D, scale, blocked, blocked_stride, scores);
}
__attribute__((target("avx2,fma"))) void weighted_sum_avx2(const float* p, const float* v, int64_t v_stride,
                                                            int64_t S, int64_t D, float* out) {
  weighted_sum_impl<8>(p, v, v_stride, S, D, out);
}
const bool kAvx2 = __builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma");
#else
const bool kAvx2 = false;
#define scores_row_avx2 scores_row_base
#define weighted_sum_avx2 weighted_sum_base
#endif

void scores_row(const float* q, const float* k, int64_t k_stride, int64_t S, int64_t D, float scale,
                const bool* blocked, int64_t blocked_stride, float* scores) {
  (kAvx2 ? scores_row_avx2 : scores_row_base)(q, k, k_stride, S, D, scale, blocked, blocked_stride, scores);
}
void weighted_sum(const float* p, const float* v, int64_t v_stride, int64_t S, int64_t D, float* out) {
  (kAvx2 ? weighted_sum_avx2 : weighted_sum_base)(p, v, v_stride, S, D, out);
}

// ---- GPT-2's tanh GELU ("gelu_new") on CPU float32 ----
// 0.5·x·(1 + tanh(u)) with u = √(2/π)·(x + 0.044715·x³) equals x·σ(2u) = x / (1 + e^(−2u)): one exp and one
// division per element, vectorised below with a Cephes-style expf (round to a power of two, degree-6
// polynomial on the remainder: ≤ 2 ulp). libtorch 1.13 evaluates the tanh form with Sleef's 1-ulp tanhf, ~8
// cycles an element on one core (a 6×512 decoding step spent 1.5 ms of its ~20 in it, the tiny training bench's
// forward 0.78 ms of its ~12 ms step). Both forms round differently in the last bits; where torch's 1 + tanh(u) cancels
// (x < −4) this one is the more accurate. Infinities and NaN give what torch gives (gelu(−∞) = NaN,
// gelu(+∞) = +∞, gradient NaN at ±∞), with the same formula and no special case: e^(+∞) = +∞ gives σ = 0.
constexpr float kGeluK0 = 0.7978845608028654f;  // √(2/π)
constexpr float kGeluK1 = 0.044715f;

template <int W>
struct ILanes {
  typedef int32_t type __attribute__((vector_size(W * sizeof(int32_t))));
};

template <int W>
__attribute__((always_inline)) inline typename Lanes<W>::type splat(float c) {
  typename Lanes<W>::type v;
  for (int j = 0; j < W; j++) v[j] = c;
  return v;
}

// e^x per lane: +∞ above 88.72, 0 below −86.99 (where 2^n would be subnormal; e^x < 2.2e-38), NaN for NaN.
template <int W>
__attribute__((always_inline)) inline typename Lanes<W>::type exp_lanes(typename Lanes<W>::type x) {
  typedef typename Lanes<W>::type V;
  typedef typename ILanes<W>::type IV;
  const V hi = splat<W>(88.7228391f), lo = splat<W>(-87.3365447f);
  V c = x > hi ? hi : x;
  c = c < lo ? lo : c;
  const V magic = splat<W>(12582912.0f);  // 1.5·2²³: adding and subtracting it rounds to an integer
  const V n = (c * splat<W>(1.44269504088896341f) + magic) - magic;
  V r = c - n * splat<W>(0.693359375f);
  r = r - n * splat<W>(-2.12194440e-4f);
  V y = splat<W>(1.9875691500e-4f);
  y = y * r + splat<W>(1.3981999507e-3f);
  y = y * r + splat<W>(8.3334519073e-3f);
  y = y * r + splat<W>(4.1665795894e-2f);
  y = y * r + splat<W>(1.6666665459e-1f);
  y = y * r + splat<W>(5.0000001201e-1f);
  y = y * (r * r) + r + splat<W>(1.0f);
  // 2^n for n in [−126, 128]: 2^n = 2^(n−1)·2 keeps the exponent field in range at n = 128.
  const IV e = (__builtin_convertvector(n, IV) + 126) << 23;
  V two_n;
  std::memcpy(&two_n, &e, sizeof two_n);
  y = y * two_n * splat<W>(2.0f);
  y = x > hi ? splat<W>(INFINITY) : y;
  return x < lo ? splat<W>(0.0f) : y;
}

// σ(2u) = 1 / (1 + e^(−2u)) for GELU's u.
template <int W>
__attribute__((always_inline)) inline typename Lanes<W>::type gelu_gate(typename Lanes<W>::type x) {
  const typename Lanes<W>::type u = splat<W>(kGeluK0) * (x + splat<W>(kGeluK1) * x * x * x);
  return splat<W>(1.0f) / (splat<W>(1.0f) + exp_lanes<W>(splat<W>(-2.0f) * u));
}

// y = x·σ(2u)
template <int W>
__attribute__((always_inline)) inline void gelu_tanh_impl(const float* __restrict x, float* __restrict y, int64_t n) {
  typedef typename Lanes<W>::type V;
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    const V xv = load<W>(x + i);
    const V yv = xv * gelu_gate<W>(xv);
    std::memcpy(y + i, &yv, sizeof yv);
  }
  if (i < n) {  // the tail through the same lanes, padded with zeros
    float xt[W] = {}, yt[W];
    std::memcpy(xt, x + i, (n - i) * sizeof(float));
    const V xv = load<W>(xt);
    const V yv = xv * gelu_gate<W>(xv);
    std::memcpy(yt, &yv, sizeof yv);
    std::memcpy(y + i, yt, (n - i) * sizeof(float));
  }
}

// dx = g·(s + x·s·(1 − s)·2·√(2/π)·(1 + 3·0.044715·x²)), s = σ(2u)
template <int W>
__attribute__((always_inline)) inline typename Lanes<W>::type gelu_tanh_grad_lanes(typename Lanes<W>::type g,
                                                                                   typename Lanes<W>::type x) {
  typedef typename Lanes<W>::type V;
  const V s = gelu_gate<W>(x);
  const V du = splat<W>(2.0f * kGeluK0) * (splat<W>(1.0f) + splat<W>(3.0f * kGeluK1) * x * x);
  return g * (s + x * s * (splat<W>(1.0f) - s) * du);
}

template <int W>
__attribute__((always_inline)) inline void gelu_tanh_backward_impl(const float* __restrict g, const float* __restrict x,
                                                                   float* __restrict dx, int64_t n) {
  typedef typename Lanes<W>::type V;
  int64_t i = 0;
  for (; i + W <= n; i += W) {
    const V d = gelu_tanh_grad_lanes<W>(load<W>(g + i), load<W>(x + i));
    std::memcpy(dx + i, &d, sizeof d);
  }
  if (i < n) {
    float gt[W] = {}, xt[W] = {}, dt[W];
    std::memcpy(gt, g + i, (n - i) * sizeof(float));
    std::memcpy(xt, x + i, (n - i) * sizeof(float));
    const V d = gelu_tanh_grad_lanes<W>(load<W>(gt), load<W>(xt));
    std::memcpy(dt, &d, sizeof d);
    std::memcpy(dx + i, dt, (n - i) * sizeof(float));
  }
}

void gelu_tanh_base(const float* x, float* y, int64_t n) { gelu_tanh_impl<4>(x, y, n); }
void gelu_tanh_backward_base(const float* g, const float* x, float* dx, int64_t n) {
  gelu_tanh_backward_impl<4>(g, x, dx, n);
}
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) void gelu_tanh_avx2(const float* x, float* y, int64_t n) {
  gelu_tanh_impl<8>(x, y, n);
}
__attribute__((target("avx2,fma"))) void gelu_tanh_backward_avx2(const float* g, const float* x, float* dx,
                                                                  int64_t n) {
  gelu_tanh_backward_impl<8>(g, x, dx, n);
}
#else
#define gelu_tanh_avx2 gelu_tanh_base
#define gelu_tanh_backward_avx2 gelu_tanh_backward_base
#endif

// Elements per task: below it one thread does the whole tensor (waking the other costs more than the work).
constexpr int64_t kGeluGrain = int64_t{1} << 16;

at::Tensor gelu_tanh_forward_cpu(const at::Tensor& x_in) {
  const at::Tensor x = x_in.contiguous();
  at::Tensor y = at::empty_like(x, at::MemoryFormat::Contiguous);
  const float* xp = x.data_ptr<float>();
  float* yp = y.data_ptr<float>();
  at::parallel_for(0, x.numel(), kGeluGrain, [&](int64_t begin, int64_t end) {
    (kAvx2 ? gelu_tanh_avx2 : gelu_tanh_base)(xp + begin, yp + begin, end - begin);
  });
  return y;
}

at::Tensor gelu_tanh_backward_cpu(const at::Tensor& g_in, const at::Tensor& x_in) {
  const at::Tensor x = x_in.contiguous();
  const at::Tensor g = g_in.expand_as(x).contiguous();
  at::Tensor dx = at::empty_like(x, at::MemoryFormat::Contiguous);
  const float* gp = g.data_ptr<float>();
  const float* xp = x.data_ptr<float>();
  float* dp = dx.data_ptr<float>();
  at::parallel_for(0, x.numel(), kGeluGrain, [&](int64_t begin, int64_t end) {
    (kAvx2 ? gelu_tanh_backward_avx2 : gelu_tanh_backward_base)(gp + begin, xp + begin, dp + begin, end - begin);
  });
  return dx;
}

// The autograd node: saves x, and its backward runs the kernel above; when the backward itself is recorded
// (create_graph), it is written in ATen ops instead, so second derivatives work as they do for at::gelu.
struct GeluTanhFunction : public torch::autograd::Function<GeluTanhFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& x) {
    ctx->save_for_backward({x});
    return gelu_tanh_forward_cpu(x);
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const at::Tensor x = ctx->get_saved_variables()[0];
    const at::Tensor& g = grads[0];
    if (at::GradMode::is_enabled() && (g.requires_grad() || x.requires_grad())) {
      const at::Tensor s = at::sigmoid(2 * kGeluK0 * (x + kGeluK1 * x * x * x));
      const at::Tensor du = 2 * kGeluK0 * (1 + 3 * kGeluK1 * x * x);
      return {g * (s + x * s * (1 - s) * du)};
    }
    return {gelu_tanh_backward_cpu(g.to(at::kFloat), x)};
  }
};

at::Tensor rows_contiguous(const at::Tensor& t) {
  // k and v are usually views of the cache, (B, H_kv, S, D) narrowed on S: the kernel follows the strides of
  // the first three dimensions, so only a row of D must be contiguous; anything else is copied.
  return t.stride(3) == 1 ? t : t.contiguous();
}

// ---- attention over whole sequences (training, prefill, scoring), CPU float32, with its own backward ----
// softmax(scale · q·kᵀ, blocked pairs excluded)·v for q (B, H, T, D) and k, v (B, H, S, D), one task per
// (batch, head) or per query row, with the probabilities P (B, H, T, S) kept for the backward:
//   dV = Pᵀ·dO, dP = dO·Vᵀ, dS = scale · P ⊙ (dP − rowsum(P ⊙ dP)) (zero where blocked), dQ = dS·K, dK = dSᵀ·Q.
// libtorch 1.13 runs the same as two batched matmuls (one sgemm per (batch, head)), a scale, a masked_fill and
// a softmax, each a pass over (B, H, T, S) and each with its backward: 17 ms forward + backward for B 16 × 4
// heads × 128 × 32 on two threads. With `causal` (the mask is exactly the causal one of a fresh sequence), key
// s > t + S − T is blocked and never computed. Blocked scores behave as the manual path's float32-lowest fill:
// a fully blocked row (a padding query) attends uniformly to every key, and no gradient reaches its scores.

// How many keys row t of a causal (or not) attention looks at: t + S − T + 1 with `causal`, else S.
inline int64_t keys_of_row(bool causal, int64_t t, int64_t T, int64_t S) {
  return causal ? std::min(S, std::max<int64_t>(0, t + S - T + 1)) : S;
}

// p[0..n) = softmax(scores[0..n)) in place; returns false (p untouched) when every score is blocked (−FLT_MAX).
template <int W>
__attribute__((always_inline)) inline bool softmax_row_impl(float* __restrict p, int64_t n) {
  typedef typename Lanes<W>::type V;
  float mx = -FLT_MAX;
  for (int64_t s = 0; s < n; s++) mx = std::max(mx, p[s]);
  if (mx == -FLT_MAX) return false;
  const V m = splat<W>(mx);
  V acc = {};
  int64_t s = 0;
  for (; s + W <= n; s += W) {
    const V e = exp_lanes<W>(load<W>(p + s) - m);
    std::memcpy(p + s, &e, sizeof e);
    acc += e;
  }
  float total = lane_sum<W>(acc);
  for (; s < n; s++) total += (p[s] = std::exp(p[s] - mx));
  const float inv = 1.0f / total;
  for (int64_t j = 0; j < n; j++) p[j] *= inv;
  return true;
}

// acc[0..D) += w · x[0..D)
template <int W>
__attribute__((always_inline)) inline void axpy_impl(float w, const float* __restrict x, float* __restrict acc,
                                                     int64_t D) {
  typedef typename Lanes<W>::type V;
  int64_t d = 0;
  for (; d + W <= D; d += W) {
    const V r = load<W>(acc + d) + w * load<W>(x + d);
    std::memcpy(acc + d, &r, sizeof r);
  }
  for (; d < D; d++) acc[d] += w * x[d];
}

// out[s] = scale · Σ_d q[d]·kt[d·ld + s] for s < n, with kᵀ laid out (D, ld): the lanes run over keys, so a head
// of D = 16 or 32 costs no horizontal sum per key (scores_row's layout) — weighted_sum over kᵀ's rows, weighted
// by q; blocked ones set to −FLT_MAX.
template <int W>
__attribute__((always_inline)) inline void scores_transposed_impl(const float* __restrict q, const float* __restrict kt,
                                                                  int64_t ld, int64_t n, int64_t D, float scale,
                                                                  const bool* blocked, int64_t blocked_stride,
                                                                  float* __restrict out) {
  weighted_sum_impl<W>(q, kt, ld, D, n, out);
  for (int64_t j = 0; j < n; j++) out[j] = (blocked && blocked[j * blocked_stride]) ? -FLT_MAX : out[j] * scale;
}

// xt (D, S) = x (S, D)ᵀ
inline void transpose_rows(const float* __restrict x, int64_t S, int64_t D, float* __restrict xt) {
  for (int64_t s = 0; s < S; s++)
    for (int64_t d = 0; d < D; d++) xt[d * S + s] = x[s * D + d];
}

struct SeqAttentionShape {
  int64_t B, H, T, S, D;
  bool causal;
  float scale;
  const bool* blocked;  // expanded to (B, H, T, S) with these strides, or null
  int64_t mb, mh, mt, ms;
  const bool* row_blocked(int64_t b, int64_t h, int64_t t) const {
    return blocked ? blocked + b * mb + h * mh + t * mt : nullptr;
  }
};

// Rows [begin, end) of the flattened (B, H, T): P's rows and the output's.
template <int W>
__attribute__((always_inline)) inline void seq_attention_rows_impl(const SeqAttentionShape& sh, const float* q,
                                                                   const float* k, const float* v, float* p,
                                                                   float* out, float* kt, int64_t begin,
                                                                   int64_t end) {
  const int64_t T = sh.T, S = sh.S, D = sh.D;
  int64_t transposed = -1;  // the (batch, head) whose kᵀ is in kt
  for (int64_t i = begin; i < end; i++) {
    const int64_t bh = i / T, t = i % T;
    const int64_t n = keys_of_row(sh.causal, t, T, S);
    float* pr = p + i * S;
    if (bh != transposed) transpose_rows(k + bh * S * D, S, D, kt), transposed = bh;
    scores_transposed_impl<W>(q + i * D, kt, S, n, D, sh.scale, sh.row_blocked(bh / sh.H, bh % sh.H, t), sh.ms, pr);
    float* o = out + i * D;
    if (softmax_row_impl<W>(pr, n)) {
      for (int64_t s = n; s < S; s++) pr[s] = 0.0f;
      weighted_sum_impl<W>(pr, v + bh * S * D, D, n, D, o);
    } else {  // every key blocked: uniform over all S, as the manual path
      for (int64_t s = 0; s < S; s++) pr[s] = 1.0f / static_cast<float>(S);
      weighted_sum_impl<W>(pr, v + bh * S * D, D, S, D, o);
    }
  }
}

// The backward of (batch, head) pairs [begin, end); scratch: ds (S floats) and vt (Vᵀ, D × S). (Written as dV and
// dK sums over query rows through per-head Pᵀ and dSᵀ instead, it was slower: 44 → 57 ms at 6×512, the
// transposes' strided stores costing more than these rank-one updates of rows that stay in cache.)
template <int W>
__attribute__((always_inline)) inline void seq_attention_backward_impl(const SeqAttentionShape& sh, const float* q,
                                                                       const float* k, const float* v,
                                                                       const float* p, const float* dout, float* dq,
                                                                       float* dk, float* dv, float* ds, float* vt,
                                                                       int64_t begin, int64_t end) {
  const int64_t T = sh.T, S = sh.S, D = sh.D;
  for (int64_t bh = begin; bh < end; bh++) {
    const int64_t b = bh / sh.H, h = bh % sh.H;
    const float* kh = k + bh * S * D;
    transpose_rows(v + bh * S * D, S, D, vt);
    float* dkh = dk + bh * S * D;
    float* dvh = dv + bh * S * D;
    std::memset(dkh, 0, S * D * sizeof(float));
    std::memset(dvh, 0, S * D * sizeof(float));
    for (int64_t t = 0; t < T; t++) {
      const int64_t i = bh * T + t;
      const float* pr = p + i * S;
      const float* go = dout + i * D;
      const float* qt = q + i * D;
      float* dqt = dq + i * D;
      const bool* blocked = sh.row_blocked(b, h, t);
      int64_t n = keys_of_row(sh.causal, t, T, S);
      bool all_blocked = true;
      for (int64_t s = 0; s < n && all_blocked; s++) all_blocked = blocked && blocked[s * sh.ms];
      if (all_blocked) n = S;  // uniform row: dV gets every key, the scores no gradient
      for (int64_t s = 0; s < n; s++) axpy_impl<W>(pr[s], go, dvh + s * D, D);
      std::memset(dqt, 0, D * sizeof(float));
      if (all_blocked) continue;
      scores_transposed_impl<W>(go, vt, S, n, D, 1.0f, nullptr, 0, ds);  // dP
      float dot = 0;
      for (int64_t s = 0; s < n; s++) dot += pr[s] * ds[s];
      for (int64_t s = 0; s < n; s++) {
        const float g = (blocked && blocked[s * sh.ms]) ? 0.0f : sh.scale * pr[s] * (ds[s] - dot);
        if (g == 0.0f) continue;
        axpy_impl<W>(g, kh + s * D, dqt, D);
        axpy_impl<W>(g, qt, dkh + s * D, D);
      }
    }
  }
}

void seq_attention_rows_base(const SeqAttentionShape& sh, const float* q, const float* k, const float* v, float* p,
                             float* out, float* kt, int64_t begin, int64_t end) {
  seq_attention_rows_impl<4>(sh, q, k, v, p, out, kt, begin, end);
}
void seq_attention_backward_base(const SeqAttentionShape& sh, const float* q, const float* k, const float* v,
                                 const float* p, const float* dout, float* dq, float* dk, float* dv, float* ds,
                                 float* vt, int64_t begin, int64_t end) {
  seq_attention_backward_impl<4>(sh, q, k, v, p, dout, dq, dk, dv, ds, vt, begin, end);
}
#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) void seq_attention_rows_avx2(const SeqAttentionShape& sh, const float* q,
                                                                  const float* k, const float* v, float* p,
                                                                  float* out, float* kt, int64_t begin, int64_t end) {
  seq_attention_rows_impl<8>(sh, q, k, v, p, out, kt, begin, end);
}
__attribute__((target("avx2,fma"))) void seq_attention_backward_avx2(const SeqAttentionShape& sh, const float* q,
                                                                      const float* k, const float* v, const float* p,
                                                                      const float* dout, float* dq, float* dk,
                                                                      float* dv, float* ds, float* vt, int64_t begin,
                                                                      int64_t end) {
  seq_attention_backward_impl<8>(sh, q, k, v, p, dout, dq, dk, dv, ds, vt, begin, end);
}
#else
#define seq_attention_rows_avx2 seq_attention_rows_base
#define seq_attention_backward_avx2 seq_attention_backward_base
#endif

// The shapes of q (B, H, T, D) and k (B, H, S, D), and `blocked` (4-d, broadcastable; empty for none) read through
// its strides expanded to (B, H, T, S): the pointer is into blocked's own storage.
SeqAttentionShape seq_attention_shape(const at::Tensor& q, const at::Tensor& k, const at::Tensor& blocked_in,
                                      bool causal, double scale) {
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), S = k.size(2);
  SeqAttentionShape sh{B, H, T, S, q.size(3), causal && T <= S, static_cast<float>(scale), nullptr, 0, 0, 0, 0};
  if (blocked_in.numel() > 0) {
    const at::Tensor blocked = blocked_in.expand({B, H, T, S});
    sh.blocked = blocked.data_ptr<bool>();
    sh.mb = blocked.stride(0), sh.mh = blocked.stride(1), sh.mt = blocked.stride(2), sh.ms = blocked.stride(3);
  }
  return sh;
}

// The blocked pairs as one bool tensor broadcastable to (B, H, T, S), the causal part included; undefined for none.
at::Tensor seq_attention_mask(const at::Tensor& q, const at::Tensor& k, const at::Tensor& blocked, bool causal) {
  at::Tensor mask = blocked.numel() > 0 ? blocked : at::Tensor();
  const int64_t T = q.size(2), S = k.size(2);
  if (causal && T <= S) {
    at::Tensor c = at::ones({T, S}, q.options().dtype(at::kBool)).triu(S - T + 1);
    mask = mask.defined() ? at::logical_or(mask, c) : c;
  }
  return mask;
}

// The backward in ATen ops, recorded when create_graph asks for second derivatives.
torch::autograd::variable_list seq_attention_backward_composite(const at::Tensor& q, const at::Tensor& k,
                                                                const at::Tensor& v, const at::Tensor& mask,
                                                                double scale, const at::Tensor& g) {
  at::Tensor scores = at::matmul(q, k.transpose(2, 3)) * scale;
  if (mask.defined()) scores = scores.masked_fill(mask, -FLT_MAX);
  const at::Tensor p = at::softmax(scores, -1);
  const at::Tensor dv = at::matmul(p.transpose(2, 3), g);
  const at::Tensor dp = at::matmul(g, v.transpose(2, 3));
  at::Tensor ds = p * (dp - (p * dp).sum(-1, true)) * scale;
  if (mask.defined()) ds = ds.masked_fill(mask, 0);
  return {at::matmul(ds, k), at::matmul(ds.transpose(2, 3), q), dv};
}

// Rows per forward task: ~64k multiply-adds each (2 to 8x that ran no faster in a tiny training loop).
int64_t seq_attention_grain(int64_t S, int64_t D) {
  return std::max<int64_t>(1, (int64_t{1} << 16) / std::max<int64_t>(1, S * D));
}

struct SeqAttentionFunction : public torch::autograd::Function<SeqAttentionFunction> {
  static at::Tensor forward(torch::autograd::AutogradContext* ctx, const at::Tensor& q_in, const at::Tensor& k_in,
                            const at::Tensor& v_in, const at::Tensor& blocked_in, bool causal, double scale) {
    const at::Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
    const SeqAttentionShape sh = seq_attention_shape(q, k, blocked_in, causal, scale);
    const int64_t B = sh.B, H = sh.H, T = sh.T, S = sh.S, D = sh.D;
    at::Tensor p = at::empty({B, H, T, S}, q.options());
    at::Tensor out = at::empty({B, H, T, D}, q.options());
    const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
    float *pp = p.data_ptr<float>(), *op = out.data_ptr<float>();
    at::parallel_for(0, B * H * T, seq_attention_grain(S, D), [&](int64_t begin, int64_t end) {
      std::vector<float> kt(S * D);
      (kAvx2 ? seq_attention_rows_avx2 : seq_attention_rows_base)(sh, qp, kp, vp, pp, op, kt.data(), begin, end);
    });
    ctx->save_for_backward({q_in, k_in, v_in, p, blocked_in});
    ctx->saved_data["causal"] = causal;
    ctx->saved_data["scale"] = scale;
    return out;
  }
  static torch::autograd::variable_list backward(torch::autograd::AutogradContext* ctx,
                                                 torch::autograd::variable_list grads) {
    const auto saved = ctx->get_saved_variables();
    const at::Tensor &q_in = saved[0], &k_in = saved[1], &v_in = saved[2], &p = saved[3], &blocked_in = saved[4];
    const bool causal = ctx->saved_data["causal"].toBool();
    const double scale = ctx->saved_data["scale"].toDouble();
    const at::Tensor& g = grads[0];
    if (at::GradMode::is_enabled() && (g.requires_grad() || q_in.requires_grad() || k_in.requires_grad() ||
                                       v_in.requires_grad())) {
      auto d = seq_attention_backward_composite(q_in, k_in, v_in, seq_attention_mask(q_in, k_in, blocked_in, causal),
                                                scale, g);
      return {d[0], d[1], d[2], at::Tensor(), at::Tensor(), at::Tensor()};
    }
    const at::Tensor q = q_in.contiguous(), k = k_in.contiguous(), v = v_in.contiguous();
    const SeqAttentionShape sh = seq_attention_shape(q, k, blocked_in, causal, scale);
    const int64_t B = sh.B, H = sh.H, T = sh.T, S = sh.S, D = sh.D;
    const at::Tensor dout = g.to(at::kFloat).expand({B, H, T, D}).contiguous();
    at::Tensor dq = at::empty_like(q), dk = at::empty_like(k), dv = at::empty_like(v);
    const float *qp = q.data_ptr<float>(), *kp = k.data_ptr<float>(), *vp = v.data_ptr<float>();
    const float *pp = p.data_ptr<float>(), *gp = dout.data_ptr<float>();
    float *dqp = dq.data_ptr<float>(), *dkp = dk.data_ptr<float>(), *dvp = dv.data_ptr<float>();
    const int64_t grain = std::max<int64_t>(1, seq_attention_grain(S, D) / std::max<int64_t>(1, T));
    at::parallel_for(0, B * H, grain, [&](int64_t begin, int64_t end) {
      std::vector<float> ds(S), vt(S * D);
      (kAvx2 ? seq_attention_backward_avx2 : seq_attention_backward_base)(sh, qp, kp, vp, pp, gp, dqp, dkp, dvp,
                                                                            ds.data(), vt.data(), begin, end);
    });
    return {dq, dk, dv, at::Tensor(), at::Tensor(), at::Tensor()};
  }
};
}  // namespace

// decode_attention(q (B, H, T, D), k, v (B, H_kv, S, D), blocked (bool, broadcastable to (B, H, T, S)) or
// none, scale) -> (B, H, T, D): softmax(scale · q·kᵀ, blocked pairs excluded)·v, each group of H / H_kv query
// heads sharing one key/value head (grouped-query attention without repeating the cache).
HHKIT_OP(decode_attention, {
  if (a.t(0).dim() != 4 || a.t(1).dim() != 4 || a.t(2).dim() != 4) a.fail("q, k and v must be 4-d (B, H, T, D)");
  at::Tensor q = a.t(0).contiguous();
  const at::Tensor k = rows_contiguous(a.t(1));
  const at::Tensor v = rows_contiguous(a.t(2));
  c10::optional<at::Tensor> blocked_in = a.opt_t(3);
  const float scale = static_cast<float>(a.f(4));
  for (const at::Tensor* t : std::initializer_list<const at::Tensor*>{&q, &k, &v}) {
    if (!t->device().is_cpu() || t->scalar_type() != at::kFloat) a.fail("q, k and v must be float32 on the CPU");
  }
  const int64_t B = q.size(0), H = q.size(1), T = q.size(2), D = q.size(3);
  const int64_t Hkv = k.size(1), S = k.size(2);
  if (k.size(0) != B || v.size(0) != B || v.size(1) != Hkv || v.size(2) != S || k.size(3) != D ||
      v.size(3) != D)
    a.fail("k and v must be (B, H_kv, S, D) matching q's B and D");
  if (Hkv < 1 || H % Hkv != 0) a.fail("the query heads must be a multiple of the key/value heads");
  at::Tensor blocked;
  if (blocked_in) {
    if (blocked_in->scalar_type() != at::kBool || !blocked_in->device().is_cpu())
      a.fail("blocked must be a bool tensor on the CPU");
    blocked = blocked_in->expand({B, H, T, S});  // strides 0 where broadcast: nothing is copied
  }
  at::Tensor scores = at::empty({B, H, T, S}, q.options());
  at::Tensor out = at::empty({B, H, T, D}, q.options());
  const float* qp = q.data_ptr<float>();
  const float* kp = k.data_ptr<float>();
  const float* vp = v.data_ptr<float>();
  float* sp = scores.data_ptr<float>();
  const bool* bp = blocked.defined() ? blocked.data_ptr<bool>() : nullptr;
  const int64_t group = H / Hkv;
  const int64_t kb = k.stride(0), kh = k.stride(1), ks = k.stride(2);
  const int64_t vb = v.stride(0), vh = v.stride(1), vs = v.stride(2);
  int64_t mb = 0, mh = 0, mt = 0, ms = 0;
  if (bp) mb = blocked.stride(0), mh = blocked.stride(1), mt = blocked.stride(2), ms = blocked.stride(3);
  // Rows per task: ~256k multiply-adds each, so a small step runs on the calling thread (waking an idle
  // OpenMP worker costs ~20-40 us on this VM, more than a 4-head, 128-wide layer's whole attention).
  const int64_t grain = std::max<int64_t>(1, (int64_t{1} << 18) / std::max<int64_t>(1, S * D));
  at::parallel_for(0, B * H * T, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
      const int64_t b = i / (H * T), h = (i / T) % H, t = i % T;
      scores_row(qp + i * D, kp + b * kb + (h / group) * kh, ks, S, D, scale,
                 bp ? bp + b * mb + h * mh + t * mt : nullptr, ms, sp + i * S);
    }
  });
  at::Tensor probs;
  {
    SerialBelow serial(scores, scores.numel());
    probs = at::softmax(scores, -1);  // ATen's vectorised softmax, threaded over rows when they are many
  }
  const float* pp = probs.data_ptr<float>();
  float* op = out.data_ptr<float>();
  at::parallel_for(0, B * H * T, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
      const int64_t b = i / (H * T), h = (i / T) % H;
      weighted_sum(pp + i * S, vp + b * vb + (h / group) * vh, vs, S, D, op + i * D);
    }
  });
  return a.ret(out);
})

// sample_categorical(weights (B, V) float32, nonnegative, each row with a positive sum) -> (B, 1) int64: one
// draw per row with P(j) = w_j / Σ w, by inverting the cumulative sum at one uniform from the global CPU
// generator (seeded by manual_seed), instead of multinomial's exponential per entry.
HHKIT_OP(sample_categorical, {
  const at::Tensor w = a.t(0).contiguous();
  if (w.dim() != 2 || !w.device().is_cpu() || w.scalar_type() != at::kFloat)
    a.fail("weights must be a (B, V) float32 tensor on the CPU");
  const int64_t B = w.size(0), V = w.size(1);
  if (V < 1) a.fail("weights must have at least one column");
  const at::Tensor u = at::rand({B}, w.options().dtype(at::kDouble));
  at::Tensor out = at::empty({B, 1}, w.options().dtype(at::kLong));
  const float* wp = w.data_ptr<float>();
  const double* up = u.data_ptr<double>();
  int64_t* op = out.data_ptr<int64_t>();
  for (int64_t b = 0; b < B; b++) {
    const float* row = wp + b * V;
    double total = 0;
    int64_t last = -1;  // the last entry with positive weight: where rounding may leave the target
    for (int64_t j = 0; j < V; j++) {
      const float x = row[j];
      if (!(x >= 0) || x == INFINITY) a.fail("weights must be finite and nonnegative");
      if (x > 0) last = j;
      total += x;
    }
    if (last < 0) a.fail("a row of weights sums to zero");
    const double target = up[b] * total;
    double cum = 0;
    int64_t pick = last;
    for (int64_t j = 0; j <= last; j++) {
      cum += row[j];
      if (cum > target && row[j] > 0) {
        pick = j;
        break;
      }
    }
    op[b] = pick;
  }
  return a.ret(out);
})

// AdamW's update over n contiguous floats (adamw_step's fast path), optim.ts's ops in their order.
static void adamw_span_base(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v,
                     int64_t n, float decay, float w1, float beta2, float w2, float step, float bias2_sqrt,
                     float eps) {
  for (int64_t j = 0; j < n; j++) {
    const float gj = g[j];
    const float mj = m[j] + w1 * (gj - m[j]);
    const float vj = v[j] * beta2 + w2 * (gj * gj);
    m[j] = mj;
    v[j] = vj;
    p[j] = p[j] * decay + step * (mj / (std::sqrt(vj) / bias2_sqrt + eps));
  }
}

#if defined(__x86_64__) && defined(__GNUC__)
__attribute__((target("avx2,fma"))) static void adamw_span_avx2(float* __restrict p, const float* __restrict g,
                                                          float* __restrict m, float* __restrict v, int64_t n,
                                                          float decay, float w1, float beta2, float w2,
                                                          float step, float bias2_sqrt, float eps) {
  const __m256 vw1 = _mm256_set1_ps(w1), vb2 = _mm256_set1_ps(beta2), vw2 = _mm256_set1_ps(w2),
               vd = _mm256_set1_ps(decay), vs = _mm256_set1_ps(step), vbias = _mm256_set1_ps(bias2_sqrt),
               ve = _mm256_set1_ps(eps);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    const __m256 gj = _mm256_loadu_ps(g + j);
    const __m256 m0 = _mm256_loadu_ps(m + j);
    // No FMA contractions: the same roundings as the scalar path (ATen's kernels group a few products
    // differently, so the op-by-op update agrees to float32 rounding, not bit for bit).
    const __m256 mj = _mm256_add_ps(m0, _mm256_mul_ps(vw1, _mm256_sub_ps(gj, m0)));
    const __m256 vj = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(v + j), vb2), _mm256_mul_ps(vw2, _mm256_mul_ps(gj, gj)));
    _mm256_storeu_ps(m + j, mj);
    _mm256_storeu_ps(v + j, vj);
    const __m256 denom = _mm256_add_ps(_mm256_div_ps(_mm256_sqrt_ps(vj), vbias), ve);
    const __m256 pj = _mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(p + j), vd), _mm256_mul_ps(vs, _mm256_div_ps(mj, denom)));
    _mm256_storeu_ps(p + j, pj);
  }
  adamw_span_base(p + j, g + j, m + j, v + j, n - j, decay, w1, beta2, w2, step, bias2_sqrt, eps);
}
#else
#define adamw_span_avx2 adamw_span_base
#endif

static void adamw_span(float* p, const float* g, float* m, float* v, int64_t n, float decay, float w1, float beta2,
                float w2, float step, float bias2_sqrt, float eps) {
  (kAvx2 ? adamw_span_avx2 : adamw_span_base)(p, g, m, v, n, decay, w1, beta2, w2, step, bias2_sqrt, eps);
}

// adamw_step(params[], grads[], exp_avg[], exp_avg_sq[], decay, beta1, beta2, step_size, bias2_sqrt, eps):
// one AdamW step over every parameter in one call — the update of src/engine/optim.ts
//   p ← p·decay;  m ← m + (1−β1)(g − m);  v ← β2·v + (1−β2)·g²;  p ← p + step_size · m / (√v / bias2_sqrt + eps)
// (decay = 1 − lr·λ, step_size = −lr / (1 − β1^t), bias2_sqrt = √(1 − β2^t)). A CPU float32 contiguous
// parameter is updated in one pass over its four arrays (the op-by-op form reads and writes them eight
// times, and makes eight native calls per parameter); any other (CUDA, another dtype, a strided view) takes
// the same ATen ops as optim.ts. Parameters whose grad is undefined are skipped by the caller.
HHKIT_OP(adamw_step, {
  std::vector<at::Tensor> ps = a.tensors(0), gs = a.tensors(1), ms = a.tensors(2), vs = a.tensors(3);
  if (gs.size() != ps.size() || ms.size() != ps.size() || vs.size() != ps.size())
    a.fail("params, grads, exp_avg and exp_avg_sq must be lists of the same length");
  const double decay = a.f(4), beta1 = a.f(5), beta2 = a.f(6), step_size = a.f(7), bias2_sqrt = a.f(8),
               eps = a.f(9);
  at::NoGradGuard no_grad;
  for (size_t k = 0; k < ps.size(); k++) {
    at::Tensor& p = ps[k];
    const at::Tensor& g = gs[k];
    at::Tensor& m = ms[k];
    at::Tensor& v = vs[k];
    // Anything else (another device for any of the four, another dtype, a strided view, mismatched shapes:
    // ATen's ops then raise what they would raise op by op) takes the ATen ops.
    const auto plain = [&](const at::Tensor& t) {
      return t.device().is_cpu() && t.scalar_type() == at::kFloat && t.is_contiguous() && t.sizes() == p.sizes();
    };
    const bool fast = plain(p) && plain(g) && plain(m) && plain(v);
    if (!fast) {
      if (decay != 1) p.mul_(decay);
      m.lerp_(g, 1 - beta1);
      v.mul_(beta2).addcmul_(g, g, 1 - beta2);
      p.addcdiv_(m, v.sqrt().div_(bias2_sqrt).add_(eps), step_size);
      continue;
    }
    float* pp = p.data_ptr<float>();
    const float* gp = g.data_ptr<float>();
    float* mp = m.data_ptr<float>();
    float* vp = v.data_ptr<float>();
    const float fd = static_cast<float>(decay), w1 = static_cast<float>(1 - beta1), fb2 = static_cast<float>(beta2),
                w2 = static_cast<float>(1 - beta2), fs = static_cast<float>(step_size),
                fb = static_cast<float>(bias2_sqrt), fe = static_cast<float>(eps);
    at::parallel_for(0, p.numel(), 1 << 15, [&](int64_t begin, int64_t end) {
      adamw_span(pp + begin, gp + begin, mp + begin, vp + begin, end - begin, fd, w1, fb2, w2, fs, fb, fe);
    });
    // As an in-place ATen op would: autograd sees the parameter (and the moments) as modified.
    p.unsafeGetTensorImpl()->bump_version();
    m.unsafeGetTensorImpl()->bump_version();
    v.unsafeGetTensorImpl()->bump_version();
  }
  return a.ret_undefined();
})

// gelu_tanh(x) -> GPT-2's tanh GELU: on CPU float32 the kernel above (as an autograd function), anything
// else (GPU, other dtypes: bf16 under autocast) at::gelu(x, "tanh"), as autocast leaves GELU in its input's dtype.
HHKIT_OP(gelu_tanh, {
  const at::Tensor& x = a.t(0);
  if (!x.device().is_cpu() || x.scalar_type() != at::kFloat) return a.ret(at::gelu(x, "tanh"));
  return a.ret(GeluTanhFunction::apply(x));
})

// seq_attention(q (B, H, T, D), k, v (B, H, S, D), blocked (bool, broadcastable to (B, H, T, S)) or none,
// causal, scale) -> (B, H, T, D), differentiable in q, k and v: CPU float32 only (the TypeScript side checks).
HHKIT_OP(seq_attention, {
  const at::Tensor &q = a.t(0), &k = a.t(1), &v = a.t(2);
  c10::optional<at::Tensor> blocked_in = a.opt_t(3);
  const bool causal = a.b(4);
  const double scale = a.f(5);
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) a.fail("q, k and v must be 4-d (B, H, T, D)");
  for (const at::Tensor* t : std::initializer_list<const at::Tensor*>{&q, &k, &v}) {
    if (!t->device().is_cpu() || t->scalar_type() != at::kFloat) a.fail("q, k and v must be float32 on the CPU");
  }
  if (k.sizes() != v.sizes() || k.size(0) != q.size(0) || k.size(1) != q.size(1) || k.size(3) != q.size(3))
    a.fail("k and v must be (B, H, S, D) matching q's B, H and D");
  at::Tensor blocked = at::empty({0}, q.options().dtype(at::kBool));
  if (blocked_in) {
    if (blocked_in->scalar_type() != at::kBool || !blocked_in->device().is_cpu())
      a.fail("blocked must be a bool tensor on the CPU");
    blocked = *blocked_in;
    while (blocked.dim() < 4) blocked = blocked.unsqueeze(0);
  }
  return a.ret(SeqAttentionFunction::apply(q, k, v, blocked, causal, scale));
})

static const OpEntry kFusedOps[] = {
    {"decode_attention", op_decode_attention},
    {"sample_categorical", op_sample_categorical},
    {"adamw_step", op_adamw_step},
    {"gelu_tanh", op_gelu_tanh},
    {"seq_attention", op_seq_attention},
};

void init_fused_ops(napi_env env, napi_value exports) {
  register_ops(env, exports, kFusedOps, sizeof(kFusedOps) / sizeof(kFusedOps[0]));
}

}  // namespace hhkit

// Built in one translation unit with other files (unity_kernels.cc): the fallbacks' names end here.
#undef scores_row_avx2
#undef weighted_sum_avx2
#undef gelu_tanh_avx2
#undef gelu_tanh_backward_avx2
#undef seq_attention_rows_avx2
#undef seq_attention_backward_avx2
#undef adamw_span_avx2
