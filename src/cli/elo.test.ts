import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { lastJson, runHhkitSync } from './test-cli.ts';
import { eloWinProbability } from '../eval/elo.ts';
import { SeededRandom } from '../eval/rng.ts';
import { Store } from '../store/store.ts';

const dir = mkdtempSync(join(tmpdir(), 'hhkit-cli-elo-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const hhkit = (...args: string[]) => runHhkitSync(['elo', ...args]);

interface JsonRow {
  model: string;
  elo: number;
  lower: number;
  upper: number;
  comparisons: number;
  wins: number;
  pmElo?: number;
}

test('--file: recovers planted Elo, reports bad lines with file:line, prints PM Elo beside', () => {
  const truth: Record<string, number> = { base: 0, rlhf: 200, rude: -150 };
  const ids = Object.keys(truth);
  const rng = new SeededRandom(1);
  const lines: string[] = [];
  for (let i = 0; i < 3000; i++) {
    const [x, y] = rng.sample(3, 2) as [number, number];
    const a = ids[x]!;
    const b = ids[y]!;
    const aWins = rng.uniform() < eloWinProbability(truth[a]! - truth[b]!);
    // Both accepted shapes, mixed.
    lines.push(
      JSON.stringify(
        i % 2 ? { a, b, winner: aWins ? 'a' : 'b' } : { modelA: a, modelB: b, choice: aWins ? 'a' : 'b' },
      ),
    );
  }
  lines.splice(5, 0, '{not json', JSON.stringify({ chosen: 'x', rejected: 'y' }));
  const file = join(dir, 'comparisons.jsonl');
  writeFileSync(file, `${lines.join('\n')}\n`);
  const pm = join(dir, 'pm.json');
  writeFileSync(pm, JSON.stringify({ base: 0.5, rlhf: 1.5, rude: -0.5 }));

  const r = hhkit('--file', file, '--anchor', 'base', '--bootstrap', '200', '--pm-scores', pm, '--json');
  assert.equal(r.code, 0, r.stderr);
  assert.match(r.stderr, new RegExp(`${file}:6: skipped: not JSON`));
  assert.match(r.stderr, new RegExp(`${file}:7: skipped: no outcome`));
  const summary = lastJson(r.stdout);
  assert.equal(summary.total, 3000);
  assert.equal(summary.skipped, 2);
  const rows = summary.models as JsonRow[];
  assert.deepEqual(
    rows.map((m) => m.model),
    ['rlhf', 'base', 'rude'],
  );
  for (const m of rows) {
    assert.ok(m.lower <= truth[m.model]! && truth[m.model]! <= m.upper, `${m.model}: ${JSON.stringify(m)}`);
  }
  assert.ok(Math.abs(rows[0]!.pmElo! - 173.7178) < 1e-3);
  // The human-readable table comes first.
  assert.match(r.stdout, /^model\s+Elo\s+95% CI\s+n\s+wins\s+PM Elo\n/);
});

test('--db: reads the store, red-team picks count for the other model, unmodelled rows are skipped', () => {
  const db = join(dir, 'hhkit.db');
  {
    using store = Store.open(db);
    const base = store.addModel({ name: 'base', kind: 'policy' });
    const safe = store.addModel({ name: 'safe', kind: 'policy' });
    const add = (task: 'helpful' | 'red-team', pick: 'a' | 'b', round: number, modelled = true) => {
      const conversationId = store.addConversation({ prompt: '\n\nHuman: hi\n\nAssistant:', task, round });
      const responseA = store.addResponse(conversationId, ' A', modelled ? { modelId: base } : {});
      const responseB = store.addResponse(conversationId, ' B', { modelId: safe });
      store.addComparison({ conversationId, responseA, responseB, choice: pick, task, round });
    };
    // Helpful: base wins 6 of 8. Red-team: workers pick base's answer as more harmful 7 of 8 times.
    for (let i = 0; i < 8; i++) add('helpful', i < 6 ? 'a' : 'b', 1);
    for (let i = 0; i < 8; i++) add('red-team', i < 7 ? 'a' : 'b', 2);
    add('helpful', 'a', 1, false);
  }
  const helpful = hhkit('--db', db, '--anchor', 'base', '--bootstrap', '50', '--json');
  assert.equal(helpful.code, 0, helpful.stderr);
  const h = lastJson(helpful.stdout);
  assert.equal(h.total, 8);
  assert.equal(h.skipped, 1);
  assert.match(helpful.stderr, /comparison 17: skipped: missing "modelA"/);
  const hRows = Object.fromEntries((h.models as JsonRow[]).map((m) => [m.model, m]));
  assert.equal(hRows.base!.wins, 6);
  assert.ok(hRows.safe!.elo < -100);

  const harmless = lastJson(
    hhkit('--db', db, '--task', 'red-team', '--anchor', 'base', '--bootstrap', '50', '--json').stdout,
  );
  const sRows = Object.fromEntries((harmless.models as JsonRow[]).map((m) => [m.model, m]));
  assert.equal(harmless.total, 8);
  assert.equal(sRows.safe!.wins, 7);
  assert.ok(sRows.safe!.elo > 200);
  assert.equal(
    lastJson(hhkit('--db', db, '--task', 'all', '--round', '2', '--bootstrap', '0', '--json').stdout).total,
    8,
  );
});

test('usage errors exit 2 with a message', () => {
  assert.equal(hhkit().code, 2);
  const badTask = hhkit('--db', 'x.db', '--task', 'nope');
  assert.equal(badTask.code, 2);
  assert.match(badTask.stderr, /--task expects/);
  assert.equal(hhkit('--db', join(dir, 'missing.db')).code, 2);
});
