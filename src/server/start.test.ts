// startServer, the feedback interface as one call ('hhkit/server'): it serves the deployed model and the
// page, close() stops it, and a port that is taken rejects with the reason after stopping the model workers.
import assert from 'node:assert/strict';
import { createServer } from 'node:net';
import { join } from 'node:path';
import { test } from 'node:test';
import { newToken, Store } from '../store/store.ts';
import { startServer } from './start.ts';
import { saveTinyCheckpoint, tempDir } from './test-fixtures.ts';

test('startServer: a model deployed on a free port, sampled through the API; a taken port is an error naming it', async (t) => {
  const tmp = tempDir('hhkit-start-');
  t.after(() => tmp.dispose());
  const model = join(tmp.path, 'policy');
  saveTinyCheckpoint(model, 1, 'tiny');
  using store = Store.open(join(tmp.path, 'hhkit.db'));
  const token = newToken();
  store.addWorker({ name: 'ana', role: 'crowdworker', token });

  const server = await startServer({ store, models: [model], port: 0, sampling: { maxNewTokens: 4 } });
  try {
    assert.match(server.url, /^http:\/\/127\.0\.0\.1:\d+$/);
    assert.deepEqual(
      server.pool.deployed.map((m) => m.name),
      ['tiny'],
    );
    assert.equal((await fetch(`${server.url}/`)).status, 200);
    const turn = await fetch(`${server.url}/api/turns`, {
      method: 'POST',
      headers: { authorization: `Bearer ${token}`, 'content-type': 'application/json' },
      body: JSON.stringify({ task: 'helpful', text: 'What is 2 plus 2?' }),
    });
    assert.equal(turn.status, 200, await turn.clone().text());
    assert.equal(((await turn.json()) as { responses: string[] }).responses.length, 2);
  } finally {
    await server.close();
  }
  await assert.rejects(fetch(`${server.url}/`), 'closed: nothing listens any more');

  // A port another server holds.
  const blocker = createServer();
  await new Promise<void>((done) => blocker.listen(0, '127.0.0.1', done));
  const { port } = blocker.address() as { port: number };
  try {
    await assert.rejects(
      startServer({ store, models: [model], port }),
      new RegExp(`^Error: cannot listen on 127\\.0\\.0\\.1:${port}: .*EADDRINUSE`),
    );
  } finally {
    blocker.close();
  }
});
