// Fuzz test of the feedback app's JSON routes: a few thousand generated requests — real dialogue steps and
// picks mixed with random and mutated bodies, raw non-JSON bodies, wrong content types, oversized bodies,
// bad, revoked and foreign tokens, junk query strings and route parameters, admin actions (invites,
// revocations, new tokens, rounds) — against one app and store, every route under /api hit. Asserted:
// no 500 and no uncaught error; every refusal is a JSON {error, message} and writes nothing; whatever was
// acknowledged with a 2xx is in the store exactly as sent (text as the documented normalisation makes it),
// reads back byte for byte, and comes out of the admin export as a loadable comparison file. Seeded: the
// seed is printed; HHKIT_FUZZ_SEED replays a run.
import assert from 'node:assert/strict';
import { isUtf8 } from 'node:buffer';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import type { InjectOptions, LightMyRequestResponse as Response } from 'fastify';
import { loadComparisons } from '../data/comparisons.ts';
import { Fuzz, fuzzCase, fuzzSeed } from '../util/test-fuzz.ts';
import { loneSurrogateAt } from '../util/unicode.ts';
import { rowCount, testServer } from './test-fixtures.ts';

const REQUESTS = 3000;
const TABLES = ['workers', 'conversations', 'responses', 'comparisons', 'turns', 'rounds'] as const;

/** The /api routes of the app, as "METHOD /path/:param", read from fastify's route tree. */
function apiRoutes(tree: string): Set<string> {
  const routes = new Set<string>();
  const stack: string[] = [];
  for (const row of tree.split('\n')) {
    const m = /^((?:│ {3}| {4})*)[├└]── (\S+) \(([^)]+)\)/.exec(row);
    if (!m) continue;
    const depth = m[1]!.length / 4;
    stack.length = depth;
    const path = (stack[depth - 1] ?? '') + m[2]!;
    stack.push(path);
    if (!path.startsWith('/api/')) continue;
    for (const method of m[3]!.split(', ')) if (method !== 'HEAD') routes.add(`${method} ${path}`);
  }
  return routes;
}

/** A comparison the app acknowledged, as the store must hold it. */
interface Ack {
  comparisonId: number;
  conversationId: number;
  worker: string;
  choice: string;
  strength: number;
  edit: string | null;
}

/** A generated request: what to inject, the route it hits, and (for a JSON object body) what it sent. */
interface Request {
  route: string;
  opts: InjectOptions;
  /** The worker whose live token the request carries, if any. */
  worker?: string;
  sent?: Record<string, unknown>;
}

/** Worker text as the app documents storing it: CR/CRLF as "\n", trimmed. */
const normalised = (text: string) => text.replace(/\r\n?/g, '\n').trim();

const RAW_BODIES = [
  '{"text": ',
  '',
  'null',
  '[]',
  '"x"',
  `{"text": "${'x'.repeat(70_000)}"}`,
  'text=hi',
  '{"text": "a", "text": 3}',
  Buffer.from([0x7b, 0x22, 0xff, 0x22, 0x7d]).toString('latin1'),
];
const CONTENT_TYPES = [
  'application/json',
  'text/plain',
  'application/x-www-form-urlencoded',
  'application/json; charset=latin1',
];
const GET_PATHS = [
  '/api/me',
  '/api/admin/workers',
  '/api/admin/rounds',
  '/api/admin/models',
  '/api/admin/counts',
  '/api/admin/elo',
  '/api/admin/export',
];

