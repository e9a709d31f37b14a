// Model serving: each deployed checkpoint is loaded once, in its own worker thread, behind a bounded
// queue with a deadline per job (queue.ts). The HTTP layer only sees the `Sampler` interface, so tests
// can stand in a scripted sampler for busy and timeout cases.
import { basename, resolve } from 'node:path';
import { Worker } from 'node:worker_threads';
import type { ModelKind, ModelRow, Store } from '../store/store.ts';
import type { SamplingParams, WorkerReply, WorkerRequest } from './protocol.ts';
import { BusyError, JobQueue } from './queue.ts';

/** A model the interface samples from; `id` is its row in the store's models table. */
export interface DeployedModel {
  id: number;
  name: string;
  path: string;
}

export interface ModelStatus {
  name: string;
  running: number;
  waiting: number;
  alive: boolean;
}

/** What the server needs of model serving. */
export interface Sampler {
  readonly deployed: readonly DeployedModel[];
  /** Job slots `model` would accept now. */
  free(model: string): number;
  /** `count` responses to `prompt` (a transcript ending in "\n\nAssistant:"); BusyError / TimeoutError. */
  sample(model: string, prompt: string, count: number, sampling: SamplingParams): Promise<string[]>;
  status(): ModelStatus[];
  close(): Promise<void>;
}

export interface ModelPoolOptions {
  /** Jobs waiting per model beyond the one running. Default 4. */
  maxWaiting?: number;
  /** Deadline of a sampling job in ms, waiting included. Default 30 000. */
  timeoutMs?: number;
  /**
   * Serve checkpoints whose weights hold NaN/±Inf (default false: start() fails naming the file and the
   * tensor, rather than answer every turn with an error).
   */
  allowNonFinite?: boolean;
  /** Render dialogues in each folder's chat template (Tokenizer.withChatTemplate; --chat-template). */
  chatTemplate?: boolean;
}

interface Job {
  prompt: string;
  count: number;
  sampling: SamplingParams;
}

type Pending = { resolve(texts: string[]): void; reject(err: Error): void };

/** One checkpoint in one worker thread. */
class ServedModel {
  private readonly worker: Worker;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  alive = false;
  readonly queue: JobQueue<Job, string[]>;
  readonly ready: Promise<{ kind: string; name: string | null }>;

  constructor(
    readonly dir: string,
    opts: Required<ModelPoolOptions>,
  ) {
    // execArgv [] so a parent run under `--import tsx` does not load tsx twice; from sources the .mjs
    // registers it, the compiled package (dist/) starts gen-worker.js itself.
    const entry = import.meta.url.endsWith('.ts') ? './gen-worker.mjs' : './gen-worker.js';
    this.worker = new Worker(new URL(entry, import.meta.url), {
      workerData: { dir, allowNonFinite: opts.allowNonFinite, chatTemplate: opts.chatTemplate },
      execArgv: [],
    });
    this.queue = new JobQueue((job) => this.run(job), {
      concurrency: 1,
      maxWaiting: opts.maxWaiting,
      timeoutMs: opts.timeoutMs,
    });
    this.ready = new Promise((resolveReady, rejectReady) => {
      this.worker.on('message', (reply: WorkerReply) => {
        if (reply.type === 'ready') {
          this.alive = true;
          const name = reply.info.meta?.['name'];
          resolveReady({ kind: reply.info.kind, name: typeof name === 'string' ? name : null });
          return;
        }
        const job = this.pending.get(reply.id);
        this.pending.delete(reply.id);
        if (reply.type === 'result') job?.resolve(reply.texts);
        else job?.reject(new Error(`model ${dir}: ${reply.message}`));
      });
      const fail = (err: Error) => {
        this.alive = false;
        rejectReady(err);
        for (const job of this.pending.values()) job.reject(err);
        this.pending.clear();
      };
      this.worker.on('error', (err) => fail(new Error(`model ${dir}: worker failed: ${err.message}`)));
      this.worker.on('exit', (code) => fail(new Error(`model ${dir}: worker exited (${code})`)));
    });
  }

