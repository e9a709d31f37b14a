import type { DefectKind } from './report.ts';

/**
 * A comparison file problem a user can act on: names the file and line, and why.
 * Thrown by strict reads on the first bad line; non-strict reads report and skip instead.
 *
 * @example
 * try { await loadComparisons('x.jsonl', { strict: true }); }
 * catch (err) { if (err instanceof ComparisonFileError) console.error(err.file, err.line, err.kind); }
 */
export class ComparisonFileError extends Error {
  override name = 'ComparisonFileError';
  constructor(
    readonly file: string,
    readonly line: number,
    readonly kind: DefectKind,
    readonly reason: string,
  ) {
    super(`${file}:${line}: ${reason} (${kind})`);
  }
}
