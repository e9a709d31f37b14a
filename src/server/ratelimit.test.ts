// Rate limits on the feedback server: a burst past a worker's write limit, or past an IP's token-guess
// limit (sign-in attempts and wrong tokens on the other routes), gets 429 + Retry-After and stores nothing; other workers and IPs are unaffected; once the window has
// passed (a fake clock, so no sleeping), requests succeed again.
import assert from 'node:assert/strict';
import { test } from 'node:test';
import { saveStep } from '../store/dialogue.ts';
import { newToken, Store } from '../store/store.ts';
import { buildServer } from './app.ts';
import { type RateLimitOptions, TokenBuckets } from './ratelimit.ts';
import { ScriptedSampler } from './test-fixtures.ts';

async function setup(rateLimit: RateLimitOptions) {
  const store = Store.open(':memory:');
  const deployed = ['snap-a', 'snap-b'].map((name) => ({
    id: store.addModel({ name, kind: 'policy' as const, path: `/ckpt/${name}` }),
    name,
    path: `/ckpt/${name}`,
  }));
  const sampler = new ScriptedSampler(deployed);
  const app = await buildServer({ store, sampler, round: 1, rateLimit });
  const worker = (name: string) => {
    const token = newToken();
    const id = store.addWorker({ name, role: 'crowdworker', token });
    // Steps ready to be picked, so each comparison submit is one write.
    const steps = Array.from({ length: 12 }, (_, i) => {
      const { conversationId } = saveStep(store, {
        workerId: id,
        task: 'helpful',
        round: 1,
        prompt: `\n\nHuman: ${name} question ${i}?\n\nAssistant:`,
        candidates: [
          { text: ' A.', modelId: deployed[0]!.id, sampling: { seed: i } },
          { text: ' B.', modelId: deployed[1]!.id, sampling: { seed: i } },
        ],
      });
      return conversationId;
    });
    return { token, id, steps };
  };
  const pick = (w: { token: string; steps: number[] }, k: number) =>
    app.inject({
      method: 'POST',
      url: '/api/comparisons',
      headers: { authorization: `Bearer ${w.token}` },
      payload: { conversationId: w.steps[k]!, choice: 'a', strength: 2 },
    });
  const stored = (workerId: number) =>
    (
      store.db.prepare('SELECT count(*) AS n FROM comparisons WHERE worker_id = ?').get(workerId) as {
        n: number;
      }
    ).n;
  return { app, store, sampler, worker, pick, stored };
}

test('a write burst past the per-worker limit gets 429 + Retry-After, stores nothing, and recovers after the window', async () => {
  let now = 0;
  const s = await setup({ writesPerMinute: 6, writeBurst: 3, now: () => now });
  try {
    const ana = s.worker('ana');
    const bo = s.worker('bo');
    const codes: number[] = [];
    for (let k = 0; k < 5; k++) codes.push((await s.pick(ana, k)).statusCode);
    assert.deepEqual(codes, [200, 200, 200, 429, 429]);
    const refused = await s.pick(ana, 5);
    assert.equal(refused.statusCode, 429);
    // 6 per minute: the next token is back in 10 s.
    assert.equal(refused.headers['retry-after'], '10');
    assert.equal(refused.json().error, 'rate-limited');
    assert.match(refused.json().message, /try again in 10 s/);
    assert.equal(s.stored(ana.id), 3, 'refused picks stored nothing');

    // A refused turn samples nothing and writes no conversation either.
    const conversations = () =>
      (s.store.db.prepare('SELECT count(*) AS n FROM conversations').get() as { n: number }).n;
    const before = conversations();
    const turn = await s.app.inject({
      method: 'POST',
      url: '/api/turns',
      headers: { authorization: `Bearer ${ana.token}` },
      payload: { text: 'Hello?' },
    });
    assert.equal(turn.statusCode, 429);
    assert.equal(s.sampler.calls.length, 0);
    assert.equal(conversations(), before);

    // Another worker has its own bucket.
    assert.equal((await s.pick(bo, 0)).statusCode, 200);

    // After one refill interval exactly one more write goes through; after a full minute, the burst again.
    now += 10_000;
    assert.equal((await s.pick(ana, 3)).statusCode, 200);
    assert.equal((await s.pick(ana, 4)).statusCode, 429);
    now += 60_000;
    codes.length = 0;
    for (let k = 4; k < 8; k++) codes.push((await s.pick(ana, k)).statusCode);
    assert.deepEqual(codes, [200, 200, 200, 429]);
    assert.equal(s.stored(ana.id), 7);
  } finally {
    await s.app.close();
    s.store.close();
  }
});

test('sign-in attempts are limited per client IP, right or wrong, and recover after the window', async () => {
  let now = 0;
  const s = await setup({ signinPerMinute: 10, now: () => now });
  try {
    const ana = s.worker('ana');
    const signin = (token: string, remoteAddress = '10.0.0.1') =>
      s.app.inject({ method: 'POST', url: '/api/signin', payload: { token }, remoteAddress });
    const codes: number[] = [];
    for (let i = 0; i < 10; i++) codes.push((await signin(`guess-${i}`)).statusCode);
    assert.deepEqual(codes, Array(10).fill(401));
    const limited = await signin(ana.token);
    assert.equal(limited.statusCode, 429, 'even the right token is refused once the IP is over its limit');
    assert.equal(limited.headers['retry-after'], '6');
    assert.equal((await signin(ana.token, '10.0.0.2')).statusCode, 200, 'another IP is unaffected');
    now += 6_000;
    assert.equal((await signin(ana.token)).statusCode, 200);
    assert.equal((await signin(ana.token)).statusCode, 429);
  } finally {
    await s.app.close();
    s.store.close();
  }
});

