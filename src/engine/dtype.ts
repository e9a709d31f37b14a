/** Tensor element types. The numeric codes are shared with native/core.cc (kDtypes). */
export type DType =
  | 'float32'
  | 'float64'
  | 'float16'
  | 'bfloat16'
  | 'int64'
  | 'int32'
  | 'bool'
  | 'uint8'
  | 'int8';

export const DTYPES: readonly DType[] = [
  'float32',
  'float64',
  'float16',
  'bfloat16',
  'int64',
  'int32',
  'bool',
  'uint8',
  'int8',
];

const CODES = new Map<DType, number>(DTYPES.map((d, i) => [d, i]));

/**
 * The numeric code of `dtype` that the native binding takes (its index in DTYPES); a TypeError naming the
 * known dtypes for any other string.
 *
 * @example dtypeCode('int64') // 4
 */
export function dtypeCode(dtype: DType): number {
  const code = CODES.get(dtype);
  if (code === undefined)
    throw new TypeError(`unknown dtype '${dtype}'; expected one of ${DTYPES.join(', ')}`);
  return code;
}

/**
 * The dtype of a numeric code the native binding returned (the inverse of dtypeCode).
 *
 * @example dtypeFromCode(4) // 'int64'
 */
export function dtypeFromCode(code: number): DType {
  const d = DTYPES[code];
  if (!d) throw new TypeError(`native returned an unknown dtype code ${code}`);
  return d;
}

export const ELEMENT_SIZE: Record<DType, number> = {
  float32: 4,
  float64: 8,
  float16: 2,
  bfloat16: 2,
  int64: 8,
  int32: 4,
  bool: 1,
  uint8: 1,
  int8: 1,
};

/**
 * Whether `dtype` is a floating-point type (float32, float64, float16, bfloat16): the ones autograd
 * differentiates and autocast changes.
 *
 * @example isFloating('bfloat16') // true; isFloating('int64') // false
 */
export function isFloating(dtype: DType): boolean {
  return dtype === 'float32' || dtype === 'float64' || dtype === 'float16' || dtype === 'bfloat16';
}

/** The typed array that holds each dtype's values in JS (16-bit floats are widened to float32 on read). */
export type TypedArray =
  | Float32Array
  | Float64Array
  | BigInt64Array
  | Int32Array
  | Uint8Array
  | Int8Array
  | Uint16Array;

/** Views raw little-endian bytes of `dtype` as its typed array (no copy). */
export function viewBytes(dtype: DType, buf: ArrayBuffer): TypedArray {
  switch (dtype) {
    case 'float32':
      return new Float32Array(buf);
    case 'float64':
      return new Float64Array(buf);
    case 'int64':
      return new BigInt64Array(buf);
    case 'int32':
      return new Int32Array(buf);
    case 'int8':
      return new Int8Array(buf);
    case 'float16':
    case 'bfloat16':
      return new Uint16Array(buf);
    default:
      return new Uint8Array(buf);
  }
}
