// Comparison data for the preference model: files → records with a task → held-out split → token ids.
import { loadComparisons, LoadReport } from '../data/comparisons.ts';
import { assignSplit, hashUnit } from '../data/split.ts';
import type { ComparisonRecord, ComparisonTask } from '../data/types.ts';
import type { Tokenizer } from '../tokenizer/index.ts';
import { type EncodedComparison, encodeTranscripts } from './batch.ts';

/** A record with its task settled. */
export interface TaskedComparison {
  record: ComparisonRecord;
  task: ComparisonTask;
}

/**
 * The task of a record: its own `task` field (hhkit's form), else the file it came from — the HH-RLHF
 * release keeps red-team data in `harmless-base/` (and the world in `harmless-*.jsonl`) — else helpful.
 *
 * @example taskOf({ chosen: '…', rejected: '…' }, 'hh-rlhf/harmless-base/test.jsonl.gz') // 'harmless'
 */
export function taskOf(record: ComparisonRecord, path: string): ComparisonTask {
  if (record.task) return record.task;
  return /harmless|red[-_]?team/i.test(path) ? 'harmless' : 'helpful';
}

/** Splits a comma-separated file list, dropping blanks. */
export const fileList = (files: string): string[] =>
  files
    .split(',')
    .map((f) => f.trim())
    .filter((f) => f !== '');

/**
 * Loads comparison files with their tasks and the load report (bad lines are reported with
 * file:line and skipped; with `strict` the first one throws a ComparisonFileError).
 *
 * @example const { items, report } = await loadTaskedComparisons(['helpful-train.jsonl', 'harmless-train.jsonl']);
 */
export async function loadTaskedComparisons(
  paths: readonly string[],
  opts: { strict?: boolean } = {},
): Promise<{ items: TaskedComparison[]; report: LoadReport }> {
  const report = new LoadReport();
  const items: TaskedComparison[] = [];
  for (const path of paths) {
    const { records } = await loadComparisons(path, { report, strict: opts.strict });
    for (const record of records) items.push({ record, task: taskOf(record, path) });
  }
  return { items, report };
}

/**
 * A seeded sample of at most `n` items, in their original order (0 = all).
 *
 * @example sampleComparisons(items, 1000, 1).length // ≤ 1000
 */
export function sampleComparisons<T>(items: readonly T[], n: number, seed: number): T[] {
  if (n <= 0 || n >= items.length) return [...items];
  const keyed = items.map((item, i) => ({ item, i, key: hashUnit(String(i), seed) }));
  keyed.sort((a, b) => a.key - b.key);
  return keyed
    .slice(0, n)
    .sort((a, b) => a.i - b.i)
    .map((k) => k.item);
}

/**
 * Train/held-out split by conversation hash (data/split.ts: comparisons sharing a first human turn
 * stay together), for files that come without a test set.
 */
export function holdOut(
  items: readonly TaskedComparison[],
  fraction: number,
  seed: number,
): { train: TaskedComparison[]; test: TaskedComparison[] } {
  const train: TaskedComparison[] = [];
  const test: TaskedComparison[] = [];
  for (const item of items) (assignSplit(item.record, fraction, seed) === 'test' ? test : train).push(item);
  return { train, test };
}

/**
 * Token ids of every comparison (see encodeTranscripts), with how many transcripts were truncated.
 *
 * @example const { encoded } = await encodeComparisons(tok, items, 128);
 */
export async function encodeComparisons(
  tokenizer: Tokenizer,
  items: readonly TaskedComparison[],
  maxLength: number,
): Promise<{ encoded: EncodedComparison[]; truncated: number }> {
  const texts = items.flatMap((c) => [c.record.chosen, c.record.rejected]);
  const { ids, truncated } = await encodeTranscripts(tokenizer, texts, maxLength);
  const encoded = items.map((c, i) => ({ chosen: ids[2 * i]!, rejected: ids[2 * i + 1]!, task: c.task }));
  return { encoded, truncated };
}
