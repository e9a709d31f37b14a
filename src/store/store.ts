import { createHash, randomBytes } from 'node:crypto';
import { statSync } from 'node:fs';
import Database from 'better-sqlite3';
import { parseTranscript, type Turn } from '../data/transcript.ts';
import { StoreError } from './errors.ts';
import { migrate } from './migrations.ts';
import { unstorableText } from './text.ts';

export type WorkerRole = 'crowdworker' | 'admin';
export type ModelKind = 'lm' | 'pmp' | 'pm' | 'policy';
/** The store's task names: the interface's two modes (the HH file's "harmless" is red-team data). */
export type StoreTask = 'helpful' | 'red-team';

export interface WorkerRow {
  id: number;
  name: string;
  role: WorkerRole;
  created_at: number;
}

export interface ModelRow {
  id: number;
  name: string;
  kind: ModelKind;
  path: string | null;
  parent_id: number | null;
  round_id: number | null;
  config: string | null;
  created_at: number;
}

export interface NewComparison {
  conversationId: number;
  responseA: number;
  responseB: number;
  /** Which response the worker picked. */
  choice: 'a' | 'b';
  task?: StoreTask;
  strength?: number;
  edit?: string;
  round?: number;
  workerId?: number;
  source?: string;
}

export interface OpenOptions {
  /** Open an existing store only; do not create the file. */
  mustExist?: boolean;
  readonly?: boolean;
}

/** SHA-256 hex of a worker token (what the store keeps instead of the token). */
export function hashToken(token: string): string {
  return createHash('sha256').update(token).digest('hex');
}

/**
 * The project's SQLite store: workers, rounds, models, conversations with their turns, candidate
 * responses and comparisons. WAL mode with synchronous=FULL: a write that returned survives a
 * process kill and a power cut; readers never block the writer. Text that UTF-8 cannot hold (an
 * unpaired surrogate) is refused with a StoreError instead of being stored altered. Every write method runs in a
 * transaction (nested calls become savepoints of the outer one).
 *
 * @example
 * using store = Store.open('project/hhkit.db');
 * const w = store.addWorker({ name: 'ana', role: 'crowdworker' });
 */
export class Store implements Disposable {
  readonly db: Database.Database;
  private readonly stmts;
  // One wrapper for all calls: better-sqlite3 builds a new one per db.transaction(), which is slow.
  private readonly runInTransaction: Database.Transaction<(fn: () => unknown) => unknown>;

