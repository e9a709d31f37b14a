// How every reader of hhkit's data files tells a gzip from plain text: by its first two bytes (RFC 1952's
// magic), never by the file's name, so a .jsonl that is really gzipped still reads. A plain file whose
// first line happens to start with those bytes is read as gzip too, and reported where it stops decoding.

/**
 * True when `bytes` start with the gzip magic (1f 8b).
 *
 * @example hasGzipMagic(gzipSync('x')) // true
 * @example hasGzipMagic(Buffer.from('{"chosen":')) // false
 */
export function hasGzipMagic(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}
