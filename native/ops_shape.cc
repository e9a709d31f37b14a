// Views, shape ops, indexing, joining and masks.
#include "core.h"

namespace hhkit {

HHKIT_OP(reshape, { return a.ret(a.t(0).reshape(a.ints(1))); })
HHKIT_OP(view, { return a.ret(a.t(0).view(a.ints(1))); })
HHKIT_OP(transpose, { return a.ret(a.t(0).transpose(a.i(1), a.i(2))); })
HHKIT_OP(permute, { return a.ret(a.t(0).permute(a.ints(1))); })
HHKIT_OP(narrow, { return a.ret(a.t(0).narrow(a.i(1), a.i(2), a.i(3))); })
HHKIT_OP(slice, {
  at::Tensor& x = a.t(0);
  c10::optional<int64_t> start, end;
  if (!a.is_nullish(2)) start = a.i(2);
  if (!a.is_nullish(3)) end = a.i(3);
  return a.ret(x.slice(a.i(1), start, end, a.is_nullish(4) ? 1 : a.i(4)));
})
HHKIT_OP(select, { return a.ret(a.t(0).select(a.i(1), a.i(2))); })
HHKIT_OP(index_select, { return a.ret(at::index_select(a.t(0), a.i(1), a.t(2))); })
HHKIT_OP(gather, { return a.ret(at::gather(a.t(0), a.i(1), a.t(2))); })
HHKIT_OP(scatter, { return a.ret(at::scatter(a.t(0), a.i(1), a.t(2), a.t(3))); })
HHKIT_OP(scatter_value, { return a.ret(at::scatter(a.t(0), a.i(1), a.t(2), a.s(3))); })
HHKIT_OP(scatter_add, { return a.ret(at::scatter_add(a.t(0), a.i(1), a.t(2), a.t(3))); })
HHKIT_OP(index_add, { return a.ret(at::index_add(a.t(0), a.i(1), a.t(2), a.t(3))); })
// index(t, [idx0, idx1, …]): advanced indexing t[idx0, idx1, …] over the leading dims.
HHKIT_OP(index, {
  at::Tensor& x = a.t(0);
  c10::List<c10::optional<at::Tensor>> list;
  for (auto& t : a.tensors(1)) list.push_back(t);
  return a.ret(at::index(x, list));
})
HHKIT_OP(masked_select, { return a.ret(at::masked_select(a.t(0), a.t(1))); })
HHKIT_OP(nonzero, { return a.ret(at::nonzero(a.t(0))); })
HHKIT_OP(cat, { return a.ret(at::cat(a.tensors(0), a.i(1))); })
HHKIT_OP(stack, { return a.ret(at::stack(a.tensors(0), a.i(1))); })
HHKIT_OP(split, { return a.ret_list(a.t(0).split(a.i(1), a.i(2))); })
HHKIT_OP(split_with_sizes, { return a.ret_list(a.t(0).split_with_sizes(a.ints(1), a.i(2))); })
HHKIT_OP(chunk, { return a.ret_list(a.t(0).chunk(a.i(1), a.i(2))); })
HHKIT_OP(unbind, { return a.ret_list(a.t(0).unbind(a.i(1))); })
HHKIT_OP(squeeze, { return a.ret(a.is_nullish(1) ? a.t(0).squeeze() : a.t(0).squeeze(a.i(1))); })
HHKIT_OP(unsqueeze, { return a.ret(a.t(0).unsqueeze(a.i(1))); })
HHKIT_OP(expand, { return a.ret(a.t(0).expand(a.ints(1))); })
HHKIT_OP(flatten, { return a.ret(a.t(0).flatten(a.i(1), a.i(2))); })
HHKIT_OP(flip, { return a.ret(a.t(0).flip(a.ints(1))); })
HHKIT_OP(repeat, { return a.ret(a.t(0).repeat(a.ints(1))); })
HHKIT_OP(roll, { return a.ret(a.t(0).roll(a.ints(1), a.ints(2))); })
HHKIT_OP(tril, { return a.ret(at::tril(a.t(0), a.i(1))); })
HHKIT_OP(triu, { return a.ret(at::triu(a.t(0), a.i(1))); })
HHKIT_OP(where, { return a.ret(at::where(a.t(0), a.t(1), a.t(2))); })
HHKIT_OP(masked_fill, { return a.ret(a.t(0).masked_fill(a.t(1), a.s(2))); })
HHKIT_OP(pad, {
  // constant padding; pads = [left, right] for the last dim, then the dim before, as torch.nn.functional.pad
  return a.ret(at::constant_pad_nd(a.t(0), a.ints(1), a.s(2)));
})

static const OpEntry kShapeOps[] = {
    {"reshape", op_reshape}, {"view", op_view}, {"transpose", op_transpose}, {"permute", op_permute},
    {"narrow", op_narrow}, {"slice", op_slice}, {"select", op_select}, {"index_select", op_index_select},
    {"gather", op_gather}, {"scatter", op_scatter}, {"scatter_value", op_scatter_value},
    {"scatter_add", op_scatter_add}, {"index_add", op_index_add}, {"index", op_index},
    {"masked_select", op_masked_select}, {"nonzero", op_nonzero}, {"cat", op_cat}, {"stack", op_stack},
    {"split", op_split}, {"split_with_sizes", op_split_with_sizes}, {"chunk", op_chunk}, {"unbind", op_unbind},
    {"squeeze", op_squeeze}, {"unsqueeze", op_unsqueeze}, {"expand", op_expand}, {"flatten", op_flatten},
    {"flip", op_flip}, {"repeat", op_repeat}, {"roll", op_roll}, {"tril", op_tril}, {"triu", op_triu},
    {"where", op_where}, {"masked_fill", op_masked_fill}, {"pad", op_pad},
};

void init_shape_ops(napi_env env, napi_value exports) {
  register_ops(env, exports, kShapeOps, sizeof(kShapeOps) / sizeof(kShapeOps[0]));
}

}  // namespace hhkit
