// Durability under a hard kill: the real `hhkit serve` (a child process, tiny random checkpoint) takes
// comparison submits from 8 concurrent clients and is SIGKILLed the moment the 150th success comes back,
// with other submits still in flight. The store file must then pass PRAGMA integrity_check and hold every
// comparison whose submit returned 2xx (WAL + synchronous=FULL: a returned write is on disk).
import assert from 'node:assert/strict';
import { once } from 'node:events';
import { join } from 'node:path';
import { test } from 'node:test';
import { saveStep } from '../store/dialogue.ts';
import { newToken, Store } from '../store/store.ts';
import { saveTinyCheckpoint, startServer, tempDir } from './test-fixtures.ts';

const WORKERS = 4;
const STEPS_PER_WORKER = 100;
const CLIENTS_PER_WORKER = 2;
const KILL_AFTER = 150;

test('SIGKILL right after responses return: store intact, every acknowledged comparison present', {
  timeout: 60_000,
}, async (t) => {
  const tmp = tempDir('hhkit-crash-');
  const dbPath = join(tmp.path, 'hhkit.db');
  // Steps ready to be picked, written before the server starts, so each submit is one comparison write.
  const workers = (() => {
    using store = Store.open(dbPath);
    const modelId = store.addModel({ name: 'seed-model', kind: 'policy', path: '/ckpt/seed' });
    store.ensureRound(1);
    return Array.from({ length: WORKERS }, (_, w) => {
      const token = newToken();
      const workerId = store.addWorker({ name: `crash-${w}`, role: 'crowdworker', token });
      const steps = store.transaction(() =>
        Array.from({ length: STEPS_PER_WORKER }, (_, i) => {
          const { conversationId } = saveStep(store, {
            workerId,
            task: 'helpful',
            round: 1,
            prompt: `\n\nHuman: crash ${w} question ${i}?\n\nAssistant:`,
            candidates: [
              { text: ` A${i}.`, modelId, sampling: { seed: i } },
              { text: ` B${i}.`, modelId, sampling: { seed: i } },
            ],
          });
          return conversationId;
        }),
      );
      return { token, steps };
    });
  })();
  saveTinyCheckpoint(join(tmp.path, 'snap'), 1);
  const server = await startServer([
    '--db',
    dbPath,
    '--models',
    join(tmp.path, 'snap'),
    '--port',
    '0',
    '--max-new-tokens',
    '4',
    '--round',
    '1',
    // Clients here submit far faster than people; the limiter is not what this test is about.
    '--rate-limit',
    '0',
  ]);
  const exited = once(server.child, 'exit');
  try {
    const post = (token: string, url: string, body: object) =>
      fetch(`${server.url}${url}`, {
        method: 'POST',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify(body),
      });

    // One step through the real model first, so a sampled turn's rows are part of what must survive.
    const first = workers[0]!;
    const turn = await post(first.token, '/api/turns', { text: 'What is 2 plus 2?' });
    assert.equal(turn.status, 200, await turn.clone().text());
    first.steps.unshift(((await turn.json()) as { conversationId: number }).conversationId);

    const acked: { comparisonId: number; conversationId: number }[] = [];
    let killed = false;
    let cutOff = 0;
    await Promise.all(
      workers.flatMap((w) =>
        Array.from({ length: CLIENTS_PER_WORKER }, async (_, c) => {
          for (let k = c; k < w.steps.length && !killed; k += CLIENTS_PER_WORKER) {
            const conversationId = w.steps[k]!;
            try {
              const res = await post(w.token, '/api/comparisons', {
                conversationId,
                choice: 'a',
                strength: 2,
              });
              const body = (await res.json()) as { comparisonId?: number };
              if (res.ok && body.comparisonId !== undefined) {
                acked.push({ comparisonId: body.comparisonId, conversationId });
              } else if (!killed)
                assert.fail(`submit failed before the kill: ${res.status} ${JSON.stringify(body)}`);
            } catch (err) {
              if (!killed) throw err;
              cutOff++; // in flight when the server died: no answer, so no promise was made
            }
            // Killed synchronously on the 150th acknowledgement, while the other clients' submits are pending.
            if (acked.length >= KILL_AFTER && !killed) {
              killed = true;
              server.child.kill('SIGKILL');
            }
          }
        }),
      ),
    );
    const [code, signal] = await exited;
    assert.equal(signal, 'SIGKILL', `server exited with ${code} before the kill`);
    assert.ok(acked.length >= KILL_AFTER);
    t.diagnostic(`${acked.length} acknowledged, ${cutOff} cut off in flight by the kill`);

    using store = Store.open(dbPath);
    assert.deepEqual(store.db.pragma('integrity_check', { simple: true }), 'ok');
    const find = store.db.prepare('SELECT conversation_id AS conversationId FROM comparisons WHERE id = ?');
    const missing = acked.filter(
      (a) =>
        (find.get(a.comparisonId) as { conversationId: number } | undefined)?.conversationId !==
        a.conversationId,
    );
    assert.deepEqual(missing, [], `${missing.length} of ${acked.length} acknowledged comparisons lost`);
    const { n } = store.db.prepare('SELECT count(*) AS n FROM comparisons').get() as { n: number };
    // Submits cut off by the kill may or may not have committed; nothing beyond those can exist.
    assert.ok(
      n >= acked.length && n <= acked.length + cutOff,
      `${n} stored, ${acked.length} acked, ${cutOff} cut off`,
    );
  } finally {
    if (server.child.exitCode === null && server.child.signalCode === null) server.child.kill('SIGKILL');
    tmp.dispose();
  }
});
