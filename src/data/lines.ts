import { createReadStream } from 'node:fs';
import { open } from 'node:fs/promises';
import type { Readable } from 'node:stream';
import { createGunzip } from 'node:zlib';
import { DataFileError, FilePathError } from './errors.ts';
import { hasGzipMagic } from '../util/gzip.ts';

/** One physical line: its 1-based number and bytes (without "\n"), or null bytes when over the limit. */
export interface RawLine {
  line: number;
  bytes: Buffer | null;
  /** Length in bytes, also for lines over the limit (which are not kept). */
  length: number;
}

export interface RawLineOptions {
  /** Longest line kept, in bytes; longer lines come back with `bytes: null` so memory stays bounded. */
  maxLineBytes?: number;
  /** Called with the number of file bytes (compressed, for .gz) read so far. */
  onBytes?: (bytesRead: number) => void;
  /**
   * Called when the file stops mid-way (a truncated or corrupt gzip, a read error) with the first line
   * not read and why; the stream then ends. Without it that is a {@link DataFileError} naming file:line.
   */
  onUnreadable?: (line: number, reason: string) => void;
}

// The file itself cannot be read: the caller's path is wrong, not a line of the file.
const PATH_ERRORS = new Set(['ENOENT', 'EISDIR', 'ENOTDIR', 'EACCES', 'EPERM']);
const PATH_REASONS: Record<string, string> = {
  ENOENT: 'file not found',
  EISDIR: 'is a directory, expected a file',
  ENOTDIR: 'a parent of it is not a directory',
  EACCES: 'permission denied',
  EPERM: 'permission denied',
};

/** A path error (missing, a directory, no permission) as a FilePathError, else null. */
export function pathError(path: string, err: unknown): FilePathError | null {
  const code = (err as NodeJS.ErrnoException).code;
  return code && PATH_ERRORS.has(code) ? new FilePathError(path, PATH_REASONS[code] ?? code) : null;
}

/** Default line limit: far above any real transcript (HH lines are a few KB) and far below V8's string limit. */
export const DEFAULT_MAX_LINE_BYTES = 64 * 2 ** 20;

/** True when the file starts with the gzip magic bytes (so a .jsonl that is really gzipped still reads). */
export async function isGzipFile(path: string): Promise<boolean> {
  try {
    const handle = await open(path, 'r');
    try {
      const head = Buffer.alloc(2);
      const { bytesRead } = await handle.read(head, 0, 2, 0);
      return hasGzipMagic(head.subarray(0, bytesRead));
    } finally {
      await handle.close();
    }
  } catch (err) {
    throw pathError(path, err) ?? err;
  }
}

/**
 * Streams a (possibly gzipped) file as batches of lines, one batch per chunk read, in bounded memory:
 * at most one chunk plus one partial line is held. Splits on "\n" bytes (never inside a UTF-8
 * sequence), so decoding is left to the caller, per line. A file that stops mid-way never ends the
 * stream quietly: it goes to `opts.onUnreadable`, else throws a {@link DataFileError} with file:line; a
 * missing file or a directory is a DataFileError of line 0.
 *
 * @example for await (const batch of readRawLines('a.jsonl.gz')) for (const l of batch) use(l.line, l.bytes);
 */
export async function* readRawLines(path: string, opts: RawLineOptions = {}): AsyncGenerator<RawLine[]> {
  const max = opts.maxLineBytes ?? DEFAULT_MAX_LINE_BYTES;
  const gzipped = await isGzipFile(path);
  const file = createReadStream(path, { highWaterMark: 1 << 20 });
  const onBytes = opts.onBytes;
  let source: Readable = file;
  if (gzipped) {
    // Piped, so a 'data' listener does not steal chunks; a read error must reach the loop below.
    if (onBytes) file.on('data', () => onBytes(file.bytesRead));
    source = file.pipe(createGunzip());
    file.on('error', (err) => source.destroy(err));
  }
  let pending: Buffer[] = [];
  let pendingLength = 0;
  let overflow = false;
  let lineNo = 0;
  const take = (tail: Buffer): RawLine => {
    lineNo++;
    const length = pendingLength + tail.length;
    let bytes: Buffer | null = null;
    if (!overflow && length <= max) bytes = pending.length ? Buffer.concat([...pending, tail], length) : tail;
    pending = [];
    pendingLength = 0;
    overflow = false;
    return { line: lineNo, bytes, length };
  };
  try {
    for await (const chunk of source as AsyncIterable<Buffer>) {
      if (!gzipped) onBytes?.(file.bytesRead);
      const batch: RawLine[] = [];
      let start = 0;
      for (let nl = chunk.indexOf(10, start); nl >= 0; nl = chunk.indexOf(10, start)) {
        batch.push(take(chunk.subarray(start, nl)));
        start = nl + 1;
      }
      if (start < chunk.length) {
        const rest = chunk.subarray(start);
        pendingLength += rest.length;
        if (pendingLength > max) {
          overflow = true;
          pending = [];
        } else if (!overflow) pending.push(Buffer.from(rest)); // copy: the chunk itself can then be freed
      }
      if (batch.length) yield batch;
    }
    if (pendingLength > 0 || overflow) yield [take(Buffer.alloc(0))];
  } catch (err) {
    if (err instanceof DataFileError) throw err;
    const unreadable = pathError(path, err);
    if (unreadable) throw unreadable;
    // The partial line held in `pending` is lost with the rest: the file stops at line lineNo + 1.
    // A gzip that fails before its first line may be a plain file that happens to start with the magic.
    const how = gzipped && lineNo === 0 ? '; read as gzip: its first bytes are the gzip magic 1f 8b' : '';
    const reason = `file stops here (${(err as Error).message}${how}); the rest of the file is lost`;
    if (!opts.onUnreadable) throw new DataFileError(path, lineNo + 1, reason);
    opts.onUnreadable(lineNo + 1, reason);
  } finally {
    file.destroy();
    source.destroy();
  }
}
