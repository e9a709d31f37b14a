// Neural-network functions, autograd and the in-place ops that optimisers use.
#include <ATen/autocast_mode.h>
#include <torch/csrc/autograd/autograd.h>
#include <torch/csrc/autograd/grad_mode.h>
#include <torch/version.h>


#include "core.h"

namespace hhkit {

// ---- nn functions ----
HHKIT_OP(softmax, { return a.ret(at::softmax(a.t(0), a.i(1))); })
HHKIT_OP(log_softmax, { return a.ret(at::log_softmax(a.t(0), a.i(1))); })
// torch's CPU layer norm splits its rows over the OpenMP threads whatever their number (grain 1): for a
// decoding step's 32 rows that is one wake-up of an idle worker per norm, 20-30 us on this VM against ~8 us
// of work. Below torch's usual grain (32k elements) it runs on the calling thread.
HHKIT_OP(layer_norm, {
  const at::Tensor& x = a.t(0);
  std::vector<int64_t> shape = a.ints(1);
  c10::optional<at::Tensor> w = a.opt_t(2);
  c10::optional<at::Tensor> b = a.opt_t(3);
  SerialBelow serial(x, x.numel());
  return a.ret(at::layer_norm(x, shape, w, b, a.f(4)));
})
HHKIT_OP(dropout, { return a.ret(at::dropout(a.t(0), a.f(1), a.b(2))); })
HHKIT_OP(embedding, {
  const at::Tensor& weight = a.t(0);
  const at::Tensor& ids = a.t(1);
  // index_select splits even a decoding step's 32 rows over the threads (see SerialBelow)
  SerialBelow serial(weight, ids.numel() * (weight.dim() == 2 ? weight.size(1) : 1));
  return a.ret(at::embedding(weight, ids));
})
// cross_entropy(logits (N,C), target (N), ignoreIndex, reduction 0 none / 1 mean / 2 sum, labelSmoothing)
HHKIT_OP(cross_entropy, {
  const at::Tensor& logits = a.t(0);
  const at::Tensor& target = a.t(1);
  return a.ret(at::cross_entropy_loss(logits, target, c10::nullopt, a.i(3), a.i(2), a.f(4)));
})
HHKIT_OP(mse_loss, { return a.ret(at::mse_loss(a.t(0), a.t(1), a.i(2))); })
HHKIT_OP(bce_with_logits, {
  const at::Tensor& x = a.t(0);
  const at::Tensor& y = a.t(1);
  return a.ret(at::binary_cross_entropy_with_logits(x, y, c10::nullopt, c10::nullopt, a.i(2)));
})

// ---- autograd ----
HHKIT_OP(requires_grad, { return a.ret_bool(a.t(0).requires_grad()); })
HHKIT_OP(set_requires_grad, {
  a.t(0).requires_grad_(a.b(1));
  return a.ret_undefined();
})
HHKIT_OP(is_leaf, { return a.ret_bool(a.t(0).is_leaf()); })
HHKIT_OP(grad, { return a.ret(a.t(0).grad()); })  // 0 when there is no gradient yet
HHKIT_OP(set_grad, {
  at::Tensor& x = a.t(0);
  c10::optional<at::Tensor> g = a.opt_t(1);
  x.mutable_grad() = g ? *g : at::Tensor();
  return a.ret_undefined();
})
HHKIT_OP(backward, {
  at::Tensor& x = a.t(0);
  c10::optional<at::Tensor> g = a.opt_t(1);
  x.backward(g ? *g : at::Tensor(), a.b(2), a.b(3));
  return a.ret_undefined();
})
// autograd_grad(outputs[], inputs[], gradOutputs[] (may be empty), retainGraph, createGraph) -> grads[]
HHKIT_OP(autograd_grad, {
  std::vector<at::Tensor> outputs = a.tensors(0);
  std::vector<at::Tensor> inputs = a.tensors(1);
  std::vector<at::Tensor> grad_outputs = a.tensors(2);
  return a.ret_list(torch::autograd::grad(outputs, inputs, grad_outputs, a.b(3), a.b(4), true));
})
HHKIT_OP(grad_enabled, { return a.ret_bool(c10::GradMode::is_enabled()); })
HHKIT_OP(set_grad_enabled, {
  c10::GradMode::set_enabled(a.b(0));
  return a.ret_undefined();
})

// ---- in place (optimisers, buffers) ----
HHKIT_OP(add_, {
  at::Tensor& x = a.t(0);
  x.add_(a.t(1), a.is_nullish(2) ? at::Scalar(1) : a.s(2));
  return a.ret_undefined();
})
HHKIT_OP(add_scalar_, {
  a.t(0).add_(a.s(1));
  return a.ret_undefined();
})
HHKIT_OP(mul_, {
  at::Tensor& x = a.t(0);
  x.mul_(a.t(1));
  return a.ret_undefined();
})
HHKIT_OP(mul_scalar_, {
  a.t(0).mul_(a.s(1));
  return a.ret_undefined();
})
HHKIT_OP(div_, {
  at::Tensor& x = a.t(0);
  x.div_(a.t(1));
  return a.ret_undefined();
})
HHKIT_OP(div_scalar_, {
  a.t(0).div_(a.s(1));
  return a.ret_undefined();
})
HHKIT_OP(addcmul_, {
  at::Tensor& x = a.t(0);
  x.addcmul_(a.t(1), a.t(2), a.s(3));
  return a.ret_undefined();
})
HHKIT_OP(addcdiv_, {
  at::Tensor& x = a.t(0);
  x.addcdiv_(a.t(1), a.t(2), a.s(3));
  return a.ret_undefined();
})
HHKIT_OP(lerp_, {
  at::Tensor& x = a.t(0);
  x.lerp_(a.t(1), a.s(2));
  return a.ret_undefined();
})
HHKIT_OP(copy_, {
  at::Tensor& x = a.t(0);
  x.copy_(a.t(1));
  return a.ret_undefined();
})
HHKIT_OP(zero_, {
  a.t(0).zero_();
  return a.ret_undefined();
})
HHKIT_OP(fill_, {
  a.t(0).fill_(a.s(1));
  return a.ret_undefined();
})
HHKIT_OP(clamp_, {
  a.t(0).clamp_(a.opt_s(1), a.opt_s(2));
  return a.ret_undefined();
})
HHKIT_OP(masked_fill_, {
  at::Tensor& x = a.t(0);
  x.masked_fill_(a.t(1), a.s(2));
  return a.ret_undefined();
})
HHKIT_OP(uniform_, {
  a.t(0).uniform_(a.f(1), a.f(2));
  return a.ret_undefined();
})
HHKIT_OP(normal_, {
  a.t(0).normal_(a.f(1), a.f(2));
  return a.ret_undefined();
})

// ---- mixed precision and fast paths (issue #9) ----
// Autocast as torch.autocast does it: a thread-local switch of the Autocast dispatch keys, so matmuls and
// their kin run in `dtype` (bf16/fp16) while reductions and losses stay float32. set_autocast(device, on, dtype)
HHKIT_OP(set_autocast, {
  const std::string device = a.str(0);
  const bool on = a.b(1);
  const at::ScalarType dtype = a.dtype(2);
  if (device != "cpu" && device != "cuda") a.fail("autocast device: expected 'cpu' or 'cuda', got '" + device + "'");
#if HHKIT_TORCH_AT_LEAST(2, 4)
  const at::DeviceType type = device == "cpu" ? at::kCPU : at::kCUDA;
  at::autocast::set_autocast_dtype(type, dtype);
  at::autocast::set_autocast_enabled(type, on);
#else
  if (device == "cpu") {
    at::autocast::set_autocast_cpu_dtype(dtype);
    at::autocast::set_cpu_enabled(on);
  } else {
    at::autocast::set_autocast_gpu_dtype(dtype);
    at::autocast::set_enabled(on);
  }
#endif
  if (!on) at::autocast::clear_cache();
  return a.ret_undefined();
})
HHKIT_OP(autocast_enabled, {
  const std::string device = a.str(0);
#if HHKIT_TORCH_AT_LEAST(2, 4)
  return a.ret_bool(at::autocast::is_autocast_enabled(device == "cpu" ? at::kCPU : at::kCUDA));
#else
  return a.ret_bool(device == "cpu" ? at::autocast::is_cpu_enabled() : at::autocast::is_enabled());
#endif
})
// TF32 for float32 matmuls/convolutions on Ampere+ GPUs (torch.backends.cuda.matmul.allow_tf32 and
// torch.backends.cudnn.allow_tf32); a no-op on CPU.
HHKIT_OP(set_allow_tf32, {
  at::globalContext().setAllowTF32CuBLAS(a.b(0));
  at::globalContext().setAllowTF32CuDNN(a.b(0));
  return a.ret_undefined();
})
HHKIT_OP(allow_tf32, { return a.ret_bool(at::globalContext().allowTF32CuBLAS()); })
// Fused attention (flash / memory-efficient kernels on GPU) where torch provides it (2.0+):
// sdpa(q, k, v, mask, dropoutP, isCausal); mask is additive (float) or boolean (true = may attend).
HHKIT_OP(sdpa_available, { return a.ret_bool(TORCH_VERSION_MAJOR >= 2); })
HHKIT_OP(sdpa, {
#if TORCH_VERSION_MAJOR >= 2
  return a.ret(at::scaled_dot_product_attention(a.t(0), a.t(1), a.t(2), a.opt_t(3), a.f(4), a.b(5)));
#else
  a.fail("scaled_dot_product_attention needs libtorch 2.0 or newer (this is " TORCH_VERSION ")");
#endif
})

static const OpEntry kNnOps[] = {
    {"set_autocast", op_set_autocast}, {"autocast_enabled", op_autocast_enabled},
    {"set_allow_tf32", op_set_allow_tf32}, {"allow_tf32", op_allow_tf32}, {"sdpa_available", op_sdpa_available},
    {"sdpa", op_sdpa},
    {"softmax", op_softmax}, {"log_softmax", op_log_softmax}, {"layer_norm", op_layer_norm},
    {"dropout", op_dropout}, {"embedding", op_embedding}, {"cross_entropy", op_cross_entropy},
    {"mse_loss", op_mse_loss}, {"bce_with_logits", op_bce_with_logits}, {"requires_grad", op_requires_grad},
    {"set_requires_grad", op_set_requires_grad}, {"is_leaf", op_is_leaf}, {"grad", op_grad},
    {"set_grad", op_set_grad}, {"backward", op_backward}, {"autograd_grad", op_autograd_grad},
    {"grad_enabled", op_grad_enabled}, {"set_grad_enabled", op_set_grad_enabled}, {"add_", op_add_},
    {"add_scalar_", op_add_scalar_}, {"mul_", op_mul_}, {"mul_scalar_", op_mul_scalar_}, {"div_", op_div_},
    {"div_scalar_", op_div_scalar_}, {"addcmul_", op_addcmul_}, {"addcdiv_", op_addcdiv_}, {"lerp_", op_lerp_},
    {"copy_", op_copy_}, {"zero_", op_zero_}, {"fill_", op_fill_}, {"clamp_", op_clamp_},
    {"masked_fill_", op_masked_fill_}, {"uniform_", op_uniform_}, {"normal_", op_normal_},
};

void init_nn_ops(napi_env env, napi_value exports) {
  register_ops(env, exports, kNnOps, sizeof(kNnOps) / sizeof(kNnOps[0]));
}

}  // namespace hhkit
