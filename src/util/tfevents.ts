// TensorBoard's event file format, written by hand (no protobuf or TensorFlow dependency). A file is a
// sequence of TFRecords: uint64 length, masked CRC32C of those 8 bytes, the payload, masked CRC32C of the
// payload (all little-endian). Each payload is an `Event` protobuf (tensorflow/core/util/event.proto):
// wall_time = 1 (double), step = 2 (int64), file_version = 3 (string; "brain.Event:2" in the first record),
// summary = 5 (Summary: repeated value = 1, each Value { tag = 1 string, simple_value = 2 float }).
import { closeSync, mkdirSync, openSync, writeSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';

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

/**
 * A TensorBoard event file in `dir` (created if missing), named `events.out.tfevents.<seconds>.<host>.<pid>`
 * as TensorBoard expects; scalars are written (and reach the disk's page cache) at each call, so a running
 * `tensorboard --logdir DIR` shows them as training goes.
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

  constructor(dir: string) {
    mkdirSync(dir, { recursive: true });
    const now = Date.now() / 1000;
    this.path = join(dir, `events.out.tfevents.${Math.floor(now)}.${hostname()}.${process.pid}`);
    this.fd = openSync(this.path, 'wx');
    this.append(encodeEvent({ wallTime: now, step: 0, fileVersion: 'brain.Event:2' }));
  }

  /** Scalars at `step` (a whole number ≥ 0), tagged by their keys; non-finite values are left out. */
  scalars(step: number, values: Readonly<Record<string, number>>, wallTime = Date.now() / 1000): void {
    const finite = Object.fromEntries(Object.entries(values).filter(([, v]) => Number.isFinite(v)));
    if (Object.keys(finite).length > 0) this.append(encodeEvent({ wallTime, step, scalars: finite }));
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
