// Threads, seeds, RNG state and devices.
import { dtypeCode } from './dtype.ts';
import { native as N } from './native.ts';
import { Tensor } from './tensor.ts';

/**
 * Sets the threads used by torch's intra-op pool AND OpenBLAS's own pool (torch's setting alone does not
 * reach OpenBLAS, whose sgemm does the matmuls on CPU). Returns whether OpenBLAS was found and set.
 *
 * @example setNumThreads(2)
 */
export function setNumThreads(n: number): boolean {
  if (!Number.isInteger(n) || n < 1)
    throw new RangeError(`setNumThreads: expected a positive integer, got ${n}`);
  return N.set_num_threads(n);
}

/**
 * The threads of torch's intra-op pool (what setNumThreads or HHKIT_NUM_THREADS set).
 *
 * @example setNumThreads(2); getNumThreads() // 2
 */
export const getNumThreads = (): number => N.get_num_threads();

/** Seeds the global generators (CPU and every CUDA device), like torch.manual_seed. */
export function manualSeed(seed: number): void {
  N.manual_seed(seed);
}

/** The generator state (a uint8 tensor) of `device`'s default generator, for bit-exact resume. */
export const getRngState = (device = 'cpu'): Tensor => new Tensor(N.get_rng_state(device));
/**
 * Restores `device`'s default generator to a state from getRngState, so the random draws that follow
 * repeat those that followed it (dropout masks of a resumed run).
 *
 * @example const state = getRngState(); const a = randn([3]); setRngState(state); const b = randn([3]); // b equals a
 */
export const setRngState = (state: Tensor, device = 'cpu'): void => N.set_rng_state(state.handle, device);

/**
 * Whether a CUDA GPU is usable: this libtorch was built with CUDA and a device is present.
 *
 * @example const device = cudaAvailable() ? 'cuda' : 'cpu';
 */
export const cudaAvailable = (): boolean => N.cuda_available();
/**
 * The number of CUDA devices visible to this process (0 without a GPU or a CUDA build).
 *
 * @example cudaDeviceCount() // 0 on a CPU machine
 */
export const cudaDeviceCount = (): number => N.cuda_device_count();
/** Waits for queued CUDA work (for timing); a no-op on CPU builds. */
export const synchronize = (): void => N.cuda_synchronize();
/**
 * The version of the libtorch the native engine is linked against.
 *
 * @example torchVersion() // '1.13.0' with Debian's libtorch-dev
 */
export const torchVersion = (): string => N.torch_version();
/**
 * Whether the linked libtorch has CUDA support compiled in (whether or not a GPU is present).
 *
 * @example builtWithCuda() // false with Debian's CPU libtorch
 */
export const builtWithCuda = (): boolean => N.built_with_cuda();

/**
 * Runs `fn` with torch's autocast on (like `with torch.autocast(device, dtype)`): matmuls, linear layers
 * and attention run in `dtype` (bfloat16 by default) while softmax, norms and losses stay float32, and
 * the float32 parameters stay the master weights that AdamW updates. Call backward() outside. Synchronous
 * `fn` only (autocast is a thread-local switch).
 *
 * @example const loss = autocast({ device: 'cuda' }, () => lossOf(model.forward(ids).logits));
 */
export function autocast<T>(
  opts: { device?: string; dtype?: 'bfloat16' | 'float16'; enabled?: boolean },
  fn: () => T,
): T {
  const type = (opts.device ?? 'cpu').startsWith('cuda') ? 'cuda' : 'cpu';
  const dtype = dtypeCode(opts.dtype ?? 'bfloat16');
  const on = opts.enabled ?? true;
  const was = N.autocast_enabled(type);
  N.set_autocast(type, on, dtype);
  try {
    return fn();
  } finally {
    // Restoring "off" also clears autocast's cache of casted weights.
    N.set_autocast(type, was, was ? dtype : dtypeCode('bfloat16'));
  }
}

/** Whether autocast is on for 'cpu' or 'cuda' on this thread. */
export const autocastEnabled = (device = 'cpu'): boolean =>
  N.autocast_enabled(device.startsWith('cuda') ? 'cuda' : 'cpu');

/** TF32 for float32 matmuls and convolutions on Ampere+ GPUs (torch.backends.*.allow_tf32); CPU ignores it. */
export const setAllowTF32 = (allow: boolean): void => N.set_allow_tf32(allow);
/**
 * Whether float32 matmuls may use TF32 on Ampere+ GPUs (what setAllowTF32 set).
 *
 * @example setAllowTF32(true); allowTF32() // true
 */
export const allowTF32 = (): boolean => N.allow_tf32();

/**
 * A device spec from a config or flag made concrete: 'auto' → 'cuda' when a GPU is usable, else 'cpu';
 * under a multi-process launch, 'cuda' → `cuda:LOCAL_RANK` (one GPU per process, as torchrun users do).
 * Throws a clear error when CUDA is asked for but this build or machine has none.
 *
 * @example resolveDevice('auto') // 'cpu' on a machine without a GPU
 */
export function resolveDevice(spec = 'auto', localRank = 0, worldSize = 1): string {
  if (spec === 'cpu') return 'cpu';
  if (spec === 'auto') {
    if (!N.cuda_available()) return 'cpu';
    spec = 'cuda';
  }
  if (!/^cuda(:\d+)?$/.test(spec))
    throw new RangeError(`device: expected auto, cpu, cuda or cuda:N, got '${spec}'`);
  if (!N.cuda_available()) {
    throw new RangeError(
      N.built_with_cuda()
        ? `device ${spec}: no GPU is visible to this process`
        : `device ${spec}: this hhkit addon was built against a CPU-only libtorch (${N.torch_version()}); ` +
            'install a CUDA PyTorch for python3 and rebuild against it: `npx hhkit setup --rebuild`',
    );
  }
  if (spec === 'cuda' && worldSize > 1) return `cuda:${localRank % N.cuda_device_count()}`;
  return spec;
}

/** 'cuda' when a GPU is usable, else 'cpu'. */
export const defaultDevice = (): string => (N.cuda_available() ? 'cuda' : 'cpu');
