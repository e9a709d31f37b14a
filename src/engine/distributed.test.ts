import assert from 'node:assert/strict';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { networkInterfaces } from 'node:os';
import { freePort, rankEnv, runChild } from '../util/child.ts';
import { DistributedError, distEnv, localAddressToward } from './distributed.ts';

const script = fileURLToPath(new URL('./distributed.fixture.ts', import.meta.url));

interface RankRun {
  code: number | null;
  lines: { what: string; value: unknown }[];
  stderr: string;
}

async function runRanks(scenario: string, n: number): Promise<RankRun[]> {
  const port = await freePort();
  const runs = Array.from({ length: n }, async (_, rank) => {
    const r = await runChild(process.execPath, ['--import', 'tsx', script], {
      env: {
        ...process.env,
        ...rankEnv(rank, n, port),
        SCENARIO: scenario,
        HHKIT_NUM_THREADS: '1',
        HHKIT_DIST_TIMEOUT: '60',
      },
      timeoutMs: 90_000,
    });
    const lines = r.stdout
      .trim()
      .split('\n')
      .filter((l) => l.startsWith('{'))
      .map((l) => JSON.parse(l));
    return { code: r.code, lines, stderr: r.stderr };
  });
  return Promise.all(runs);
}

const value = (run: RankRun, what: string): unknown => run.lines.find((l) => l.what === what)?.value;

test('distEnv reads torchrun variables and rejects malformed ones', () => {
  assert.equal(distEnv({}), null);
  assert.deepEqual(distEnv({ RANK: '1', WORLD_SIZE: '2', MASTER_PORT: '1234' }), {
    rank: 1,
    worldSize: 2,
    localRank: 1,
    masterAddr: '127.0.0.1',
    masterPort: 1234,
  });
  assert.throws(() => distEnv({ RANK: '2', WORLD_SIZE: '2' }), /RANK=2 is not below WORLD_SIZE=2/);
  assert.throws(() => distEnv({ WORLD_SIZE: 'two' }), DistributedError);
});

test('gloo binds to the address on the master network: loopback, own address, a subnet peer, else null', () => {
  assert.equal(localAddressToward('127.0.0.1'), '127.0.0.1');
  assert.equal(localAddressToward('localhost'), '127.0.0.1');
  assert.equal(localAddressToward('node0.example'), null);
  const own = Object.values(networkInterfaces())
    .flat()
    .find((a) => a && a.family === 'IPv4' && !a.internal);
  if (own) {
    assert.equal(localAddressToward(own.address), own.address);
    // a peer on the same subnet: flip the last bit of the host part that the netmask leaves free
    const peer = own.address.replace(/\d+$/, (d) => String(Number(d) ^ 1));
    if (own.netmask !== '255.255.255.255') assert.equal(localAddressToward(peer), own.address);
  }
});

test('gloo collectives on 2 processes: bucketed sum, max, avg, numbers, gathered bytes, broadcast', async () => {
  const [r0, r1] = await runRanks('collectives', 2);
  for (const r of [r0!, r1!]) {
    assert.equal(r.code, 0, r.stderr);
    // a = [1,2,3] + [2,3,4]; b = [[10,0],[0,1]] + [[20,0],[0,1]]; c = 1 + 2 (float64); 16-byte buckets
    const [a, b, c, buckets] = value(r, 'sum') as [number[], number[][], number[], number];
    assert.deepEqual(a, [3, 5, 7]);
    assert.deepEqual(b, [
      [30, 0],
      [0, 2],
    ]);
    assert.deepEqual(c, [3]);
    assert.equal(buckets, 3, 'a (12 B) alone, b (16 B) alone, c (float64) in its own bucket');
    assert.deepEqual(value(r, 'max'), [1, 0]);
    assert.deepEqual(value(r, 'avg'), [1]);
    assert.deepEqual(value(r, 'numbers'), [1, 1]);
    const gathered = value(r, 'gathered') as number[][];
    assert.deepEqual(
      gathered,
      [0, 1].map((rank) => Array.from({ length: 300 }, (_, i) => (i * (rank + 1) + 255 * rank) % 256)),
    );
    assert.match(
      String(value(r, 'ragged')),
      /the ranks hold 1 to 2 bytes .*every rank must pass the same length/,
    );
    assert.deepEqual(value(r, 'broadcast'), [1, 1, 1]);
    assert.deepEqual(value(r, 'drift'), [0, 1]);
  }
  assert.deepEqual(value(r0!, 'world'), [0, 2]);
  assert.deepEqual(value(r1!, 'world'), [1, 2]);
});

test('GradientReducer sums the armed backward over ranks as gradients become ready (DDP-style overlap)', async () => {
  const runs = await runRanks('reducer', 2);
  for (const r of runs) {
    assert.equal(r.code, 0, r.stderr);
    const [g1, g2, unused, overlapped] = value(r, 'reducer') as [number[], number[], number[] | null, number];
    // w1: Σ_r (x1 at scale 1 + at scale 10) = [(1+10)·1 + (1+10)·2, 2 + 2] = [33, 4]
    assert.deepEqual(g1, [33, 4]);
    // w2: Σ_r [2, 11, 2r, 4] = [4, 22, 2, 8]
    assert.deepEqual(g2, [4, 22, 2, 8]);
    assert.deepEqual(unused, [0], 'a parameter no loss used gets a zero gradient, still all-reduced');
    // buckets in reverse order: [unused] (8 B first bucket), [w2] (16 B), [w1]: the two used ones start in backward
    assert.equal(overlapped, 2);
    assert.match(String(value(r, 'orphan')), /unknown or freed gradient reducer/);
  }
});

test('a rank dying makes the survivor fail with a clear error instead of hanging', async () => {
  const [r0, r1] = await runRanks('die', 2);
  assert.equal(r1!.code, 7);
  assert.equal(r0!.code, 0, r0!.stderr);
  const err = value(r0!, 'error') as { message: string; seconds: number } | null;
  assert.ok(err, 'the all-reduce after the peer died must throw');
  assert.match(err.message, /all_reduce failed on rank 0 of 2 \(a peer process exited/);
  assert.ok(err.seconds < 30, `noticed after ${err.seconds} s (timeout is 60 s)`);
});
