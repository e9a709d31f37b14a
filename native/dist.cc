// Data-parallel collectives through torch's own c10d: a TCPStore rendezvous (env:// as torchrun sets it
// up) and a ProcessGroupGloo (CPU; CUDA tensors too) or ProcessGroupNCCL (CUDA builds). hhkit builds no
// distributed system of its own; this file only opens one process group per process and exposes the
// collectives the trainers need, with gradient bucketing (flatten → one all-reduce per bucket → copy back).
//
// Compiled in when the libtorch found has the c10d and gloo headers (HHKIT_DIST); otherwise every op
// throws a clear "not built with distributed support" error.
#include "core.h"

#ifdef HHKIT_DIST
#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/function_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/csrc/distributed/c10d/PrefixStore.hpp>
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>
#include <torch/csrc/distributed/c10d/TCPStore.hpp>
#ifdef HHKIT_NCCL
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>
#endif
#endif

#include <chrono>
#include <map>
#include <utility>
#include <memory>
#include <mutex>

namespace hhkit {

#ifdef HHKIT_DIST
namespace {

struct Group {
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::ProcessGroupGloo> gloo;
#ifdef HHKIT_NCCL
  c10::intrusive_ptr<c10d::ProcessGroupNCCL> nccl;
#endif
  std::string backend;
  int rank = 0;
  int size = 1;
  std::chrono::milliseconds timeout{1800 * 1000};
};

std::unique_ptr<Group> g_group;

Group& group(Args& a) {
  if (!g_group) a.fail("no process group: call initProcessGroup() first (or run under `hhkit launch`)");
  return *g_group;
}

template <typename F>
c10::intrusive_ptr<c10d::Work> dispatch(Group& g, F&& f) {
#ifdef HHKIT_NCCL
  if (g.nccl) return f(*g.nccl);
#endif
  return f(*g.gloo);
}

void wait(Group& g, const c10::intrusive_ptr<c10d::Work>& work, const char* what) {
  try {
    work->wait(g.timeout);
  } catch (const std::exception& e) {
    throw std::runtime_error(std::string(what) + " failed on rank " + std::to_string(g.rank) + " of " +
                             std::to_string(g.size) + " (a peer process exited, hung or was unreachable): " +
                             e.what());
  }
}

c10d::ReduceOp reduce_op(Args& a, size_t i) {
  const std::string op = a.is_nullish(i) ? "sum" : a.str(i);
  if (op == "sum" || op == "avg") return c10d::ReduceOp::SUM;  // avg = sum, then divide (gloo has no AVG)
  if (op == "max") return c10d::ReduceOp::MAX;
  if (op == "min") return c10d::ReduceOp::MIN;
  a.fail("reduce op: expected 'sum', 'avg', 'max' or 'min', got '" + op + "'");
}

}  // namespace

// init(backend, rank, worldSize, masterAddr, masterPort, timeoutMs, localAddr): gloo binds to localAddr (this
// machine's address on the master's network, chosen by the caller) unless GLOO_SOCKET_IFNAME names an interface;
// without either it resolves the hostname, which on many machines (Debian's /etc/hosts) means loopback.
HHKIT_OP(dist_init, {
  if (g_group) a.fail("a process group is already open in this process");
  const std::string backend = a.str(0);
  const int rank = static_cast<int>(a.i(1));
  const int size = static_cast<int>(a.i(2));
  const std::string addr = a.str(3);
  const int port = static_cast<int>(a.i(4));
  const std::chrono::milliseconds timeout(a.i(5));
  if (size < 1 || rank < 0 || rank >= size) {
    a.fail("rank " + std::to_string(rank) + " is outside world size " + std::to_string(size));
  }
  if (port <= 0 || port > 65535) a.fail("master port " + std::to_string(port) + " is not a TCP port");
  auto g = std::make_unique<Group>();
  g->backend = backend;
  g->rank = rank;
  g->size = size;
  g->timeout = timeout;
  c10d::TCPStoreOptions so;
  so.port = static_cast<std::uint16_t>(port);
  so.isServer = rank == 0;
  so.numWorkers = static_cast<std::size_t>(size);
  so.waitWorkers = true;
  so.timeout = timeout;
  auto tcp = c10::make_intrusive<c10d::TCPStore>(addr, so);
  g->store = c10::make_intrusive<c10d::PrefixStore>("hhkit/default_pg", tcp);
  if (backend == "gloo") {
    auto options = c10d::ProcessGroupGloo::Options::create(timeout);
    const char* ifname = std::getenv("GLOO_SOCKET_IFNAME");
    const std::string local = a.is_nullish(6) ? "" : a.str(6);
    if (ifname && *ifname) {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForInterface(ifname));
    } else if (!local.empty()) {
      options->devices.push_back(c10d::ProcessGroupGloo::createDeviceForHostname(local));
    } else {
      options->devices.push_back(c10d::ProcessGroupGloo::createDefaultDevice());
    }
    g->gloo = c10::make_intrusive<c10d::ProcessGroupGloo>(g->store, rank, size, options);
  } else if (backend == "nccl") {
#ifdef HHKIT_NCCL
    auto options = c10d::ProcessGroupNCCL::Options::create();
    options->timeout = timeout;
    g->nccl = c10::make_intrusive<c10d::ProcessGroupNCCL>(g->store, rank, size, options);
#else
    a.fail("backend 'nccl' needs a CUDA build of the addon (a pip torch with CUDA); this build has gloo only");
#endif
  } else {
    a.fail("backend: expected 'gloo' or 'nccl', got '" + backend + "'");
  }
  g_group = std::move(g);
  return a.ret_undefined();
})

