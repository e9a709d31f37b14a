// Shared by the server tests: a tiny random GPT checkpoint with a tokenizer trained on the spot, and a
// scripted sampler for the HTTP tests that must not wait on a real model.
import { type ChildProcess, spawn } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GPT, gptPresets } from '../nn/gpt.ts';
import { saveCheckpoint } from '../nn/checkpoint.ts';
import { Tokenizer } from '../tokenizer/tokenizer.ts';
import type { FastifyInstance } from 'fastify';
import { newToken, Store } from '../store/store.ts';
import { buildServer } from './app.ts';
import type { DeployedModel, ModelStatus, Sampler } from './models.ts';
import type { RateLimitOptions } from './ratelimit.ts';
import type { SamplingParams } from './protocol.ts';
import { BusyError, JobQueue } from './queue.ts';

/** A temp folder removed by `dispose`. */
export function tempDir(prefix: string): { path: string; dispose(): void } {
  const path = mkdtempSync(join(tmpdir(), prefix));
  return { path, dispose: () => rmSync(path, { recursive: true, force: true }) };
}

/** Saves a tiny random GPT with a freshly trained tokenizer to `dir`; returns the vocabulary size. */
export function saveTinyCheckpoint(dir: string, seed: number, name?: string): number {
  const corpus = Array.from(
    { length: 20 },
    (_, i) => `\n\nHuman: what is ${i} plus ${i}?\n\nAssistant: It is ${2 * i}.`,
  );
  const tok = Tokenizer.train(corpus, { vocabSize: 300 });
  const tokPath = `${dir}.tokenizer.json`;
  tok.save(tokPath);
  const model = new GPT({ ...gptPresets.tiny, nPositions: 64, vocabSize: tok.vocabSize }, { seed });
  saveCheckpoint(dir, {
    model,
    meta: { kind: 'policy', lineage: [], ...(name ? { name } : {}) },
    tokenizerPath: tokPath,
  });
  rmSync(tokPath);
  return tok.vocabSize;
}

/**
 * A sampler that answers from a script after `delayMs`, behind the same JobQueue as the real pool:
 * HTTP tests get deterministic texts, and busy/timeout behave as in production.
 */
export class ScriptedSampler implements Sampler {
  readonly deployed: DeployedModel[];
  readonly calls: { model: string; prompt: string; count: number; sampling: SamplingParams }[] = [];
  private readonly queues = new Map<string, JobQueue<{ count: number; model: string }, string[]>>();
  private counter = 0;

  constructor(
    deployed: DeployedModel[],
    opts: { delayMs?: number; maxWaiting?: number; timeoutMs?: number } = {},
  ) {
    this.deployed = deployed;
    for (const m of deployed) {
      const run = async (job: { count: number; model: string }) => {
        await new Promise((r) => setTimeout(r, opts.delayMs ?? 0));
        return Array.from({ length: job.count }, () => ` Reply ${++this.counter} from ${job.model}.`);
      };
      this.queues.set(
        m.name,
        new JobQueue(run, {
          concurrency: 1,
          maxWaiting: opts.maxWaiting ?? 4,
          timeoutMs: opts.timeoutMs ?? 5000,
        }),
      );
    }
  }

  free(model: string): number {
    return this.queues.get(model)?.free ?? 0;
  }

  sample(model: string, prompt: string, count: number, sampling: SamplingParams): Promise<string[]> {
    const q = this.queues.get(model);
    if (!q) return Promise.reject(new BusyError(`no model ${model}`));
    this.calls.push({ model, prompt, count, sampling });
    return q.submit({ count, model });
  }

  status(): ModelStatus[] {
    return [...this.queues].map(([name, q]) => ({
      name,
      running: Math.min(1, q.size),
      waiting: Math.max(0, q.size - 1),
      alive: true,
    }));
  }

  async close(): Promise<void> {}
}

/** An in-memory app for inject tests: a store with deployed snapshots, a crowdworker 'ana' and an admin 'boss'. */
export interface TestServer {
  app: FastifyInstance;
  store: Store;
  sampler: ScriptedSampler;
  /** ana's token (a crowdworker). */
  worker: string;
  /** boss's token (an admin). */
  admin: string;
  [Symbol.asyncDispose](): Promise<void>;
}

/**
 * Builds the feedback app over a fresh in-memory store, round 3, with `models` scripted snapshots.
 *
 * @example
 * await using s = await testServer();
 * await s.app.inject({ method: 'GET', url: '/api/me', headers: { authorization: `Bearer ${s.worker}` } });
 */
export async function testServer(
  opts: {
    models?: number;
    delayMs?: number;
    maxWaiting?: number;
    timeoutMs?: number;
    rateLimit?: RateLimitOptions;
  } = {},
): Promise<TestServer> {
  const store = Store.open(':memory:');
  const deployed = Array.from({ length: opts.models ?? 2 }, (_, i) => {
    const name = `snap-${i}`;
    return {
      id: store.addModel({ name, kind: 'policy', path: `/ckpt/${name}` }),
      name,
      path: `/ckpt/${name}`,
    };
  });
  const sampler = new ScriptedSampler(deployed, opts);
  const worker = newToken();
  const admin = newToken();
  store.addWorker({ name: 'ana', role: 'crowdworker', token: worker });
  store.addWorker({ name: 'boss', role: 'admin', token: admin });
  const app = await buildServer({
    store,
    sampler,
    round: 3,
    sampling: { maxNewTokens: 32, temperature: 0.9, topP: 0.95 },
    ...(opts.rateLimit ? { rateLimit: opts.rateLimit } : {}),
  });
  return {
    app,
    store,
    sampler,
    worker,
    admin,
    async [Symbol.asyncDispose]() {
      await app.close();
      store.close();
    },
  };
}

/** The Authorization header of a bearer token. */
export const auth = (token: string) => ({ authorization: `Bearer ${token}` });

/** Rows in a store table. */
export const rowCount = (store: Store, table: string): number =>
  (store.db.prepare(`SELECT count(*) AS n FROM ${table}`).get() as { n: number }).n;

const ROOT = new URL('../../', import.meta.url).pathname;

/** Starts `hhkit serve` and resolves with its URL and the admin token it printed (60 s at most). */
export function startServer(
  args: string[],
): Promise<{ child: ChildProcess; url: string; adminToken: string }> {
  const child = spawn(process.execPath, [join(ROOT, 'bin/hhkit.js'), 'serve', ...args], {
    cwd: ROOT,
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  return new Promise((resolve, reject) => {
    let out = '';
    let err = '';
    const timer = setTimeout(
      () => reject(new Error(`hhkit serve did not start in 60 s:\n${out}\n${err}`)),
      60_000,
    );
    child.stderr!.on('data', (d) => (err += d));
    child.stdout!.on('data', (d) => {
      out += d;
      const url = /hhkit serve: (http:\/\/127\.0\.0\.1:\d+)\//.exec(out)?.[1];
      const adminToken = /token \(shown once, keep it\): (\S+)/.exec(out)?.[1];
      if (url && adminToken) {
        clearTimeout(timer);
        resolve({ child, url, adminToken });
      }
    });
    child.on('exit', (code) => reject(new Error(`hhkit serve exited (${code}):\n${out}\n${err}`)));
  });
}
