// `hhkit launch`: starts N ranks of an hhkit command with torchrun's env:// rendezvous variables
// (RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR, MASTER_PORT), as torchrun does for Python
// scripts. The ranks open a c10d process group (engine/distributed.ts) and train data-parallel. When one
// rank fails, the launcher stops the others and exits with that rank's status: nobody waits on a peer
// that is gone.
import { type ChildProcess, spawn } from 'node:child_process';
import { availableParallelism } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { freePort } from '../util/child.ts';
import { numberOption, type OptionSpec, parseArgs, stringOption, UsageError } from './args.ts';
import type { Command } from './main.ts';

const OPTIONS: OptionSpec = {
  command: 'launch',
  values: ['nproc', 'nnodes', 'node-rank', 'master-addr', 'master-port', 'threads', 'backend'],
};

const help = `usage: hhkit launch [--nproc N] [--nnodes M --node-rank K --master-addr HOST --master-port P]
                    -- <hhkit command> [its options]

Runs N processes of an hhkit command that train data-parallel through torch's c10d (gloo on CPU, NCCL on
GPU builds), like torchrun. Each process gets RANK, LOCAL_RANK, WORLD_SIZE, LOCAL_WORLD_SIZE, MASTER_ADDR
and MASTER_PORT; rank 0 hosts the rendezvous store. Commands that train data-parallel: pretrain,
pm pretrain, pm train (--batch-size is per process: the global batch is N × batch-size) and ppo (its
--batch-size and --mini-batch-size are global, split across the ranks, which each sample their share).

On several machines, run the same line on each with --nnodes, a distinct --node-rank and the address of
node 0 (a shared --out folder is needed for --resume). gloo binds to this machine's address on node 0's
subnet; where the machines meet through a routed network, set GLOO_SOCKET_IFNAME to the interface to use.
HHKIT_DIST_TIMEOUT (seconds, default 1800) bounds how long a rank waits for its peers.

Rank 0's output passes through unchanged (so --json works); other ranks' lines are prefixed with
[rank R]. If a rank exits with an error or is killed, the launcher stops the others (SIGTERM, then
SIGKILL after 10 s) and exits with that rank's status.

options:
  --nproc N            processes on this machine (default 2)
  --nnodes M           machines (default 1)
  --node-rank K        this machine's index, 0 … M-1 (default 0)
  --master-addr HOST   address of node 0 (default 127.0.0.1)
  --master-port P      rendezvous port (default: a free port on one machine, 29500 on several)
  --threads T          torch threads per process (default: cores / N, at least 1; HHKIT_NUM_THREADS wins)
  --backend B          gloo or nccl (default gloo; nccl needs a CUDA build)`;

/** The commands whose ranks split the work and sync gradients (others would just run N times). */
const DATA_PARALLEL = new Set(['pretrain', 'pm pretrain', 'pm train', 'ppo']);

const bin = join(dirname(fileURLToPath(import.meta.url)), '..', '..', 'bin', 'hhkit.js');

/** Forwards a child's stream line by line, prefixed (or not, for rank 0). */
function pipeLines(from: NodeJS.ReadableStream, to: NodeJS.WritableStream, prefix: string): void {
  if (prefix === '') {
    from.pipe(to, { end: false });
    return;
  }
  let partial = '';
  from.on('data', (chunk: Buffer) => {
    const lines = (partial + chunk.toString()).split('\n');
    partial = lines.pop()!;
    for (const line of lines) to.write(`${prefix}${line}\n`);
  });
  from.on('end', () => {
    if (partial) to.write(`${prefix}${partial}\n`);
  });
}

