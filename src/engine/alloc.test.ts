import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';

const faults = (env: Record<string, string>): number => {
  const script = fileURLToPath(new URL('./page-faults.fixture.ts', import.meta.url));
  const r = spawnSync(process.execPath, ['--import', 'tsx', script], {
    encoding: 'utf8',
    // The runner's own allocator settings must not leak in: each case sets what it tests.
    env: { ...process.env, HHKIT_MALLOC: '', HHKIT_CPU_CACHE_MB: '', ...env },
  });
  assert.equal(r.status, 0, r.stderr);
  return Number(r.stdout.trim());
};

test("a freed 64 MiB tensor's pages are handed out again by the large-block cache; without it (HHKIT_MALLOC=system, HHKIT_CPU_CACHE_MB=0) every round faults them in afresh", () => {
  // Fresh memory each round: 16384 faults of 4 KiB pages, or 32 of 2 MiB under transparent huge pages.
  const kept = faults({});
  const system = faults({ HHKIT_MALLOC: 'system' });
  const uncached = faults({ HHKIT_CPU_CACHE_MB: '0' });
  for (const [name, n] of [
    ['glibc defaults', system],
    ['cache capped at 0', uncached],
  ] as const)
    assert.ok(n >= 8 * 32, `${name}: ${n} page faults over 8 rounds`);
  assert.ok(kept * 10 < Math.min(system, uncached), `with the cache: ${kept} page faults over 8 rounds`);
});
