import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { lastJson, runHhkitSync } from './test-cli.ts';
import { plantedDefectsFile } from '../data/test-fixtures.ts';

const dir = mkdtempSync(join(tmpdir(), 'hhkit-cli-data-'));
after(() => rmSync(dir, { recursive: true, force: true }));

const hhkit = (...args: string[]) => runHhkitSync(['data', ...args]);

const planted = plantedDefectsFile();
const file = join(dir, 'planted.jsonl');
writeFileSync(file, planted.bytes);
// Without a small line limit the long line is valid here.
const valid = planted.validLines.length + 1;

interface Counted {
  count: number;
  examples: { line: number }[];
}
interface InspectJson {
  records: number;
  valid: number;
  defects: Record<string, Counted>;
  notes: Record<string, Counted>;
  stats: Record<string, { count: number }>;
}
interface SplitJson {
  train: number;
  test: number;
  trainFile: string;
  testFile: string;
}

test('inspect --json: the last stdout line is the report', () => {
  const r = hhkit('inspect', file, '--json');
  assert.equal(r.code, 0, r.stderr);
  const report = lastJson<InspectJson>(r.stdout);
  assert.equal(report.records, planted.records);
  assert.equal(report.valid, valid);
  assert.equal(report.defects['missing-key']?.count, 2);
  assert.equal(report.defects['missing-key']?.examples[0]?.line, 12);
  assert.equal(report.notes['extra-assistant-marker']?.count, 1);
  assert.equal(report.stats['promptTurns']?.count, valid);
});

test('inspect (text) lists defects with file:line; --strict stops at the first with exit 1', () => {
  const text = hhkit('inspect', file);
  assert.equal(text.code, 0);
  assert.match(text.stdout, new RegExp(`${file}:2 +not JSON`));
  const strict = hhkit('inspect', file, '--strict');
  assert.equal(strict.code, 1);
  assert.match(strict.stderr, new RegExp(`${file}:2: not JSON.*\\(invalid-json\\)`));
  assert.equal(hhkit('inspect', join(dir, 'missing.jsonl')).code, 2);
});

test('split writes disjoint train/test files whose lines are the input lines, deterministically', () => {
  const out = join(dir, 'split');
  const r = hhkit('split', file, '--out', out, '--test-frac', '0.5', '--json');
  assert.equal(r.code, 0, r.stderr);
  const summary = lastJson<SplitJson>(r.stdout);
  assert.equal(summary.train + summary.test, valid);
  const read = (p: string) => readFileSync(p, 'utf8').split('\n').slice(0, -1);
  const train = read(summary.trainFile);
  const test = read(summary.testFile);
  assert.ok(train.length > 0 && test.length > 0);
  const input = new Set(readFileSync(file, 'utf8').split('\n'));
  for (const line of [...train, ...test]) assert.ok(input.has(line), 'split lines are copied unchanged');
  const again = lastJson<SplitJson>(
    hhkit('split', file, '--out', join(dir, 'split2'), '--test-frac', '0.5', '--json').stdout,
  );
  assert.deepEqual(read(again.testFile), test);
});

test('import then export through the CLI reproduces the valid lines', () => {
  const db = join(dir, 'cli.db');
  const imp = hhkit('import', file, '--db', db, '--json');
  assert.equal(imp.code, 0, imp.stderr);
  assert.equal(lastJson(imp.stdout).imported, valid);
  const out = join(dir, 'out.jsonl');
  const exp = hhkit('export', '--db', db, '--out', out, '--json');
  assert.equal(exp.code, 0, exp.stderr);
  assert.equal(lastJson(exp.stdout).count, valid);
  const input = readFileSync(file, 'utf8').split('\n');
  const exported = readFileSync(out, 'utf8').split('\n').slice(0, -1);
  assert.deepEqual(
    exported,
    input.filter((l) => exported.includes(l)),
  );
  assert.equal(exported.length, valid);
  const missing = hhkit('export', '--db', join(dir, 'nope.db'), '--out', out);
  assert.equal(missing.code, 2, "a database that cannot be opened is the user's to fix: exit 2");
  assert.match(missing.stderr, /nope.db: cannot open/);
});
