// Elementwise math and comparisons (with broadcasting), reductions, matmul.
#include "core.h"

namespace hhkit {

// ---- binary, tensor ⊕ tensor ----
HHKIT_OP(add, { return a.ret(at::add(a.t(0), a.t(1))); })
HHKIT_OP(add_scaled, { return a.ret(at::add(a.t(0), a.t(1), a.s(2))); })  // x + alpha * y
HHKIT_OP(sub, { return a.ret(at::sub(a.t(0), a.t(1))); })
HHKIT_OP(mul, { return a.ret(at::mul(a.t(0), a.t(1))); })
HHKIT_OP(div, { return a.ret(at::div(a.t(0), a.t(1))); })
HHKIT_OP(pow, { return a.ret(at::pow(a.t(0), a.t(1))); })
HHKIT_OP(maximum, { return a.ret(at::maximum(a.t(0), a.t(1))); })
HHKIT_OP(minimum, { return a.ret(at::minimum(a.t(0), a.t(1))); })
HHKIT_OP(eq, { return a.ret(at::eq(a.t(0), a.t(1))); })
HHKIT_OP(ne, { return a.ret(at::ne(a.t(0), a.t(1))); })
HHKIT_OP(lt, { return a.ret(at::lt(a.t(0), a.t(1))); })
HHKIT_OP(le, { return a.ret(at::le(a.t(0), a.t(1))); })
HHKIT_OP(gt, { return a.ret(at::gt(a.t(0), a.t(1))); })
HHKIT_OP(ge, { return a.ret(at::ge(a.t(0), a.t(1))); })
HHKIT_OP(logical_and, { return a.ret(at::logical_and(a.t(0), a.t(1))); })
HHKIT_OP(logical_or, { return a.ret(at::logical_or(a.t(0), a.t(1))); })
HHKIT_OP(logical_xor, { return a.ret(at::logical_xor(a.t(0), a.t(1))); })
HHKIT_OP(lerp, { return a.ret(at::lerp(a.t(0), a.t(1), a.s(2))); })

// ---- binary, tensor ⊕ scalar ----
HHKIT_OP(add_scalar, { return a.ret(at::add(a.t(0), a.s(1))); })
HHKIT_OP(sub_scalar, { return a.ret(at::sub(a.t(0), a.s(1))); })
HHKIT_OP(rsub_scalar, { return a.ret(at::rsub(a.t(0), a.s(1))); })  // scalar - x
HHKIT_OP(mul_scalar, { return a.ret(at::mul(a.t(0), a.s(1))); })
HHKIT_OP(div_scalar, { return a.ret(at::div(a.t(0), a.s(1))); })
HHKIT_OP(pow_scalar, { return a.ret(at::pow(a.t(0), a.s(1))); })
HHKIT_OP(eq_scalar, { return a.ret(at::eq(a.t(0), a.s(1))); })
HHKIT_OP(ne_scalar, { return a.ret(at::ne(a.t(0), a.s(1))); })
HHKIT_OP(lt_scalar, { return a.ret(at::lt(a.t(0), a.s(1))); })
HHKIT_OP(le_scalar, { return a.ret(at::le(a.t(0), a.s(1))); })
HHKIT_OP(gt_scalar, { return a.ret(at::gt(a.t(0), a.s(1))); })
HHKIT_OP(ge_scalar, { return a.ret(at::ge(a.t(0), a.s(1))); })
HHKIT_OP(clamp, { return a.ret(at::clamp(a.t(0), a.opt_s(1), a.opt_s(2))); })

// ---- unary ----
#define UNARY(NAME, EXPR) HHKIT_OP(NAME, { const at::Tensor& x = a.t(0); return a.ret(EXPR); })
UNARY(neg, at::neg(x))
UNARY(exp, at::exp(x))
UNARY(log, at::log(x))
UNARY(log1p, at::log1p(x))
UNARY(expm1, at::expm1(x))
UNARY(sqrt, at::sqrt(x))
UNARY(rsqrt, at::rsqrt(x))
UNARY(abs, at::abs(x))
UNARY(sign, at::sign(x))
UNARY(sin, at::sin(x))
UNARY(cos, at::cos(x))
UNARY(tanh, at::tanh(x))
UNARY(sigmoid, at::sigmoid(x))
UNARY(log_sigmoid, at::log_sigmoid(x))
UNARY(relu, at::relu(x))
UNARY(silu, at::silu(x))
UNARY(softplus, at::softplus(x))
UNARY(square, at::square(x))
UNARY(reciprocal, at::reciprocal(x))
UNARY(floor, at::floor(x))
UNARY(ceil, at::ceil(x))
UNARY(round, at::round(x))
UNARY(erf, at::erf(x))
UNARY(logical_not, at::logical_not(x))
UNARY(isnan, at::isnan(x))
UNARY(isinf, at::isinf(x))
UNARY(isfinite, at::isfinite(x))
#undef UNARY
HHKIT_OP(gelu, { return a.ret(at::gelu(a.t(0), a.is_nullish(1) ? "none" : a.str(1))); })
HHKIT_OP(nan_to_num, { return a.ret(at::nan_to_num(a.t(0), a.f(1), a.f(2), a.f(3))); })

// ---- reductions ----
HHKIT_OP(sum, { return a.ret(at::sum(a.t(0))); })
HHKIT_OP(sum_dims, { return a.ret(at::sum(a.t(0), a.ints(1), a.b(2))); })
HHKIT_OP(mean, { return a.ret(at::mean(a.t(0))); })
HHKIT_OP(mean_dims, { return a.ret(at::mean(a.t(0), a.ints(1), a.b(2))); })
HHKIT_OP(prod, { return a.ret(at::prod(a.t(0))); })
HHKIT_OP(max, { return a.ret(at::max(a.t(0))); })
HHKIT_OP(min, { return a.ret(at::min(a.t(0))); })
HHKIT_OP(max_dim, { return a.ret_pair(at::max(a.t(0), a.i(1), a.b(2))); })
HHKIT_OP(min_dim, { return a.ret_pair(at::min(a.t(0), a.i(1), a.b(2))); })
HHKIT_OP(argmax, { return a.ret(at::argmax(a.t(0), a.i(1), a.b(2))); })
HHKIT_OP(argmin, { return a.ret(at::argmin(a.t(0), a.i(1), a.b(2))); })
HHKIT_OP(logsumexp, { return a.ret(at::logsumexp(a.t(0), a.ints(1), a.b(2))); })
// var(x, dims, unbiased, keepdim); dims = [] reduces over all dims.
HHKIT_OP(var, {
  std::vector<int64_t> dims = a.ints(1);
  const at::Tensor& x = a.t(0);
  if (dims.empty()) return a.ret(at::var(x, a.b(2)));
  return a.ret(at::var(x, dims, a.b(2), a.b(3)));
})
HHKIT_OP(std, {
  std::vector<int64_t> dims = a.ints(1);
  const at::Tensor& x = a.t(0);
  if (dims.empty()) return a.ret(at::std(x, a.b(2)));
  return a.ret(at::std(x, dims, a.b(2), a.b(3)));
})
HHKIT_OP(norm, { return a.ret(at::norm(a.t(0), a.s(1))); })
HHKIT_OP(norm_dims, { return a.ret(at::norm(a.t(0), a.s(1), a.ints(2), a.b(3))); })
HHKIT_OP(all, { return a.ret(at::all(a.t(0))); })
HHKIT_OP(any, { return a.ret(at::any(a.t(0))); })
HHKIT_OP(cumsum, { return a.ret(at::cumsum(a.t(0), a.i(1))); })
HHKIT_OP(cumprod, { return a.ret(at::cumprod(a.t(0), a.i(1))); })
HHKIT_OP(sort, { return a.ret_pair(at::sort(a.t(0), a.i(1), a.b(2))); })
HHKIT_OP(argsort, { return a.ret(at::argsort(a.t(0), a.i(1), a.b(2))); })
HHKIT_OP(topk, { return a.ret_pair(at::topk(a.t(0), a.i(1), a.i(2), a.b(3), a.b(4))); })

// ---- linear algebra ----
HHKIT_OP(matmul, { return a.ret(at::matmul(a.t(0), a.t(1))); })
HHKIT_OP(mm, { return a.ret(at::mm(a.t(0), a.t(1))); })
HHKIT_OP(bmm, { return a.ret(at::bmm(a.t(0), a.t(1))); })
HHKIT_OP(linear, {
  const at::Tensor& x = a.t(0);
  const at::Tensor& w = a.t(1);
  const c10::optional<at::Tensor> b = a.opt_t(2);
  if (c10::optional<at::Tensor> y = packed_linear(x, w, b)) return a.ret(*y);
  return a.ret(at::linear(x, w, b));
})
HHKIT_OP(addmm, { return a.ret(at::addmm(a.t(0), a.t(1), a.t(2))); })
HHKIT_OP(baddbmm, { return a.ret(at::baddbmm(a.t(0), a.t(1), a.t(2), a.s(3), a.s(4))); })
HHKIT_OP(outer, { return a.ret(at::outer(a.t(0), a.t(1))); })
HHKIT_OP(einsum, { return a.ret(at::einsum(a.str(0), a.tensors(1))); })
HHKIT_OP(linalg_cholesky, { return a.ret(at::linalg_cholesky(a.t(0))); })
HHKIT_OP(linalg_inv, { return a.ret(at::linalg_inv(a.t(0))); })
HHKIT_OP(linalg_eigh, { return a.ret_pair(at::linalg_eigh(a.t(0), "L")); })
HHKIT_OP(linalg_solve, { return a.ret(at::linalg_solve(a.t(0), a.t(1))); })

static const OpEntry kMathOps[] = {
    {"add", op_add}, {"add_scaled", op_add_scaled}, {"sub", op_sub}, {"mul", op_mul}, {"div", op_div},
    {"pow", op_pow}, {"maximum", op_maximum}, {"minimum", op_minimum}, {"eq", op_eq}, {"ne", op_ne},
    {"lt", op_lt}, {"le", op_le}, {"gt", op_gt}, {"ge", op_ge}, {"logical_and", op_logical_and},
    {"logical_or", op_logical_or}, {"logical_xor", op_logical_xor}, {"lerp", op_lerp},
    {"add_scalar", op_add_scalar}, {"sub_scalar", op_sub_scalar}, {"rsub_scalar", op_rsub_scalar},
    {"mul_scalar", op_mul_scalar}, {"div_scalar", op_div_scalar}, {"pow_scalar", op_pow_scalar},
    {"eq_scalar", op_eq_scalar}, {"ne_scalar", op_ne_scalar}, {"lt_scalar", op_lt_scalar},
    {"le_scalar", op_le_scalar}, {"gt_scalar", op_gt_scalar}, {"ge_scalar", op_ge_scalar}, {"clamp", op_clamp},
    {"neg", op_neg}, {"exp", op_exp}, {"log", op_log}, {"log1p", op_log1p}, {"expm1", op_expm1},
    {"sqrt", op_sqrt}, {"rsqrt", op_rsqrt}, {"abs", op_abs}, {"sign", op_sign}, {"sin", op_sin}, {"cos", op_cos},
    {"tanh", op_tanh}, {"sigmoid", op_sigmoid}, {"log_sigmoid", op_log_sigmoid}, {"relu", op_relu},
    {"silu", op_silu}, {"softplus", op_softplus}, {"square", op_square}, {"reciprocal", op_reciprocal},
    {"floor", op_floor}, {"ceil", op_ceil}, {"round", op_round}, {"erf", op_erf},
    {"logical_not", op_logical_not}, {"isnan", op_isnan}, {"isinf", op_isinf}, {"isfinite", op_isfinite},
    {"gelu", op_gelu}, {"nan_to_num", op_nan_to_num}, {"sum", op_sum}, {"sum_dims", op_sum_dims},
    {"mean", op_mean}, {"mean_dims", op_mean_dims}, {"prod", op_prod}, {"max", op_max}, {"min", op_min},
    {"max_dim", op_max_dim}, {"min_dim", op_min_dim}, {"argmax", op_argmax}, {"argmin", op_argmin},
    {"logsumexp", op_logsumexp}, {"var", op_var}, {"std", op_std}, {"norm", op_norm},
    {"norm_dims", op_norm_dims}, {"all", op_all}, {"any", op_any}, {"cumsum", op_cumsum},
    {"cumprod", op_cumprod}, {"sort", op_sort}, {"argsort", op_argsort}, {"topk", op_topk},
    {"matmul", op_matmul}, {"mm", op_mm}, {"bmm", op_bmm}, {"linear", op_linear}, {"addmm", op_addmm},
    {"baddbmm", op_baddbmm}, {"outer", op_outer}, {"einsum", op_einsum},
    {"linalg_cholesky", op_linalg_cholesky}, {"linalg_inv", op_linalg_inv}, {"linalg_eigh", op_linalg_eigh},
    {"linalg_solve", op_linalg_solve},
};

void init_math_ops(napi_env env, napi_value exports) {
  register_ops(env, exports, kMathOps, sizeof(kMathOps) / sizeof(kMathOps[0]));
}

}  // namespace hhkit
