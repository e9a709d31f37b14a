import { isUtf8 } from 'node:buffer';
import { close as closeFd, createWriteStream, fsync, open as openFd } from 'node:fs';
import { rename, rm } from 'node:fs/promises';
import { basename, dirname, join } from 'node:path';
import type { Writable } from 'node:stream';
import { promisify } from 'node:util';
import { createGzip } from 'node:zlib';
import { ComparisonFileError } from './errors.ts';
import { formatComparison, type LineStyle } from './format.ts';
import { DEFAULT_MAX_LINE_BYTES, readRawLines } from './lines.ts';
import { parseComparisonLine } from './record.ts';
import { type DefectKind, LoadReport } from './report.ts';
import { type ComparisonSplit, parseTranscript, splitComparison } from './transcript.ts';
import type { ComparisonRecord } from './types.ts';

export { ComparisonFileError, DataFileError } from './errors.ts';
export { formatComparison, type LineStyle } from './format.ts';
export { LoadReport } from './report.ts';
export type { ComparisonRecord, ComparisonTask } from './types.ts';

export interface ReadOptions {
  /** Throw a {@link ComparisonFileError} on the first bad line instead of reporting and skipping it. */
  strict?: boolean;
  /** Accumulates counts, defects and statistics; pass the same one to several reads to sum them. */
  report?: LoadReport;
  maxLineBytes?: number;
  /** Called with the bytes of the file read so far (compressed bytes for .gz), for progress bars. */
  onBytes?: (bytesRead: number) => void;
}

/** A valid record with where it came from: the exact line text and its prompt/response split. */
export interface LoadedComparison {
  record: ComparisonRecord;
  /** The line as it was in the file (decoded, without "\n"); the store keeps it when no style reproduces it. */
  raw: string;
  file: string;
  line: number;
  split: ComparisonSplit;
}

const UTF8_BOM = '\ufeff';

/**
 * Streams the valid records of a .jsonl or .jsonl.gz comparison file with their line text and split.
 * Bad lines are counted in `opts.report` with file:line and reason, and skipped (or thrown, strict).
 *
 * @example for await (const { record, line } of readComparisonEntries('train.jsonl.gz')) use(record, line);
 */
export async function* readComparisonEntries(
  path: string,
  opts: ReadOptions = {},
): AsyncGenerator<LoadedComparison> {
  const report = opts.report ?? new LoadReport();
  report.files.push(path);
  const started = performance.now();
  let bytesSeen = 0;
  const defect = (line: number, kind: DefectKind, reason: string) => {
    if (opts.strict) throw new ComparisonFileError(path, line, kind, reason);
    report.addDefect(kind, { file: path, line, reason });
  };
  try {
    const lines = readRawLines(path, {
      maxLineBytes: opts.maxLineBytes,
      onBytes: (n) => {
        report.bytes += n - bytesSeen;
        bytesSeen = n;
        opts.onBytes?.(n);
      },
      // A truncated or corrupt file is one skipped record where reading stopped, not a crash of the load;
      // the lines before it are kept, and LoadReport.warnings() names the loss.
      onUnreadable: (line, reason) => {
        report.records++;
        defect(line, 'unreadable', reason);
      },
    });
    for await (const batch of lines) {
      for (const { line, bytes, length } of batch) {
        report.lines++;
        if (bytes === null) {
          report.records++;
          defect(
            line,
            'line-too-long',
            `line is ${length} bytes, over the ${opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES} byte limit`,
          );
          continue;
        }
        if (!isUtf8(bytes)) {
          report.records++;
          defect(line, 'invalid-utf8', 'line is not valid UTF-8');
          continue;
        }
        let text = bytes.toString('utf8');
        if (line === 1 && text.startsWith(UTF8_BOM)) text = text.slice(1);
        if (text.trim() === '') {
          report.blankLines++;
          continue;
        }
        report.records++;
        const parsed = parseComparisonLine(text);
        if (!parsed.ok) {
          defect(line, parsed.kind, parsed.reason);
          continue;
        }
        const { record } = parsed;
        const split = splitComparison(record.chosen, record.rejected, record.prompt);
        if (split === null) {
          defect(line, 'prompt-mismatch', '"prompt" is not a prefix of both "chosen" and "rejected"');
          continue;
        }
        if (parsed.unknownKeys.length > 0) {
          const keys = parsed.unknownKeys.map((k) => JSON.stringify(k)).join(', ');
          report.addNote('unknown-key', { file: path, line, reason: `ignored key(s) ${keys.slice(0, 120)}` });
        }
        report.addValid(split, parseTranscript(split.prompt).turns.length, path, line);
        yield { record, raw: text, file: path, line, split };
      }
    }
  } finally {
    report.seconds += (performance.now() - started) / 1000;
  }
}

/**
 * Streams the valid records of a comparison file (.jsonl, or gzipped: detected from its bytes).
 *
 * @example
 * const report = new LoadReport();
 * for await (const r of readComparisons('helpful-base/train.jsonl.gz', { report })) n++;
 * console.log(report.format());
 */
