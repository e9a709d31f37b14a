import { createHash } from 'node:crypto';
import { parseTranscript, splitComparison } from './transcript.ts';
import type { ComparisonRecord } from './types.ts';

export type SplitName = 'train' | 'test';

/**
 * What decides a record's split: the first turn of its conversation (the text of the first
 * human turn of the shared prompt). Grouping by conversation keeps comparisons that share a
 * context on the same side, so a test PM is never scored on contexts its training saw; a
 * record without a parsable prompt falls back to its whole chosen transcript.
 *
 * @example splitKey({ chosen: '\n\nHuman: hi\n\nAssistant: a', rejected: '\n\nHuman: hi\n\nAssistant: b' }) // 'hi'
 */
export function splitKey(record: ComparisonRecord): string {
  const split = splitComparison(record.chosen, record.rejected, record.prompt);
  const first = split ? parseTranscript(split.prompt).turns[0] : undefined;
  return first ? first.text : record.chosen;
}

/**
 * A number in [0, 1) from SHA-256 of the seed and key: the same on every machine and run.
 *
 * @example hashUnit('hi', 0) // 0.7…, always the same
 */
export function hashUnit(key: string, seed = 0): number {
  const digest = createHash('sha256').update(`${seed}\u0000${key}`).digest();
  return digest.readUIntBE(0, 6) / 2 ** 48;
}

/**
 * The deterministic split of a record: 'test' for about `testFrac` of conversations.
 *
 * @example assignSplit(record, 0.1) // 'train' or 'test', stable across runs and machines
 */
export function assignSplit(record: ComparisonRecord, testFrac: number, seed = 0): SplitName {
  if (!(testFrac >= 0 && testFrac <= 1)) throw new RangeError(`testFrac must be in [0, 1], got ${testFrac}`);
  return hashUnit(splitKey(record), seed) < testFrac ? 'test' : 'train';
}