export const command: Command = {
  summary: 'run an hhkit command data-parallel on N processes (torchrun-style env:// rendezvous)',
  help,
  async run(argv) {
    const split = argv.indexOf('--');
    if (split < 0 || split === argv.length - 1) {
      throw new UsageError(
        'launch: give the command after --, e.g. hhkit launch --nproc 2 -- pretrain --data F',
      );
    }
    const inner = argv.slice(split + 1);
    const what = inner[0] === 'pm' ? `pm ${inner[1] ?? ''}` : (inner[0] ?? '');
    if (!DATA_PARALLEL.has(what)) {
      throw new UsageError(
        `launch: \`${what}\` does not train data-parallel (N copies would write the same files); ` +
          `commands that do: ${[...DATA_PARALLEL].join(', ')}`,
      );
    }
    const { options, positionals } = parseArgs(argv.slice(0, split), OPTIONS);
    if (positionals.length > 0) throw new UsageError(`launch: unexpected argument '${positionals[0]}'`);
    const int = (key: string, fallback: number, min: number): number => {
      const v = numberOption(options, key, fallback);
      if (!Number.isInteger(v) || v < min)
        throw new UsageError(`--${key} expects an integer ≥ ${min}, got ${v}`);
      return v;
    };
    const nproc = int('nproc', 2, 1);
    const nnodes = int('nnodes', 1, 1);
    const nodeRank = int('node-rank', 0, 0);
    if (nodeRank >= nnodes) throw new UsageError(`--node-rank ${nodeRank} must be below --nnodes ${nnodes}`);
    const masterAddr = stringOption(options, 'master-addr', '127.0.0.1');
    const masterPort =
      options['master-port'] !== undefined
        ? int('master-port', 29500, 1)
        : nnodes === 1
          ? await freePort(masterAddr)
          : 29500;
    const threads = int('threads', Math.max(1, Math.floor(availableParallelism() / nproc)), 1);
    const backend = stringOption(options, 'backend', 'gloo');
    if (backend !== 'gloo' && backend !== 'nccl') throw new UsageError(`--backend: expected gloo or nccl`);
    const worldSize = nnodes * nproc;

    const children: ChildProcess[] = [];
    let failure: { rank: number; code: number | null; signal: NodeJS.Signals | null } | null = null;
    let stopping = false;
    const stopAll = (signal: NodeJS.Signals): void => {
      stopping = true;
      for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill(signal);
      setTimeout(() => {
        for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
      }, 10_000).unref();
    };
    const onSignal = (signal: NodeJS.Signals) => () => stopAll(signal);
    const sigint = onSignal('SIGINT');
    const sigterm = onSignal('SIGTERM');
    process.on('SIGINT', sigint);
    process.on('SIGTERM', sigterm);

    const exits = Array.from({ length: nproc }, (_, local) => {
      const rank = nodeRank * nproc + local;
      const child = spawn(process.execPath, [bin, ...inner], {
        stdio: ['ignore', 'pipe', 'pipe'],
        env: {
          ...process.env,
          RANK: String(rank),
          LOCAL_RANK: String(local),
          WORLD_SIZE: String(worldSize),
          LOCAL_WORLD_SIZE: String(nproc),
          MASTER_ADDR: masterAddr,
          MASTER_PORT: String(masterPort),
          HHKIT_DIST_BACKEND: backend,
          HHKIT_NUM_THREADS: process.env.HHKIT_NUM_THREADS ?? String(threads),
        },
      });
      children.push(child);
      const prefix = rank === 0 ? '' : `[rank ${rank}] `;
      pipeLines(child.stdout!, process.stdout, prefix);
      pipeLines(child.stderr!, process.stderr, prefix);
      process.stderr.write(`launch: rank ${rank} of ${worldSize} started (pid ${child.pid})\n`);
      return new Promise<void>((done) => {
        child.on('close', (code, signal) => {
          if ((code !== 0 || signal !== null) && !failure && !stopping) {
            failure = { rank, code, signal };
            const how = signal ? `was killed by ${signal}` : `exited with status ${code}`;
            process.stderr.write(`launch: rank ${rank} ${how}; stopping the other ranks\n`);
            stopAll('SIGTERM');
          }
          done();
        });
      });
    });
    await Promise.all(exits);
    process.off('SIGINT', sigint);
    process.off('SIGTERM', sigterm);
    const failed = failure as { rank: number; code: number | null; signal: NodeJS.Signals | null } | null;
    if (failed) return failed.code && failed.code > 0 ? failed.code : 1;
    return stopping ? 130 : 0;
  },
};
