// Snapshots of an online run: each policy is frozen into OUT/models/NAME (config, weights, tokenizer and an
// hhkit.json carrying its name) and registered in the store's models table with its lineage, so that
// `hhkit serve --models OUT/models/NAME,…` serves it under the same name and id, and every comparison's
// responses point at the snapshot that wrote them.
import {
  copyFileSync,
  existsSync,
  mkdirSync,
  readdirSync,
  readFileSync,
  renameSync,
  rmSync,
  writeFileSync,
} from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { CONFIG_FILE, META_FILE, TOKENIZER_FILE, WEIGHTS_FILE } from '../nn/checkpoint.ts';
import type { ModelKind, ModelRow, Store } from '../store/store.ts';
import type { Snapshot } from './state.ts';
import { TOKENIZER_COMPANION_FILES } from '../util/hf-files.ts';

/**
 * Copies checkpoint `from` into `dir` (atomically: a temp folder renamed into place) with `name` set in
 * its hhkit.json. Returns `dir`. An existing `dir` is kept as it is (a resumed run froze it already).
 *
 * @example freezeSnapshot('runs/online/rounds/1/ppo/checkpoint', 'runs/online/models/policy-r1', 'policy-r1');
 */
export function freezeSnapshot(
  from: string,
  dir: string,
  name: string,
  extraMeta: Record<string, unknown> = {},
): string {
  if (existsSync(join(dir, CONFIG_FILE))) return dir;
  // Temp folders of freezes a kill interrupted (any process's), so `serve --models OUT/models/*` never meets one.
  const parent = dirname(dir);
  if (existsSync(parent))
    for (const n of readdirSync(parent))
      if (n.startsWith(`${basename(dir)}.tmp-`)) rmSync(join(parent, n), { recursive: true, force: true });
  const tmp = `${dir}.tmp-${process.pid}`;
  mkdirSync(tmp, { recursive: true });
  for (const file of [CONFIG_FILE, WEIGHTS_FILE, TOKENIZER_FILE]) {
    if (!existsSync(join(from, file))) throw new Error(`${from}: no ${file}; not a complete checkpoint`);
    copyFileSync(join(from, file), join(tmp, file));
  }
  for (const file of TOKENIZER_COMPANION_FILES)
    if (existsSync(join(from, file))) copyFileSync(join(from, file), join(tmp, file));
  const metaPath = join(from, META_FILE);
  const meta = existsSync(metaPath)
    ? (JSON.parse(readFileSync(metaPath, 'utf8')) as Record<string, unknown>)
    : { kind: 'lm', lineage: [] };
  writeFileSync(
    join(tmp, META_FILE),
    `${JSON.stringify({ ...meta, ...extraMeta, name, frozenFrom: resolve(from) }, null, 2)}\n`,
  );
  rmSync(dir, { recursive: true, force: true });
  renameSync(tmp, dir);
  return dir;
}

/**
 * The store id of model `name`: its row when it exists (the path must match), else a new row with
 * `parent` as its lineage. The same rule as the server's registration, so both agree on ids.
 *
 * @example const id = ensureModel(store, { name: 'pm-r2', kind: 'pm', path: 'runs/online/rounds/2/pm/checkpoint', parent: lmId, round: 2 });
 */
export function ensureModel(
  store: Store,
  m: { name: string; kind: ModelKind; path: string; parent?: number; round?: number; config?: unknown },
): number {
  const row = store.db.prepare('SELECT * FROM models WHERE name = ?').get(m.name) as ModelRow | undefined;
  if (row) {
    if (row.path !== null && resolve(row.path) !== resolve(m.path))
      throw new Error(
        `the store already has a model '${m.name}' at ${row.path}, not ${m.path}; use another store or out`,
      );
    return row.id;
  }
  return store.addModel({ ...m, path: resolve(m.path) });
}

/** Freezes and registers a policy snapshot. */
export function registerSnapshot(
  store: Store,
  opts: { from: string; modelsDir: string; name: string; parent?: number; round?: number; config?: unknown },
): Snapshot {
  const path = freezeSnapshot(opts.from, join(opts.modelsDir, opts.name), opts.name);
  const id = ensureModel(store, {
    name: opts.name,
    kind: 'policy',
    path,
    ...(opts.parent === undefined ? {} : { parent: opts.parent }),
    ...(opts.round === undefined ? {} : { round: opts.round }),
    ...(opts.config === undefined ? {} : { config: opts.config }),
  });
  return { id, name: opts.name, path };
}

/**
 * The snapshots to deploy in a round: the base policy (the Elo anchor, so every rating is relative to
 * the same model and the comparison graph stays connected) plus the newest `count − 1` policies.
 *
 * @example chooseDeployment(base, [r0, r1, r2], 3) // [base, r1, r2]
 */
export function chooseDeployment(base: Snapshot, policies: readonly Snapshot[], count: number): Snapshot[] {
  return [base, ...policies.slice(Math.max(0, policies.length - (count - 1)))];
}
