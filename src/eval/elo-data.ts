/**
 * Where Elo comparisons come from: JSON-lines files of model-vs-model outcomes, or the store's
 * comparisons table (each response records the model that sampled it). Kept beside elo.ts so the
 * online rounds (§4.5) and `hhkit elo` read them the same way.
 */
import { DataFileError } from '../data/errors.ts';
import { readRawLines } from '../data/lines.ts';
import type { Store } from '../store/store.ts';
import type { EloComparison, PairCounts } from './elo.ts';

/** Which comparisons to use: helpfulness Elo, harmlessness Elo (from red-team data), or both. */
export type EloTask = 'helpful' | 'red-team' | 'all';

/** A line or row that was not used, and why (file lines are 1-based). */
export interface EloSkip {
  where: string;
  reason: string;
  /** Where the file stopped mid-way (a truncated or corrupt gzip): the lines after it were lost. */
  lost?: boolean;
}

export interface EloData {
  comparisons: (EloComparison | PairCounts)[];
  skipped: EloSkip[];
}

const isRedTeam = (task: unknown): boolean => task === 'red-team' || task === 'harmless';

/**
 * Reads one record. Accepted shapes (extra keys are ignored):
 * - `{"a": id, "b": id, "winner": "a" | "b"}`: the winner is explicit;
 * - `{"modelA": id, "modelB": id, "choice": "a" | "b", "task"?: …}`: the store's vocabulary, where
 *   `choice` is what the worker picked — for red-team (`"task": "red-team"` or `"harmless"`) that is
 *   the MORE harmful response, so the other model wins on harmlessness;
 * - `{"a": id, "b": id, "winsA": n, "winsB": n}`: counts.
 * Returns the reason as a string when the record is unusable.
 *
 * @example parseEloRecord({ modelA: 'base', modelB: 'ppo', choice: 'b' }) // { a: 'base', b: 'ppo', winner: 'b' }
 */
export function parseEloRecord(value: unknown, task: EloTask = 'all'): EloComparison | PairCounts | string {
  if (typeof value !== 'object' || value === null || Array.isArray(value)) return 'not a JSON object';
  const r = value as Record<string, unknown>;
  const recordTask = r['task'];
  if (task !== 'all' && recordTask !== undefined && isRedTeam(recordTask) !== (task === 'red-team')) {
    return `task ${JSON.stringify(recordTask)} (selected: ${task})`;
  }
  const id = (k: string): string | undefined => {
    const v = r[k];
    return typeof v === 'string' && v !== '' ? v : typeof v === 'number' ? String(v) : undefined;
  };
  let out: EloComparison | PairCounts;
  if ('winner' in r || 'winsA' in r) {
    const a = id('a');
    const b = id('b');
    if (a === undefined || b === undefined) return 'missing model id "a" or "b"';
    if ('winner' in r) {
      if (r['winner'] !== 'a' && r['winner'] !== 'b')
        return `"winner" must be "a" or "b", got ${JSON.stringify(r['winner'])}`;
      out = { a, b, winner: r['winner'] };
    } else {
      const winsA = r['winsA'];
      const winsB = r['winsB'];
      if (
        typeof winsA !== 'number' ||
        typeof winsB !== 'number' ||
        !(winsA >= 0 && winsB >= 0) ||
        !Number.isFinite(winsA + winsB)
      ) {
        return '"winsA" and "winsB" must be finite numbers ≥ 0';
      }
      out = { a, b, winsA, winsB };
    }
  } else if ('choice' in r) {
    const a = id('modelA');
    const b = id('modelB');
    if (a === undefined || b === undefined)
      return 'missing "modelA" or "modelB" (a comparison without model ids has no Elo)';
    const choice = r['choice'];
    if (choice !== 'a' && choice !== 'b') return `"choice" must be "a" or "b", got ${JSON.stringify(choice)}`;
    const picked = choice;
    out = { a, b, winner: isRedTeam(recordTask) ? (picked === 'a' ? 'b' : 'a') : picked };
  } else {
    return 'no outcome: expected "winner", "choice" or "winsA"/"winsB"';
  }
  if (out.a === out.b) return `both sides are model '${out.a}'`;
  return out;
}

