// TensorBoard's event file format, written by hand (no protobuf or TensorFlow dependency). A file is a
// sequence of TFRecords: uint64 length, masked CRC32C of those 8 bytes, the payload, masked CRC32C of the
// payload (all little-endian). Each payload is an `Event` protobuf (tensorflow/core/util/event.proto):
// wall_time = 1 (double), step = 2 (int64), file_version = 3 (string; "brain.Event:2" in the first record),
// summary = 5 (Summary: repeated value = 1, each Value { tag = 1 string, simple_value = 2 float }).
import {
  closeSync,
  existsSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeSync,
} from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { writeFileAtomicSync } from './atomic.ts';

/** CRC-32C (Castagnoli, reflected polynomial 0x82F63B78), the checksum TFRecords use. */
const CRC32C_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? (c >>> 1) ^ 0x82f63b78 : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

/**
 * CRC-32C of `bytes`.
 *
 * @example crc32c(new TextEncoder().encode('123456789')); // 0xe3069283
 */
export function crc32c(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) crc = CRC32C_TABLE[(crc ^ b) & 0xff]! ^ (crc >>> 8);
  return (crc ^ 0xffffffff) >>> 0;
}

/**
 * The masked CRC a TFRecord stores: rotate right by 15 bits, add 0xa282ead8 (mod 2³²), so a CRC of data
 * that itself holds CRCs is not degenerate (TensorFlow's crc32c::Mask).
 *
 * @example maskedCrc32c(new Uint8Array(8));
 */
