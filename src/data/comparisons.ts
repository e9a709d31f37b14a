import { createWriteStream } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';
import { COMPARISON_KEYS, type ComparisonRecord } from './types.ts';

export type { ComparisonRecord, ComparisonTask } from './types.ts';

/** One record as a JSON line, keys in the canonical order, absent keys omitted. */
export function formatComparison(record: ComparisonRecord): string {
  const ordered: Record<string, unknown> = {};
  for (const key of COMPARISON_KEYS) if (record[key] !== undefined) ordered[key] = record[key];
  return JSON.stringify(ordered);
}

/**
 * Writes comparisons as JSON lines (gzipped when `path` ends in .gz), atomically: a temp file in
 * the same folder is renamed over `path` only once everything is written. Returns the count.
 *
 * @example await writeComparisons('out/train.jsonl.gz', records);
 */
export async function writeComparisons(
  path: string,
  records: Iterable<ComparisonRecord> | AsyncIterable<ComparisonRecord>,
): Promise<number> {
  const tmp = join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${Date.now().toString(36)}`);
  let count = 0;
  async function* lines(): AsyncGenerator<string> {
    for await (const record of records) {
      count++;
      yield `${formatComparison(record)}\n`;
    }
  }
  try {
    const out = createWriteStream(tmp, { flush: true });
    if (path.endsWith('.gz')) await pipeline(lines(), createGzip(), out);
    else await pipeline(lines(), out);
    await rename(tmp, path);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
  return count;
}
