// `hhkit pm train | eval | score` on files in the HH-RLHF release format (gzipped JSON lines with only
// "chosen" and "rejected", the task told by the folder name, and the release's defects).
import assert from 'node:assert/strict';
import { mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { test } from 'node:test';
import { lastJson, runHhkit } from './test-cli.ts';
import { gzipSync } from 'node:zlib';
import { hhLines } from '../pm/test-fixtures.ts';
import { Tokenizer } from '../tokenizer/index.ts';

test('hhkit pm train/eval/score work on HH-RLHF-format files, defects reported, tasks from folder names', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-pmcli-'));
  const files: Record<string, string[]> = {
    'helpful-base/train.jsonl.gz': [
      ...hhLines('helpful', 60, 0),
      '{"chosen": "not json',
      // defects the loader keeps with a note: a second "Assistant:" inside the response, an empty response
      JSON.stringify({
        chosen: '\n\nHuman: hi\n\nAssistant: hello\n\nAssistant: again',
        rejected: '\n\nHuman: hi\n\nAssistant: go away',
      }),
      JSON.stringify({
        chosen: '\n\nHuman: ok?\n\nAssistant: yes',
        rejected: '\n\nHuman: ok?\n\nAssistant:',
      }),
    ],
    'harmless-base/train.jsonl.gz': hhLines('harmless', 40, 0),
    'helpful-base/test.jsonl.gz': hhLines('helpful', 12, 100),
    'harmless-base/test.jsonl.gz': hhLines('harmless', 8, 100),
  };
  for (const [name, lines] of Object.entries(files)) {
    mkdirSync(dirname(join(dir, name)), { recursive: true });
    writeFileSync(join(dir, name), gzipSync(`${lines.join('\n')}\n`));
  }
  const texts = Object.values(files)
    .flat()
    .filter((l) => l.endsWith('}'))
    .flatMap((l) => {
      const r = JSON.parse(l) as { chosen: string; rejected: string };
      return [r.chosen, r.rejected];
    });
  const tokPath = join(dir, 'tokenizer.json');
  Tokenizer.train(texts, { vocabSize: 300 }).save(tokPath);
  const f = (name: string) => join(dir, name);
  const out = join(dir, 'run');
  const trained = await runHhkit([
    'pm',
    'train',
    '--data',
    `${f('helpful-base/train.jsonl.gz')},${f('harmless-base/train.jsonl.gz')}`,
    '--eval',
    `${f('helpful-base/test.jsonl.gz')},${f('harmless-base/test.jsonl.gz')}`,
    '--tokenizer',
    tokPath,
    '--n-layer',
    '1',
    '--n-head',
    '2',
    '--n-embd',
    '16',
    '--n-positions',
    '48',
    '--batch-size',
    '8',
    '--epochs',
    '2',
    '--base-lr',
    '1e-3',
    '--lr-multiplier',
    '3',
    '--out',
    out,
    '--json',
  ]);
  assert.equal(trained.code, 0, trained.stderr);
  const summary = lastJson(trained.stdout);
  assert.equal(
    summary['comparisons'],
    102,
    '60 + 2 quirky helpful lines + 40 harmless; the bad JSON line skipped',
  );
  assert.equal(summary['evalComparisons'], 20);
  assert.equal(summary['steps'], Math.ceil((2 * 102) / 8));
  assert.match(trained.stderr, /skipped 1 bad lines/);
  assert.match(trained.stderr, /train\.jsonl\.gz:61/, 'the bad line is named by file:line');

  const again = await runHhkit([
    'pm',
    'train',
    '--data',
    f('helpful-base/train.jsonl.gz'),
    '--tokenizer',
    tokPath,
    '--out',
    out,
  ]);
  assert.equal(again.code, 2, 'an existing run is not overwritten without --resume');

  const evaluated = await runHhkit([
    'pm',
    'eval',
    '--model',
    join(out, 'checkpoint'),
    '--data',
    `${f('helpful-base/test.jsonl.gz')},${f('harmless-base/test.jsonl.gz')}`,
    '--json',
  ]);
  assert.equal(evaluated.code, 0, evaluated.stderr);
  const report = lastJson(evaluated.stdout);
  assert.equal(report['count'], 20);
  assert.deepEqual(Object.keys(report['byTask'] as object).sort(), ['harmless', 'helpful']);
  assert.equal(
    report['accuracy'],
    summary['evalAccuracy'],
    'eval agrees with the training run’s final held-out accuracy',
  );
  assert.match(evaluated.stdout, /ECE/);
  assert.match(evaluated.stdout, /accuracy by number of human turns/);

  const prompt = '\n\nHuman: What is 2 plus 3?\n\nAssistant:';
  const scored = await runHhkit(['pm', 'score', '--model', join(out, 'checkpoint')], {
    stdin: `${JSON.stringify(`${prompt} 5.`)}\n${JSON.stringify({ text: `${prompt} 6, I think.` })}\n${JSON.stringify({ chosen: `${prompt} 5.`, rejected: `${prompt} 6, I think.` })}\n`,
  });
  assert.equal(scored.code, 0, scored.stderr);
  const rows = scored.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, number>);
  assert.equal(rows.length, 3);
  assert.ok(
    Math.abs(rows[2]!['chosen']! - rows[0]!['score']!) < 1e-5,
    'a transcript scores the same alone or in a pair',
  );
  assert.ok(
    Math.abs(rows[2]!['pChosen']! - 1 / (1 + Math.exp(rows[1]!['score']! - rows[0]!['score']!))) < 1e-5,
  );
});

test('hhkit pm experiment: a bad --repeats is a usage error before any world or LM is made', async () => {
  const out = mkdtempSync(join(tmpdir(), 'hhkit-pmx-'));
  for (const bad of ['0', '2.5']) {
    const r = await runHhkit(['pm', 'experiment', 'size', '--out', out, '--repeats', bad]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, new RegExp(`--repeats expects a positive integer, got ${bad}`));
  }
  assert.deepEqual(readdirSync(out), [], 'nothing generated');
  rmSync(out, { recursive: true, force: true });
});
