// Threads, seeds, RNG state and devices.
import { availableParallelism } from 'node:os';
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

export const getNumThreads = (): number => N.get_num_threads();

/** Seeds the global generators (CPU and every CUDA device), like torch.manual_seed. */
export function manualSeed(seed: number): void {
  N.manual_seed(seed);
}

/** The generator state (a uint8 tensor) of `device`'s default generator, for bit-exact resume. */
export const getRngState = (device = 'cpu'): Tensor => new Tensor(N.get_rng_state(device));
export const setRngState = (state: Tensor, device = 'cpu'): void => N.set_rng_state(state.handle, device);

export const cudaAvailable = (): boolean => N.cuda_available();
export const cudaDeviceCount = (): number => N.cuda_device_count();
/** Waits for queued CUDA work (for timing); a no-op on CPU builds. */
export const synchronize = (): void => N.cuda_synchronize();
export const torchVersion = (): string => N.torch_version();
export const builtWithCuda = (): boolean => N.built_with_cuda();

/** 'cuda' when a GPU is usable, else 'cpu'. */
export const defaultDevice = (): string => (N.cuda_available() ? 'cuda' : 'cpu');

// torch starts with one intra-op thread in some builds (Debian's reports 1 on 2 cores); use every core
// unless HHKIT_NUM_THREADS says otherwise.
const envThreads = Number(process.env.HHKIT_NUM_THREADS);
setNumThreads(Number.isInteger(envThreads) && envThreads > 0 ? envThreads : availableParallelism());
