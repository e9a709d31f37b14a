// Data-parallel scaling vs PyTorch's DistributedDataParallel on the same machine: GPT training (a GPT-2
// like the LM trainer's: 4 layers, 4 heads, 256 wide, T 128, vocab 2048, batch 8 per process) on 1 process × 1
// thread and on 2 processes × 1 thread over c10d gloo, the same work per process. Efficiency = (2-process
// global tokens/s) / (2 × 1-process tokens/s). hhkit's ranks run forward, backward with a GradientReducer
// all-reducing buckets as their gradients become ready (as src/train/loop.ts does; HHKIT_BENCH_DDP_MODE=after
// uses syncGradients after backward instead) and AdamW; PyTorch's run the same GPT
// (test/fixtures/nn/gpt_ref.py, via bench/ddp_ref.py) under DDP, whose bucketed all-reduce overlaps the
// backward pass. The 1-process runs on both sides open no process group. Every rank is a child process
// with torchrun's variables (RANK, WORLD_SIZE, MASTER_ADDR, MASTER_PORT on a free port), the sides
// alternate round by round, and each keeps its best. A control, two independent 1-process runs side by
// side, shows how much of the loss is the two processes sharing the machine rather than communication.
// Run as a script, this file is one hhkit rank (prints one JSON object).
import type { ChildProcess } from 'node:child_process';
import { existsSync, readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { freePort, rankEnv, runChild } from '../src/util/child.ts';
import {
  AdamW,
  allReduce,
  barrier,
  broadcast,
  crossEntropy,
  destroyProcessGroup,
  initProcessGroup,
  manualSeed,
  randint,
  GradientReducer,
  syncGradients,
  type Tensor,
  tidy,
  zeros,
  zerosLike,
} from '../src/engine/index.ts';
import { GPT } from '../src/nn/gpt.ts';
import { type BenchLine, referenceEnv, referencePython } from './engine.ts';

const MODEL = { nLayer: 4, nHead: 4, nEmbd: 256, nPositions: 128, vocabSize: 2048 };
// Per process. Warm-up steps allocate AdamW's state and let gloo connect; of the timed steps the fastest
// counts (each step's time is its slowest rank's), the mean is printed beside it.
const WORK = { batch: 8, seq: 128, warmup: 2, steps: 6 };
const ROUNDS = 3;
// On a shared machine a 2-process run needs both cores: before each run, wait (1 s samples, at most
// QUIET_TRIES) until other work uses under QUIET_CORES cores.
const QUIET_CORES = 0.3;
const QUIET_TRIES = 3;
// A kept run during which other work used more than BUSY_CORES cores is run again (at most RETRIES times
// more), and flagged in the output if it stays the best.
const BUSY_CORES = 0.25;
const RETRIES = 2;
const RANK_TIMEOUT_MS = 180_000;

/** What one rank measured over its timed steps (seconds, wall and CPU). */
export interface RankFigures {
  rank: number;
  worldSize: number;
  /** Wall time of each timed step. */
  stepSeconds: number[];
  /** Of which waiting for the gradient all-reduce after backward (hhkit: reducer.finish() or syncGradients; PyTorch: inside DDP's backward → null). */
  syncSeconds: number[] | null;
  /** Buckets all-reduced per step (overlap mode: those started during backward; hhkit on several processes only). */
  buckets?: number;
  /** This process's CPU time over the timed steps. */
  cpuSeconds: number;
  /** Best time of one all-reduce of one flat tensor of all the gradients' elements, after a barrier (null on 1 process). */
  allReduceSeconds: number | null;
  /** The same for the gradient tensors as syncGradients packs them (hhkit only; null elsewhere). */
  packedAllReduceSeconds?: number | null;
  /** Whole-machine busy cores over the timed steps, from /proc/stat (rank 0 only; null elsewhere). */
  machineBusyCores: number | null;
}

type Jiffies = { busy: number; total: number; cores: number } | null;

/** Busy and total jiffies of the whole machine (the first line of /proc/stat), or null off Linux. */
function cpuJiffies(): Jiffies {
  if (!existsSync('/proc/stat')) return null;
  const lines = readFileSync('/proc/stat', 'utf8').split('\n');
  const fields = lines[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = fields.slice(0, 8).reduce((a, b) => a + b, 0); // user … steal (guest is inside user)
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0); // idle + iowait
  return { busy: total - idle, total, cores: lines.filter((l) => /^cpu\d/.test(l)).length };
}

function busyCores(before: Jiffies, after: Jiffies): number | null {
  if (!before || !after || after.total === before.total) return null;
  return ((after.busy - before.busy) / (after.total - before.total)) * after.cores;
}

// ---- one hhkit rank (child process) ----

function rankMain(): RankFigures {
  const { rank, worldSize } = initProcessGroup();
  const { batch, seq, warmup, steps } = WORK;
  const V = MODEL.vocabSize;
  const model = new GPT({ ...MODEL, dropout: 0 }, { seed: 0 });
  const params = model.parameters();
  broadcast(params); // as the trainer and DDP do: every rank starts from rank 0's weights
  model.train();
  const opt = new AdamW(params, { lr: 3e-4, weightDecay: 0.1 });
  manualSeed(1 + rank); // each rank its own batch
  const x = randint(0, V, [batch, seq]);
  const y = randint(0, V, [batch, seq]);
  const stepSeconds: number[] = [];
  const syncSeconds: number[] = [];
  let buckets = 0;
  // As the LM trainer: a GradientReducer all-reduces buckets while backward runs (DDP-style);
  // HHKIT_BENCH_DDP_MODE=after sums them after backward instead (syncGradients), for comparison.
  const after = process.env.HHKIT_BENCH_DDP_MODE === 'after';
  const reducer = worldSize > 1 && !after ? new GradientReducer(params) : null;
  const step = (): void =>
    tidy(() => {
      const t0 = performance.now();
      const { logits } = model.forward(x); // (B, T, V)
      // mean over this rank's tokens ÷ world size: the summed gradient is the mean over all ranks' tokens
      reducer?.arm();
      crossEntropy(logits.view(-1, V), y.view(-1)).div(worldSize).backward();
      const t1 = performance.now();
      buckets = reducer ? reducer.finish() : syncGradients(params);
      syncSeconds.push((performance.now() - t1) / 1000);
      opt.step();
      opt.zeroGrad();
      stepSeconds.push((performance.now() - t0) / 1000);
    });
  for (let i = 0; i < warmup; i++) step();
  barrier();
  stepSeconds.length = 0;
  syncSeconds.length = 0;
  const jiffies0 = rank === 0 ? cpuJiffies() : null;
  const cpu0 = process.cpuUsage();
  for (let i = 0; i < steps; i++) step();
  const cpu = process.cpuUsage(cpu0);
  const machineBusyCores = rank === 0 ? busyCores(jiffies0, cpuJiffies()) : null;

  // The all-reduce alone, without peer skew (after a barrier): gloo on one flat tensor as PyTorch's side
  // measures it, and the gradient tensors as syncGradients sends them (packed into buckets and back).
  const allReduceAlone = (tensors: Tensor[]): number | null => {
    if (worldSize === 1) return null;
    let best = Number.POSITIVE_INFINITY;
    for (let r = 0; r < 3; r++) {
      barrier();
      const t = performance.now();
      allReduce(tensors);
      best = Math.min(best, (performance.now() - t) / 1000);
    }
    for (const g of tensors) g.dispose();
    return best;
  };
  const numel = params.reduce((n, p) => n + p.numel, 0);
  const allReduceSeconds = allReduceAlone([zeros([numel])]);
  const packedAllReduceSeconds = allReduceAlone(params.map((p) => zerosLike(p)));
  destroyProcessGroup();
  return {
    rank,
    worldSize,
    stepSeconds,
    syncSeconds: worldSize > 1 ? syncSeconds : null,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    allReduceSeconds,
    packedAllReduceSeconds,
    buckets,
    machineBusyCores,
  };
}

// ---- the benchmark (parent process) ----

interface RunFigures {
  /** Global tokens/s of the fastest step (each step's time is its slowest rank's), as bench/model.ts. */
  tokS: number;
  stepMs: number;
  /** Global tokens/s over all the timed steps. */
  meanTokS: number;
  /** In the fastest step, the ranks' mean time in the gradient all-reduce (null where not separable). */
  syncMs: number | null;
  /** The same over all timed steps. */
  meanSyncMs: number | null;
  allReduceMs: number | null;
  packedAllReduceMs: number | null;
  buckets: number | null;
  /** CPU time of one rank per step (the all-reduce included): ≈ the 1-process step if nothing is pathological. */
  cpuMsPerRankStep: number;
  /** Sum of the ranks' CPU time over the slowest rank's wall time: ≈ the number of ranks when they run in parallel. */
  cpuPerWall: number;
  /** Busy cores of the whole machine during the timed steps, less this run's own ranks (other people's work). */
  otherCores: number | null;
}

/**
 * Starts `nproc` ranks of `cmd args` with the rendezvous variables (or, with `group` false, `nproc`
 * independent 1-process runs side by side); resolves to their figures, or null.
 */
async function runRanks(
  cmd: string,
  args: string[],
  nproc: number,
  group = true,
): Promise<RunFigures | null> {
  const port = await freePort();
  const children: ChildProcess[] = [];
  const ranks = Array.from({ length: nproc }, async (_, rank): Promise<RankFigures | null> => {
    const env: NodeJS.ProcessEnv = {
      ...process.env,
      HHKIT_NUM_THREADS: '1',
      OMP_NUM_THREADS: '1',
      OPENBLAS_NUM_THREADS: '1',
      // idle OpenMP threads spinning on a 2-core machine slow both sides (see bench/model.ts)
      OMP_WAIT_POLICY: process.env.OMP_WAIT_POLICY ?? 'PASSIVE',
      HHKIT_DIST_TIMEOUT: '120',
    };
    for (const k of ['RANK', 'LOCAL_RANK', 'WORLD_SIZE', 'MASTER_ADDR', 'MASTER_PORT']) delete env[k];
    if (nproc > 1 && group) Object.assign(env, rankEnv(rank, nproc, port));
    const r = await runChild(cmd, args, {
      env: cmd === process.execPath ? env : referenceEnv(env),
      timeoutMs: RANK_TIMEOUT_MS,
      onSpawn: (child) => children.push(child),
    });
    if (r.code !== 0) {
      console.error(`[bench ddp] ${cmd} rank ${rank}/${nproc} failed (${r.signal ?? r.code}):\n${r.stderr}`);
      // its peers would wait for it until the gloo timeout: stop them now
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      return null;
    }
    return JSON.parse(r.stdout.trim().split('\n').pop()!) as RankFigures;
  });
  const figures = await Promise.all(ranks);
  if (figures.some((f) => f === null)) return null;
  const all = figures as RankFigures[];
  const steps = all[0]!.stepSeconds.length;
  const stepWall = Array.from({ length: steps }, (_, i) => Math.max(...all.map((f) => f.stepSeconds[i]!)));
  const wall = Math.max(...all.map((f) => f.stepSeconds.reduce((a, b) => a + b, 0)));
  const fastest = stepWall.indexOf(Math.min(...stepWall));
  const syncs = all.map((f) => f.syncSeconds);
  const meanOverRanks = (pick: (s: number[]) => number): number | null =>
    syncs.some((s) => s === null) ? null : (1000 * syncs.reduce((n, s) => n + pick(s!), 0)) / nproc;
  const ownCpu = all.reduce((n, f) => n + f.cpuSeconds, 0);
  const busy = all[0]!.machineBusyCores;
  const slowest = (xs: (number | null | undefined)[]): number | null => {
    const known = xs.filter((x): x is number => typeof x === 'number');
    return known.length > 0 ? 1000 * Math.max(...known) : null;
  };
  const tokens = nproc * WORK.batch * WORK.seq;
  return {
    tokS: tokens / stepWall[fastest]!,
    stepMs: 1000 * stepWall[fastest]!,
    meanTokS: (tokens * steps) / wall,
    syncMs: meanOverRanks((s) => s[fastest]!),
    meanSyncMs: meanOverRanks((s) => s.reduce((a, b) => a + b, 0) / steps),
    allReduceMs: slowest(all.map((f) => f.allReduceSeconds)),
    packedAllReduceMs: slowest(all.map((f) => f.packedAllReduceSeconds)),
    buckets: all[0]!.buckets ?? null,
    cpuMsPerRankStep: (1000 * ownCpu) / nproc / steps,
    cpuPerWall: ownCpu / wall,
    otherCores: busy === null ? null : Math.max(0, busy - ownCpu / wall),
  };
}

const sleep = (ms: number): Promise<void> => new Promise((done) => setTimeout(done, ms));

/** Waits for a quiet moment (see QUIET_CORES); returns the busy cores of the last 1 s sample. */
async function waitForQuiet(): Promise<number | null> {
  let busy: number | null = null;
  for (let i = 0; i < QUIET_TRIES; i++) {
    const before = cpuJiffies();
    await sleep(1000);
    busy = busyCores(before, cpuJiffies());
    if (busy === null || busy < QUIET_CORES) break;
  }
  return busy;
}

const loadavg = (): string =>
  existsSync('/proc/loadavg') ? readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ') : '?';

/**
 * Runs the benchmark; `--threads` does not apply (1 thread per process by design).
 *
 * @example for (const line of await runDdpBench()) console.log(JSON.stringify(line));
 */
/** How hhkit's ranks summed their gradients (HHKIT_BENCH_DDP_MODE), for the report line. */
function how(buckets: number | null): string {
  return process.env.HHKIT_BENCH_DDP_MODE === 'after'
    ? `syncGradients after backward (${buckets} bucket(s) of at most 25 MiB)`
    : `GradientReducer overlapping backward (${buckets} of its buckets started during backward; 1 MiB first, then 25 MiB)`;
}

export async function runDdpBench(): Promise<BenchLine[]> {
  const self = fileURLToPath(import.meta.url);
  const refScript = fileURLToPath(new URL('./ddp_ref.py', import.meta.url));
  const python = referencePython();
  const hasRef = existsSync(python);
  const sides = {
    hhkit: (n: number, group: boolean) => runRanks(process.execPath, ['--import', 'tsx', self], n, group),
    torch: (n: number, group: boolean) =>
      runRanks(python, [refScript, JSON.stringify({ model: MODEL, work: WORK })], n, group),
  };
  // 1: one process; 2: two ranks of one process group; pair: two independent 1-process runs side by
  // side, the control that separates sharing the machine (caches, memory, helper threads) from the
  // data-parallel communication.
  const runs = [
    { suffix: '1', n: 1, group: false },
    { suffix: '2', n: 2, group: true },
    { suffix: 'pair', n: 2, group: false },
  ] as const;
  type Key = `${'hhkit' | 'torch'}${'1' | '2' | 'pair'}`;
  const best: Partial<Record<Key, RunFigures>> = {};
  const loadBefore = loadavg();
  for (let round = 0; round < ROUNDS; round++) {
    // alternate which side goes first, so neither always runs on the warmer (or busier) machine
    const order: ('hhkit' | 'torch')[] = round % 2 === 0 ? ['hhkit', 'torch'] : ['torch', 'hhkit'];
    for (const side of order) {
      if (side === 'torch' && !hasRef) continue;
      for (const { suffix, n, group } of runs) {
        await waitForQuiet();
        const r = await sides[side](n, group);
        const key: Key = `${side}${suffix}`;
        if (r && (!best[key] || r.tokS > best[key]!.tokS)) best[key] = r;
      }
    }
  }
  const busy = (r?: RunFigures): boolean => r !== undefined && (r.otherCores ?? 0) > BUSY_CORES;
  for (let retry = 0; retry < RETRIES; retry++) {
    for (const side of ['hhkit', 'torch'] as const) {
      for (const { suffix, n, group } of runs) {
        const key: Key = `${side}${suffix}`;
        if (!busy(best[key])) continue;
        await waitForQuiet();
        const r = await sides[side](n, group);
        if (r && r.tokS > best[key]!.tokS) best[key] = r;
      }
    }
  }
  const loadAfter = loadavg();
  const busyRuns = (Object.entries(best) as [Key, RunFigures][])
    .filter(([, r]) => busy(r))
    .map(([key, r]) => `${key} (${r.otherCores!.toFixed(2)} cores)`);
  const warning =
    busyRuns.length > 0
      ? `; MACHINE BUSY: other work used over ${BUSY_CORES} cores during the kept runs ${busyRuns.join(', ')}, ` +
        'whose figures understate; rerun on a quiet machine'
      : '';
  if (warning) console.error(`[bench ddp] ${warning.slice(2)}`);
  const { hhkit1, hhkit2, torch1, torch2, hhkitpair, torchpair } = best;
  const shape = `L${MODEL.nLayer} H${MODEL.nHead} C${MODEL.nEmbd} V${MODEL.vocabSize}, B${WORK.batch} T${WORK.seq} per process`;
  const env = `1 thread per process; gloo on 127.0.0.1; best step of ${WORK.steps} (after ${WORK.warmup} warm-up) x ${ROUNDS} rounds, each run started after waiting up to ${QUIET_TRIES} s for other work under ${QUIET_CORES} cores; loadavg ${loadBefore} before, ${loadAfter} after${warning}`;
  const ratio = (a?: number, b?: number): number | null =>
    a === undefined || b === undefined ? null : Number((a / b).toFixed(3));
  const round1 = (v?: number): number | null => (v === undefined ? null : Number(v.toFixed(1)));
  const eff = (one?: RunFigures, two?: RunFigures): number | undefined =>
    one && two ? two.tokS / (2 * one.tokS) : undefined;
  const describe = (r?: RunFigures): string => {
    if (!r) return 'no figure';
    const parts = [`best step ${r.stepMs.toFixed(0)} ms`];
    if (r.syncMs !== null)
      parts.push(`of which waiting for the all-reduce after backward ${r.syncMs.toFixed(1)} ms`);
    parts.push(`mean over the steps ${r.meanTokS.toFixed(0)} tokens/s`);
    if (r.meanSyncMs !== null) parts.push(`waiting after backward ${r.meanSyncMs.toFixed(1)} ms/step`);
    if (r.allReduceMs !== null) parts.push(`one flat all-reduce alone ${r.allReduceMs.toFixed(1)} ms`);
    if (r.packedAllReduceMs !== null)
      parts.push(`the gradients' all-reduce alone ${r.packedAllReduceMs.toFixed(1)} ms`);
    parts.push(
      `CPU per rank ${r.cpuMsPerRankStep.toFixed(0)} ms/step`,
      `CPU/wall ${r.cpuPerWall.toFixed(2)}`,
    );
    if (r.otherCores !== null) parts.push(`other work on the machine ${r.otherCores.toFixed(2)} cores`);
    return parts.join(', ');
  };
  const pairNote = (one?: RunFigures, pair?: RunFigures): string =>
    one && pair
      ? `best step ${pair.stepMs.toFixed(0)} ms (alone ${one.stepMs.toFixed(0)} ms), efficiency ` +
        `${(pair.tokS / (2 * one.tokS)).toFixed(3)}, CPU/wall ${pair.cpuPerWall.toFixed(2)}`
      : 'no figure';
  const lines: BenchLine[] = [];
  if (!hhkit1 || !hhkit2) return lines;
  lines.push({
    bench: `ddp 1 process (${shape})`,
    ours: round1(hhkit1.tokS)!,
    reference: round1(torch1?.tokS),
    unit: 'tokens/s',
    ratio: ratio(hhkit1.tokS, torch1?.tokS),
    higherIsBetter: true,
    note: `forward+backward+AdamW, no process group; hhkit: ${describe(hhkit1)}; PyTorch: ${describe(torch1)}; ${env}`,
  });
  lines.push({
    bench: `ddp 2 processes global (${shape})`,
    ours: round1(hhkit2.tokS)!,
    reference: round1(torch2?.tokS),
    unit: 'tokens/s',
    ratio: ratio(hhkit2.tokS, torch2?.tokS),
    higherIsBetter: true,
    note:
      `forward+backward+gradient all-reduce+AdamW; hhkit: ${how(hhkit2.buckets)}, ${describe(hhkit2)}; PyTorch: DistributedDataParallel (all-reduce overlapping backward), ` +
      `${describe(torch2)}; ${env}`,
  });
  const ours = eff(hhkit1, hhkit2)!;
  const theirs = eff(torch1, torch2);
  lines.push({
    bench: `ddp scaling efficiency 2 vs 1 process (${shape})`,
    ours: Number(ours.toFixed(3)),
    reference: theirs === undefined ? null : Number(theirs.toFixed(3)),
    unit: '2-process tokens/s ÷ (2 × 1-process tokens/s)',
    ratio: ratio(ours, theirs),
    higherIsBetter: true,
    note:
      `the control, two independent 1-process runs side by side (no process group): ` +
      `hhkit ${pairNote(hhkit1, hhkitpair)}; PyTorch ${pairNote(torch1, torchpair)}; ${env}`,
  });
  return lines;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  console.log(JSON.stringify(rankMain()));
}
