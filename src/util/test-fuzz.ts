// Seeded generators for the fuzz tests (test helper, not part of the library): every run draws a fresh
// seed (or takes HHKIT_FUZZ_SEED) and prints it, and a failing case names the seed, the case and the
// input, so `HHKIT_FUZZ_SEED=… node scripts/test.mjs <file>` replays exactly the failing run.
import assert from 'node:assert/strict';
import { randomInt } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { TestContext } from 'node:test';
import { constants, gunzipSync, gzipSync } from 'node:zlib';
import { hasGzipMagic } from './gzip.ts';
import { mix32 } from './random.ts';

/**
 * The run's seed: HHKIT_FUZZ_SEED when set, else a fresh one; reported through the test's diagnostics
 * (and stderr) so a failure can be replayed.
 *
 * @example const fuzz = new Fuzz(fuzzSeed(t, 'comparison loader'));
 */
export function fuzzSeed(t: TestContext, what: string): number {
  const fixed = process.env['HHKIT_FUZZ_SEED'];
  const seed = fixed !== undefined && fixed !== '' ? Number(fixed) >>> 0 : randomInt(2 ** 32);
  const line = `fuzz ${what}: seed ${seed} (replay: HHKIT_FUZZ_SEED=${seed})`;
  t.diagnostic(line);
  console.error(line);
  return seed;
}

// Pieces that break parsers: turn markers (also spelt with CRs), the end-of-text token, quotes and
// backslashes, control characters, NUL, a BOM, line/paragraph separators, astral characters.
const TRICKY = [
  '\n\nHuman:',
  '\n\nAssistant:',
  '\r\n\r\nAssistant:',
  'Human:',
  'Assistant:',
  '<|endoftext|>',
  '"',
  '\\',
  '\\u',
  '\n',
  '\r',
  '\r\n',
  '\t',
  '\u0000',
  '\u0001',
  '\u007f',
  '\u0085',
  '\u00a0',
  '\ufeff',
  '\u2028',
  '\u2029',
  'é',
  'ß',
  '中文',
  '😀',
  '𝔘',
  '{',
  '}',
  '[',
  ']',
  ':',
  ',',
  ' ',
  '  ',
];
const WORDS = ['the', 'cat', 'What', 'is', '2', '+', '3?', 'Paris.', 'no', 'I', 'cannot', 'help', 'x'];

/** A seeded stream of random choices, strings, JSON values and byte mutations. */
export class Fuzz {
  private state: number;

  constructor(readonly seed: number) {
    this.state = mix32(seed ^ 0x51f15e5);
  }

  /** Uniform in [0, 1). */
  uniform(): number {
    this.state = (this.state + 0x9e3779b9) >>> 0;
    return mix32(this.state) / 4294967296;
  }

  /** Uniform integer in [0, n). */
  int(n: number): number {
    return Math.floor(this.uniform() * n);
  }

  /** True with probability p. */
  chance(p: number): boolean {
    return this.uniform() < p;
  }

  pick<T>(items: readonly T[]): T {
    return items[this.int(items.length)]!;
  }

  /** Well-formed text (no unpaired surrogate) of words and tricky pieces, up to `maxParts` of them. */
  text(maxParts = 8): string {
    const parts: string[] = [];
    for (let i = this.int(maxParts + 1); i > 0; i--)
      parts.push(this.chance(0.6) ? this.pick(WORDS) : this.pick(TRICKY));
    return parts.join(this.chance(0.5) ? ' ' : '');
  }

  /** Text that may also hold unpaired surrogates and arbitrary BMP code units. */
  rawText(maxParts = 8): string {
    const parts: string[] = [];
    for (let i = this.int(maxParts + 1); i > 0; i--) {
      const r = this.uniform();
      if (r < 0.1) parts.push(String.fromCharCode(0xd800 + this.int(0x800)));
      else if (r < 0.2) parts.push(String.fromCharCode(this.int(0x10000)));
      else parts.push(this.text(2));
    }
    return parts.join('');
  }