void free_all_reducers();

HHKIT_OP(dist_destroy, {
  free_all_reducers();  // their hooks would reach for the group being closed
  g_group.reset();
  return a.ret_undefined();
})

HHKIT_OP(dist_available, { return a.ret_bool(true); })
HHKIT_OP(dist_nccl_available, {
#ifdef HHKIT_NCCL
  return a.ret_bool(true);
#else
  return a.ret_bool(false);
#endif
})

// all_reduce(tensors[], op, bucketBytes): reduces every tensor in place across the group. Tensors of one
// dtype and device are packed into buckets of at most bucketBytes (a tensor larger than that gets a bucket
// of its own), each bucket is one flat all-reduce; all buckets are in flight at once, then copied back.
HHKIT_OP(dist_all_reduce, {
  Group& g = group(a);
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> tensors = a.tensors(0);
  const std::string op_name = a.is_nullish(1) ? "sum" : a.str(1);
  const c10d::ReduceOp op = reduce_op(a, 1);
  const int64_t bucket_bytes = a.is_nullish(2) ? (25 << 20) : a.i(2);
  std::vector<std::vector<at::Tensor>> buckets;
  int64_t bytes = 0;
  for (const at::Tensor& t : tensors) {
    if (!t.defined()) a.fail("all_reduce: a tensor in the list is undefined (a parameter without .grad?)");
    const int64_t n = t.numel() * static_cast<int64_t>(t.element_size());
    const bool fits = !buckets.empty() && bytes + n <= bucket_bytes &&
                      buckets.back().front().scalar_type() == t.scalar_type() &&
                      buckets.back().front().device() == t.device();
    if (!fits) {
      buckets.emplace_back();
      bytes = 0;
    }
    buckets.back().push_back(t);
    bytes += n;
  }
  std::vector<at::Tensor> flats;
  std::vector<c10::intrusive_ptr<c10d::Work>> works;
  for (auto& bucket : buckets) {
    std::vector<at::Tensor> views;
    for (auto& t : bucket) views.push_back(t.reshape({-1}));
    std::vector<at::Tensor> flat{bucket.size() == 1 && bucket[0].is_contiguous() ? bucket[0] : at::cat(views)};
    c10d::AllreduceOptions o;
    o.reduceOp = op;
    o.timeout = g.timeout;
    works.push_back(dispatch(g, [&](auto& pg) { return pg.allreduce(flat, o); }));
    flats.push_back(flat[0]);
  }
  for (size_t b = 0; b < buckets.size(); b++) {
    wait(g, works[b], "all_reduce");
    at::Tensor flat = flats[b];
    if (op_name == "avg") flat.div_(g.size);
    if (buckets[b].size() == 1 && buckets[b][0].is_contiguous()) {  // reduced in place: behind autograd's back,
      // so the version counter is bumped by hand (linear()'s packed weights are checked against it)
      if (!buckets[b][0].is_inference()) buckets[b][0].unsafeGetTensorImpl()->bump_version();
      continue;
    }
    int64_t offset = 0;
    for (auto& t : buckets[b]) {
      const int64_t n = t.numel();
      t.copy_(flat.narrow(0, offset, n).view(t.sizes()));
      offset += n;
    }
  }
  return a.ret_int(static_cast<int64_t>(buckets.size()));
})

// broadcast(tensors[], root): every tensor takes root's values, in place.
HHKIT_OP(dist_broadcast, {
  Group& g = group(a);
  at::NoGradGuard no_grad;
  std::vector<at::Tensor> tensors = a.tensors(0);
  const int root = static_cast<int>(a.i(1));
  for (at::Tensor& t : tensors) {
    std::vector<at::Tensor> one{t.is_contiguous() ? t : t.contiguous()};
    c10d::BroadcastOptions o;
    o.rootRank = root;
    o.timeout = g.timeout;
    wait(g, dispatch(g, [&](auto& pg) { return pg.broadcast(one, o); }), "broadcast");
    if (!one[0].is_same(t)) t.copy_(one[0]);
    else if (!t.is_inference()) t.unsafeGetTensorImpl()->bump_version();  // written in place by c10d
  }
  return a.ret_undefined();
})