export function maskedCrc32c(bytes: Uint8Array): number {
  const crc = crc32c(bytes);
  return (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;
}

/** Protobuf pieces: a varint, a field key (field number << 3 | wire type). */
function varint(value: number): number[] {
  if (!Number.isSafeInteger(value) || value < 0)
    throw new RangeError(`varint: ${value} is not a whole number ≥ 0`);
  const out: number[] = [];
  let v = value;
  while (v >= 0x80) {
    out.push((v % 0x80) | 0x80);
    v = Math.floor(v / 0x80);
  }
  out.push(v);
  return out;
}
const key = (field: number, wireType: 0 | 1 | 2 | 5): number[] => varint((field << 3) | wireType);
const utf8 = new TextEncoder();
function lengthDelimited(field: number, bytes: Uint8Array | number[]): number[] {
  return [...key(field, 2), ...varint(bytes.length), ...bytes];
}

/** One summary value: Value { tag = 1, simple_value = 2 (float32) }. */
function scalarValue(tag: string, value: number): number[] {
  const f = new Uint8Array(4);
  new DataView(f.buffer).setFloat32(0, value, true);
  return [...lengthDelimited(1, utf8.encode(tag)), ...key(2, 5), ...f];
}

/**
 * An `Event` protobuf: wall time (seconds since the epoch), step, and either the file version or scalars.
 *
 * @example encodeEvent({ wallTime: Date.now() / 1000, step: 10, scalars: { 'step/loss': 2.5 } });
 */
export function encodeEvent(e: {
  wallTime: number;
  step: number;
  fileVersion?: string;
  scalars?: Readonly<Record<string, number>>;
}): Uint8Array {
  const wall = new Uint8Array(8);
  new DataView(wall.buffer).setFloat64(0, e.wallTime, true);
  const bytes = [...key(1, 1), ...wall, ...key(2, 0), ...varint(e.step)];
  if (e.fileVersion !== undefined) bytes.push(...lengthDelimited(3, utf8.encode(e.fileVersion)));
  if (e.scalars) {
    const summary = Object.entries(e.scalars).flatMap(([tag, v]) => lengthDelimited(1, scalarValue(tag, v)));
    bytes.push(...lengthDelimited(5, summary));
  }
  return Uint8Array.from(bytes);
}

/**
 * One TFRecord around `payload`: length, masked CRC of the length, payload, masked CRC of the payload.
 *
 * @example writeSync(fd, tfRecord(encodeEvent({ wallTime: 0, step: 0, fileVersion: 'brain.Event:2' })));
 */
export function tfRecord(payload: Uint8Array): Uint8Array {
  const out = new Uint8Array(8 + 4 + payload.length + 4);
  const view = new DataView(out.buffer);
  view.setBigUint64(0, BigInt(payload.length), true);
  view.setUint32(8, maskedCrc32c(out.subarray(0, 8)), true);
  out.set(payload, 12);
  view.setUint32(12 + payload.length, maskedCrc32c(payload), true);
  return out;
}

/** One record of an event file as read back: its bytes, and what it is. */
interface ReadRecord {
  bytes: Uint8Array;
  /** 'scalars': an event of simple values as encodeEvent writes them; 'other': anything else. */
  kind: 'version' | 'scalars' | 'other';
  wallTime: number;
  step: number;
  /** The values of a 'scalars' record. */
  scalars: { tag: string; value: number }[];
}

/**
 * The protobuf fields of `buf` as [field, wire type, value], or null when it is not a message of the wire
 * types an event uses (varint, 64-bit, length-delimited, 32-bit).
 */
function protoFields(buf: Uint8Array): [number, number, number | Uint8Array][] | null {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: [number, number, number | Uint8Array][] = [];
  let at = 0;
  const readVarint = (): number => {
    let value = 0;
    for (let scale = 1; at < buf.length; scale *= 128) {
      const b = buf[at++]!;
      value += (b & 0x7f) * scale;
      if (b < 0x80) return value;
    }
    return Number.NaN;
  };
  while (at < buf.length) {
    const k = readVarint();
    const [field, wire] = [Math.floor(k / 8), k % 8];
    if (wire === 0) out.push([field, wire, readVarint()]);
    else if (wire === 1 && at + 8 <= buf.length) {
      out.push([field, wire, view.getFloat64(at, true)]);
      at += 8;
    } else if (wire === 5 && at + 4 <= buf.length) {
      out.push([field, wire, view.getFloat32(at, true)]);
      at += 4;
    } else if (wire === 2) {
      const n = readVarint();
      if (!(at + n <= buf.length)) return null;
      out.push([field, wire, buf.subarray(at, at + n)]);
      at += n;
    } else return null;
    if (Number.isNaN(out[out.length - 1]![2])) return null;
  }
  return out;
}

/** What an Event payload is: the file version, scalars as encodeEvent writes them, or something else. */
function readPayload(payload: Uint8Array): Omit<ReadRecord, 'bytes'> {
  const other: Omit<ReadRecord, 'bytes'> = { kind: 'other', wallTime: 0, step: 0, scalars: [] };
  const fields = protoFields(payload);
  if (!fields) return other;
  let wallTime = 0;
  let step = 0;
  let kind: ReadRecord['kind'] | null = null;
  const scalars: { tag: string; value: number }[] = [];
  for (const [field, wire, value] of fields) {
    if (field === 1 && wire === 1) wallTime = value as number;
    else if (field === 2 && wire === 0) step = value as number;
    else if (field === 3 && wire === 2 && kind === null) kind = 'version';
    else if (field === 5 && wire === 2 && kind === null) {
      kind = 'scalars';
      for (const [vField, vWire, v] of protoFields(value as Uint8Array) ?? [[0, 0, 0]]) {
        const parts = vField === 1 && vWire === 2 ? protoFields(v as Uint8Array) : null;
        const tag = parts?.find(([f, w]) => f === 1 && w === 2)?.[2];
        const simple = parts?.find(([f, w]) => f === 2 && w === 5)?.[2];
        if (parts?.length !== 2 || !(tag instanceof Uint8Array) || typeof simple !== 'number') return other;
        scalars.push({ tag: new TextDecoder().decode(tag), value: simple });
      }
    } else return other;
  }
  return kind === null ? other : { kind, wallTime, step, scalars };
}

/**
 * The records of an event file, up to the first one that is cut short or fails its CRCs (the tail a killed
 * writer left); `complete` is false when such a tail was found.
 */
function readRecords(path: string): { records: ReadRecord[]; complete: boolean } {
  const buf = new Uint8Array(readFileSync(path));
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const records: ReadRecord[] = [];
  let at = 0;
  while (at + 12 <= buf.length) {
    const length = Number(view.getBigUint64(at, true));
    const end = at + 12 + length + 4;
    if (end > buf.length || view.getUint32(at + 8, true) !== maskedCrc32c(buf.subarray(at, at + 8))) break;
    const payload = buf.subarray(at + 12, at + 12 + length);
    if (view.getUint32(at + 12 + length, true) !== maskedCrc32c(payload)) break;
    records.push({ bytes: buf.subarray(at, end), ...readPayload(payload) });
    at = end;
  }
  return { records, complete: at === buf.length };
}

/** The event files TensorBoard reads in `dir` (none when it does not exist), sorted as it reads them. */
function eventFiles(dir: string): string[] {
  if (!existsSync(dir)) return [];
  return readdirSync(dir)
    .filter((n) => n.startsWith('events.out.tfevents.'))
    .sort()
    .map((n) => join(dir, n));
}

/**
 * Removes from the event files `paths` every scalar value `drop(tag, step)` names, and a torn last record.
 * A file is rewritten atomically only when something goes, and removed when no scalar is left in it.
 * Records this module does not write (another writer's summaries) are kept as they are.
 */
function dropScalars(paths: readonly string[], drop: (tag: string, step: number) => boolean): void {
  for (const path of paths) {
    if (!existsSync(path)) continue;
    const { records, complete } = readRecords(path);
    let changed = !complete;
    const kept: Uint8Array[] = [];
    let left = 0;
    for (const r of records) {
      if (r.kind !== 'scalars') {
        kept.push(r.bytes);
        if (r.kind === 'other') left++; // another writer's record: the file is not only ours to remove
        continue;
      }
      const values = r.scalars.filter((v) => !drop(v.tag, r.step));
      if (values.length === r.scalars.length) kept.push(r.bytes);
      else {
        changed = true;
        if (values.length > 0) {
          const scalars = Object.fromEntries(values.map((v) => [v.tag, v.value]));
          kept.push(tfRecord(encodeEvent({ wallTime: r.wallTime, step: r.step, scalars })));
        }
      }
      if (values.length > 0) left++;
    }
    if (left === 0) rmSync(path, { force: true });
    else if (changed) writeFileAtomicSync(path, Buffer.concat(kept));
  }
}

export interface TFEventWriterOptions {
  /**
   * Continue the run whose event files are in `dir` already (a resumed run): those files stay, and what
   * this writer writes replaces what they hold from there on — the first value of a tag at step s removes
   * their values of that tag at steps ≥ s, and {@link TFEventWriter.cutAfter} removes every value past a
   * step — so the folder holds each (tag, step) once, whatever the order TensorBoard merges files in.
   * Default false: files already in `dir` are left as they are.
   */
  resume?: boolean;
}

/**
 * A TensorBoard event file in `dir` (created if missing), named `events.out.tfevents.<seconds>.<host>.<pid>`
 * as TensorBoard expects; scalars are written (and reach the disk's page cache) at each call, so a running
 * `tensorboard --logdir DIR` shows them as training goes. With `resume`, the files already in `dir` are
 * the same run's earlier part, cut back as this one writes (see {@link TFEventWriterOptions.resume}); a
 * TensorBoard that read them before the cut shows the old values until it is restarted.
 *
 * @example
 * const tb = new TFEventWriter('runs/tb/ppo');
 * tb.scalars(10, { 'step/reward': 0.4, 'step/kl': 0.02 });
 * tb.close();
 */
export class TFEventWriter {
  /** The event file's path. */
  readonly path: string;
  private fd: number | null;
  /** The event files that were in `dir` before this one (resume only): the run's earlier part. */
  private readonly earlier: readonly string[];
  /** Tags written so far (resume only): a tag's first value cuts the earlier files back. */
  private readonly written = new Set<string>();

  constructor(dir: string, opts: TFEventWriterOptions = {}) {
    mkdirSync(dir, { recursive: true });
    if (opts.resume) {
      // Temp files of a rewrite that a kill cut short (TensorBoard would read them as event files).
      for (const n of readdirSync(dir))
        if (n.startsWith('.events.out.tfevents.') && n.includes('.tmp-'))
          rmSync(join(dir, n), { force: true });
    }
    this.earlier = opts.resume ? eventFiles(dir) : [];
    const now = Date.now() / 1000;
    const name = `events.out.tfevents.${Math.floor(now)}.${hostname()}.${process.pid}`;
    // Another writer of this process in the same second (a run resumed in-process) gets a suffix past the
    // others', so the file still sorts after them: the order TensorBoard reads a folder's files in.
    const suffixes = readdirSync(dir)
      .filter((n) => n === name || n.startsWith(`${name}.`))
      .map((n) => (n === name ? 0 : Number(n.slice(name.length + 1)) || 0));
    this.path = join(dir, suffixes.length ? `${name}.${Math.max(...suffixes) + 1}` : name);
    this.fd = openSync(this.path, 'wx');
    this.append(encodeEvent({ wallTime: now, step: 0, fileVersion: 'brain.Event:2' }));
  }

  /** Scalars at `step` (a whole number ≥ 0), tagged by their keys; non-finite values are left out. */
  scalars(step: number, values: Readonly<Record<string, number>>, wallTime = Date.now() / 1000): void {
    const finite = Object.fromEntries(Object.entries(values).filter(([, v]) => Number.isFinite(v)));
    if (Object.keys(finite).length === 0) return;
    if (this.earlier.length > 0) {
      const fresh = new Set(Object.keys(finite).filter((tag) => !this.written.has(tag)));
      for (const tag of fresh) this.written.add(tag);
      if (fresh.size > 0) dropScalars(this.earlier, (tag, at) => fresh.has(tag) && at >= step);
    }
    this.append(encodeEvent({ wallTime, step, scalars: finite }));
  }

  /**
   * A resumed run continues from its checkpoint at `step`: every value the earlier files hold past it goes
   * (they were written after that checkpoint by the run that was killed), as trainers cut metrics.jsonl.
   * Without `resume`, nothing happens.
   *
   * @example tb.cutAfter(200); // on the trainer's { type: 'resume', step: 200 } event
   */
  cutAfter(step: number): void {
    dropScalars(this.earlier, (_, at) => at > step);
  }

  close(): void {
    if (this.fd !== null) closeSync(this.fd);
    this.fd = null;
  }

  private append(payload: Uint8Array): void {
    if (this.fd === null) throw new Error(`${this.path}: the event file is closed`);
    writeSync(this.fd, tfRecord(payload));
  }
}