/**
 * Reads comparisons from a JSON-lines file (gzipped or not); bad lines are listed with file:line and
 * skipped, and a file that stops mid-way ends with one `lost` skip where it stopped; with `strict` the
 * first of either is a DataFileError.
 *
 * @example const { comparisons, skipped } = await readEloFile('round3-comparisons.jsonl');
 */
export async function readEloFile(
  path: string,
  task: EloTask = 'all',
  opts: { strict?: boolean } = {},
): Promise<EloData> {
  const comparisons: (EloComparison | PairCounts)[] = [];
  const skipped: EloSkip[] = [];
  const skip = (line: number, reason: string, lost = false) => {
    if (opts.strict) throw new DataFileError(path, line, reason);
    skipped.push({ where: `${path}:${line}`, reason, ...(lost ? { lost } : {}) });
  };
  const decoder = new TextDecoder('utf-8', { fatal: true });
  const lines = readRawLines(path, { onUnreadable: (line, reason) => skip(line, reason, true) });
  for await (const batch of lines) {
    for (const { line, bytes } of batch) {
      if (bytes === null) {
        skip(line, 'line too long');
        continue;
      }
      let text: string;
      try {
        text = decoder.decode(bytes);
      } catch {
        skip(line, 'not UTF-8');
        continue;
      }
      if (text.trim() === '') continue;
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        skip(line, 'not JSON');
        continue;
      }
      const parsed = parseEloRecord(value, task);
      if (typeof parsed === 'string') skip(line, parsed);
      else comparisons.push(parsed);
    }
  }
  return { comparisons, skipped };
}

interface ComparisonRow {
  id: number;
  choice: 'a' | 'b';
  task: string | null;
  modelA: string | null;
  modelB: string | null;
}

/**
 * The store's comparisons between responses of registered models. `task` 'helpful' (default) gives
 * helpfulness Elo; 'red-team' gives harmlessness Elo, where the response the worker did NOT pick
 * (the less harmful) wins; 'all' uses both that way. Rows whose responses have no model, or the same
 * model on both sides, are skipped and listed. Rows with no task count as helpful.
 *
 * @example
 * using store = Store.open('project/hhkit.db', { mustExist: true });
 * const { comparisons } = storeEloComparisons(store, { task: 'helpful', round: 2 });
 */
export function storeEloComparisons(store: Store, opts: { task?: EloTask; round?: number } = {}): EloData {
  const task = opts.task ?? 'helpful';
  const rows = store.db
    .prepare(
      `SELECT c.id, c.choice, c.task, ma.name AS modelA, mb.name AS modelB
         FROM comparisons c
         JOIN responses ra ON ra.id = c.response_a
         JOIN responses rb ON rb.id = c.response_b
         LEFT JOIN models ma ON ma.id = ra.model_id
         LEFT JOIN models mb ON mb.id = rb.model_id
        WHERE (@task = 'all' OR c.task = @task OR (@task = 'helpful' AND c.task IS NULL))
          AND (@round IS NULL OR c.round_id = @round)
        ORDER BY c.id`,
    )
    .all({ task, round: opts.round ?? null }) as ComparisonRow[];
  const comparisons: EloComparison[] = [];
  const skipped: EloSkip[] = [];
  for (const row of rows) {
    const parsed = parseEloRecord({
      modelA: row.modelA,
      modelB: row.modelB,
      choice: row.choice,
      task: row.task ?? undefined,
    });
    if (typeof parsed === 'string')
      skipped.push({ where: `${store.path}: comparison ${row.id}`, reason: parsed });
    else comparisons.push(parsed as EloComparison);
  }
  return { comparisons, skipped };
}