export async function* readComparisons(
  path: string,
  opts: ReadOptions = {},
): AsyncGenerator<ComparisonRecord> {
  for await (const entry of readComparisonEntries(path, opts)) yield entry.record;
}

/**
 * Loads one or several comparison files into memory, with the report of the whole load.
 *
 * @example const { records, report } = await loadComparisons(['a.jsonl', 'b.jsonl.gz']);
 */
export async function loadComparisons(
  paths: string | readonly string[],
  opts: ReadOptions = {},
): Promise<{ records: ComparisonRecord[]; report: LoadReport }> {
  const report = opts.report ?? new LoadReport();
  const records: ComparisonRecord[] = [];
  for (const path of typeof paths === 'string' ? [paths] : paths) {
    for await (const record of readComparisons(path, { ...opts, report })) records.push(record);
  }
  return { records, report };
}

/**
 * Writes comparison lines to a temp file next to `path` and renames it over `path` on `close()`,
 * so readers never see half a file. Gzips when `path` ends in .gz. `write` waits when the stream
 * is full, so a producer of millions of records runs in bounded memory.
 *
 * @example
 * const out = await openComparisonWriter('test.jsonl');
 * await out.write(record);
 * const n = await out.close();
 */
export class ComparisonWriter {
  count = 0;
  private error: Error | undefined;
  private constructor(
    readonly path: string,
    private readonly tmp: string,
    private readonly head: Writable,
    private readonly file: Writable,
    private readonly fd: number,
    private readonly style: LineStyle,
  ) {}

  static async open(path: string, style: LineStyle = 'hh'): Promise<ComparisonWriter> {
    const tmp = join(
      dirname(path),
      `.${basename(path)}.tmp-${process.pid}-${Math.random().toString(36).slice(2)}`,
    );
    // A raw fd, not a FileHandle: FileHandle.close() waits for streams on it to close, and we want
    // to fsync between the stream finishing and the fd closing.
    const fd = await promisify(openFd)(tmp, 'w');
    const file = createWriteStream('', { fd, autoClose: false });
    let head: Writable = file;
    if (path.endsWith('.gz')) {
      const gzip = createGzip();
      gzip.pipe(file);
      head = gzip;
    }
    const writer = new ComparisonWriter(path, tmp, head, file, fd, style);
    // Keep the first error (disk full…) instead of letting an unheard 'error' event kill the process.
    const keep = (err: Error) => {
      writer.error ??= err;
    };
    file.on('error', keep);
    head.on('error', keep);
    return writer;
  }

  /** Writes one record in the writer's style. */
  write(record: ComparisonRecord): Promise<void> | undefined {
    return this.writeLine(formatComparison(record, this.style));
  }

  /** Writes one already formatted line (no "\n"); the store uses it to reproduce lines verbatim. */
  writeLine(line: string): Promise<void> | undefined {
    if (this.error) throw this.error;
    this.count++;
    if (this.head.write(`${line}\n`)) return undefined;
    return new Promise((resolve, reject) => {
      const onError = (err: Error) => reject(err);
      this.head.once('error', onError);
      this.head.once('drain', () => {
        this.head.off('error', onError);
        resolve();
      });
    });
  }

  /** Flushes, fsyncs and renames into place; returns the number of lines written. */
  async close(): Promise<number> {
    try {
      if (this.error) throw this.error;
      // Not stream.finished(): with autoClose off it would wait for a 'close' that never comes.
      const flushed = new Promise<void>((resolve, reject) => {
        this.file.once('finish', resolve);
        this.file.once('error', reject);
      });
      this.head.end();
      await flushed;
      await promisify(fsync)(this.fd);
      await this.closeFd();
      await rename(this.tmp, this.path);
    } catch (err) {
      await this.abort();
      throw err;
    }
    return this.count;
  }

  private closed = false;
  private async closeFd(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    await promisify(closeFd)(this.fd);
  }

  /** Discards everything written; `path` is left as it was. */
  async abort(): Promise<void> {
    this.head.destroy();
    this.file.destroy();
    await this.closeFd().catch(() => undefined);
    await rm(this.tmp, { force: true });
  }
}

/** Opens a {@link ComparisonWriter}. */
export function openComparisonWriter(path: string, style: LineStyle = 'hh'): Promise<ComparisonWriter> {
  return ComparisonWriter.open(path, style);
}

/**
 * Writes comparisons as JSON lines (gzipped when `path` ends in .gz), atomically: a temp file in
 * the same folder is renamed over `path` only once everything is written and synced. Returns the count.
 *
 * @example await writeComparisons('out/train.jsonl.gz', records);
 */
export async function writeComparisons(
  path: string,
  records: Iterable<ComparisonRecord> | AsyncIterable<ComparisonRecord>,
  style: LineStyle = 'hh',
): Promise<number> {
  const out = await openComparisonWriter(path, style);
  try {
    for await (const record of records) await out.write(record);
  } catch (err) {
    await out.abort();
    throw err;
  }
  return out.close();
}
