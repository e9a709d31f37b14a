import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const faults = (env: Record<string, string>): number => {
  const script = fileURLToPath(new URL('./page-faults.fixture.ts', import.meta.url));
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], {
    encoding: 'utf8',
    env: { ...process.env, ...env },
  });
  assert.equal(r.status, 0, r.stderr);
  return Number(r.stdout.trim());
};

test('a freed 64 MiB tensor is reused from the heap, not unmapped and faulted in again (HHKIT_MALLOC=system does)', () => {
  // 8 rounds × 16384 pages of 4 KiB when every round maps fresh memory.
  const kept = faults({});
  const system = faults({ HHKIT_MALLOC: 'system' });
  assert.ok(kept < 2000, `with the addon's malloc settings: ${kept} page faults over 8 rounds`);
  assert.ok(system > 8 * 16384 * 0.9, `with glibc's defaults: ${system} page faults over 8 rounds`);
});
