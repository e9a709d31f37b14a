import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { truncateMetrics } from './state.ts';

test('truncateMetrics on resume: steps past the checkpoint go; with closingEval, so does the eval a finished run wrote after it', () => {
  const path = join(mkdtempSync(join(tmpdir(), 'hhkit-rl-state-')), 'metrics.jsonl');
  const lines = [
    { type: 'eval', step: 0, kl: 1 },
    { type: 'step', step: 1, loss: 3 },
    { type: 'step', step: 2, loss: 2 },
    { type: 'eval', step: 2, kl: 0.5 },
  ];
  const write = () => writeFileSync(path, lines.map((l) => `${JSON.stringify(l)}\n`).join(''));
  const read = () =>
    readFileSync(path, 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l));
  write();
  truncateMetrics(path, 1);
  assert.deepEqual(read(), lines.slice(0, 2));
  write();
  truncateMetrics(path, 2);
  assert.deepEqual(
    read(),
    lines,
    'without closingEval an eval at the step stays (PPO evaluates before it checkpoints)',
  );
  truncateMetrics(path, 2, { closingEval: true });
  assert.deepEqual(
    read(),
    lines.slice(0, 3),
    "distillation's closing eval goes: the resumed run writes it again",
  );
});
