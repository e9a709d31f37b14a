// Data-parallel training over torch's c10d process groups (native/dist.cc): gloo on CPU, NCCL on CUDA
// builds. The rendezvous is env:// as torchrun sets it up — RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT
// (LOCAL_RANK picks the GPU) — so `hhkit launch` on one machine and a hand-started process per machine
// both work. Without WORLD_SIZE (or with WORLD_SIZE=1) everything here is a no-op on one process, so
// trainers call it unconditionally.
import { networkInterfaces } from 'node:os';
import { dtypeCode } from './dtype.ts';
import { native as N } from './native.ts';
import { zerosLike } from './ops.ts';
import type { Tensor } from './tensor.ts';

export type Backend = 'gloo' | 'nccl';
export type ReduceOp = 'sum' | 'avg' | 'max' | 'min';

export interface DistEnv {
  rank: number;
  worldSize: number;
  localRank: number;
  masterAddr: string;
  masterPort: number;
}

export interface ProcessGroupOptions extends Partial<DistEnv> {
  /** 'gloo' (CPU, default) or 'nccl' (CUDA builds). */
  backend?: Backend;
  /** How long a collective waits for its peers before failing (default HHKIT_DIST_TIMEOUT seconds, or 30 min). */
  timeoutMs?: number;
}

/** Thrown for a malformed rendezvous environment (names the variable and what was expected). */
export class DistributedError extends Error {
  override name = 'DistributedError';
}

let current: { rank: number; worldSize: number; localRank: number; backend: Backend } | null = null;

function intVar(env: NodeJS.ProcessEnv, name: string, fallback: number, min: number): number {
  const raw = env[name];
  if (raw === undefined || raw === '') return fallback;
  const v = Number(raw);
  if (!Number.isInteger(v) || v < min) {
    throw new DistributedError(`${name}=${raw}: expected an integer ≥ ${min}`);
  }
  return v;
}

/**
 * The rendezvous read from the environment (torchrun's variables), or null when WORLD_SIZE is unset.
 *
 * @example distEnv({ RANK: '1', WORLD_SIZE: '2', MASTER_PORT: '29500' }) // {rank: 1, worldSize: 2, …}
 */
export function distEnv(env: NodeJS.ProcessEnv = process.env): DistEnv | null {
  if (env.WORLD_SIZE === undefined || env.WORLD_SIZE === '') return null;
  const worldSize = intVar(env, 'WORLD_SIZE', 1, 1);
  const rank = intVar(env, 'RANK', 0, 0);
  if (rank >= worldSize) throw new DistributedError(`RANK=${rank} is not below WORLD_SIZE=${worldSize}`);
  return {
    rank,
    worldSize,
    localRank: intVar(env, 'LOCAL_RANK', rank, 0),
    masterAddr: env.MASTER_ADDR || '127.0.0.1',
    masterPort: intVar(env, 'MASTER_PORT', 29500, 1),
  };
}

/** Whether this addon was built with c10d (gloo), i.e. whether multi-process training can run. */
export const distributedAvailable = (): boolean => N.dist_available();
/** Whether this addon was built with NCCL (CUDA builds against a pip torch). */
export const ncclAvailable = (): boolean => N.dist_nccl_available();

/**
 * Opens this process's process group (once). Options default to the environment (`distEnv()`); with a
 * world size of 1 nothing is opened and every collective is the identity. Returns the rank and size.
 *
 * @example
 * const { rank, worldSize } = initProcessGroup(); // under `hhkit launch --nproc 2 -- …`
 */
export function initProcessGroup(options: ProcessGroupOptions = {}): { rank: number; worldSize: number } {
  if (current) return { rank: current.rank, worldSize: current.worldSize };
  const env = distEnv();
  const rank = options.rank ?? env?.rank ?? 0;
  const worldSize = options.worldSize ?? env?.worldSize ?? 1;
  const localRank = options.localRank ?? env?.localRank ?? rank;
  const envBackend = process.env.HHKIT_DIST_BACKEND;
  if (envBackend && envBackend !== 'gloo' && envBackend !== 'nccl') {
    throw new DistributedError(`HHKIT_DIST_BACKEND=${envBackend}: expected gloo or nccl`);
  }
  const backend = options.backend ?? (envBackend as Backend | undefined) ?? 'gloo';
  if (worldSize > 1) {
    if (!N.dist_available()) {
      throw new DistributedError(
        'this hhkit addon was built without c10d/gloo, so it cannot train on several processes; ' +
          'on Debian install libgloo-dev and rebuild: `npx hhkit setup --rebuild`',
      );
    }
    const timeoutEnv = Number(process.env.HHKIT_DIST_TIMEOUT);
    const timeoutMs = options.timeoutMs ?? (timeoutEnv > 0 ? Math.round(timeoutEnv * 1000) : 30 * 60 * 1000);
    const masterAddr = options.masterAddr ?? env?.masterAddr ?? '127.0.0.1';
    const masterPort = options.masterPort ?? env?.masterPort ?? 29500;
    try {
      N.dist_init(
        backend,
        rank,
        worldSize,
        masterAddr,
        masterPort,
        timeoutMs,
        localAddressToward(masterAddr),
      );
    } catch (err) {
      throw new DistributedError(
        `rank ${rank} of ${worldSize} could not join the process group at ${masterAddr}:${masterPort}: ` +
          `${(err as Error).message}. Check that every rank uses the same MASTER_ADDR/MASTER_PORT and ` +
          'WORLD_SIZE, that the port is reachable, and on several machines set GLOO_SOCKET_IFNAME to the ' +
          'network interface that connects them',
      );
    }
  }
  current = { rank, worldSize, localRank, backend };
  return { rank, worldSize };
}

