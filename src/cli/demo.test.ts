import assert from 'node:assert/strict';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { lastJson, runHhkitSync } from './test-cli.ts';

function demo(args: string[]): {
  code: number | null;
  summary: Record<string, Record<string, unknown>>;
  stderr: string;
} {
  const run = runHhkitSync(['demo', ...args, '--json']);
  return {
    code: run.code,
    summary: lastJson(run.stdout) as Record<string, Record<string, unknown>>,
    stderr: run.stderr,
  };
}

test('demo: world → tokenizer → GPT pretraining with a falling loss; a rerun resumes and skips finished stages', () => {
  const out = mkdtempSync(join(tmpdir(), 'hhkit-demo-'));
  const first = demo(['--out', out, '--steps', '10', '--pm-steps', '4', '--stop-after', 'pm']);
  assert.equal(first.code, 0, first.stderr);
  const lm = first.summary['lm']!;
  assert.equal(lm['steps'], 10);
  assert.ok((lm['lastLoss'] as number) < (lm['firstLoss'] as number) - 0.3, JSON.stringify(lm));
  assert.equal(first.summary['tokenizer']!['vocabSize'], 1024);
  assert.equal((first.summary['samples'] as unknown as unknown[]).length, 3);
  // PM stages (4 steps each here): PMP, then the PM, scored on the world's 500 held-out comparisons
  const pm = first.summary['pm']!;
  assert.equal(first.summary['pmp']!['steps'], 4);
  assert.equal(pm['steps'], 4);
  for (const key of ['accuracy', 'goldAccuracy', 'lengthBaselineGold', 'ece']) {
    assert.equal(typeof pm[key], 'number', `pm.${key}: ${JSON.stringify(pm)}`);
  }

  const again = demo(['--out', out, '--steps', '10', '--pm-steps', '4', '--stop-after', 'pm']);
  assert.equal(again.code, 0, again.stderr);
  assert.match(again.stderr, /world: already generated/);
  assert.match(again.stderr, /tokenizer: already trained/);
  assert.equal(again.summary['lm']!['resumedFrom'], 10);
  assert.equal(again.summary['lm']!['lastLoss'], lm['lastLoss']);
  assert.equal(again.summary['pm']!['resumedFrom'], 4);
  assert.equal(again.summary['pm']!['goldAccuracy'], pm['goldAccuracy']);
});
