import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { removeAtomicTemps, writeFileAtomicSync } from './atomic.ts';

test('removeAtomicTemps removes what killed atomic writes of that file left, and nothing else', () => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-atomic-'));
  writeFileAtomicSync(join(dir, 'state.json'), '{}');
  // What a kill between the temp write and the rename leaves (another process's pid), and neighbours.
  for (const n of ['.state.json.tmp-999-abc', '.other.json.tmp-999-abc', 'state.json.bak'])
    writeFileSync(join(dir, n), 'x');
  removeAtomicTemps(join(dir, 'state.json'));
  assert.deepEqual(readdirSync(dir).sort(), ['.other.json.tmp-999-abc', 'state.json', 'state.json.bak']);
  removeAtomicTemps(join(dir, 'missing', 'x.json')); // a folder that does not exist is nothing to clean
});
