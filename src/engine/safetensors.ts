// safetensors read/write (https://github.com/huggingface/safetensors format): 8-byte little-endian header
// length N, N bytes of JSON {name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {…}},
// then the raw little-endian tensor bytes. Interoperable with Python's safetensors / torch, bf16 included.
import { readFileSync } from 'node:fs';
import { writeFileAtomicSync } from '../util/atomic.ts';
import { type DType, ELEMENT_SIZE } from './dtype.ts';
import { fromBytes } from './ops.ts';
import type { Tensor } from './tensor.ts';

const TO_ST: Record<DType, string> = {
  float32: 'F32',
  float64: 'F64',
  float16: 'F16',
  bfloat16: 'BF16',
  int64: 'I64',
  int32: 'I32',
  bool: 'BOOL',
  uint8: 'U8',
  int8: 'I8',
};
const FROM_ST = new Map<string, DType>(Object.entries(TO_ST).map(([k, v]) => [v, k as DType]));

/** A malformed safetensors file; the message names the file and what was wrong. */
export class SafetensorsError extends Error {
  override name = 'SafetensorsError';
}

/**
 * Serialises named tensors (any device; copied to CPU) to safetensors bytes.
 *
 * @example const bytes = encodeSafetensors({ w: randn([2, 2]) }, { format: 'pt' });
 */
export function encodeSafetensors(
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
): Uint8Array {
  const header: Record<string, unknown> = {};
  if (metadata) header['__metadata__'] = metadata;
  const payloads: Uint8Array[] = [];
  let offset = 0;
  // Sorted by name, like the Python library, so the same tensors always give the same file.
  for (const name of Object.keys(tensors).sort()) {
    const t = tensors[name]!;
    const bytes = t.toBytes();
    header[name] = {
      dtype: TO_ST[t.dtype],
      shape: [...t.shape],
      data_offsets: [offset, offset + bytes.length],
    };
    payloads.push(bytes);
    offset += bytes.length;
  }
  let json = JSON.stringify(header);
  // Pad with spaces so the data starts 8-byte aligned (what the reference writer does).
  json += ' '.repeat((8 - ((8 + Buffer.byteLength(json)) % 8)) % 8);
  const headerBytes = Buffer.from(json, 'utf8');
  const out = new Uint8Array(8 + headerBytes.length + offset);
  new DataView(out.buffer).setBigUint64(0, BigInt(headerBytes.length), true);
  out.set(headerBytes, 8);
  let pos = 8 + headerBytes.length;
  for (const p of payloads) {
    out.set(p, pos);
    pos += p.length;
  }
  return out;
}

/** Writes named tensors to `path` atomically (temp file + rename). */
export function saveSafetensors(
  path: string,
  tensors: Record<string, Tensor>,
  metadata?: Record<string, string>,
): void {
  writeFileAtomicSync(path, encodeSafetensors(tensors, metadata));
}

export interface SafetensorsFile {
  tensors: Record<string, Tensor>;
  metadata: Record<string, string>;
}

interface HeaderEntry {
  dtype: string;
  shape: number[];
  data_offsets: [number, number];
}

function isHeaderEntry(v: unknown): v is HeaderEntry {
  if (typeof v !== 'object' || v === null) return false;
  const e = v as Record<string, unknown>;
  return (
    typeof e['dtype'] === 'string' &&
    Array.isArray(e['shape']) &&
    e['shape'].every((d) => Number.isInteger(d) && d >= 0) &&
    Array.isArray(e['data_offsets']) &&
    e['data_offsets'].length === 2 &&
    e['data_offsets'].every((d) => Number.isInteger(d) && d >= 0)
  );
}

/** Parses safetensors bytes into CPU tensors; `source` names the file in error messages. */
export function decodeSafetensors(bytes: Uint8Array, source = '<bytes>'): SafetensorsFile {
  const fail = (why: string): never => {
    throw new SafetensorsError(`${source}: not a valid safetensors file: ${why}`);
  };
  if (bytes.length < 8) fail(`only ${bytes.length} bytes`);
  const headerLen = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (headerLen > bytes.length - 8) fail(`header length ${headerLen} exceeds the file size ${bytes.length}`);
  let header: unknown;
  try {
    header = JSON.parse(Buffer.from(bytes.buffer, bytes.byteOffset + 8, headerLen).toString('utf8'));
  } catch (err) {
    fail(`header is not JSON (${(err as Error).message})`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header))
    fail('header is not a JSON object');
  const dataStart = 8 + headerLen;
  const dataLen = bytes.length - dataStart;
  const tensors: Record<string, Tensor> = {};
  let metadata: Record<string, string> = {};
  for (const [name, entry] of Object.entries(header as Record<string, unknown>)) {
    if (name === '__metadata__') {
      metadata = entry as Record<string, string>;
      continue;
    }
    if (!isHeaderEntry(entry)) fail(`entry '${name}' lacks dtype/shape/data_offsets`);
    const e = entry as HeaderEntry;
    const dtype = FROM_ST.get(e.dtype);
    if (!dtype) fail(`tensor '${name}' has unsupported dtype ${e.dtype}`);
    const [begin, end] = e.data_offsets;
    const numel = e.shape.reduce((a, b) => a * b, 1);
    if (end < begin || end > dataLen)
      fail(`tensor '${name}' data_offsets [${begin}, ${end}] outside the data`);
    if (end - begin !== numel * ELEMENT_SIZE[dtype!]) {
      fail(
        `tensor '${name}' has ${end - begin} bytes but ${e.dtype}${JSON.stringify(e.shape)} needs ${numel * ELEMENT_SIZE[dtype!]}`,
      );
    }
    tensors[name] = fromBytes(bytes.subarray(dataStart + begin, dataStart + end), dtype!, e.shape);
  }
  return { tensors, metadata };
}

/**
 * Reads a safetensors file into CPU tensors.
 *
 * @example const { tensors } = loadSafetensors('ckpt/model.safetensors');
 */
export function loadSafetensors(path: string): SafetensorsFile {
  return decodeSafetensors(readFileSync(path), path);
}
