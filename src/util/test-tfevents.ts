// An independent reader of TensorBoard event files for tests, written from the format's description
// (util/tfevents.ts's header) rather than from the writer: a bit-by-bit CRC-32C (no table), a generic
// protobuf field walker. Every CRC is checked; an unexpected field is an error.
import assert from 'node:assert/strict';
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';

export function crc32cBitwise(bytes: Uint8Array): number {
  let crc = 0xffffffff;
  for (const b of bytes) {
    crc ^= b;
    for (let k = 0; k < 8; k++) crc = crc & 1 ? (crc >>> 1) ^ 0x82f63b78 : crc >>> 1;
  }
  return (crc ^ 0xffffffff) >>> 0;
}
/** TensorFlow's crc32c::Mask. */
export const mask = (crc: number): number => (((crc >>> 15) | (crc << 17)) + 0xa282ead8) >>> 0;

type Field = { field: number; wire: number; value: number | Uint8Array };

/** The top-level fields of one protobuf message. */
function fields(buf: Uint8Array): Field[] {
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const out: Field[] = [];
  let i = 0;
  const varint = (): number => {
    let result = 0;
    let scale = 1;
    for (;;) {
      const b = buf[i++]!;
      result += (b & 0x7f) * scale;
      if (b < 0x80) return result;
      scale *= 128;
    }
  };
  while (i < buf.length) {
    const key = varint();
    const field = key >>> 3;
    const wire = key & 7;
    if (wire === 0) out.push({ field, wire, value: varint() });
    else if (wire === 1) {
      out.push({ field, wire, value: view.getFloat64(i, true) });
      i += 8;
    } else if (wire === 5) {
      out.push({ field, wire, value: view.getFloat32(i, true) });
      i += 4;
    } else if (wire === 2) {
      const n = varint();
      out.push({ field, wire, value: buf.subarray(i, i + n) });
      i += n;
    } else throw new Error(`wire type ${wire} at byte ${i}`);
  }
  return out;
}

export interface ReadEvent {
  wallTime: number;
  step: number;
  fileVersion?: string;
  values: { tag: string; value: number }[];
}

/** Every record of an event file, each CRC checked; an error names the record that fails. */
export function readEventFile(path: string): ReadEvent[] {
  const buf = new Uint8Array(readFileSync(path));
  const view = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  const events: ReadEvent[] = [];
  const text = new TextDecoder();
  for (let at = 0, n = 0; at < buf.length; n++) {
    const length = Number(view.getBigUint64(at, true));
    if (view.getUint32(at + 8, true) !== mask(crc32cBitwise(buf.subarray(at, at + 8))))
      throw new Error(`record ${n}: length CRC mismatch`);
    const payload = buf.subarray(at + 12, at + 12 + length);
    if (view.getUint32(at + 12 + length, true) !== mask(crc32cBitwise(payload)))
      throw new Error(`record ${n}: payload CRC mismatch`);
    at += 12 + length + 4;
    const e: ReadEvent = { wallTime: Number.NaN, step: 0, values: [] };
    for (const f of fields(payload)) {
      if (f.field === 1 && f.wire === 1) e.wallTime = f.value as number;
      else if (f.field === 2 && f.wire === 0) e.step = f.value as number;
      else if (f.field === 3 && f.wire === 2) e.fileVersion = text.decode(f.value as Uint8Array);
      else if (f.field === 5 && f.wire === 2) {
        for (const v of fields(f.value as Uint8Array)) {
          assert.equal(v.field, 1, 'Summary holds only values');
          const parts = fields(v.value as Uint8Array);
          const tag = parts.find((p) => p.field === 1 && p.wire === 2);
          const simple = parts.find((p) => p.field === 2 && p.wire === 5);
          assert.ok(tag && simple, 'a Value has a tag and a simple_value');
          e.values.push({ tag: text.decode(tag.value as Uint8Array), value: simple.value as number });
        }
      } else throw new Error(`record ${n}: unexpected field ${f.field} (wire ${f.wire})`);
    }
    events.push(e);
  }
  return events;
}

/** The one event file in `dir` (TensorBoard's name for it), read. */
export function readEventDir(dir: string): ReadEvent[] {
  const files = readdirSync(dir).filter((f) => f.startsWith('events.out.tfevents.'));
  assert.equal(files.length, 1, `${dir}: ${files.length} event files`);
  return readEventFile(join(dir, files[0]!));
}

/** Every event file in `dir` (TensorBoard's names, in the order it reads them: sorted), each read. */
export function readEventDirFiles(dir: string): ReadEvent[][] {
  return readdirSync(dir)
    .filter((f) => f.startsWith('events.out.tfevents.'))
    .sort()
    .map((f) => readEventFile(join(dir, f)));
}

/** `tag`'s values as [step, value] pairs, in file order. */
export function scalarSeries(events: readonly ReadEvent[], tag: string): [number, number][] {
  return events.flatMap((e) =>
    e.values.filter((v) => v.tag === tag).map((v): [number, number] => [e.step, v.value]),
  );
}
