import assert from 'node:assert/strict';
import { spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { after, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { plantedDefectsFile } from '../data/test-fixtures.ts';

const root = join(dirname(fileURLToPath(import.meta.url)), '..', '..');
const dir = mkdtempSync(join(tmpdir(), 'hhkit-cli-data-'));
after(() => rmSync(dir, { recursive: true, force: true }));

function hhkit(...args: string[]) {
  const r = spawnSync(process.execPath, [join(root, 'bin', 'hhkit.js'), 'data', ...args], {
    encoding: 'utf8',
  });
  return { status: r.status, stdout: r.stdout, stderr: r.stderr };
}
const lastJson = (stdout: string) => JSON.parse(stdout.trim().split('\n').at(-1) ?? '');

const planted = plantedDefectsFile();
const file = join(dir, 'planted.jsonl');
writeFileSync(file, planted.bytes);
// Without a small line limit the long line is valid here.
const valid = planted.validLines.length + 1;

test('inspect --json: the last stdout line is the report', () => {
  const r = hhkit('inspect', file, '--json');
  assert.equal(r.status, 0, r.stderr);
  const report = lastJson(r.stdout);
  assert.equal(report.records, planted.records);
  assert.equal(report.valid, valid);
  assert.equal(report.defects['missing-key'].count, 2);
  assert.equal(report.defects['missing-key'].examples[0].line, 12);
  assert.equal(report.notes['extra-assistant-marker'].count, 1);
  assert.equal(report.stats.promptTurns.count, valid);
});

test('inspect (text) lists defects with file:line; --strict stops at the first with exit 1', () => {
  const text = hhkit('inspect', file);
  assert.equal(text.status, 0);
  assert.match(text.stdout, new RegExp(`${file}:2 +not JSON`));
  const strict = hhkit('inspect', file, '--strict');
  assert.equal(strict.status, 1);
  assert.match(strict.stderr, new RegExp(`${file}:2: not JSON.*\\(invalid-json\\)`));
  assert.equal(hhkit('inspect', join(dir, 'missing.jsonl')).status, 2);
});

test('split writes disjoint train/test files whose lines are the input lines, deterministically', () => {
  const out = join(dir, 'split');
  const r = hhkit('split', file, '--out', out, '--test-frac', '0.5', '--json');
  assert.equal(r.status, 0, r.stderr);
  const summary = lastJson(r.stdout);
  assert.equal(summary.train + summary.test, valid);
  const read = (p: string) => readFileSync(p, 'utf8').split('\n').slice(0, -1);
  const train = read(summary.trainFile);
  const test = read(summary.testFile);
  assert.ok(train.length > 0 && test.length > 0);
  const input = new Set(readFileSync(file, 'utf8').split('\n'));
  for (const line of [...train, ...test]) assert.ok(input.has(line), 'split lines are copied unchanged');
  const again = lastJson(
    hhkit('split', file, '--out', join(dir, 'split2'), '--test-frac', '0.5', '--json').stdout,
  );
  assert.deepEqual(read(again.testFile), test);
});

test('import then export through the CLI reproduces the valid lines', () => {
  const db = join(dir, 'cli.db');
  const imp = hhkit('import', file, '--db', db, '--json');
  assert.equal(imp.status, 0, imp.stderr);
  assert.equal(lastJson(imp.stdout).imported, valid);
  const out = join(dir, 'out.jsonl');
  const exp = hhkit('export', '--db', db, '--out', out, '--json');
  assert.equal(exp.status, 0, exp.stderr);
  assert.equal(lastJson(exp.stdout).count, valid);
  const input = readFileSync(file, 'utf8').split('\n');
  const exported = readFileSync(out, 'utf8').split('\n').slice(0, -1);
  assert.deepEqual(
    exported,
    input.filter((l) => exported.includes(l)),
  );
  assert.equal(exported.length, valid);
  const missing = hhkit('export', '--db', join(dir, 'nope.db'), '--out', out);
  assert.equal(missing.status, 1);
  assert.match(missing.stderr, /nope.db: cannot open/);
});