// ---- a reducer that overlaps the gradient all-reduce with backward (as DDP's) ----
// Parameters are bucketed in reverse order (backward produces the last layers' gradients first). A post-hook
// on each parameter's gradient accumulator counts it ready; when a bucket's last parameter is ready, the
// bucket is flattened and its all-reduce starts while backward goes on. finish() starts the buckets whose
// parameters got no gradient, waits for all and copies the sums back. Hooks act only while armed, so with
// gradient accumulation only the last micro-batch's backward communicates.
namespace {

struct Reducer;

struct ReadyHook : torch::autograd::FunctionPostHook {
  Reducer* reducer;
  size_t index;
  ReadyHook(Reducer* r, size_t i) : reducer(r), index(i) {}
  torch::autograd::variable_list operator()(const torch::autograd::variable_list& outputs,
                                            const torch::autograd::variable_list& inputs) override;
};

struct Reducer {
  struct Bucket {
    std::vector<size_t> members;
    size_t pending = 0;
    at::Tensor flat;
    c10::intrusive_ptr<c10d::Work> work;
  };
  std::vector<at::Tensor> params;
  // Kept alive: they hold the hooks. A shared_ptr up to libtorch 2.x's switch to c10::intrusive_ptr (pip
  // torch 2.13): whatever grad_accumulator returns.
  std::vector<decltype(torch::autograd::impl::grad_accumulator(std::declval<const at::Tensor&>()))> accumulators;
  std::vector<uintptr_t> hook_keys;
  std::vector<size_t> bucket_of;
  std::vector<Bucket> buckets;
  std::mutex mu;
  bool armed = false;

  at::Tensor grad_or_zeros(size_t i) {
    const at::Tensor& g = params[i].grad();
    return g.defined() ? g : at::zeros_like(params[i]);
  }

  void launch(Bucket& b) {  // with mu held
    at::NoGradGuard no_grad;
    std::vector<at::Tensor> views;
    for (size_t i : b.members) views.push_back(grad_or_zeros(i).reshape({-1}));
    b.flat = at::cat(views);
    std::vector<at::Tensor> one{b.flat};
    c10d::AllreduceOptions o;
    o.reduceOp = c10d::ReduceOp::SUM;
    o.timeout = g_group->timeout;
    b.work = dispatch(*g_group, [&](auto& pg) { return pg.allreduce(one, o); });
  }

  void ready(size_t i) {
    std::lock_guard<std::mutex> lock(mu);
    if (!armed) return;
    Bucket& b = buckets[bucket_of[i]];
    if (b.pending > 0 && --b.pending == 0) launch(b);
  }
};

torch::autograd::variable_list ReadyHook::operator()(const torch::autograd::variable_list& outputs,
                                                     const torch::autograd::variable_list&) {
  reducer->ready(index);
  return outputs;
}

std::map<int64_t, std::unique_ptr<Reducer>> g_reducers;
int64_t g_next_reducer = 1;

Reducer& reducer_arg(Args& a) {
  auto it = g_reducers.find(a.i(0));
  if (it == g_reducers.end()) a.fail("unknown or freed gradient reducer");
  return *it->second;
}

}  // namespace

// reducer_new(params[], bucketBytes, firstBucketBytes) -> id. As DDP: a small first bucket (the last layers'
// gradients, ready first) so that communication starts early in backward.
HHKIT_OP(dist_reducer_new, {
  group(a);
  std::vector<at::Tensor> params = a.tensors(0);
  const int64_t cap = a.is_nullish(1) ? (25 << 20) : a.i(1);
  const int64_t first_cap = a.is_nullish(2) ? (1 << 20) : a.i(2);
  auto r = std::make_unique<Reducer>();
  r->params = params;
  r->bucket_of.resize(params.size());
  int64_t bytes = 0;
  for (size_t k = params.size(); k-- > 0;) {
    const at::Tensor& p = params[k];
    if (!p.requires_grad() || !p.is_leaf()) a.fail("reducer: every tensor must be a leaf parameter that requires grad");
    const int64_t n = p.numel() * static_cast<int64_t>(p.element_size());
    const int64_t limit = r->buckets.size() == 1 ? first_cap : cap;
    const bool fits = !r->buckets.empty() && bytes + n <= limit &&
                      params[r->buckets.back().members.front()].scalar_type() == p.scalar_type() &&
                      params[r->buckets.back().members.front()].device() == p.device();
    if (!fits) {
      r->buckets.emplace_back();
      bytes = 0;
    }
    r->buckets.back().members.push_back(k);
    r->bucket_of[k] = r->buckets.size() - 1;
    bytes += n;
  }
  for (size_t k = 0; k < params.size(); k++) {
    auto acc = torch::autograd::impl::grad_accumulator(params[k]);
    if (!acc) a.fail("reducer: no gradient accumulator for parameter " + std::to_string(k));
    r->hook_keys.push_back(acc->add_post_hook(std::make_unique<ReadyHook>(r.get(), k)));
    r->accumulators.push_back(std::move(acc));
  }
  const int64_t id = g_next_reducer++;
  g_reducers[id] = std::move(r);
  return a.ret_int(id);
})

