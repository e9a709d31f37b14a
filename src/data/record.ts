import type { DefectKind } from './report.ts';
import { loneSurrogateAt, mayHoldLoneSurrogate } from '../util/unicode.ts';
import { COMPARISON_KEYS, type ComparisonRecord } from './types.ts';

/** A line that is a record (maybe with keys hhkit does not know), or why it is not. */
export type ParsedLine =
  | { ok: true; record: ComparisonRecord; unknownKeys: string[] }
  | { ok: false; kind: DefectKind; reason: string };

const KNOWN = new Set<string>(COMPARISON_KEYS);

const fail = (kind: DefectKind, reason: string): ParsedLine => ({ ok: false, kind, reason });
const typeName = (v: unknown) => (v === null ? 'null' : Array.isArray(v) ? 'array' : typeof v);

/**
 * Parses and validates one JSON line of a comparison file. Optional keys that are null count as
 * absent (Python writers emit None); unknown keys are returned so the caller can report them.
 * The record's keys come out in canonical order.
 *
 * @example parseComparisonLine('{"chosen": "\n\nHuman: a\n\nAssistant: b", "rejected": "…"}')
 */
export function parseComparisonLine(text: string): ParsedLine {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    return fail('invalid-json', `not JSON: ${(err as Error).message.slice(0, 120)}`);
  }
  if (typeof value !== 'object' || value === null || Array.isArray(value)) {
    return fail('not-an-object', `expected a JSON object, got ${typeName(value)}`);
  }
  const obj = value as Record<string, unknown>;
  for (const key of ['chosen', 'rejected'] as const) {
    const v = obj[key];
    if (v === undefined) return fail('missing-key', `missing key "${key}"`);
    if (typeof v !== 'string') return fail('wrong-type', `"${key}" must be a string, got ${typeName(v)}`);
    if (v.trim() === '') return fail('empty-string', `"${key}" is empty`);
  }
  const record: ComparisonRecord = { chosen: obj['chosen'] as string, rejected: obj['rejected'] as string };
  for (const key of ['prompt', 'source', 'worker'] as const) {
    const v = obj[key];
    if (v === undefined || v === null) continue;
    if (typeof v !== 'string') return fail('wrong-type', `"${key}" must be a string, got ${typeName(v)}`);
    if (v === '') return fail('empty-string', `"${key}" is empty`);
    record[key] = v;
  }
  const task = obj['task'];
  if (task !== undefined && task !== null) {
    if (typeof task !== 'string') return fail('wrong-type', `"task" must be a string, got ${typeName(task)}`);
    if (task !== 'helpful' && task !== 'harmless') {
      return fail(
        'bad-value',
        `"task" must be "helpful" or "harmless", got ${JSON.stringify(task).slice(0, 40)}`,
      );
    }
    record.task = task;
  }
  const strength = obj['strength'];
  if (strength !== undefined && strength !== null) {
    if (typeof strength !== 'number')
      return fail('wrong-type', `"strength" must be a number, got ${typeName(strength)}`);
    record.strength = strength;
  }
  const round = obj['round'];
  if (round !== undefined && round !== null) {
    if (typeof round !== 'number')
      return fail('wrong-type', `"round" must be a number, got ${typeName(round)}`);
    if (!Number.isSafeInteger(round) || round < 0) {
      return fail('bad-value', `"round" must be a non-negative integer, got ${round}`);
    }
    record.round = round;
  }
  // Valid UTF-8 cannot encode a surrogate, so one can only come from a \uD800–\uDFFF escape:
  // look for the escape in the line before scanning every string (most lines have none).
  const mayHaveSurrogate = mayHoldLoneSurrogate(text);
  for (const key of ['chosen', 'rejected', 'prompt', 'source', 'worker'] as const) {
    const v = record[key];
    if (mayHaveSurrogate && v !== undefined && loneSurrogateAt(v) >= 0) {
      return fail('bad-value', `"${key}" contains an unpaired UTF-16 surrogate (not encodable as UTF-8)`);
    }
  }
  const unknownKeys = Object.keys(obj).filter((k) => !KNOWN.has(k));
  // Rebuild in canonical order: prompt/task/… were assigned in validation order above.
  const ordered: ComparisonRecord = { chosen: record.chosen, rejected: record.rejected };
  for (const key of COMPARISON_KEYS)
    if (record[key] !== undefined) Object.assign(ordered, { [key]: record[key] });
  return { ok: true, record: ordered, unknownKeys };
}
