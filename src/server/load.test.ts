// Load test of the comparison-submit route (issue 7 acceptance): the real server on loopback, a real store
// file (WAL, synchronous=FULL: every comparison is on disk when its request returns), 1000 POSTs (HHKIT_LOAD_REQUESTS) from 16
// concurrent clients, each submitting picks for its own worker's steps. Asserts zero errors, every
// comparison stored once, and a bound on wall time; prints requests/s and latency percentiles. Figures
// are noisy on a shared 2-core machine.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { saveStep } from '../store/dialogue.ts';
import { newToken, Store } from '../store/store.ts';
import { buildServer } from './app.ts';
import { ScriptedSampler } from './test-fixtures.ts';

// 1000 by default keeps the file under ~30 s on the shared machine (fsync per commit); HHKIT_LOAD_REQUESTS=2000 for more.
const REQUESTS = Number(process.env['HHKIT_LOAD_REQUESTS'] ?? 1000);
const CONCURRENCY = 16;
const TIME_LIMIT_MS = 30_000;

const quantile = (sorted: readonly number[], q: number): number =>
  sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))]!;

test(`load: ${REQUESTS} comparison submits, ${CONCURRENCY} concurrent clients, no errors`, async (t) => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-load-'));
  const store = Store.open(join(dir, 'hhkit.db'));
  const models = ['snap-a', 'snap-b'].map((name) => ({
    id: store.addModel({ name, kind: 'policy', path: `/ckpt/${name}` }),
    name,
    path: `/ckpt/${name}`,
  }));
  // 16 clients each submit ~60 picks in a few seconds, far past the default per-worker write limit (a person
  // needs far longer per comparison); the limiter stays on, raised, so its hook is part of what is measured.
  const app = await buildServer({
    store,
    sampler: new ScriptedSampler(models),
    round: 1,
    rateLimit: { writesPerMinute: 1_000_000, writeBurst: REQUESTS },
  });
  try {
    // Each client is one crowdworker with its own steps (a step takes exactly one comparison).
    const clients = Array.from({ length: CONCURRENCY }, (_, c) => {
      const token = newToken();
      const workerId = store.addWorker({ name: `load-${c}`, role: 'crowdworker', token });
      return { token, workerId, steps: [] as number[] };
    });
    store.transaction(() => {
      for (let i = 0; i < REQUESTS; i++) {
        const client = clients[i % CONCURRENCY]!;
        const { conversationId } = saveStep(store, {
          workerId: client.workerId,
          task: i % 3 === 0 ? 'red-team' : 'helpful',
          round: 1,
          prompt: `\n\nHuman: load question ${i}?\n\nAssistant:`,
          candidates: [
            { text: ` answer A${i}.`, modelId: models[0]!.id, sampling: { seed: i } },
            { text: ` answer B${i}.`, modelId: models[1]!.id, sampling: { seed: i } },
          ],
        });
        client.steps.push(conversationId);
      }
    });
    const url = await app.listen({ host: '127.0.0.1', port: 0 });

    const latencies: number[] = [];
    const failures: string[] = [];
    const started = performance.now();
    await Promise.all(
      clients.map(async (client, c) => {
        for (const [k, conversationId] of client.steps.entries()) {
          const t0 = performance.now();
          const res = await fetch(`${url}/api/comparisons`, {
            method: 'POST',
            headers: { 'content-type': 'application/json', authorization: `Bearer ${client.token}` },
            body: JSON.stringify({ conversationId, choice: (c + k) % 2 ? 'a' : 'b', strength: 1 + (k % 4) }),
          });
          const body = await res.text();
          latencies.push(performance.now() - t0);
          if (res.status !== 200) failures.push(`${res.status} ${body}`);
        }
      }),
    );
    const seconds = (performance.now() - started) / 1000;
    latencies.sort((a, b) => a - b);
    const figures = {
      requests: REQUESTS,
      concurrency: CONCURRENCY,
      seconds: Number(seconds.toFixed(2)),
      requestsPerSecond: Number((REQUESTS / seconds).toFixed(1)),
      p50ms: Number(quantile(latencies, 0.5).toFixed(2)),
      p99ms: Number(quantile(latencies, 0.99).toFixed(2)),
      maxMs: Number(latencies.at(-1)!.toFixed(2)),
      errors: failures.length,
    };
    t.diagnostic(JSON.stringify(figures));
    console.log(`load test: ${JSON.stringify(figures)}`);

    assert.deepEqual(failures.slice(0, 5), [], `${failures.length} failed requests`);
    assert.equal(latencies.length, REQUESTS);
    const stored = store.db
      .prepare(
        "SELECT count(*) AS n, count(DISTINCT conversation_id) AS steps FROM comparisons WHERE source = 'interface' AND round_id = 1",
      )
      .get() as { n: number; steps: number };
    assert.deepEqual(stored, { n: REQUESTS, steps: REQUESTS }, 'every submit stored exactly once');
    assert.ok(
      seconds * 1000 < TIME_LIMIT_MS,
      `took ${seconds.toFixed(1)} s (limit ${TIME_LIMIT_MS / 1000} s)`,
    );
  } finally {
    await app.close();
    store.close();
    rmSync(dir, { recursive: true, force: true });
  }
});
