import { HhkitError } from '../util/errors.ts';
import type { DefectKind } from './report.ts';

/**
 * A data file problem a user can act on, at a place in the file: `file:line: reason`. `line` is where
 * reading stopped for a truncated or corrupt file (the first line not read), 0 for the file as a whole
 * (a directory given as a file, a file that cannot be opened).
 *
 * @example
 * try { for await (const b of readRawLines('a.jsonl.gz')) use(b); }
 * catch (err) { if (err instanceof DataFileError) console.error(err.message); } // a.jsonl.gz:137: file stops here: …
 */
export class DataFileError extends HhkitError {
  override name = 'DataFileError';
  /** `exitCode`: 1, the data is bad (a strict read's stop); a wrong path is 2 (FilePathError). */
  constructor(
    readonly file: string,
    readonly line: number,
    readonly reason: string,
    exitCode = 1,
  ) {
    super(line > 0 ? `${file}:${line}: ${reason}` : `${file}: ${reason}`, { exitCode });
  }
}

/**
 * A data file that cannot be read at all: missing, a directory, no permission (line 0). A wrong path is
 * the user's to fix before anything runs, so the CLI exits 2 on it, as on a usage error.
 *
 * @example throw new FilePathError('runs/', 'is a directory, expected a file')
 */
export class FilePathError extends DataFileError {
  override name = 'FilePathError';
  constructor(file: string, reason: string) {
    super(file, 0, reason, 2);
  }
}

/**
 * A comparison file problem a user can act on: names the file and line, and why.
 * Thrown by strict reads on the first bad line; non-strict reads report and skip instead.
 *
 * @example
 * try { await loadComparisons('x.jsonl', { strict: true }); }
 * catch (err) { if (err instanceof ComparisonFileError) console.error(err.file, err.line, err.kind); }
 */
export class ComparisonFileError extends DataFileError {
  override name = 'ComparisonFileError';
  constructor(
    file: string,
    line: number,
    readonly kind: DefectKind,
    reason: string,
  ) {
    super(file, line, reason);
    this.message = `${this.message} (${kind})`;
  }
}