test('fuzz: the feedback app answers every generated request without a 500 and loses nothing it acknowledged', async (t) => {
  const seed = fuzzSeed(t, 'feedback app');
  const f = new Fuzz(seed);
  let clock = 0;
  await using s = await testServer({ rateLimit: { now: () => clock } });
  const uncaught: unknown[] = [];
  const onError = (err: unknown) => uncaught.push(err);
  process.on('uncaughtException', onError);
  process.on('unhandledRejection', onError);
  t.after(() => {
    process.off('uncaughtException', onError);
    process.off('unhandledRejection', onError);
  });

  // Who can sign in, as the test believes it: changed by the app's 2xx answers only.
  const tokens = new Map<string, { token: string; role: string }>([
    ['ana', { token: s.worker, role: 'crowdworker' }],
    ['boss', { token: s.admin, role: 'admin' }],
  ]);
  const dead: string[] = []; // revoked or replaced tokens
  const openSteps: { conversationId: number; worker: string }[] = [];
  const acks: Ack[] = [];
  const hit = new Set<string>();
  const statuses = new Map<number, number>();

  function authHeader(): { header?: string; worker?: string } {
    const r = f.int(10);
    if (r < 6) {
      const [name, who] = f.pick([...tokens]);
      // Spaces around the token are trimmed: still the worker's.
      return { header: f.chance(0.9) ? `Bearer ${who.token}` : `Bearer  ${who.token} `, worker: name };
    }
    if (r === 6) return {};
    if (r === 7 && dead.length) return { header: `Bearer ${f.pick(dead)}` };
    const junk = [
      'Bearer ',
      `Bearer ${f.text(3)}`,
      `Basic ${s.worker}`,
      `bearer ${s.worker}`,
      `Bearer ${'x'.repeat(300)}`,
      'Bearer \u00e9',
    ];
    return { header: f.pick(junk) };
  }
  const text = () => (f.chance(0.5) ? `${f.pick(['Hi', 'What is 2+2?', 'x'])} ${f.text(6)}` : f.rawText(8));
  const mutate = (body: Record<string, unknown>): unknown => {
    const r = f.int(4);
    if (r === 0) return f.json(3);
    const out = { ...body };
    const keys = Object.keys(out);
    if (r === 1 && keys.length) delete out[f.pick(keys)];
    else if (r === 2 && keys.length) out[f.pick(keys)] = f.json(2);
    else out[f.pick(['extra', 'task', 'after', 'edit', 'token'])] = f.json(1);
    return out;
  };
  const junkQuery = () =>
    f.pick([
      '',
      '',
      '?round=3',
      '?task=helpful',
      '?task=red-team&round=1',
      '?task=all',
      `?round=${f.pick(['-1', 'x', '1e3', '99999999999', '', '3.0'])}`,
      `?task=${encodeURIComponent(f.text(2))}`,
      `?${encodeURIComponent(f.text(2))}=${encodeURIComponent(f.text(2))}`,
      '?round=1&round=2',
    ]);

  function nextRequest(): Request {
    const who = authHeader();
    const headers: Record<string, string> = who.header ? { authorization: who.header } : {};
    // The body: the payload as JSON (then a 2xx must have stored what it says), or junk of some type.
    const post = (route: string, url: string, payload: unknown): Request => {
      if (f.chance(0.9)) {
        const isObject = typeof payload === 'object' && payload !== null && !Array.isArray(payload);
        return {
          route,
          opts: {
            method: 'POST',
            url,
            headers: { ...headers, 'content-type': 'application/json' },
            payload: JSON.stringify(payload),
          },
          ...(who.worker ? { worker: who.worker } : {}),
          ...(isObject ? { sent: payload as Record<string, unknown> } : {}),
        };
      }
      const type = f.pick(CONTENT_TYPES);
      return {
        route,
        opts: {
          method: 'POST',
          url,
          headers: { ...headers, 'content-type': type },
          payload: f.pick(RAW_BODIES),
        },
      };
    };
    const r = f.int(20);
    if (r < 6) {
      const mine = acks.filter((a) => a.worker === who.worker);
      const sent: Record<string, unknown> = { text: text() };
      if (f.chance(0.5)) sent['task'] = f.pick(['helpful', 'red-team']);
      if (mine.length && f.chance(0.5)) sent['after'] = f.pick(mine).comparisonId;
      else if (f.chance(0.1)) sent['after'] = f.int(1000);
      return post('POST /api/turns', '/api/turns', f.chance(0.8) ? sent : mutate(sent));
    }
    if (r < 12) {
      const step = openSteps.length && f.chance(0.9) ? f.pick(openSteps) : null;
      // Mostly the step's own worker, while their token lives.
      const owner = step && tokens.get(step.worker);
      if (owner && f.chance(0.8)) {
        headers['authorization'] = `Bearer ${owner.token}`;
        who.worker = step.worker;
      }
      const sent: Record<string, unknown> = {
        conversationId: step ? step.conversationId : 1 + f.int(50),
        choice: f.pick(['a', 'b']),
        strength: 1 + f.int(4),
      };
      if (f.chance(0.4)) sent['edit'] = text();
      return post('POST /api/comparisons', '/api/comparisons', f.chance(0.8) ? sent : mutate(sent));
    }
    if (r === 12) {
      const token = who.header?.slice('Bearer '.length) ?? '';
      return post('POST /api/signin', '/api/signin', f.chance(0.5) ? { token } : mutate({ token }));
    }
    if (r === 13) {
      const name = f.pick(['cara', 'dan', `w${f.int(30)}`, f.text(1), '<b>x</b>', '']);
      const role = f.pick(['admin', 'crowdworker', 'root']);
      const payload = f.chance(0.8) ? { name, ...(f.chance(0.3) ? { role } : {}) } : f.json(2);
      return post('POST /api/admin/invites', '/api/admin/invites', payload);
    }
    if (r === 14) {
      const name = f.chance(0.8) ? f.pick([...tokens.keys(), 'nobody']) : f.text(2);
      const action = f.pick(['revoke', 'token']);
      return {
        route: `POST /api/admin/workers/:name/${action}`,
        opts: { method: 'POST', url: `/api/admin/workers/${encodeURIComponent(name)}/${action}`, headers },
      };
    }
    if (r === 15 && f.chance(0.2)) {
      return {
        route: 'POST /api/admin/rounds/next',
        opts: { method: 'POST', url: '/api/admin/rounds/next', headers },
      };
    }
    const path = f.pick(GET_PATHS);
    const method = f.chance(0.95) ? 'GET' : f.pick(['PUT', 'DELETE', 'PATCH'] as const);
    return { route: `${method} ${path}`, opts: { method, url: `${path}${junkQuery()}`, headers } };
  }

  /** Checks one answer, and keeps what a 2xx acknowledged. */
  function check(req: Request, res: Response, before: number[]): void {
    const status = res.statusCode;
    const body = res.body;
    assert.ok(status < 500, `a ${status}: ${body.slice(0, 200)}`);
    const isJson = /^application\/json(;|$)/.test(String(res.headers['content-type'] ?? ''));
    const json = isJson ? (JSON.parse(body) as Record<string, unknown>) : null;
    if (status >= 300) {
      assert.ok(
        json && typeof json['error'] === 'string' && typeof json['message'] === 'string',
        `a refusal is JSON {error, message}: ${body.slice(0, 200)}`,
      );
      assert.deepEqual(counts(), before, 'a refused request wrote nothing');
      return;
    }
    if (req.route === 'POST /api/turns') {
      assert.ok(req.sent && req.worker, 'only a JSON turn with a live token is acknowledged');
      assert.equal(typeof req.sent['text'], 'string', 'a turn is acknowledged only with a string text');
      const { conversationId, responses } = json as { conversationId: number; responses: string[] };
      const row = s.store.db
        .prepare(
          'SELECT v.prompt, w.name FROM conversations v JOIN workers w ON w.id = v.worker_id WHERE v.id = ?',
        )
        .get(conversationId) as { prompt: string; name: string };
      assert.equal(row.name, req.worker);
      const expected = `\n\nHuman: ${normalised(req.sent['text'] as string)}\n\nAssistant:`;
      assert.ok(row.prompt.endsWith(expected), `stored prompt ${JSON.stringify(row.prompt.slice(-300))}`);
      const stored = s.store.db
        .prepare('SELECT text FROM responses WHERE conversation_id = ? ORDER BY id')
        .pluck()
        .all(conversationId);
      assert.deepEqual(stored, responses);
      openSteps.push({ conversationId, worker: req.worker });
    } else if (req.route === 'POST /api/comparisons') {
      assert.ok(req.sent && req.worker, 'only a JSON pick with a live token is acknowledged');
      const edit = req.sent['edit'] as string | undefined;
      const types = [req.sent['conversationId'], req.sent['choice'], req.sent['strength'], edit ?? ''].map(
        (v) => typeof v,
      );
      assert.deepEqual(
        types,
        ['number', 'string', 'number', 'string'],
        'a pick is acknowledged only with the right types',
      );
      const conversationId = req.sent['conversationId'] as number;
      acks.push({
        comparisonId: (json as { comparisonId: number }).comparisonId,
        conversationId,
        worker: req.worker,
        choice: req.sent['choice'] as string,
        strength: req.sent['strength'] as number,
        edit: edit === undefined || normalised(edit) === '' ? null : normalised(edit),
      });
      const at = openSteps.findIndex((o) => o.conversationId === conversationId);
      if (at >= 0) openSteps.splice(at, 1);
    } else if (req.route === 'POST /api/admin/invites' || req.route.endsWith('/:name/token')) {
      const w = json as { name: string; role: string; token: string };
      const old = tokens.get(w.name);
      if (old) dead.push(old.token);
      tokens.set(w.name, { token: w.token, role: w.role });
    } else if (req.route.endsWith('/:name/revoke')) {
      const name = (json as { name: string }).name;
      const old = tokens.get(name);
      if (old) dead.push(old.token);
      tokens.delete(name);
    }
  }

  const counts = () => TABLES.map((table) => rowCount(s.store, table));
  for (let i = 0; i < REQUESTS; i++) {
    // Bursts and pauses: the token-guess limit (10/min per IP) and the write limit bite now and then.
    clock += f.chance(0.3) ? 0 : f.int(2000);
    const req = nextRequest();
    // Admin requests carry a live admin token often enough to get past sign-in.
    const admins = [...tokens.values()].filter((w) => w.role === 'admin');
    if (req.route.includes('/admin/') && admins.length && f.chance(0.7))
      req.opts.headers = { ...req.opts.headers, authorization: `Bearer ${f.pick(admins).token}` };
    const before = counts();
    const res = await s.app.inject(req.opts);
    hit.add(req.route);
    statuses.set(res.statusCode, (statuses.get(res.statusCode) ?? 0) + 1);
    const shown = {
      route: req.route,
      request: req.opts,
      status: res.statusCode,
      reply: res.body.slice(0, 300),
    };
    await fuzzCase(seed, i, shown, () => check(req, res, before));
  }

  // Every /api route was exercised, and enough got through to mean something.
  const missed = [...apiRoutes(s.app.printRoutes({ commonPrefix: false }))].filter((r) => !hit.has(r));
  assert.deepEqual(missed, [], 'routes the fuzz test never hit');
  const byStatus = JSON.stringify(Object.fromEntries([...statuses].sort((a, b) => a[0] - b[0])));
  t.diagnostic(`statuses: ${byStatus}; ${acks.length} comparisons acknowledged`);
  assert.ok(acks.length >= 100, `only ${acks.length} comparisons acknowledged (${byStatus})`);
  assert.deepEqual(uncaught, [], 'no uncaught errors');

  // Nothing acknowledged is lost or altered, and nothing else was stored.
  const rows = s.store.db
    .prepare(
      `SELECT c.id AS comparisonId, c.conversation_id AS conversationId, w.name AS worker, c.choice,
              c.strength, c.edit
         FROM comparisons c JOIN workers w ON w.id = c.worker_id ORDER BY c.id`,
    )
    .all();
  assert.deepEqual(rows, acks);
  assert.equal(s.store.db.pragma('integrity_check', { simple: true }), 'ok');
  // Every stored text reads back as the exact UTF-8 bytes SQLite holds (no unpaired surrogate stored).
  const columns = [
    ['conversations', 'prompt'],
    ['responses', 'text'],
    ['comparisons', 'edit'],
    ['turns', 'text'],
  ] as const;
  for (const [table, column] of columns) {
    const stored = s.store.db
      .prepare(`SELECT ${column} AS v, hex(${column}) AS h FROM ${table} WHERE ${column} IS NOT NULL`)
      .all() as { v: string; h: string }[];
    for (const row of stored) {
      const bytes = Buffer.from(row.h, 'hex');
      assert.ok(
        isUtf8(bytes) && loneSurrogateAt(row.v) < 0,
        `${table}.${column} holds ${row.h.slice(0, 80)}`,
      );
      assert.equal(bytes.toString('utf8'), row.v, `${table}.${column} reads back altered`);
    }
  }
  // The admin export is a comparison file with every acknowledged comparison, nothing skipped.
  const admin = [...tokens.values()].find((w) => w.role === 'admin')!;
  clock += 60_000; // the guesses may have used up the IP's limit, which then holds back a right token too
  const exported = await s.app.inject({
    method: 'GET',
    url: '/api/admin/export?task=all',
    headers: { authorization: `Bearer ${admin.token}` },
  });
  assert.equal(exported.statusCode, 200);
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-fuzz-app-'));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  writeFileSync(join(dir, 'export.jsonl'), exported.body);
  const { records, report } = await loadComparisons(join(dir, 'export.jsonl'));
  assert.equal(report.skipped, 0, report.format());
  assert.equal(records.length, acks.length);
});
