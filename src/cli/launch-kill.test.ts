// Issue 14: a 2-rank `hhkit launch -- pretrain --dropout 0.1` whose processes are all killed with SIGKILL
// (mid-step, held inside a checkpoint write) and relaunched with --resume ends bit-identical to an
// uninterrupted 2-rank run: every rank's dropout generator is in the checkpoint, not only rank 0's.
import assert from 'node:assert/strict';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadSafetensors } from '../engine/index.ts';
import { tinyCorpus } from '../train/test-fixtures.ts';
import { mulberry32 } from '../util/random.ts';
import { lastJson, runHhkit } from './test-cli.ts';
import {
  differingFiles,
  type KillPoint,
  killAndResume,
  killReport,
  metricsWithoutTimes,
} from './test-kill.ts';

test('launch --nproc 2 -- pretrain --dropout 0.1: kill -9 of every process twice, relaunch --resume → bit-identical to an uninterrupted 2-rank run', {
  timeout: 180_000,
}, async () => {
  const corpus = tinyCorpus();
  // biome-ignore format: option/value pairs read best on few lines
  const args = (out: string): string[] => [
    'launch', '--nproc', '2', '--threads', '1', '--', 'pretrain', '--data', corpus.path, '--out', out,
    '--vocab-size', '300', '--block-size', '32', '--n-layer', '1', '--n-head', '2', '--n-embd', '32',
    '--batch-size', '4', '--dropout', '0.1', '--lr', '3e-3', '--warmup-steps', '2', '--steps', '30',
    '--checkpoint-every', '5', '--eval-every', '0', '--json',
  ];
  const whole = join(corpus.dir, 'whole');
  const uninterrupted = await runHhkit(args(whole), { timeoutMs: 90_000 });
  assert.equal(uninterrupted.code, 0, uninterrupted.stderr);

  const out = join(corpus.dir, 'killed');
  const metrics = join(out, 'metrics.jsonl');
  const rng = mulberry32(1410);
  const plan: KillPoint[] = [
    // mid-step after the step-10 checkpoint (the resumed ranks must take their generators from it),
    // then held inside the step-20 write
    {
      at: 'lines',
      file: metrics,
      match: /"loss"/,
      lines: 12 + Math.floor(rng() * 3),
      delayMs: Math.floor(rng() * 30),
    },
    { at: 'pause', phase: rng() < 0.5 ? 'link' : 'prune', step: 20 },
  ];
  const { kills, final } = await killAndResume(args(out), [...args(out), '--resume'], plan, 90_000);
  const story = killReport(kills);
  const b = lastJson(final.stdout);
  assert.equal(b['worldSize'], 2);
  assert.ok((b['resumedFrom'] as number) >= 10, story);
  assert.equal(b['lastLoss'], lastJson(uninterrupted.stdout)['lastLoss'], story);
  // Bit for bit: weights, AdamW moments and both ranks' generator states.
  assert.deepEqual(
    differingFiles(join(whole, 'checkpoint'), join(out, 'checkpoint'), (n) => n.endsWith('.safetensors')),
    [],
    story,
  );
  const state = loadSafetensors(join(out, 'checkpoint', 'trainer-state.safetensors')).tensors;
  assert.ok(state['rng.cpu.0'] && state['rng.cpu.1'], Object.keys(state).join(', '));
  assert.deepEqual(metricsWithoutTimes(metrics), metricsWithoutTimes(join(whole, 'metrics.jsonl')), story);
});