/**
 * This machine's IPv4 address on the master's network, for gloo to bind to: loopback for a loopback
 * master, the master's own address on the master, else the address of the interface whose subnet holds
 * the master. null when none matches (a hostname, or a routed network): gloo then resolves the hostname.
 */
export function localAddressToward(masterAddr: string): string | null {
  if (masterAddr === 'localhost' || masterAddr.startsWith('127.')) return '127.0.0.1';
  const parse = (ip: string): number | null => {
    const parts = ip.split('.').map(Number);
    if (parts.length !== 4 || parts.some((p) => !Number.isInteger(p) || p < 0 || p > 255)) return null;
    return ((parts[0]! << 24) | (parts[1]! << 16) | (parts[2]! << 8) | parts[3]!) >>> 0;
  };
  const master = parse(masterAddr);
  if (master === null) return null;
  for (const addrs of Object.values(networkInterfaces())) {
    for (const a of addrs ?? []) {
      if (a.family !== 'IPv4') continue;
      const mine = parse(a.address);
      const mask = parse(a.netmask);
      if (mine === null || mask === null) continue;
      if (mine === master || (mine & mask) >>> 0 === (master & mask) >>> 0) return a.address;
    }
  }
  return null;
}

/** Closes the process group (a later initProcessGroup may open another). */
export function destroyProcessGroup(): void {
  if (current && current.worldSize > 1) N.dist_destroy();
  current = null;
}

/** This process's rank (0 without a process group). */
export const getRank = (): number => current?.rank ?? 0;
/** The number of processes (1 without a process group). */
export const getWorldSize = (): number => current?.worldSize ?? 1;
/** The rank on this machine (picks `cuda:LOCAL_RANK`). */
export const getLocalRank = (): number => current?.localRank ?? 0;
/** True on rank 0 — the process that logs, writes checkpoints and metrics. */
export const isMainProcess = (): boolean => getRank() === 0;

const multi = (): boolean => current !== null && current.worldSize > 1;

/**
 * Reduces `tensors` in place across every process: 'sum', 'avg', 'max' or 'min'. Tensors are packed into
 * buckets of at most `bucketBytes` (25 MiB, DDP's default), one flat all-reduce per bucket, all in flight
 * at once. Returns the number of buckets (0 on one process).
 */
export function allReduce(
  tensors: readonly Tensor[],
  op: ReduceOp = 'sum',
  options: { bucketBytes?: number } = {},
): number {
  if (!multi() || tensors.length === 0) return 0;
  return N.dist_all_reduce(
    tensors.map((t) => t.handle),
    op,
    options.bucketBytes ?? 25 * 1024 * 1024,
  );
}

/**
 * All-reduces plain numbers (losses, counts) through a float64 tensor; returns the reduced values.
 * On one process, returns a copy of `values`.
 */
export function allReduceNumbers(values: readonly number[], op: ReduceOp = 'sum'): number[] {
  if (!multi() || values.length === 0) return [...values];
  const cpu = N.from_buffer(new Float64Array(values), dtypeCode('float64'), [values.length]);
  // NCCL reduces GPU tensors only: the numbers travel through this rank's GPU.
  const h = current?.backend === 'nccl' ? N.to_device(cpu, `cuda:${current.localRank}`) : cpu;
  try {
    N.dist_all_reduce([h], op, 1 << 20);
    return Array.from(new Float64Array(N.to_buffer(h)));
  } finally {
    if (h !== cpu) N.free(h);
    N.free(cpu);
  }
}

/**
 * Every process's `bytes`, in rank order, on every process (e.g. each rank's generator state for a
 * checkpoint): one all-reduce of a float64 vector that holds each rank's bytes in its own slot, exact for
 * byte values. All ranks must pass the same length (a DistributedError otherwise). On one process,
 * `[bytes]`.
 *
 * @example const states = allGatherBytes(getRngState().toTypedArray() as Uint8Array); // states[1]: rank 1's
 */
