import { detectLineStyle, formatComparison, type LineStyle } from '../data/format.ts';
import { type ComparisonSplit, splitComparison } from '../data/transcript.ts';
import type { ComparisonRecord } from '../data/types.ts';
import { StoreError } from './errors.ts';
import type { Store, StoreTask } from './store.ts';

/**
 * The mapping between comparison-file records and store rows, both ways, lossless:
 * - prompt → a conversation (its turns parsed for queries), each response → a responses row holding
 *   the text after the prompt, so `chosen === prompt + response` is rebuilt exactly;
 * - task "harmless" ↔ red-team: the red-team worker picked the MORE harmful response, which the HH
 *   file stores as "rejected", so choice = 'b'; helpful (or no task) picks "chosen", choice = 'a';
 * - worker name ↔ workers row, round ↔ rounds row, an explicit "prompt" key ↔ explicit_prompt;
 * - absent optional keys ↔ NULL (and back to absent, never null);
 * - the line's formatting ↔ line_style, or the line verbatim when no style reproduces it
 *   (other key order, unknown keys, "1.0", CRLF …), so export(import(file)) is byte-for-byte.
 */

export interface InsertOptions {
  /** The split, when the caller already has it (the file reader computes it). */
  split?: ComparisonSplit;
  /** The exact line the record was read from; omitted for records made in memory. */
  line?: string;
}

function storeTask(task: ComparisonRecord['task']): StoreTask | undefined {
  if (task === undefined) return undefined;
  return task === 'harmless' ? 'red-team' : 'helpful';
}

/**
 * Inserts one record as conversation + two responses + comparison, in one transaction. Returns the
 * comparison id.
 *
 * @example const id = insertComparisonRecord(store, { chosen: '\n\nHuman: a\n\nAssistant: b', rejected: '…' });
 */
export function insertComparisonRecord(
  store: Store,
  record: ComparisonRecord,
  opts: InsertOptions = {},
): number {
  const split = opts.split ?? splitComparison(record.chosen, record.rejected, record.prompt);
  if (split === null)
    throw new StoreError(store.path, '"prompt" is not a prefix of both "chosen" and "rejected"');
  return store.transaction(() => {
    const task = storeTask(record.task);
    const workerId = record.worker === undefined ? undefined : store.workerId(record.worker);
    const conversationId = store.addConversation({
      prompt: split.prompt,
      task,
      workerId,
      round: record.round,
    });
    const responseA = store.addResponse(conversationId, split.chosenResponse);
    const responseB = store.addResponse(conversationId, split.rejectedResponse);
    let lineStyle: LineStyle | null = null;
    let line: string | null = null;
    if (opts.line !== undefined) {
      lineStyle = detectLineStyle(opts.line, record);
      if (lineStyle === null) line = opts.line;
    }
    return store.addComparison(
      {
        conversationId,
        responseA,
        responseB,
        choice: task === 'red-team' ? 'b' : 'a',
        task,
        strength: record.strength,
        round: record.round,
        workerId,
        source: record.source,
      },
      { explicitPrompt: record.prompt !== undefined, lineStyle, line },
    );
  });
}

interface RecordRow {
  id: number;
  choice: 'a' | 'b';
  task: StoreTask | null;
  strength: number | null;
  round_id: number | null;
  source: string | null;
  explicit_prompt: 0 | 1;
  line_style: LineStyle | null;
  line: string | null;
  prompt: string;
  a_text: string;
  b_text: string;
  worker: string | null;
}

const RECORD_SQL = `
  SELECT c.id, c.choice, c.task, c.strength, c.round_id, c.source, c.explicit_prompt, c.line_style, c.line,
         v.prompt, ra.text AS a_text, rb.text AS b_text, w.name AS worker
  FROM comparisons c
  JOIN conversations v ON v.id = c.conversation_id
  JOIN responses ra ON ra.id = c.response_a
  JOIN responses rb ON rb.id = c.response_b
  LEFT JOIN workers w ON w.id = c.worker_id`;

/** A stored comparison as a record, with the line export writes for it. */
export interface StoredComparison {
  id: number;
  record: ComparisonRecord;
  line: string;
}

function toStored(row: RecordRow, defaultStyle: LineStyle): StoredComparison {
  const picked = row.choice === 'a' ? row.a_text : row.b_text;
  const other = row.choice === 'a' ? row.b_text : row.a_text;
  const [chosen, rejected] = row.task === 'red-team' ? [other, picked] : [picked, other];
  const record: ComparisonRecord = { chosen: row.prompt + chosen, rejected: row.prompt + rejected };
  if (row.explicit_prompt) record.prompt = row.prompt;
  if (row.task !== null) record.task = row.task === 'red-team' ? 'harmless' : 'helpful';
  if (row.source !== null) record.source = row.source;
  if (row.worker !== null) record.worker = row.worker;
  if (row.strength !== null) record.strength = row.strength;
  if (row.round_id !== null) record.round = row.round_id;
  const line = row.line ?? formatComparison(record, row.line_style ?? defaultStyle);
  return { id: row.id, record, line };
}

/** One stored comparison as a record, or undefined. */
export function comparisonRecord(store: Store, id: number): ComparisonRecord | undefined {
  const row = store.db.prepare(`${RECORD_SQL} WHERE c.id = ?`).get(id) as RecordRow | undefined;
  return row ? toStored(row, 'hh').record : undefined;
}

export interface ComparisonFilter {
  round?: number;
  task?: StoreTask;
}

/**
 * Stored comparisons in id order, read in pages so no long read cursor holds the connection.
 * Records made in memory (no imported line) are formatted in `defaultStyle`.
 *
 * @example for (const { id, record } of storedComparisons(store, { round: 1 })) use(id, record);
 */
export function* storedComparisons(
  store: Store,
  filter: ComparisonFilter = {},
  defaultStyle: LineStyle = 'hh',
  pageSize = 1000,
): Generator<StoredComparison> {
  const where = ['c.id > @after'];
  if (filter.round !== undefined) where.push('c.round_id = @round');
  if (filter.task !== undefined) where.push('c.task = @task');
  const page = store.db.prepare(`${RECORD_SQL} WHERE ${where.join(' AND ')} ORDER BY c.id LIMIT @limit`);
  let after = 0;
  for (;;) {
    const rows = page.all({ after, limit: pageSize, round: filter.round, task: filter.task }) as RecordRow[];
    for (const row of rows) yield toStored(row, defaultStyle);
    const last = rows.at(-1);
    if (!last || rows.length < pageSize) return;
    after = last.id;
  }
}
