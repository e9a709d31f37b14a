import { COMPARISON_KEYS, type ComparisonRecord } from './types.ts';

/**
 * How a record is written as one JSON line. Keys always come in {@link COMPARISON_KEYS} order and
 * absent optional keys are left out (never written as null).
 * - `hh`: Python's `json.dumps` defaults, as in the HH-RLHF release: `{"chosen": "…", "rejected": "…"}`
 *   (", " and ": " separators, every non-ASCII character escaped as \uXXXX). hhkit's default.
 * - `hh-utf8`: the same separators, UTF-8 text left as is (`json.dumps(…, ensure_ascii=False)`).
 * - `compact`: `JSON.stringify`, no spaces, UTF-8 as is.
 */
export type LineStyle = 'hh' | 'hh-utf8' | 'compact';

export const LINE_STYLES: readonly LineStyle[] = ['hh', 'hh-utf8', 'compact'];

// Python's ensure_ascii escapes everything outside printable ASCII; JSON.stringify already escapes
// the controls below 0x20 the same way, so what is left is DEL and all non-ASCII code units.
const NON_ASCII = /[\u007f-\uffff]/g;
const escapeUnit = (c: string) => `\\u${c.charCodeAt(0).toString(16).padStart(4, '0')}`;

function jsonValue(value: unknown, ascii: boolean): string {
  const text = JSON.stringify(value);
  return ascii && typeof value === 'string' ? text.replace(NON_ASCII, escapeUnit) : text;
}

/**
 * One record as a JSON line (no trailing newline).
 *
 * @example formatComparison({ chosen: 'a', rejected: 'b' }) // '{"chosen": "a", "rejected": "b"}'
 */
export function formatComparison(record: ComparisonRecord, style: LineStyle = 'hh'): string {
  const parts: string[] = [];
  const ascii = style === 'hh';
  const [sep, colon] = style === 'compact' ? [',', ':'] : [', ', ': '];
  for (const key of COMPARISON_KEYS) {
    const value = record[key];
    if (value !== undefined) parts.push(`"${key}"${colon}${jsonValue(value, ascii)}`);
  }
  return `{${parts.join(sep)}}`;
}

/**
 * The style that reproduces `raw` byte-for-byte from `record`, or null when none does (other key
 * order, extra keys, other number spellings, other whitespace). The store keeps such lines verbatim.
 *
 * @example detectLineStyle('{"chosen":"a","rejected":"b"}', { chosen: 'a', rejected: 'b' }) // 'compact'
 */
export function detectLineStyle(raw: string, record: ComparisonRecord): LineStyle | null {
  // Cheap look at the first separator avoids rendering styles that cannot match.
  const spaced = raw.startsWith('{"chosen": ');
  for (const style of LINE_STYLES) {
    if ((style === 'compact') === spaced) continue;
    if (formatComparison(record, style) === raw) return style;
  }
  return null;
}