test('wrong tokens on the routes behind sign-in use up the same per-IP limit as sign-in attempts', async () => {
  let now = 0;
  const s = await setup({ signinPerMinute: 10, now: () => now });
  try {
    const ana = s.worker('ana');
    const admin = newToken();
    s.store.addWorker({ name: 'root', role: 'admin', token: admin });
    const call = (url: string, token: string | null, remoteAddress = '10.0.0.1') =>
      s.app.inject({
        method: 'GET',
        url,
        remoteAddress,
        ...(token === null ? {} : { headers: { authorization: `Bearer ${token}` } }),
      });
    // A worker's own calls with her right token, and calls with no token at all, use up nothing.
    for (let i = 0; i < 30; i++) assert.equal((await call('/api/me', ana.token)).statusCode, 200);
    for (let i = 0; i < 30; i++) assert.equal((await call('/api/me', null)).statusCode, 401);
    // Guesses: 5 on /api/me, 4 on an admin route, 1 at sign-in: the IP's 10 per minute.
    const codes: number[] = [];
    for (let i = 0; i < 5; i++) codes.push((await call('/api/me', `guess-${i}`)).statusCode);
    for (let i = 0; i < 4; i++) codes.push((await call('/api/admin/workers', `guess-a${i}`)).statusCode);
    codes.push(
      (
        await s.app.inject({
          method: 'POST',
          url: '/api/signin',
          payload: { token: 'g' },
          remoteAddress: '10.0.0.1',
        })
      ).statusCode,
    );
    assert.deepEqual(codes, Array(10).fill(401));
    // Over the limit: refused before the lookup, on every route, even with a right token.
    const limited = await call('/api/me', ana.token);
    assert.equal(limited.statusCode, 429);
    assert.equal(limited.headers['retry-after'], '6');
    assert.match(limited.json().message, /Too many requests with a wrong token/);
    assert.equal((await call('/api/admin/workers', admin)).statusCode, 429);
    assert.equal(
      (
        await s.app.inject({
          method: 'POST',
          url: '/api/signin',
          payload: { token: ana.token },
          remoteAddress: '10.0.0.1',
        })
      ).statusCode,
      429,
    );
    const write = await s.app.inject({
      method: 'POST',
      url: '/api/comparisons',
      remoteAddress: '10.0.0.1',
      headers: { authorization: `Bearer ${ana.token}` },
      payload: { conversationId: ana.steps[0]!, choice: 'a', strength: 2 },
    });
    assert.equal(write.statusCode, 429);
    assert.equal(s.stored(ana.id), 0, 'a refused write stores nothing');
    assert.equal((await call('/api/me', ana.token, '10.0.0.2')).statusCode, 200, 'another IP is unaffected');
    // One guess back after 6 s: a wrong one takes it, and the right token waits again.
    now += 6_000;
    assert.equal((await call('/api/me', 'guess-late')).statusCode, 401);
    assert.equal((await call('/api/me', ana.token)).statusCode, 429);
    now += 6_000;
    assert.equal((await call('/api/me', ana.token)).statusCode, 200);
  } finally {
    await s.app.close();
    s.store.close();
  }
});

test('a rate of 0 turns a limit off', async () => {
  const s = await setup({ writesPerMinute: 0, signinPerMinute: 0, now: () => 0 });
  try {
    const ana = s.worker('ana');
    const codes = new Set<number>();
    for (let k = 0; k < 12; k++) codes.add((await s.pick(ana, k)).statusCode);
    for (let i = 0; i < 15; i++) {
      codes.add(
        (await s.app.inject({ method: 'POST', url: '/api/signin', payload: { token: ana.token } }))
          .statusCode,
      );
    }
    assert.deepEqual([...codes], [200]);
    for (let i = 0; i < 15; i++) {
      const res = await s.app.inject({
        method: 'GET',
        url: '/api/me',
        headers: { authorization: 'Bearer x' },
      });
      codes.add(res.statusCode);
    }
    assert.deepEqual([...codes], [200, 401], 'wrong tokens are not limited either');
    assert.equal(s.stored(ana.id), 12);
  } finally {
    await s.app.close();
    s.store.close();
  }
});

test('TokenBuckets: burst, refill, retry-after rounding, separate keys', () => {
  let now = 0;
  const b = new TokenBuckets({ perMinute: 60, burst: 2, now: () => now });
  assert.deepEqual([b.take('x'), b.take('x'), b.take('x'), b.take('y')], [0, 0, 1, 0]);
  now += 500;
  assert.equal(b.take('x'), 1, 'half a token back: wait the remaining 0.5 s, rounded up');
  now += 500;
  assert.equal(b.take('x'), 0);
  now += 3_600_000;
  assert.deepEqual([b.take('x'), b.take('x'), b.take('x')], [0, 0, 1], 'refill stops at the burst');
  assert.throws(() => new TokenBuckets({ perMinute: 0, burst: 1 }), RangeError);
});
