// Issue 14: `hhkit ppo` killed with SIGKILL at seeded moments — mid-step, held inside a checkpoint write,
// inside saveCheckpoint — and resumed with the same command ends bit-identical to an uninterrupted run.
import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, readdirSync } from 'node:fs';
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

test('hhkit ppo: kill -9 at 5 seeded moments (mid-step, inside checkpoint writes), resume → bit-identical policy, value head and trunk, AdamW and KL controller', {
  timeout: 180_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-ppo-kill-'));
  const { world, lm } = await tinyWorldLM(dir, {
    worldSeed: 3,
    lmSeed: 1,
    counts: KILL_WORLD,
  });
  // biome-ignore format: option/value pairs read best on few lines
  const args = (out: string): string[] => [
    'ppo', '--init', lm, '--world', world, '--reward', 'gold', '--out', out, '--steps', '16',
    '--batch-size', '8', '--mini-batch-size', '4', '--max-new-tokens', '8', '--eval-every', '8',
    '--eval-prompts', '4', '--checkpoint-every', '4', '--value-model', 'separate', '--kl-controller',
    'adaptive', '--kl-target', '1', '--kl-horizon', '100', '--json',
  ];
  const whole = join(dir, 'whole');
  const uninterrupted = await runHhkit(args(whole), { timeoutMs: 60_000 });
  assert.equal(uninterrupted.code, 0, uninterrupted.stderr);

  const out = join(dir, 'killed');
  const metrics = join(out, 'metrics.jsonl');
  const rng = mulberry32(1406);
  const steps = /"type":"step"/;
  const plan: KillPoint[] = [
    // before the first checkpoint (the rerun starts afresh), then held where the step-8 write has written
    // its folder (the link not moved yet, or moved and not pruned), then inside the next saveCheckpoint,
    // then mid-step after it
    {
      at: 'lines',
      file: metrics,
      match: steps,
      lines: 1 + Math.floor(rng() * 3),
      delayMs: Math.floor(rng() * 40),
    },
    { at: 'pause', phase: rng() < 0.5 ? 'link' : 'prune', step: 8 },
    { at: 'created', dir: join(out, 'checkpoints'), prefix: '.step-', nth: 1 },
    {
      at: 'lines',
      file: metrics,
      match: steps,
      lines: 13 + Math.floor(rng() * 2),
      delayMs: Math.floor(rng() * 40),
    },
    // after the last checkpoint took OUT/checkpoint: the rerun has no step left and must still report the
    // run's last step and evaluation
    { at: 'pause', phase: 'prune', step: 16 },
  ];
  const { kills, final } = await killAndResume(args(out), [...args(out), '--resume'], plan);
  const story = killReport(kills);

  const a = lastJson(uninterrupted.stdout);
  const b = lastJson(final.stdout);
  assert.equal(b['steps'], 16);
  assert.equal(b['resumedFrom'], 16, story);
  // Bit for bit: the policy with its value head (model.safetensors), the separate value trunk and the AdamW
  // moments; the adaptive KL controller's λ (the run state) with them.
  assert.deepEqual(
    differingFiles(join(whole, 'checkpoint'), join(out, 'checkpoint'), (n) => n.endsWith('.safetensors')),
    [],
    story,
  );
  // The log reads as one uninterrupted run: every step once, the same numbers, the same evaluations.
  assert.deepEqual(metricsWithoutTimes(metrics), metricsWithoutTimes(join(whole, 'metrics.jsonl')), story);
  assert.deepEqual(
    { ...(b['lastStep'] as object), time: null },
    { ...(a['lastStep'] as object), time: null },
  );
  assert.deepEqual(b['after'], a['after']);
  assert.notEqual((b['lastStep'] as { klCoef: number }).klCoef, 0.001, 'the adaptive controller moved λ');
  // Nothing a killed writer left behind survives: the same step folders as the uninterrupted run's.
  assert.deepEqual(readdirSync(join(out, 'checkpoints')), readdirSync(join(whole, 'checkpoints')), story);
  assert.deepEqual(
    readdirSync(out).filter((n) => n.startsWith('.')),
    [],
    story,
  );
  assert.ok(existsSync(join(out, 'checkpoint', 'value-trunk.safetensors')));
});