  private run(job: Job): Promise<string[]> {
    if (!this.alive) return Promise.reject(new Error(`model ${this.dir} is not running`));
    const id = this.nextId++;
    return new Promise((resolveJob, rejectJob) => {
      this.pending.set(id, { resolve: resolveJob, reject: rejectJob });
      const req: WorkerRequest = { type: 'generate', id, ...job };
      this.worker.postMessage(req);
    });
  }

  async close(): Promise<void> {
    this.alive = false;
    await this.worker.terminate();
  }
}

/**
 * Checkpoints served from worker threads, registered in the store's models table (by name: the
 * hhkit.json "name" if set, else the folder name).
 *
 * @example
 * const pool = await ModelPool.start(store, ['runs/ppo-r1', 'runs/ppo-r2'], { timeoutMs: 20_000 });
 * const [a, b] = await pool.sample('ppo-r1', '\n\nHuman: hi\n\nAssistant:', 2, sampling);
 */
export class ModelPool implements Sampler {
  private constructor(
    readonly deployed: readonly DeployedModel[],
    private readonly served: Map<string, ServedModel>,
  ) {}

  static async start(store: Store, dirs: readonly string[], opts: ModelPoolOptions = {}): Promise<ModelPool> {
    const full = {
      maxWaiting: opts.maxWaiting ?? 4,
      timeoutMs: opts.timeoutMs ?? 30_000,
      allowNonFinite: opts.allowNonFinite ?? false,
      chatTemplate: opts.chatTemplate ?? false,
    };
    const models = dirs.map((dir) => new ServedModel(resolve(dir), full));
    try {
      const infos = await Promise.all(models.map((m) => m.ready));
      const deployed: DeployedModel[] = [];
      const served = new Map<string, ServedModel>();
      models.forEach((m, i) => {
        const info = infos[i]!;
        const name = info.name ?? basename(m.dir);
        if (served.has(name)) throw new Error(`two deployed checkpoints are both named '${name}'`);
        served.set(name, m);
        deployed.push({ id: registerModel(store, name, info.kind, m.dir), name, path: m.dir });
      });
      return new ModelPool(deployed, served);
    } catch (err) {
      await Promise.all(models.map((m) => m.close()));
      throw err;
    }
  }

  private model(name: string): ServedModel {
    const m = this.served.get(name);
    if (!m) throw new Error(`no deployed model '${name}'`);
    return m;
  }

  free(name: string): number {
    return this.model(name).queue.free;
  }

  sample(name: string, prompt: string, count: number, sampling: SamplingParams): Promise<string[]> {
    const m = this.model(name);
    if (!m.alive) return Promise.reject(new BusyError(`model '${name}' is not running`));
    return m.queue.submit({ prompt, count, sampling });
  }

  status(): ModelStatus[] {
    return [...this.served].map(([name, m]) => ({
      name,
      running: Math.min(1, m.queue.size),
      waiting: Math.max(0, m.queue.size - 1),
      alive: m.alive,
    }));
  }

  async close(): Promise<void> {
    await Promise.all([...this.served.values()].map((m) => m.close()));
  }
}

/** The store id of a served checkpoint: its existing row (same name and path) or a new one. */
export function registerModel(store: Store, name: string, kind: string, path: string): number {
  const row = store.db.prepare('SELECT * FROM models WHERE name = ?').get(name) as ModelRow | undefined;
  if (row) {
    if (row.path !== null && resolve(row.path) !== resolve(path)) {
      throw new Error(
        `the store already has a model '${name}' at ${row.path}; rename the folder or set "name" in hhkit.json`,
      );
    }
    return row.id;
  }
  if (kind === 'pm') throw new Error(`${path} is a preference model; deploy an lm or policy checkpoint`);
  const storeKind: ModelKind = kind === 'policy' ? 'policy' : 'lm';
  return store.addModel({ name, kind: storeKind, path });
}
