import { openComparisonWriter, type ReadOptions, readComparisonEntries } from '../data/comparisons.ts';
import type { LineStyle } from '../data/format.ts';
import { LoadReport } from '../data/report.ts';
import { type ComparisonFilter, insertComparisonRecord, storedComparisons } from './records.ts';
import type { Store } from './store.ts';

export interface ImportResult {
  imported: number;
  /** Ids of the first and last comparison added (null when none). */
  firstId: number | null;
  lastId: number | null;
  report: LoadReport;
}

/**
 * Imports comparison files into the store in ONE transaction: either every valid record of every
 * file lands, or (on an error, or a strict-mode defect) none does. Bad lines are reported and
 * skipped as by the reader. While it runs it holds the connection's write transaction, so do not
 * share the Store with other writers meanwhile.
 *
 * @example const { imported, report } = await importComparisons(store, ['helpful-base/train.jsonl.gz']);
 */
export async function importComparisons(
  store: Store,
  paths: string | readonly string[],
  opts: ReadOptions = {},
): Promise<ImportResult> {
  const report = opts.report ?? new LoadReport();
  let imported = 0;
  let firstId: number | null = null;
  let lastId: number | null = null;
  store.db.exec('BEGIN IMMEDIATE');
  try {
    for (const path of typeof paths === 'string' ? [paths] : paths) {
      for await (const entry of readComparisonEntries(path, { ...opts, report })) {
        lastId = insertComparisonRecord(store, entry.record, { split: entry.split, line: entry.raw });
        firstId ??= lastId;
        imported++;
      }
    }
    store.db.exec('COMMIT');
  } catch (err) {
    if (store.db.inTransaction) store.db.exec('ROLLBACK');
    throw err;
  }
  return { imported, firstId, lastId, report };
}

/**
 * Writes stored comparisons to a comparison file (atomically; gzipped for .gz), in id order.
 * Imported records come out exactly as their lines were; others in `style`.
 *
 * @example await exportComparisons(store, 'round1.jsonl', { filter: { round: 1 } });
 */
export async function exportComparisons(
  store: Store,
  path: string,
  opts: { filter?: ComparisonFilter; style?: LineStyle } = {},
): Promise<number> {
  const out = await openComparisonWriter(path, opts.style);
  try {
    for (const { line } of storedComparisons(store, opts.filter, opts.style)) await out.writeLine(line);
  } catch (err) {
    await out.abort();
    throw err;
  }
  return out.close();
}