  /** Any JSON value, nested up to `depth`. */
  json(depth = 3): unknown {
    const r = this.int(depth > 0 ? 9 : 6);
    switch (r) {
      case 0:
        return null;
      case 1:
        return this.chance(0.5);
      case 2:
        return this.pick([0, -1, 1, 2, 3, 4, 5, 1.5, -0.0, 1e308, -1e-308, 2 ** 53, 123, 99999999999]);
      case 3:
        return this.text(4);
      case 4:
        return this.rawText(3);
      case 5:
        return '';
      case 6:
      case 7: {
        const out: Record<string, unknown> = {};
        for (let i = this.int(5); i > 0; i--)
          out[this.pick(['text', 'chosen', 'prompt', 'a', '', '__proto__', this.text(1)])] = this.json(
            depth - 1,
          );
        return out;
      }
      default:
        return Array.from({ length: this.int(4) }, () => this.json(depth - 1));
    }
  }

  /** `n` random bytes. */
  bytes(n: number): Buffer {
    return Buffer.from(Array.from({ length: n }, () => this.int(256)));
  }

  /** A copy of `text`'s bytes with a few bytes flipped, inserted or deleted. */
  mutateBytes(bytes: Buffer): Buffer {
    const out = [...bytes];
    for (let k = 1 + this.int(3); k > 0; k--) {
      const at = this.int(out.length + 1);
      const r = this.int(3);
      if (r === 0 && out.length) out[Math.min(at, out.length - 1)] = this.int(256);
      else if (r === 1) out.splice(at, 0, this.int(256));
      else out.splice(at, 1);
    }
    return Buffer.from(out);
  }
}

/** Bytes that are not valid UTF-8 wherever they are put: a lone continuation, an overlong "/", a surrogate, 0xFF. */
export const INVALID_UTF8: readonly Buffer[] = [
  Buffer.from([0x80]),
  Buffer.from([0xc0, 0xaf]),
  Buffer.from([0xed, 0xa0, 0x80]),
  Buffer.from([0xff]),
  Buffer.from([0xe2, 0x82]),
  Buffer.from([0xf5, 0x80, 0x80, 0x80]),
];

/**
 * Runs one fuzz case; a failure is rethrown naming the seed, the case number and the input (cut to
 * 2000 characters), so the report says what to replay.
 *
 * @example fuzzCase(seed, i, line, () => assert.equal(parse(line).ok, expected));
 */
export async function fuzzCase(
  seed: number,
  index: number,
  input: unknown,
  run: () => unknown,
): Promise<void> {
  try {
    await run();
  } catch (err) {
    const shown = typeof input === 'string' ? JSON.stringify(input) : JSON.stringify(input, showBytes);
    const cut = shown.length > 2000 ? `${shown.slice(0, 2000)}… (${shown.length} chars)` : shown;
    const message = `fuzz seed ${seed} case ${index}: ${(err as Error).message}\ninput: ${cut}`;
    throw Object.assign(new Error(message), { cause: err });
  }
}

// Buffers (after their toJSON) shown as hex, the way a failing line is easiest to rebuild.
function showBytes(_key: string, v: unknown): unknown {
  const b = v as { type?: unknown; data?: unknown };
  return b && b.type === 'Buffer' && Array.isArray(b.data) ? `hex:${Buffer.from(b.data).toString('hex')}` : v;
}

/**
 * What a generated line is, for the loader's accounting: `good` must be loaded (as `expect`), `bad`
 * reported at its file:line, `blank` counted as blank, `any` (random bytes) one of the three, never two.
 */
export interface FuzzLine {
  kind: 'good' | 'bad' | 'blank' | 'any';
  /** The line without its "\n" (must not contain 0x0a). */
  bytes: Buffer;
  /** For a good line, what the loader should give for it. */
  expect?: unknown;
}

/** A generated file on disk and what reading it must give. */
export interface FuzzFile {
  path: string;
  lines: FuzzLine[];
  /**
   * The first line a reader cannot get whole, when the file is a gzip cut short or a plain file that
   * starts with the gzip magic bytes (the lines from here on are lost and must be reported so); null
   * for a complete file.
   */
  stopsAt: number | null;
  /** The file's bytes (for the failure message). */
  bytes: Buffer;
}

/**
 * Writes `lines` to `dir/name`, joined by "\n" (with or without a final one), and — by chance — gzipped,
 * and sometimes cut short inside the gzip stream; `stopsAt` then says which line is the first one lost.
 *
 * @example const file = writeFuzzFile(fuzz, dir, 'a.jsonl', lines);
 */
