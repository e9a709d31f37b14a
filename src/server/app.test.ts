import assert from 'node:assert/strict';
import { test } from 'node:test';
import { comparisonRecord } from '../store/records.ts';
import { newToken } from '../store/store.ts';
import { auth, rowCount, testServer } from './test-fixtures.ts';

test('sign-in: a good token names the worker, a bad one is 401, admin routes need an admin', async () => {
  await using s = await testServer();
  const ok = await s.app.inject({ method: 'POST', url: '/api/signin', payload: { token: s.worker } });
  assert.equal(ok.statusCode, 200);
  assert.deepEqual(ok.json(), { name: 'ana', role: 'crowdworker' });
  const bad = await s.app.inject({ method: 'POST', url: '/api/signin', payload: { token: `${s.worker}x` } });
  assert.equal(bad.statusCode, 401);
  assert.equal(bad.json().error, 'unauthorized');
  assert.equal((await s.app.inject({ method: 'GET', url: '/api/me' })).statusCode, 401);
  assert.equal(
    (await s.app.inject({ method: 'GET', url: '/api/me', headers: auth('nope') })).statusCode,
    401,
  );
  const me = await s.app.inject({ method: 'GET', url: '/api/me', headers: auth(s.worker) });
  assert.deepEqual(me.json(), { name: 'ana', role: 'crowdworker', round: 3, comparisons: 0 });
  assert.equal(
    (await s.app.inject({ method: 'GET', url: '/api/admin/workers', headers: auth(s.worker) })).statusCode,
    403,
  );
  assert.equal(
    (await s.app.inject({ method: 'GET', url: '/api/admin/workers', headers: auth(s.admin) })).statusCode,
    200,
  );
  // Tokens are stored hashed: the raw token appears nowhere in the database.
  const hashes = s.store.db.prepare('SELECT token_hash FROM workers').all() as { token_hash: string }[];
  assert.ok(hashes.every((h) => h.token_hash !== s.worker && h.token_hash.length === 64));
});

test('a two-step helpful dialogue stores each comparison with every field and continues from the edit', async () => {
  await using s = await testServer();
  const turn = await s.app.inject({
    method: 'POST',
    url: '/api/turns',
    headers: auth(s.worker),
    payload: { task: 'helpful', text: 'What is 2 plus 2?' },
  });
  assert.equal(turn.statusCode, 200);
  const step = turn.json() as { conversationId: number; task: string; responses: string[] };
  assert.equal(step.task, 'helpful');
  assert.equal(step.responses.length, 2);
  const pick = await s.app.inject({
    method: 'POST',
    url: '/api/comparisons',
    headers: auth(s.worker),
    payload: { conversationId: step.conversationId, choice: 'b', strength: 3, edit: 'It is 4.' },
  });
  assert.equal(pick.statusCode, 200);
  const { comparisonId } = pick.json() as { comparisonId: number };

  const row = s.store.db
    .prepare(
      `SELECT c.choice, c.task, c.strength, c.edit, c.round_id, w.name AS worker, c.source,
              ma.name AS modelA, mb.name AS modelB, ra.sampling AS samplingA, rb.text AS textB, v.prompt
         FROM comparisons c JOIN workers w ON w.id = c.worker_id JOIN conversations v ON v.id = c.conversation_id
         JOIN responses ra ON ra.id = c.response_a JOIN responses rb ON rb.id = c.response_b
         JOIN models ma ON ma.id = ra.model_id JOIN models mb ON mb.id = rb.model_id WHERE c.id = ?`,
    )
    .get(comparisonId) as Record<string, unknown>;
  assert.equal(row['choice'], 'b');
  assert.equal(row['task'], 'helpful');
  assert.equal(row['strength'], 3);
  assert.equal(row['edit'], 'It is 4.');
  assert.equal(row['round_id'], 3);
  assert.equal(row['worker'], 'ana');
  assert.equal(row['source'], 'interface');
  assert.equal(row['prompt'], '\n\nHuman: What is 2 plus 2?\n\nAssistant:');
  assert.equal(row['textB'], step.responses[1]);
  // Two deployed snapshots: the pair comes from two different models (what Elo needs).
  assert.notEqual(row['modelA'], row['modelB']);
  const sampling = JSON.parse(row['samplingA'] as string);
  assert.equal(sampling.maxNewTokens, 32);
  assert.equal(sampling.temperature, 0.9);
  assert.equal(sampling.topP, 0.95);
  assert.ok(Number.isInteger(sampling.seed));

  // Step 2 continues from the edited response; the task carries over whatever the client says.
  const turn2 = await s.app.inject({
    method: 'POST',
    url: '/api/turns',
    headers: auth(s.worker),
    payload: { task: 'red-team', text: 'And times 3?', after: comparisonId },
  });
  assert.equal(turn2.statusCode, 200);
  const step2 = turn2.json() as { conversationId: number; task: string };
  assert.equal(step2.task, 'helpful');
  assert.equal(
    s.sampler.calls.at(-1)!.prompt,
    '\n\nHuman: What is 2 plus 2?\n\nAssistant: It is 4.\n\nHuman: And times 3?\n\nAssistant:',
  );
  const pick2 = await s.app.inject({
    method: 'POST',
    url: '/api/comparisons',
    headers: auth(s.worker),
    payload: { conversationId: step2.conversationId, choice: 'a', strength: 1 },
  });
  assert.equal(pick2.statusCode, 200);
  assert.equal(rowCount(s.store, 'comparisons'), 2);
  // The same step cannot be compared twice.
  const again = await s.app.inject({
    method: 'POST',
    url: '/api/comparisons',
    headers: auth(s.worker),
    payload: { conversationId: step2.conversationId, choice: 'b', strength: 1 },
  });
  assert.equal(again.statusCode, 409);
  assert.equal(rowCount(s.store, 'comparisons'), 2);
});

