import assert from 'node:assert/strict';
import { test } from 'node:test';
import { gzipSync } from 'node:zlib';
import { hasGzipMagic } from './gzip.ts';

test('hasGzipMagic: the first two bytes decide, whatever follows', () => {
  assert.equal(hasGzipMagic(gzipSync('{"chosen": "a"}\n')), true);
  assert.equal(hasGzipMagic(Buffer.from([0x1f, 0x8b, 0xbe])), true); // not a valid gzip, still read as one
  assert.equal(hasGzipMagic(Buffer.from('{"chosen": "a"}\n')), false);
  assert.equal(hasGzipMagic(Buffer.from([0x8b, 0x1f])), false);
  assert.equal(hasGzipMagic(Buffer.from([0x1f])), false);
  assert.equal(hasGzipMagic(Buffer.alloc(0)), false);
});
