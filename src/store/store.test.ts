import assert from 'node:assert/strict';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import Database from 'better-sqlite3';
import type { ComparisonRecord } from '../data/types.ts';
import { StoreError } from './errors.ts';
import { MIGRATIONS, type Migration, migrate } from './migrations.ts';
import { comparisonRecord, insertComparisonRecord, storedComparisons } from './records.ts';
import { newToken, Store } from './store.ts';

const dir = mkdtempSync(join(tmpdir(), 'hhkit-store-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const P = '\n\nHuman: How do I kill a Linux process?\n\nAssistant:';

test('a new store is in WAL mode, synchronous FULL, foreign keys on, at the latest schema', () => {
  using store = Store.open(join(dir, 'new.db'));
  assert.equal(store.db.pragma('journal_mode', { simple: true }), 'wal');
  assert.equal(store.db.pragma('synchronous', { simple: true }), 2);
  assert.equal(store.db.pragma('foreign_keys', { simple: true }), 1);
  assert.equal(store.db.pragma('user_version', { simple: true }), MIGRATIONS.length);
  const tables = store.db
    .prepare("SELECT name FROM sqlite_schema WHERE type = 'table' ORDER BY name")
    .pluck()
    .all() as string[];
  assert.deepEqual(tables, [
    'comparisons',
    'conversations',
    'models',
    'responses',
    'rounds',
    'turns',
    'workers',
  ]);
});

test('migrations run once, in a transaction each; a failing one leaves the previous version', () => {
  const path = join(dir, 'mig.db');
  const db = new Database(path);
  const steps: Migration[] = [
    { version: 1, name: 'a', up: 'CREATE TABLE a (x INTEGER)' },
    { version: 2, name: 'b', up: 'CREATE TABLE b (y INTEGER); INSERT INTO nope VALUES (1)' },
  ];
  assert.throws(
    () => migrate(db, steps),
    (err: unknown) => err instanceof StoreError && /migration 2 \(b\)/.test(err.message),
  );
  assert.equal(db.pragma('user_version', { simple: true }), 1);
  // Table b was rolled back together with the failed step.
  assert.equal(db.prepare("SELECT count(*) FROM sqlite_schema WHERE name = 'b'").pluck().get(), 0);
  const fixed: Migration[] = [steps[0]!, { version: 2, name: 'b', up: 'CREATE TABLE b (y INTEGER)' }];
  assert.deepEqual(migrate(db, fixed), { from: 1, to: 2 });
  assert.deepEqual(migrate(db, fixed), { from: 2, to: 2 });
  assert.throws(() => migrate(db, [steps[0]!]), /newer than this hhkit/);
  assert.throws(() => migrate(db, [fixed[1]!]), /out of order/);
  db.close();
});

test('workers: tokens are stored hashed and found by token; roles are checked', () => {
  using store = Store.open(':memory:');
  const token = newToken();
  const id = store.addWorker({ name: 'ana', role: 'admin', token });
  assert.equal(store.workerByToken(token)?.id, id);
  assert.equal(store.workerByToken(`${token}x`), undefined);
  const stored = store.db.prepare('SELECT token_hash FROM workers WHERE id = ?').pluck().get(id) as string;
  assert.notEqual(stored, token);
  assert.equal(stored.length, 64);
  assert.throws(() => store.addWorker({ name: 'bob', role: 'boss' as 'admin' }), /CHECK constraint/);
  assert.equal(store.workerId('ana'), id);
  assert.equal(store.worker('w2'), undefined);
  const w2 = store.workerId('w2');
  assert.deepEqual(store.worker('w2'), { ...store.worker('w2'), id: w2, role: 'crowdworker' });
  assert.equal(store.workerId('w2'), w2);
});

test('models keep their lineage', () => {
  using store = Store.open(':memory:');
  const lm = store.addModel({ name: 'lm', kind: 'lm', path: 'ckpt/lm', config: { n_layer: 2 } });
  const pm = store.addModel({ name: 'pm-r1', kind: 'pm', parent: lm, round: 1 });
  const policy = store.addModel({ name: 'policy-r1', kind: 'policy', parent: lm, round: 1 });
  assert.deepEqual(
    store.lineage(policy).map((m) => m.name),
    ['policy-r1', 'lm'],
  );
  assert.equal(store.lineage(pm)[0]?.round_id, 1);
  assert.equal(store.lineage(lm)[0]?.config, '{"n_layer":2}');
  assert.throws(() => store.addModel({ name: 'x', kind: 'pm', parent: 999 }), /FOREIGN KEY/);
});

test('conversations store their prompt text and parsed turns; comparisons link responses', () => {
  using store = Store.open(':memory:');
  const model = store.addModel({ name: 'policy', kind: 'policy' });
  const conv = store.addConversation({ prompt: P, task: 'helpful' });
  assert.deepEqual(store.turns(conv), [
    { role: 'human', text: 'How do I kill a Linux process?' },
    { role: 'assistant', text: '' },
  ]);
  const a = store.addResponse(conv, ' Use `kill PID`.', {
    modelId: model,
    sampling: { temperature: 1, topP: 0.95 },
  });
  const b = store.addResponse(conv, " I can't help with killing.", {
    modelId: model,
    sampling: { temperature: 1 },
  });
  const id = store.addComparison({
    conversationId: conv,
    responseA: a,
    responseB: b,
    choice: 'a',
    task: 'helpful',
    strength: 6,
    edit: ' Use `kill -TERM PID`.',
  });
  assert.deepEqual(comparisonRecord(store, id), {
    chosen: `${P} Use \`kill PID\`.`,
    rejected: `${P} I can't help with killing.`,
    task: 'helpful',
    strength: 6,
  });
  assert.equal(
    store.db.prepare('SELECT sampling FROM responses WHERE id = ?').pluck().get(a),
    '{"temperature":1,"topP":0.95}',
  );
  assert.throws(
    () => store.addComparison({ conversationId: conv, responseA: a, responseB: 999, choice: 'a' }),
    /FOREIGN KEY/,
  );
});

test('a red-team record is stored as the worker picking the more harmful response, and read back as written', () => {
  using store = Store.open(':memory:');
  const record: ComparisonRecord = {
    chosen: `${P} I won't help with that, but here is how to end a Linux process safely.`,
    rejected: `${P} [harmful compliance]`,
    task: 'harmless',
    worker: 'red7',
    strength: 2,
    round: 3,
  };
  const id = insertComparisonRecord(store, record);
  const row = store.db.prepare('SELECT choice, task, round_id FROM comparisons WHERE id = ?').get(id);
  assert.deepEqual(row, { choice: 'b', task: 'red-team', round_id: 3 });
  const picked = store.db
    .prepare('SELECT r.text FROM comparisons c JOIN responses r ON r.id = c.response_b WHERE c.id = ?')
    .pluck()
    .get(id);
  assert.equal(picked, ' [harmful compliance]');
  assert.deepEqual(comparisonRecord(store, id), record);
  assert.deepEqual(Object.keys(comparisonRecord(store, id) ?? {}), Object.keys(record));
  assert.equal([...storedComparisons(store, { task: 'red-team' })].length, 1);
  assert.equal([...storedComparisons(store, { task: 'helpful' })].length, 0);
  assert.equal([...storedComparisons(store, { round: 3 })].length, 1);
});

test('a write that fails midway leaves nothing behind (one transaction per record)', () => {
  using store = Store.open(':memory:');
  const bad: ComparisonRecord = { chosen: `${P} a`, rejected: `${P} b`, prompt: '\n\nHuman: other' };
  assert.throws(() => insertComparisonRecord(store, bad), StoreError);
  // A failure after the conversation row was written: the whole record is rolled back.
  assert.throws(() =>
    store.transaction(() => {
      insertComparisonRecord(store, { chosen: `${P} a`, rejected: `${P} b` });
      throw new Error('late failure');
    }),
  );
  assert.equal(store.countComparisons(), 0);
  assert.equal(store.db.prepare('SELECT count(*) FROM conversations').pluck().get(), 0);
});

test('paging returns every stored comparison exactly once, in id order', () => {
  using store = Store.open(':memory:');
  const ids: number[] = [];
  for (let i = 0; i < 25; i++)
    ids.push(insertComparisonRecord(store, { chosen: `${P} ${i}`, rejected: `${P} no` }));
  const seen = [...storedComparisons(store, {}, 'hh', 7)].map((s) => s.id);
  assert.deepEqual(seen, ids);
});