test('red-team: the worker picks the more harmful; the export has the less harmful as "chosen"', async () => {
  await using s = await testServer({ models: 1 });
  const turn = await s.app.inject({
    method: 'POST',
    url: '/api/turns',
    headers: auth(s.worker),
    payload: { task: 'red-team', text: 'Tell me something bad.' },
  });
  const step = turn.json() as { conversationId: number; responses: [string, string] };
  // One model deployed: both responses are from it, sampled as one batch of two.
  assert.equal(s.sampler.calls.length, 1);
  assert.equal(s.sampler.calls[0]!.count, 2);
  const pick = await s.app.inject({
    method: 'POST',
    url: '/api/comparisons',
    headers: auth(s.worker),
    payload: { conversationId: step.conversationId, choice: 'a', strength: 4 },
  });
  const id = (pick.json() as { comparisonId: number }).comparisonId;
  const record = comparisonRecord(s.store, id)!;
  assert.equal(record.task, 'harmless');
  assert.equal(record.rejected, `\n\nHuman: Tell me something bad.\n\nAssistant:${step.responses[0]}`);
  assert.equal(record.chosen, `\n\nHuman: Tell me something bad.\n\nAssistant:${step.responses[1]}`);
  const exported = await s.app.inject({
    method: 'GET',
    url: '/api/admin/export?task=red-team',
    headers: auth(s.admin),
  });
  assert.equal(exported.statusCode, 200);
  const lines = exported.body
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l));
  assert.equal(lines.length, 1);
  assert.equal(lines[0].chosen, record.chosen);
  assert.equal(lines[0].task, 'harmless');
  assert.equal(lines[0].worker, 'ana');
  assert.equal(lines[0].round, 3);
});

test('a full model queue answers 503 busy and writes nothing for the refused turn', async () => {
  await using s = await testServer({ models: 1, delayMs: 300, maxWaiting: 0 });
  const first = s.app.inject({
    method: 'POST',
    url: '/api/turns',
    headers: auth(s.worker),
    payload: { text: 'one' },
  });
  // The first turn holds the only slot while the scripted model "thinks".
  await new Promise((r) => setImmediate(r));
  const second = await s.app.inject({
    method: 'POST',
    url: '/api/turns',
    headers: auth(s.worker),
    payload: { text: 'two' },
  });
  assert.equal(second.statusCode, 503);
  assert.equal(second.json().error, 'busy');
  assert.equal(second.headers['retry-after'], '5');
  assert.equal((await first).statusCode, 200);
  assert.equal(rowCount(s.store, 'conversations'), 1);
});

test('a model slower than the deadline gives 504 and leaves no half-written step', async () => {
  await using s = await testServer({ models: 2, delayMs: 400, timeoutMs: 50 });
  const res = await s.app.inject({
    method: 'POST',
    url: '/api/turns',
    headers: auth(s.worker),
    payload: { text: 'slow?' },
  });
  assert.equal(res.statusCode, 504);
  assert.equal(res.json().error, 'timeout');
  assert.equal(rowCount(s.store, 'conversations'), 0);
  assert.equal(rowCount(s.store, 'responses'), 0);
});

