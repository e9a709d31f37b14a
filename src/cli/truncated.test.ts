// Issue 14: a truncated .jsonl.gz used to train on part of the file with exit 0 and not a word (pm train,
// pm eval, data import), and pretrain died on a raw zlib stack trace. Now every command that reads data
// prints a WARNING line naming file:line where the file stopped, carries the counts in --json, and with
// --strict stops with one line naming file:line (exit 1) before any training.
import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { constants, gunzipSync, gzipSync } from 'node:zlib';
import { hhLines } from '../pm/test-fixtures.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { arithmeticTranscripts } from '../train/test-fixtures.ts';
import { type CliRun, lastJson, runHhkit } from './test-cli.ts';

const dir = mkdtempSync(join(tmpdir(), 'hhkit-cli-cut-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** Writes the first 60% of `lines` gzipped; returns the path and the line where reading must stop. */
function truncatedGzip(name: string, lines: string[]): { path: string; stopLine: number } {
  const gz = gzipSync(`${lines.join('\n')}\n`);
  const cut = gz.subarray(0, Math.floor(gz.length * 0.6));
  const path = join(dir, name);
  writeFileSync(path, cut);
  const arrived = gunzipSync(cut, { finishFlush: constants.Z_SYNC_FLUSH }).toString('utf8');
  return { path, stopLine: arrived.split('\n').length }; // the complete lines, + 1 for the partial one
}

const pairs = truncatedGzip('helpful-train.jsonl.gz', hhLines('helpful', 300, 0));
const corpus = truncatedGzip(
  'corpus.jsonl.gz',
  arithmeticTranscripts(300).map((text) => JSON.stringify({ text })),
);
const where = (f: { path: string; stopLine: number }) => `${f.path}:${f.stopLine}`;
const tokenizer = join(dir, 'tok.json');
Tokenizer.train(hhLines('helpful', 300, 0), { vocabSize: 300 }).save(tokenizer);

// biome-ignore format: option/value pairs read best on few lines
const tinyPM = ['--tokenizer', tokenizer, '--n-layer', '1', '--n-head', '2', '--n-embd', '16', '--n-positions', '48',
  '--batch-size', '16', '--steps', '2', '--base-lr', '1e-3'];

/** The strict stop: exit 1 and one line naming file:line, no stack trace. */
function assertStrictStop(r: CliRun, at: string): void {
  assert.equal(r.code, 1, r.stderr);
  const lines = r.stderr.trim().split('\n');
  assert.equal(lines.length, 1, r.stderr);
  assert.match(lines[0]!, new RegExp(`^hhkit: ${at}: file stops here \\(unexpected end of file\\)`));
}

const warned = (r: CliRun, at: string) =>
  assert.match(r.stderr, new RegExp(`WARNING: ${at}: file stops here`), r.stderr);

test('data import: the lost tail is a WARNING with file:line and counted; --strict stops there', async () => {
  const db = join(dir, 'import.db');
  const r = await runHhkit(['data', 'import', pairs.path, '--db', db, '--json']);
  assert.equal(r.code, 0, r.stderr);
  warned(r, where(pairs));
  const summary = lastJson<{
    imported: number;
    report: { skipped: number; defects: Record<string, unknown> };
  }>(r.stdout);
  assert.equal(summary.imported, pairs.stopLine - 1);
  assert.equal(summary.report.skipped, 1);
  assertStrictStop(
    await runHhkit(['data', 'import', pairs.path, '--db', join(dir, 's.db'), '--strict']),
    where(pairs),
  );
});

test('pm train then pm eval on a truncated file: warned with file:line, counted in --json; --strict stops', async () => {
  const out = join(dir, 'pm');
  const trained = await runHhkit(['pm', 'train', '--data', pairs.path, ...tinyPM, '--out', out, '--json']);
  assert.equal(trained.code, 0, trained.stderr);
  warned(trained, where(pairs));
  assert.equal(lastJson(trained.stdout)['skippedLines'], 1);
  const strictTrain = await runHhkit([
    'pm',
    'train',
    '--data',
    pairs.path,
    ...tinyPM,
    '--out',
    join(dir, 'pm2'),
    '--strict',
  ]);
  assertStrictStop(strictTrain, where(pairs));

  const model = join(out, 'checkpoint');
  const evaluated = await runHhkit(['pm', 'eval', '--model', model, '--data', pairs.path, '--json']);
  assert.equal(evaluated.code, 0, evaluated.stderr);
  warned(evaluated, where(pairs));
  const data = lastJson<{ count: number; data: { skipped: number; unreadable: string[] } }>(evaluated.stdout);
  assert.deepEqual(data.data.unreadable, [where(pairs)]);
  assert.equal(data.count, pairs.stopLine - 1);
  assertStrictStop(
    await runHhkit(['pm', 'eval', '--model', model, '--data', pairs.path, '--strict']),
    where(pairs),
  );
});

test('pretrain on a truncated .gz corpus: a WARNING with file:line (not a zlib stack), counted; --strict stops', async () => {
  // biome-ignore format: option/value pairs read best on few lines
  const tiny = ['pretrain', '--data', corpus.path, '--vocab-size', '300', '--steps', '2', '--block-size', '16',
    '--n-layer', '1', '--n-head', '2', '--n-embd', '16', '--batch-size', '4', '--eval-every', '0'];
  const r = await runHhkit([...tiny, '--out', join(dir, 'lm'), '--json']);
  assert.equal(r.code, 0, r.stderr);
  warned(r, where(corpus));
  const data = lastJson<{ data: { documents: number; skipped: number; unreadable: string[] } }>(
    r.stdout,
  ).data;
  assert.deepEqual(data, { documents: corpus.stopLine - 1, skipped: 1, unreadable: [where(corpus)] });
  assertStrictStop(await runHhkit([...tiny, '--out', join(dir, 'lm2'), '--strict']), where(corpus));
});
