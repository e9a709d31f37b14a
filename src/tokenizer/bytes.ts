/**
 * GPT-2's reversible byte ↔ unicode mapping (`bytes_to_unicode` in openai/gpt-2 `encoder.py`).
 *
 * Byte-level BPE works on bytes, but tokenizer.json stores tokens as strings; GPT-2 maps every byte to a
 * printable code point so that no token contains whitespace or control characters. Printable Latin-1
 * bytes map to themselves; the other 68 bytes (controls, space, NBSP, soft hyphen …) map to U+0100
 * onwards, which is why a leading space shows up as "Ġ" and a newline as "Ċ".
 */

/** The 256 bytes in GPT-2's order: printable ranges first, then the rest ascending. Ids 0–255 follow it. */
export const GPT2_BYTE_ORDER: readonly number[] = buildByteOrder();

/** byte → its one-character string in tokenizer.json vocabularies. */
export const BYTE_TO_UNICODE: readonly string[] = buildByteToUnicode();

/** one-character string → byte; the inverse of {@link BYTE_TO_UNICODE}. */
export const UNICODE_TO_BYTE: ReadonlyMap<string, number> = new Map(
  BYTE_TO_UNICODE.map((ch, byte) => [ch, byte]),
);

function isPrintableLatin1(byte: number): boolean {
  // Same ranges as GPT-2: '!'..'~', '¡'..'¬', '®'..'ÿ'.
  return (byte >= 0x21 && byte <= 0x7e) || (byte >= 0xa1 && byte <= 0xac) || (byte >= 0xae && byte <= 0xff);
}

function buildByteOrder(): number[] {
  const order: number[] = [];
  for (let byte = 0; byte < 256; byte++) if (isPrintableLatin1(byte)) order.push(byte);
  for (let byte = 0; byte < 256; byte++) if (!isPrintableLatin1(byte)) order.push(byte);
  return order;
}

function buildByteToUnicode(): string[] {
  const table: string[] = new Array<string>(256);
  let next = 0;
  for (let byte = 0; byte < 256; byte++) {
    table[byte] = String.fromCodePoint(isPrintableLatin1(byte) ? byte : 256 + next++);
  }
  return table;
}

/**
 * Encodes raw bytes as a byte-level token string.
 *
 * @example bytesToTokenString(new TextEncoder().encode(' hi')) // 'Ġhi'
 */
export function bytesToTokenString(bytes: Uint8Array): string {
  let out = '';
  for (const byte of bytes) out += BYTE_TO_UNICODE[byte];
  return out;
}

/**
 * Decodes a byte-level token string back to raw bytes; returns undefined if a character is outside the
 * mapping (e.g. an added token such as "\n\nHuman:" stored verbatim).
 *
 * @example tokenStringToBytes('Ġhi') // Uint8Array [32, 104, 105]
 */
export function tokenStringToBytes(token: string): Uint8Array | undefined {
  const bytes: number[] = [];
  for (const ch of token) {
    const byte = UNICODE_TO_BYTE.get(ch);
    if (byte === undefined) return undefined;
    bytes.push(byte);
  }
  return Uint8Array.from(bytes);
}