export function allGatherBytes(bytes: Uint8Array): Uint8Array[] {
  if (!multi()) return [bytes.slice()];
  const rank = getRank();
  const worldSize = getWorldSize();
  const [longest] = allReduceNumbers([bytes.length], 'max');
  const [shortest] = allReduceNumbers([bytes.length], 'min');
  if (longest !== shortest)
    throw new DistributedError(
      `allGatherBytes: the ranks hold ${shortest} to ${longest} bytes (rank ${rank}: ${bytes.length}); every rank must pass the same length`,
    );
  const n = bytes.length;
  const slots = new Array<number>(worldSize * n).fill(0);
  for (let i = 0; i < n; i++) slots[rank * n + i] = bytes[i]!;
  const all = allReduceNumbers(slots, 'sum');
  return Array.from({ length: worldSize }, (_, r) => Uint8Array.from(all.slice(r * n, (r + 1) * n)));
}

/** Every process's tensors take rank `root`'s values, in place (e.g. parameters after init). */
export function broadcast(tensors: readonly Tensor[], root = 0): void {
  if (!multi() || tensors.length === 0) return;
  N.dist_broadcast(
    tensors.map((t) => t.handle),
    root,
  );
}

/** Waits until every process reaches this point. */
export function barrier(): void {
  if (multi()) N.dist_barrier();
}

/**
 * Sums the gradients of `params` over every process (in buckets), so that each holds the gradient of the
 * loss summed over all processes' batches. Trainers scale their per-process loss by the global
 * normaliser (e.g. the target tokens of the whole step), so the sum is exactly the 1-process gradient.
 * Parameters without a gradient get zeros first, so every process sends the same buckets.
 */
export function syncGradients(params: readonly Tensor[], options: { bucketBytes?: number } = {}): number {
  if (!multi()) return 0;
  const grads: Tensor[] = [];
  for (const p of params) {
    let g = p.grad;
    if (g === null) {
      const zeros = zerosLike(p);
      p.grad = zeros;
      zeros.dispose();
      g = p.grad;
    }
    if (g) grads.push(g);
  }
  try {
    return allReduce(grads, 'sum', options);
  } finally {
    for (const g of grads) g.dispose();
  }
}

/**
 * Sums gradients over the processes while backward runs, as PyTorch's DDP does: parameters are bucketed
 * (25 MiB, the first one 1 MiB, in reverse order, since backward produces the last layers first), a hook on each parameter's
 * gradient accumulator marks it ready, and a bucket's all-reduce starts as soon as all its parameters are
 * ready. Call `arm()` before the backward whose gradients should be summed (the last micro-batch when
 * accumulating) and `finish()` after it. On one process both are no-ops.
 *
 * @example
 * const reducer = new GradientReducer(params);
 * reducer.arm(); loss.backward(); reducer.finish(); // params' .grad now hold the sums over ranks
 */
export class GradientReducer {
  private id = 0;

  constructor(params: readonly Tensor[], options: { bucketBytes?: number; firstBucketBytes?: number } = {}) {
    if (multi()) {
      this.id = N.dist_reducer_new(
        params.map((p) => p.handle),
        options.bucketBytes ?? 25 * 1024 * 1024,
        options.firstBucketBytes ?? 1024 * 1024,
      );
    }
  }

  /** The next backward's gradients are all-reduced as they become ready. */
  arm(): void {
    if (this.id) N.dist_reducer_arm(this.id);
  }

  /**
   * Waits for the buckets (starting those whose parameters got no gradient) and writes the sums into
   * `.grad`. Returns how many buckets were all-reduced during backward.
   */
  finish(): number {
    return this.id ? N.dist_reducer_finish(this.id) : 0;
  }

  /** Removes the hooks. */
  dispose(): void {
    if (this.id) N.dist_reducer_free(this.id);
    this.id = 0;
  }
}

/**
 * How far the ranks' copies of `params` have drifted apart: the largest difference, over tensors, between
 * the ranks' max and min of each tensor's sum of values (0 when all ranks hold the same weights, and on
 * one process). One small all-reduce pair; trainers may call it at checkpoints as a cheap sanity check.
 */
export function parameterDrift(params: readonly Tensor[]): number {
  if (!multi() || params.length === 0) return 0;
  const sums = params.map((p) => noGradSum(p));
  const hi = allReduceNumbers(sums, 'max');
  const lo = allReduceNumbers(sums, 'min');
  return hi.reduce((worst, h, i) => Math.max(worst, Math.abs(h - lo[i]!)), 0);
}

function noGradSum(p: Tensor): number {
  const d = p.detach();
  const s = d.sum();
  const v = s.item();
  d.dispose();
  s.dispose();
  return v;
}