  private constructor(
    readonly path: string,
    db: Database.Database,
  ) {
    this.db = db;
    this.runInTransaction = db.transaction((fn: () => unknown) => fn());
    const p = (sql: string) => db.prepare(sql);
    this.stmts = {
      addWorker: p('INSERT INTO workers (name, role, token_hash, created_at) VALUES (?, ?, ?, ?)'),
      workerByName: p('SELECT id, name, role, created_at FROM workers WHERE name = ?'),
      workerByToken: p('SELECT id, name, role, created_at FROM workers WHERE token_hash = ?'),
      setWorkerToken: p('UPDATE workers SET token_hash = ? WHERE name = ?'),
      canSignIn: p('SELECT token_hash IS NOT NULL AS yes FROM workers WHERE name = ?'),
      ensureRound: p('INSERT OR IGNORE INTO rounds (id, started_at) VALUES (?, ?)'),
      finishRound: p('UPDATE rounds SET finished_at = ? WHERE id = ?'),
      addModel: p(
        'INSERT INTO models (name, kind, path, parent_id, round_id, config, created_at) VALUES (?, ?, ?, ?, ?, ?, ?)',
      ),
      model: p('SELECT * FROM models WHERE id = ?'),
      addConversation: p(
        'INSERT INTO conversations (task, worker_id, round_id, prompt, created_at) VALUES (?, ?, ?, ?, ?)',
      ),
      addTurn: p('INSERT INTO turns (conversation_id, idx, role, text) VALUES (?, ?, ?, ?)'),
      turns: p('SELECT role, text FROM turns WHERE conversation_id = ? ORDER BY idx'),
      addResponse: p(
        'INSERT INTO responses (conversation_id, text, model_id, sampling, created_at) VALUES (?, ?, ?, ?, ?)',
      ),
      addComparison: p(
        `INSERT INTO comparisons (conversation_id, response_a, response_b, choice, task, strength, edit,
           round_id, worker_id, source, explicit_prompt, line_style, line, created_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      ),
      countComparisons: p('SELECT count(*) AS n FROM comparisons'),
    };
  }

  /**
   * Opens (creating unless `mustExist`) and migrates the store at `path`. A folder, a missing file (with
   * `mustExist`) or a file that is not an SQLite database is a {@link StoreError} naming the path.
   *
   * @example const store = Store.open(':memory:');
   */
  static open(path: string, opts: OpenOptions = {}): Store {
    if (path !== ':memory:') {
      const kind = statSync(path, { throwIfNoEntry: false });
      if (kind?.isDirectory()) throw new StoreError(path, 'is a folder, expected an SQLite database file');
      if (!kind && opts.mustExist) throw new StoreError(path, 'cannot open: no such database file');
    }
    let db: Database.Database;
    try {
      db = new Database(path, { fileMustExist: opts.mustExist ?? false, readonly: opts.readonly ?? false });
    } catch (err) {
      throw new StoreError(path, `cannot open: ${(err as Error).message}`);
    }
    try {
      if (!opts.readonly) {
        const mode = db.pragma('journal_mode = WAL', { simple: true });
        if (mode !== 'wal' && path !== ':memory:')
          throw new StoreError(path, `cannot enable WAL (got ${mode})`);
        // FULL: a commit is on disk when it returns (NORMAL in WAL only survives process crashes).
        db.pragma('synchronous = FULL');
      }
      db.pragma('foreign_keys = ON');
      db.pragma('busy_timeout = 5000');
      if (!opts.readonly) migrate(db, undefined, path);
      else db.prepare('SELECT count(*) FROM sqlite_master').get(); // reads the header: fails on a non-database
      return new Store(path, db);
    } catch (err) {
      db.close();
      throw openError(path, err);
    }
  }

  close(): void {
    if (this.db.open) this.db.close();
  }

  [Symbol.dispose](): void {
    this.close();
  }

  /**
   * Runs `fn` in one transaction (IMMEDIATE: takes the write lock up front, so no upgrade deadlock).
   * Inside an open transaction `fn` just runs as part of it: the outer one commits or rolls back
   * the whole, and skipping a savepoint per row is what makes bulk imports fast.
   */
  transaction<T>(fn: () => T): T {
    if (this.db.inTransaction) return fn();
    return this.runInTransaction.immediate(fn) as T;
  }

  /**
   * Adds a worker; with a token, stores only its hash. Returns the id.
   *
   * @example store.addWorker({ name: 'admin', role: 'admin', token: newToken() })
   */
  addWorker(w: { name: string; role: WorkerRole; token?: string }): number {
    const hash = w.token === undefined ? null : hashToken(w.token);
    return this.transaction(() =>
      Number(this.stmts.addWorker.run(w.name, w.role, hash, Date.now()).lastInsertRowid),
    );
  }

  /** The id of the worker with this name, adding a crowdworker of that name when there is none. */
  workerId(name: string): number {
    return this.transaction(() => {
      const row = this.stmts.workerByName.get(name) as WorkerRow | undefined;
      return row ? row.id : this.addWorker({ name, role: 'crowdworker' });
    });
  }

  worker(name: string): WorkerRow | undefined {
    return this.stmts.workerByName.get(name) as WorkerRow | undefined;
  }

  /**
   * Replaces the sign-in token of worker `name` (the store keeps its hash), or with null revokes it: the
   * old token stops working at once, the worker and their data stay. A {@link StoreError} when there
   * is no such worker.
   *
   * @example store.setWorkerToken('ana', null); // ana's token no longer signs in
   */
  setWorkerToken(name: string, token: string | null): void {
    const hash = token === null ? null : hashToken(token);
    this.transaction(() => {
      if (this.stmts.setWorkerToken.run(hash, name).changes !== 1)
        throw new StoreError(this.path, `no worker '${name}'`);
    });
  }

  /** Whether worker `name` has a token that can sign in (false when revoked, never given, or no such worker). */
  canSignIn(name: string): boolean {
    return (this.stmts.canSignIn.get(name) as { yes: number } | undefined)?.yes === 1;
  }

  /** The worker a token belongs to, if any (the interface's login check). */
  workerByToken(token: string): WorkerRow | undefined {
    return this.stmts.workerByToken.get(hashToken(token)) as WorkerRow | undefined;
  }

  /** Makes sure round `n` exists (started now if new). */
  ensureRound(n: number): number {
    this.transaction(() => this.stmts.ensureRound.run(n, Date.now()));
    return n;
  }

  finishRound(n: number): void {
    this.transaction(() => {
      if (this.stmts.finishRound.run(Date.now(), n).changes !== 1)
        throw new StoreError(this.path, `no round ${n}`);
    });
  }

  /**
   * Registers a model checkpoint; `parent` is the model it was trained from (its lineage).
   *
   * @example const pm = store.addModel({ name: 'pm-r1', kind: 'pm', path: 'ckpt/pm-r1', parent: lmId, round: 1 });
   */
  addModel(m: {
    name: string;
    kind: ModelKind;
    path?: string;
    parent?: number;
    round?: number;
    config?: unknown;
  }): number {
    return this.transaction(() => {
      if (m.round !== undefined) this.ensureRound(m.round);
      const config = m.config === undefined ? null : JSON.stringify(m.config);
      const info = this.stmts.addModel.run(
        m.name,
        m.kind,
        m.path ?? null,
        m.parent ?? null,
        m.round ?? null,
        config,
        Date.now(),
      );
      return Number(info.lastInsertRowid);
    });
  }

  /** A model and its ancestors, newest first. */
  lineage(modelId: number): ModelRow[] {
    const out: ModelRow[] = [];
    for (let id: number | null = modelId; id !== null; ) {
      const row = this.stmts.model.get(id) as ModelRow | undefined;
      if (!row) throw new StoreError(this.path, `no model ${id}`);
      out.push(row);
      id = row.parent_id;
      if (out.length > 10_000) throw new StoreError(this.path, `model lineage of ${modelId} has a cycle`);
    }
    return out;
  }

  /**
   * Adds a conversation from its prompt text (turns are parsed from it) or from turns (the prompt is
   * formatted from them). Returns the id.
   *
   * @example store.addConversation({ prompt: '\n\nHuman: hi\n\nAssistant:', task: 'helpful' })
   */
  addConversation(c: { prompt: string; task?: StoreTask; workerId?: number; round?: number }): number {
    this.checkText(c.prompt, 'the prompt');
    return this.transaction(() => {
      if (c.round !== undefined) this.ensureRound(c.round);
      const info = this.stmts.addConversation.run(
        c.task ?? null,
        c.workerId ?? null,
        c.round ?? null,
        c.prompt,
        Date.now(),
      );
      const id = Number(info.lastInsertRowid);
      parseTranscript(c.prompt).turns.forEach((t, i) => {
        this.stmts.addTurn.run(id, i, t.role, t.text);
      });
      return id;
    });
  }

  turns(conversationId: number): Turn[] {
    return this.stmts.turns.all(conversationId) as Turn[];
  }

  /** Adds a candidate response to a conversation: the text after its prompt. */
  addResponse(
    conversationId: number,
    text: string,
    from: { modelId?: number; sampling?: unknown } = {},
  ): number {
    this.checkText(text, 'the response');
    const sampling = from.sampling === undefined ? null : JSON.stringify(from.sampling);
    return this.transaction(() =>
      Number(
        this.stmts.addResponse.run(conversationId, text, from.modelId ?? null, sampling, Date.now())
          .lastInsertRowid,
      ),
    );
  }

  /** Adds a comparison between two responses; `fidelity` is for imported lines (see records.ts). */
  addComparison(
    c: NewComparison,
    fidelity: { explicitPrompt?: boolean; lineStyle?: string | null; line?: string | null } = {},
  ): number {
    this.checkText(c.edit, 'the edit');
    this.checkText(fidelity.line, 'the comparison line');
    return this.transaction(() => {
      if (c.round !== undefined) this.ensureRound(c.round);
      const info = this.stmts.addComparison.run(
        c.conversationId,
        c.responseA,
        c.responseB,
        c.choice,
        c.task ?? null,
        c.strength ?? null,
        c.edit ?? null,
        c.round ?? null,
        c.workerId ?? null,
        c.source ?? null,
        fidelity.explicitPrompt ? 1 : 0,
        fidelity.lineStyle ?? null,
        fidelity.line ?? null,
        Date.now(),
      );
      return Number(info.lastInsertRowid);
    });
  }

  /** Refuses text that would read back altered (see text.ts) with a StoreError naming it. */
  private checkText(text: string | null | undefined, what: string): void {
    const why = text == null ? null : unstorableText(text, what);
    if (why) throw new StoreError(this.path, why);
  }

  countComparisons(): number {
    return (this.stmts.countComparisons.get() as { n: number }).n;
  }
}

/** A new random worker token (give it to the worker once; the store keeps only its hash). */
export function newToken(): string {
  return randomBytes(24).toString('base64url');
}

// better-sqlite3 opens any file lazily; the first read of a file that is not SQLite fails with SQLITE_NOTADB.
function openError(path: string, err: unknown): unknown {
  if (err instanceof StoreError) return err;
  const code = (err as { code?: unknown }).code;
  if (code === 'SQLITE_NOTADB')
    return new StoreError(path, 'not an SQLite database (is --db pointing at the right file?)');
  if (typeof code === 'string' && code.startsWith('SQLITE_'))
    return new StoreError(path, `cannot open: ${(err as Error).message} (${code})`);
  return err;
}
