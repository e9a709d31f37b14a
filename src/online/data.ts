// The data side of the rounds: the world's files (prompts, static comparisons, crowd), the store as the one
// place every comparison lives (the world's static data is imported as round 0), and the per-round export
// the PM trains on — "mix with all earlier data" is the union of the exports of rounds 0…k.
import { existsSync, mkdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { exportComparisons, importComparisons } from '../store/io.ts';
import { removeAtomicTemps } from '../util/atomic.ts';
import type { Store } from '../store/store.ts';
import { CrowdPool } from '../world/index.ts';
import type { WorldPrompt } from './collect.ts';

/** The world's RL prompts: the fixed static set (held out for evaluation) and the generated rest. */
export function readWorldPrompts(world: string): { train: WorldPrompt[]; eval: WorldPrompt[] } {
  const path = join(world, 'rl-prompts.jsonl');
  if (!existsSync(path)) throw new Error(`${path}: not found (make a world with hhkit world --out ${world})`);
  const train: WorldPrompt[] = [];
  const held: WorldPrompt[] = [];
  readFileSync(path, 'utf8')
    .split('\n')
    .forEach((line, i) => {
      if (!line.trim()) return;
      let row: { prompt?: unknown; family?: unknown; source?: unknown };
      try {
        row = JSON.parse(line) as typeof row;
      } catch {
        throw new Error(`${path}:${i + 1}: not JSON`);
      }
      if (typeof row.prompt !== 'string') throw new Error(`${path}:${i + 1}: no "prompt" string`);
      const item = { prompt: row.prompt, family: typeof row.family === 'string' ? row.family : 'unknown' };
      (row.source === 'static' ? held : train).push(item);
    });
  return { train, eval: held };
}

/** The world's simulated crowd (workers.json). */
export function readCrowd(world: string): CrowdPool {
  const path = join(world, 'workers.json');
  if (!existsSync(path)) throw new Error(`${path}: not found (make a world with hhkit world)`);
  return CrowdPool.fromJSON(JSON.parse(readFileSync(path, 'utf8')));
}

/** The world's static training comparisons (the paper's base dataset) and held-out test comparisons. */
export function worldComparisonFiles(world: string): { train: string[]; test: string[] } {
  const pick = (names: string[]) => names.map((n) => join(world, n)).filter((p) => existsSync(p));
  const train = pick(['helpful-train.jsonl', 'harmless-train.jsonl']);
  if (train.length === 0) throw new Error(`${world}: no helpful-train.jsonl / harmless-train.jsonl`);
  return { train, test: pick(['helpful-test.jsonl', 'harmless-test.jsonl']) };
}

/**
 * Imports the world's static training comparisons (or `files`, e.g. comparisons of the initial policy's own
 * samples) into the store once, as round 0; a damaged file's lost lines are warned about with file:line.
 * Idempotent: nothing is imported when round 0 already holds comparisons.
 *
 * @example await importStaticData(store, 'world'); // 3600 on a small world
 */
export async function importStaticData(
  store: Store,
  world: string,
  files: readonly string[] = worldComparisonFiles(world).train,
): Promise<number> {
  const have = (
    store.db.prepare('SELECT count(*) AS n FROM comparisons WHERE round_id = 0').get() as { n: number }
  ).n;
  if (have > 0) return have;
  const { imported, report } = await importComparisons(store, [...files]);
  for (const line of report.warnings()) console.error(line);
  return imported;
}

/**
 * Writes round `k`'s comparisons from the store to OUT/data/round-K.jsonl (the HH-RLHF file format with
 * task, worker, strength and round) and returns the path and count.
 *
 * @example const { path, count } = await exportRound(store, 'runs/online', 2);
 */
export async function exportRound(
  store: Store,
  out: string,
  k: number,
): Promise<{ path: string; count: number }> {
  const dir = join(out, 'data');
  mkdirSync(dir, { recursive: true });
  const path = join(dir, `round-${k}.jsonl`);
  // A kill during an earlier export of this round left its atomic write's temp file.
  removeAtomicTemps(path);
  const count = await exportComparisons(store, path, { filter: { round: k } });
  return { path, count };
}
