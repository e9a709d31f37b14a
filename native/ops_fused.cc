// Fused kernels for the decoding loop, where libtorch's general ops pay more in per-call overhead than in
// arithmetic: attention of a few new queries over the KV cache (torch 1.13's CPU bmm calls sgemm once per
// (batch, head): 256 calls for B 32 × 8 heads, ~0.5 ms per layer for 2.6 MFLOP), and drawing one token per
// row from a categorical distribution (torch's multinomial draws an exponential per vocabulary entry: one
// scalar log each, ~0.2 ms for 32 × 512). Both are CPU float32 only; the TypeScript side falls back to the
// general ops for anything else (GPU, other dtypes, autograd).
#include <ATen/Parallel.h>

#include <cfloat>
#include <cmath>
#include <initializer_list>
#include <cstring>

#include "core.h"

namespace hhkit {

namespace {

// Dot products and axpy over one head's D floats. Compiled twice on x86-64 (AVX2 + FMA, and the baseline
// SSE2), the right copy picked at load time, so one binary is fast on this machine and still runs on any
// x86-64; plain loops elsewhere.
#if defined(__x86_64__) && defined(__GNUC__) && !defined(__clang__)
#define HHKIT_CLONES __attribute__((target_clones("arch=haswell", "default")))
#else
#define HHKIT_CLONES
#endif

// Eight floats as one value: GCC/Clang vector extensions, lowered to one AVX register in the haswell clone and
// two SSE registers in the baseline one. Loads go through memcpy (no alignment assumed).
typedef float v8 __attribute__((vector_size(32)));
inline v8 load8(const float* p) {
  v8 x;
  std::memcpy(&x, p, sizeof x);
  return x;
}
inline void store8(float* p, v8 x) { std::memcpy(p, &x, sizeof x); }
inline float sum8(v8 x) { return ((x[0] + x[1]) + (x[2] + x[3])) + ((x[4] + x[5]) + (x[6] + x[7])); }

inline float dot(const float* __restrict a, const float* __restrict b, int64_t D) {
  v8 acc0 = {0, 0, 0, 0, 0, 0, 0, 0};
  v8 acc1 = acc0;
  int64_t d = 0;
  for (; d + 16 <= D; d += 16) {
    acc0 += load8(a + d) * load8(b + d);
    acc1 += load8(a + d + 8) * load8(b + d + 8);
  }
  for (; d + 8 <= D; d += 8) acc0 += load8(a + d) * load8(b + d);
  float total = sum8(acc0 + acc1);
  for (; d < D; d++) total += a[d] * b[d];
  return total;
}

// scores[s] = scale · q · k_s for s < S (k rows `k_stride` floats apart), blocked ones set to -FLT_MAX (the
// manual path's mask value: a fully blocked row softmaxes to uniform, not NaN).
HHKIT_CLONES
void scores_row(const float* __restrict q, const float* __restrict k, int64_t k_stride, int64_t S, int64_t D,
                float scale, const bool* blocked, int64_t blocked_stride, float* __restrict scores) {
  for (int64_t s = 0; s < S; s++) {
    scores[s] = blocked && blocked[s * blocked_stride] ? -FLT_MAX : dot(q, k + s * k_stride, D) * scale;
  }
}

// out = Σ_s p[s] · v_s over D floats: 32 columns at a time in four independent accumulators.
HHKIT_CLONES
void weighted_sum(const float* __restrict p, const float* __restrict v, int64_t v_stride, int64_t S, int64_t D,
                  float* __restrict out) {
  int64_t d = 0;
  for (; d + 32 <= D; d += 32) {
    v8 a0 = {0, 0, 0, 0, 0, 0, 0, 0};
    v8 a1 = a0, a2 = a0, a3 = a0;
    for (int64_t s = 0; s < S; s++) {
      const float* vs = v + s * v_stride + d;
      const float w = p[s];
      a0 += w * load8(vs);
      a1 += w * load8(vs + 8);
      a2 += w * load8(vs + 16);
      a3 += w * load8(vs + 24);
    }
    store8(out + d, a0);
    store8(out + d + 8, a1);
    store8(out + d + 16, a2);
    store8(out + d + 24, a3);
  }
  for (; d + 8 <= D; d += 8) {
    v8 a0 = {0, 0, 0, 0, 0, 0, 0, 0};
    for (int64_t s = 0; s < S; s++) a0 += p[s] * load8(v + s * v_stride + d);
    store8(out + d, a0);
  }
  for (; d < D; d++) {
    float total = 0;
    for (int64_t s = 0; s < S; s++) total += p[s] * v[s * v_stride + d];
    out[d] = total;
  }
}

at::Tensor rows_contiguous(const at::Tensor& t) {
  // k and v are usually views of the cache, (B, H_kv, S, D) narrowed on S: each row of D is contiguous, the
  // rows are D apart; anything else is copied.
  return t.stride(3) == 1 && t.stride(2) == t.size(3) ? t : t.contiguous();
}

}  // namespace

// decode_attention(q (B, H, T, D), k, v (B, H_kv, S, D), blocked (bool, broadcastable to (B, H, T, S)) or
// none, scale) -> (B, H, T, D): softmax(scale · q·kᵀ, blocked pairs excluded)·v, each group of H / H_kv query
// heads sharing one key/value head (grouped-query attention without repeating the cache).
HHKIT_OP(decode_attention, {
  at::Tensor q = a.t(0).contiguous();
  const at::Tensor k = rows_contiguous(a.t(1));
  const at::Tensor v = rows_contiguous(a.t(2));
  c10::optional<at::Tensor> blocked_in = a.opt_t(3);
  const float scale = static_cast<float>(a.f(4));
  if (q.dim() != 4 || k.dim() != 4 || v.dim() != 4) a.fail("q, k and v must be 4-d (B, H, T, D)");
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
  // Grain: enough rows per task that a thread's share outweighs waking it.
  const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(1, S * D));
  at::parallel_for(0, B * H * T, grain, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; i++) {
      const int64_t b = i / (H * T), h = (i / T) % H, t = i % T;
      scores_row(qp + i * D, kp + b * kb + (h / group) * kh, ks, S, D, scale,
                 bp ? bp + b * mb + h * mh + t * mt : nullptr, ms, sp + i * S);
    }
  });
  at::Tensor probs = at::softmax(scores, -1);  // ATen's vectorised softmax, threaded over rows
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

static const OpEntry kOps[] = {
    {"decode_attention", op_decode_attention},
    {"sample_categorical", op_sample_categorical},
};

void init_fused_ops(napi_env env, napi_value exports) {
  register_ops(env, exports, kOps, sizeof(kOps) / sizeof(kOps[0]));
}

}  // namespace hhkit
