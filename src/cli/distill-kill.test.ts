// Issue 14: `hhkit distill` killed with SIGKILL at seeded moments — while the teacher cache is written,
// mid-step, held inside a checkpoint write, inside saveCheckpoint — and resumed with the same command ends
// bit-identical to an uninterrupted run.
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

test('hhkit distill: kill -9 at 5 seeded moments (teacher cache, mid-step, inside checkpoint writes), resume → bit-identical student and AdamW state', {
  timeout: 180_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-distill-kill-'));
  const { world, lm } = await tinyWorldLM(dir, { worldSeed: 3, lmSeed: 1, counts: KILL_WORLD });
  // biome-ignore format: option/value pairs read best on few lines
  const args = (out: string): string[] => [
    'distill', '--init', lm, '--world', world, '--out', out, '--steps', '24', '--batch-size', '8',
    '--dialogues', '80', '--eval-examples', '16', '--eval-prompts', '4', '--max-new-tokens', '8',
    '--top-k', '10', '--checkpoint-every', '4', '--json',
  ];
  const whole = join(dir, 'whole');
  const uninterrupted = await runHhkit(args(whole), { timeoutMs: 60_000 });
  assert.equal(uninterrupted.code, 0, uninterrupted.stderr);

  const out = join(dir, 'killed');
  const metrics = join(out, 'metrics.jsonl');
  const rng = mulberry32(1407);
  const steps = /"type":"step"/;
  const plan: KillPoint[] = [
    // as the teacher's last batch is cached (its files are written next), then before the first
    // checkpoint, held in the step-12 write, inside the next saveCheckpoint, and mid-step after it
    { at: 'stderr', line: /^teacher: \d+\/\d+ dialogues cached/, delayMs: Math.floor(rng() * 4) },
    {
      at: 'lines',
      file: metrics,
      match: steps,
      lines: 1 + Math.floor(rng() * 3),
      delayMs: Math.floor(rng() * 30),
    },
    { at: 'pause', phase: rng() < 0.5 ? 'link' : 'prune', step: 12 },
    { at: 'created', dir: join(out, 'checkpoints'), prefix: '.step-', nth: 1 },
    {
      at: 'lines',
      file: metrics,
      match: steps,
      lines: 19 + Math.floor(rng() * 3),
      delayMs: Math.floor(rng() * 30),
    },
  ];
  const { kills, final } = await killAndResume(args(out), [...args(out), '--resume'], plan);
  const story = killReport(kills);

  const a = lastJson(uninterrupted.stdout);
  const b = lastJson(final.stdout);
  assert.equal(b['steps'], 24);
  assert.ok((b['resumedFrom'] as number) > 0, story);
  // Bit for bit: the student (model.safetensors) and the AdamW moments.
  assert.deepEqual(
    differingFiles(join(whole, 'checkpoint'), join(out, 'checkpoint'), (n) => n.endsWith('.safetensors')),
    [],
    story,
  );
  // The teacher cache, rebuilt after the first kill, is the same bytes.
  assert.deepEqual(
    differingFiles(join(whole, 'teacher-cache'), join(out, 'teacher-cache'), () => true),
    [],
    story,
  );
  for (const key of ['klBefore', 'klAfter', 'goldBefore', 'goldAfter', 'goldTeacher'])
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
