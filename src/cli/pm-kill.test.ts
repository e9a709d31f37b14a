// Issue 14: `hhkit pm train` with dropout, killed with SIGKILL at seeded moments — mid-step, held inside a
// checkpoint write, inside saveCheckpoint — and resumed with the same command ends bit-identical to an
// uninterrupted run: weights, AdamW moments and the dropout generator.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { tinyWorldLM } from '../online/test-fixtures.ts';
import { mulberry32 } from '../util/random.ts';
import { lastJson, runHhkit } from './test-cli.ts';
import {
  differingFiles,
  KILL_WORLD,
  type KillPoint,
  killAndResume,
  killReport,
  metricsWithoutTimes,
} from './test-kill.ts';

test('hhkit pm train --dropout 0.1: kill -9 at 4 seeded moments (mid-step, inside checkpoint writes), resume → bit-identical PM, AdamW and RNG state', {
  timeout: 180_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-pm-kill-'));
  const { world, lm } = await tinyWorldLM(dir, { worldSeed: 3, lmSeed: 1, lr: 1e-2, counts: KILL_WORLD });
  // biome-ignore format: option/value pairs read best on few lines
  const args = (out: string): string[] => [
    'pm', 'train', '--init', lm, '--out', out,
    '--data', `${join(world, 'helpful-train.jsonl')},${join(world, 'harmless-train.jsonl')}`,
    '--eval', join(world, 'helpful-test.jsonl'), '--steps', '24', '--batch-size', '8', '--dropout', '0.1',
    '--lr-multiplier', '0.5', '--warmup-steps', '2', '--eval-every', '8', '--checkpoint-every', '4', '--json',
  ];
  const whole = join(dir, 'whole');
  const uninterrupted = await runHhkit(args(whole), { timeoutMs: 60_000 });
  assert.equal(uninterrupted.code, 0, uninterrupted.stderr);

  const out = join(dir, 'killed');
  const metrics = join(out, 'metrics.jsonl');
  const rng = mulberry32(1408);
  const steps = /"loss"/;
  const plan: KillPoint[] = [
    // before the first checkpoint, held in the step-8 write, inside the next saveCheckpoint, mid-step after it
    {
      at: 'lines',
      file: metrics,
      match: steps,
      lines: 1 + Math.floor(rng() * 3),
      delayMs: Math.floor(rng() * 30),
    },
    { at: 'pause', phase: rng() < 0.5 ? 'link' : 'prune', step: 8 },
    { at: 'created', dir: join(out, 'checkpoints'), prefix: '.step-', nth: 1 },
    {
      at: 'lines',
      file: metrics,
      match: steps,
      lines: 18 + Math.floor(rng() * 4),
      delayMs: Math.floor(rng() * 30),
    },
  ];
  const { kills, final } = await killAndResume(args(out), [...args(out), '--resume'], plan);
  const story = killReport(kills);

  const a = lastJson(uninterrupted.stdout);
  const b = lastJson(final.stdout);
  assert.equal(b['steps'], 24);
  assert.ok((b['resumedFrom'] as number) > 0, story);
  // Bit for bit: the PM (model.safetensors) and trainer-state.safetensors (AdamW moments, RNG state).
  assert.deepEqual(
    differingFiles(join(whole, 'checkpoint'), join(out, 'checkpoint'), (n) => n.endsWith('.safetensors')),
    [],
    story,
  );
  for (const key of ['lastLoss', 'evalAccuracy', 'evalLoss'])
    assert.equal(b[key], a[key], `${key}\n${story}`);
  // The log reads as one uninterrupted run; nothing a killed writer left behind survives.
  assert.deepEqual(metricsWithoutTimes(metrics), metricsWithoutTimes(join(whole, 'metrics.jsonl')), story);
  assert.deepEqual(readdirSync(join(out, 'checkpoints')), readdirSync(join(whole, 'checkpoints')), story);
  assert.deepEqual(
    readdirSync(out).filter((n) => n.startsWith('.')),
    [],
    story,
  );
});