export function writeFuzzFile(fuzz: Fuzz, dir: string, name: string, lines: FuzzLine[]): FuzzFile {
  for (const l of lines) assert.ok(!l.bytes.includes(0x0a), 'a generated line holds a newline');
  // The last line goes without its "\n" now and then; an empty last line needs it to be a line at all.
  const ended = (l: FuzzLine, i: number) => i < lines.length - 1 || l.bytes.length === 0 || fuzz.chance(0.7);
  const plain = Buffer.concat(
    lines.flatMap((l, i) => (ended(l, i) ? [l.bytes, Buffer.from('\n')] : [l.bytes])),
  );
  let bytes = plain;
  let cut = false;
  if (fuzz.chance(0.3)) {
    bytes = gzipSync(plain);
    if (fuzz.chance(0.5)) {
      // Cut anywhere after the magic bytes (so it still reads as gzip), trailer included.
      bytes = bytes.subarray(0, 2 + fuzz.int(bytes.length - 2));
      cut = true;
    }
  }
  // A plain file whose first line happens to start with the gzip magic bytes is read as gzip too (the
  // readers go by the bytes, util/gzip.ts), and then stops where its bytes stop decoding: at line 1.
  const stopsAt = cut || (bytes === plain && hasGzipMagic(bytes)) ? linesDecoded(bytes) + 1 : null;
  const path = join(dir, name);
  writeFileSync(path, bytes);
  return { path, lines, stopsAt, bytes };
}

// The whole lines a gzip reader gets from `bytes` before they stop decoding.
function linesDecoded(bytes: Buffer): number {
  let decoded: Buffer;
  try {
    decoded = gunzipSync(bytes, { finishFlush: constants.Z_SYNC_FLUSH });
  } catch {
    decoded = Buffer.alloc(0); // not even the header: nothing is readable
  }
  let newlines = 0;
  for (const b of decoded) if (b === 0x0a) newlines++;
  return newlines;
}

/** What a loader made of a file: the lines it loaded (with what it gave), reported, and counted blank. */
export interface LoadAccount {
  loaded: Map<number, unknown>;
  /** Reported lines and why; a lost tail is the entry at its first lost line. */
  reported: Map<number, string>;
  /** Blank lines the loader counted; null for a loader that passes over them without counting. */
  blankLines: number | null;
  /** The line the loader says the file stops at (its lost tail), if it says so. */
  stoppedAt: number | null;
}

/**
 * The accounting every loader owes a file: each good line loaded (and as expected), each bad line
 * reported at its own line, blank lines counted, random lines one of those and never two, and a cut
 * file reported where it stops, with nothing after that line loaded.
 */
export function assertAccounted(file: FuzzFile, got: LoadAccount): void {
  const end = file.stopsAt ?? file.lines.length + 1;
  assert.equal(got.stoppedAt, file.stopsAt, `where the file is said to stop (${file.path})`);
  const blank: number[] = [];
  file.lines.forEach((l, i) => {
    const line = i + 1;
    const where = `${file.path}:${line} (${l.kind}, ${JSON.stringify(l.bytes.toString('latin1')).slice(0, 300)})`;
    const loaded = got.loaded.has(line);
    const reported = got.reported.has(line) && line !== file.stopsAt;
    if (line >= end) {
      assert.ok(!loaded, `${where}: loaded although after the line the file stops at, ${end}`);
      return;
    }
    if (l.kind === 'good') {
      assert.ok(
        loaded,
        `${where}: a good line was not loaded${reported ? ` (reported: ${got.reported.get(line)})` : ''}`,
      );
      assert.deepEqual(got.loaded.get(line), l.expect, `${where}: loaded differently`);
    } else if (l.kind === 'bad') {
      assert.ok(
        reported,
        `${where}: a bad line was not reported${loaded ? ` (loaded as ${JSON.stringify(got.loaded.get(line))})` : ''}`,
      );
    } else if (l.kind === 'blank') {
      assert.ok(!loaded && !reported, `${where}: a blank line was loaded or reported`);
      blank.push(line);
    } else {
      assert.ok(!(loaded && reported), `${where}: both loaded and reported`);
      if (!loaded && !reported) blank.push(line);
    }
    assert.ok(!(loaded && reported), `${where}: both loaded and reported`);
  });
  if (got.blankLines !== null)
    assert.equal(
      got.blankLines,
      blank.length,
      `${file.path}: ${got.blankLines} blank lines counted, but these are neither loaded nor reported: ${blank
        .map((n) => `${n} ${JSON.stringify(file.lines[n - 1]!.bytes.toString('latin1'))}`)
        .join(', ')}`,
    );
  for (const line of got.reported.keys())
    assert.ok(line >= 1 && line <= end, `${file.path}:${line} reported, but the file has lines 1…${end}`);
}