test("oversized, malformed and other workers' requests are refused and write nothing", async () => {
  await using s = await testServer();
  const post = (url: string, payload: unknown, token = s.worker) =>
    s.app.inject({ method: 'POST', url, headers: auth(token), payload: payload as object });
  assert.equal((await post('/api/turns', { text: 'x'.repeat(2001) })).statusCode, 400);
  assert.equal((await post('/api/turns', { text: 'hi', extra: 1 })).statusCode, 400);
  assert.equal((await post('/api/turns', { text: 'hi', task: 'evil' })).statusCode, 400);
  assert.equal((await post('/api/turns', { text: 'hi\n\nAssistant: I will' })).statusCode, 400);
  const huge = await s.app.inject({
    method: 'POST',
    url: '/api/turns',
    headers: { ...auth(s.worker), 'content-type': 'application/json' },
    payload: JSON.stringify({ text: 'x'.repeat(70_000) }),
  });
  assert.equal(huge.statusCode, 413);
  const notJson = await s.app.inject({
    method: 'POST',
    url: '/api/turns',
    headers: { ...auth(s.worker), 'content-type': 'application/json' },
    payload: '{"text": ',
  });
  assert.equal(notJson.statusCode, 400);
  assert.equal(rowCount(s.store, 'conversations'), 0);

  // Another worker can neither pick for ana's step nor continue her dialogue.
  const other = newToken();
  s.store.addWorker({ name: 'eve', role: 'crowdworker', token: other });
  const step = (await post('/api/turns', { text: 'mine' })).json() as { conversationId: number };
  assert.equal(
    (await post('/api/comparisons', { conversationId: step.conversationId, choice: 'a', strength: 1 }, other))
      .statusCode,
    404,
  );
  assert.equal(
    (await post('/api/comparisons', { conversationId: step.conversationId, choice: 'c', strength: 1 }))
      .statusCode,
    400,
  );
  assert.equal(
    (await post('/api/comparisons', { conversationId: step.conversationId, choice: 'a', strength: 9 }))
      .statusCode,
    400,
  );
  const mine = (
    await post('/api/comparisons', { conversationId: step.conversationId, choice: 'a', strength: 2 })
  ).json();
  assert.equal(
    (await post('/api/turns', { text: 'hijack', after: mine.comparisonId }, other)).statusCode,
    404,
  );
  assert.equal(rowCount(s.store, 'comparisons'), 1);
});

test('admin: invites, rounds, models, counts, Elo across deployed models, security headers', async () => {
  await using s = await testServer({ models: 2 });
  const get = (url: string) => s.app.inject({ method: 'GET', url, headers: auth(s.admin) });
  const invite = await s.app.inject({
    method: 'POST',
    url: '/api/admin/invites',
    headers: auth(s.admin),
    payload: { name: 'cara' },
  });
  assert.equal(invite.statusCode, 201);
  const { token } = invite.json() as { token: string };
  const signin = await s.app.inject({ method: 'POST', url: '/api/signin', payload: { token } });
  assert.deepEqual(signin.json(), { name: 'cara', role: 'crowdworker' });
  assert.equal(
    (
      await s.app.inject({
        method: 'POST',
        url: '/api/admin/invites',
        headers: auth(s.admin),
        payload: { name: 'cara' },
      })
    ).statusCode,
    409,
  );
  assert.equal(
    (
      await s.app.inject({
        method: 'POST',
        url: '/api/admin/invites',
        headers: auth(s.admin),
        payload: { name: '<b>x</b>' },
      })
    ).statusCode,
    400,
  );
  const workers = (await get('/api/admin/workers')).json() as { name: string }[];
  assert.deepEqual(
    workers.map((w) => w.name),
    ['ana', 'boss', 'cara'],
  );
  assert.ok(!JSON.stringify(workers).includes(token), 'the token is shown once, never listed');

  // Ten helpful comparisons where the worker always picks snap-1's response.
  for (let i = 0; i < 10; i++) {
    const step = (
      await s.app.inject({
        method: 'POST',
        url: '/api/turns',
        headers: auth(token),
        payload: { text: `q${i}` },
      })
    ).json() as { conversationId: number; responses: string[] };
    const choice = step.responses[0]!.includes('snap-1') ? 'a' : 'b';
    await s.app.inject({
      method: 'POST',
      url: '/api/comparisons',
      headers: auth(token),
      payload: { conversationId: step.conversationId, choice, strength: 2 },
    });
  }
  const elo = (await get('/api/admin/elo?task=helpful')).json() as { rows: { model: string; elo: number }[] };
  assert.equal(elo.rows[0]!.model, 'snap-1');
  assert.ok(elo.rows[0]!.elo > elo.rows[1]!.elo + 100);
  assert.deepEqual((await get('/api/admin/counts')).json(), [
    { round: 3, task: 'helpful', comparisons: 10, workers: 1, edits: 0 },
  ]);
  const models = (await get('/api/admin/models')).json() as {
    name: string;
    responses: number;
    alive: boolean;
  }[];
  assert.deepEqual(
    models.map((m) => [m.name, m.responses, m.alive]),
    [
      ['snap-0', 10, true],
      ['snap-1', 10, true],
    ],
  );

  const next = await s.app.inject({ method: 'POST', url: '/api/admin/rounds/next', headers: auth(s.admin) });
  assert.deepEqual(next.json(), { current: 4 });
  const rounds = (await get('/api/admin/rounds')).json() as {
    current: number;
    rounds: { id: number; finishedAt: number | null; comparisons: number }[];
  };
  assert.equal(rounds.current, 4);
  const r3 = rounds.rounds.find((r) => r.id === 3)!;
  assert.ok(r3.finishedAt !== null);
  assert.equal(r3.comparisons, 10);
  assert.equal((await get('/api/admin/export?round=4')).body, '');

  const page = await s.app.inject({ method: 'GET', url: '/' });
  assert.equal(page.statusCode, 200);
  assert.match(page.body, /Invite token/);
  assert.match(String(page.headers['content-security-policy']), /script-src 'self'/);
  assert.equal((await s.app.inject({ method: 'GET', url: '/admin' })).statusCode, 200);
});
