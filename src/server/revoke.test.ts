// Token revocation: an admin revokes a worker's token (every session holding it stops at once, the
// worker's data stays) or gives them a new one (which revokes the old); the last admin who can sign in
// cannot be revoked; crowdworkers cannot revoke anyone.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { auth, rowCount, testServer } from './test-fixtures.ts';

test('a revoked token stops working on every route at once; the worker and their comparisons stay', async () => {
  await using s = await testServer();
  const as = (token: string) => ({
    get: (url: string) => s.app.inject({ method: 'GET', url, headers: auth(token) }),
    post: (url: string, payload?: object) =>
      s.app.inject({ method: 'POST', url, headers: auth(token), ...(payload ? { payload } : {}) }),
  });
  const ana = as(s.worker);
  const boss = as(s.admin);
  const step = (await ana.post('/api/turns', { text: 'hi' })).json() as { conversationId: number };
  assert.equal(
    (await ana.post('/api/comparisons', { conversationId: step.conversationId, choice: 'a', strength: 1 }))
      .statusCode,
    200,
  );
  const open = (await ana.post('/api/turns', { text: 'a second step, not yet picked' })).json() as {
    conversationId: number;
  };

  assert.equal((await ana.post('/api/admin/workers/boss/revoke')).statusCode, 403, 'crowdworkers cannot');
  const revoked = await boss.post('/api/admin/workers/ana/revoke');
  assert.equal(revoked.statusCode, 200);
  assert.deepEqual(revoked.json(), { name: 'ana', canSignIn: false });

  assert.equal((await ana.get('/api/me')).statusCode, 401);
  assert.equal((await ana.post('/api/turns', { text: 'still here?' })).statusCode, 401);
  const late = await ana.post('/api/comparisons', {
    conversationId: open.conversationId,
    choice: 'b',
    strength: 1,
  });
  assert.equal(late.statusCode, 401, 'a session holding the token stops mid-dialogue');
  const signin = await s.app.inject({ method: 'POST', url: '/api/signin', payload: { token: s.worker } });
  assert.equal(signin.statusCode, 401);
  assert.match(signin.json().message, /unknown or revoked invite token/);
  assert.equal(rowCount(s.store, 'comparisons'), 1, 'her comparison stays');
  const workers = (await boss.get('/api/admin/workers')).json() as { name: string; canSignIn: number }[];
  assert.deepEqual(
    workers.map((w) => [w.name, w.canSignIn]),
    [
      ['ana', 0],
      ['boss', 1],
    ],
  );

  // A new token works; the old one stays dead.
  const fresh = await boss.post('/api/admin/workers/ana/token');
  assert.equal(fresh.statusCode, 201);
  const { token, role } = fresh.json() as { token: string; role: string };
  assert.equal(role, 'crowdworker');
  assert.equal((await as(token).get('/api/me')).json().comparisons, 1);
  assert.equal((await ana.get('/api/me')).statusCode, 401);
  // Re-issuing again revokes the token just given.
  const again = (await boss.post('/api/admin/workers/ana/token')).json() as { token: string };
  assert.equal((await as(token).get('/api/me')).statusCode, 401);
  assert.equal((await as(again.token).get('/api/me')).statusCode, 200);

  assert.equal((await boss.post('/api/admin/workers/nobody/revoke')).statusCode, 404);
  assert.equal((await boss.post('/api/admin/workers/nobody/token')).statusCode, 404);
  assert.equal((await boss.post('/api/admin/workers/%3Cb%3E/revoke')).statusCode, 400);
});

test('the last admin who can sign in cannot be revoked; with a second admin, either can be', async () => {
  await using s = await testServer();
  const post = (url: string, token = s.admin, payload?: object) =>
    s.app.inject({ method: 'POST', url, headers: auth(token), ...(payload ? { payload } : {}) });
  const last = await post('/api/admin/workers/boss/revoke');
  assert.equal(last.statusCode, 409);
  assert.match(last.json().message, /last admin who can sign in; invite another admin first/);
  assert.equal(
    (await s.app.inject({ method: 'GET', url: '/api/me', headers: auth(s.admin) })).statusCode,
    200,
  );
  const invite = (await post('/api/admin/invites', s.admin, { name: 'deputy', role: 'admin' })).json() as {
    token: string;
  };
  assert.equal((await post('/api/admin/workers/boss/revoke', invite.token)).statusCode, 200);
  assert.equal((await post('/api/admin/workers/deputy/revoke', invite.token)).statusCode, 409);
  assert.equal((await post('/api/admin/invites', s.admin, { name: 'x' })).statusCode, 401);
});