// reducer_arm(id): the next backward's gradients are all-reduced as they become ready.
HHKIT_OP(dist_reducer_arm, {
  Reducer& r = reducer_arg(a);
  std::lock_guard<std::mutex> lock(r.mu);
  for (auto& b : r.buckets) {
    b.pending = b.members.size();
    b.work.reset();
    b.flat = at::Tensor();
  }
  r.armed = true;
  return a.ret_undefined();
})

// reducer_finish(id) -> buckets all-reduced during backward (the rest were started here: unused parameters)
HHKIT_OP(dist_reducer_finish, {
  Reducer& r = reducer_arg(a);
  Group& g = group(a);
  int64_t overlapped = 0;
  {
    std::lock_guard<std::mutex> lock(r.mu);
    for (auto& b : r.buckets) {
      if (b.work) overlapped++;
      else r.launch(b);
    }
    r.armed = false;
  }
  at::NoGradGuard no_grad;
  for (auto& b : r.buckets) {
    wait(g, b.work, "all_reduce");
    int64_t offset = 0;
    for (size_t i : b.members) {
      at::Tensor& p = r.params[i];
      const int64_t n = p.numel();
      at::Tensor sum = b.flat.narrow(0, offset, n).view(p.sizes());
      if (p.grad().defined()) p.mutable_grad().copy_(sum);
      else p.mutable_grad() = sum.clone();
      offset += n;
    }
    b.work.reset();
    b.flat = at::Tensor();
  }
  return a.ret_int(overlapped);
})

static void free_reducer(Reducer& r) {
  for (size_t k = 0; k < r.accumulators.size(); k++) r.accumulators[k]->del_post_hook(r.hook_keys[k]);
}

void free_all_reducers() {
  for (auto& [id, r] : g_reducers) free_reducer(*r);
  g_reducers.clear();
}

HHKIT_OP(dist_reducer_free, {
  auto it = g_reducers.find(a.i(0));
  if (it != g_reducers.end()) {
    free_reducer(*it->second);
    g_reducers.erase(it);
  }
  return a.ret_undefined();
})

HHKIT_OP(dist_barrier, {
  Group& g = group(a);
  c10d::BarrierOptions o;
  o.timeout = g.timeout;
  wait(g, dispatch(g, [&](auto& pg) { return pg.barrier(o); }), "barrier");
  return a.ret_undefined();
})

#else  // !HHKIT_DIST

static const char* kNoDist =
    "this build of the hhkit addon has no distributed support: the libtorch it was built against lacks "
    "the c10d/gloo headers (on Debian: apt-get install libgloo-dev, then `node scripts/setup.mjs`)";
HHKIT_OP(dist_init, { a.fail(kNoDist); })
HHKIT_OP(dist_destroy, { return a.ret_undefined(); })
HHKIT_OP(dist_available, { return a.ret_bool(false); })
HHKIT_OP(dist_nccl_available, { return a.ret_bool(false); })
HHKIT_OP(dist_all_reduce, { a.fail(kNoDist); })
HHKIT_OP(dist_broadcast, { a.fail(kNoDist); })
HHKIT_OP(dist_barrier, { a.fail(kNoDist); })
HHKIT_OP(dist_reducer_new, { a.fail(kNoDist); })
HHKIT_OP(dist_reducer_arm, { a.fail(kNoDist); })
HHKIT_OP(dist_reducer_finish, { a.fail(kNoDist); })
HHKIT_OP(dist_reducer_free, { return a.ret_undefined(); })

#endif

static const OpEntry kDistOps[] = {
    {"dist_init", op_dist_init},
    {"dist_destroy", op_dist_destroy},
    {"dist_available", op_dist_available},
    {"dist_nccl_available", op_dist_nccl_available},
    {"dist_all_reduce", op_dist_all_reduce},
    {"dist_broadcast", op_dist_broadcast},
    {"dist_barrier", op_dist_barrier},
    {"dist_reducer_new", op_dist_reducer_new},
    {"dist_reducer_arm", op_dist_reducer_arm},
    {"dist_reducer_finish", op_dist_reducer_finish},
    {"dist_reducer_free", op_dist_reducer_free},
};

void init_dist_ops(napi_env env, napi_value exports) {
  register_ops(env, exports, kDistOps, sizeof(kDistOps) / sizeof(kDistOps[0]));
}

}  // namespace hhkit
