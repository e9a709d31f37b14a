// Issue 14: `hhkit online --rounds 1` killed with SIGKILL at seeded moments — inside round 0's PM
// training, held inside a PPO checkpoint write, mid-collection, inside a write of OUT/state.json, inside
// round 1's PM checkpoint write, mid-PPO — and rerun with the same command each time ends where an
// uninterrupted run does: the same PMs and policies bit for bit, the same comparisons, the same table.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { tinyWorldLM } from '../online/test-fixtures.ts';
import { mulberry32 } from '../util/random.ts';
import { lastJson, runHhkit } from './test-cli.ts';
import { differingFiles, KILL_WORLD, type KillPoint, killAndResume, killReport } from './test-kill.ts';

/** OUT/state.json with the run's folder written as OUT and the wall-clock fields dropped. */
function stateOf(out: string): unknown {
  const text = readFileSync(join(out, 'state.json'), 'utf8').replaceAll(out, 'OUT');
  return JSON.parse(text, (key, value) => (key === 'seconds' ? undefined : value));
}

test('hhkit online --rounds 1: kill -9 at 6 seeded moments (PM, PPO checkpoint write, collection, state.json, …), rerun → the same PMs, policies, comparisons and table', {
  timeout: 240_000,
}, async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-online-kill-'));
  const { world, lm } = await tinyWorldLM(dir, { worldSeed: 3, lmSeed: 1, lr: 1e-2, counts: KILL_WORLD });
  // biome-ignore format: option/value pairs read best on few lines
  const args = (out: string): string[] => [
    'online', '--world', world, '--init', lm, '--out', out, '--rounds', '1', '--comparisons', '24',
    '--eval-comparisons', '8', '--collect-batch', '8', '--max-new-tokens', '10', '--eval-prompts', '8',
    '--bootstrap', '20', '--pm-steps', '3', '--pm-batch-size', '8', '--pm-lr-multiplier', '0.1',
    '--pm-checkpoint-every', '1', '--ppo-steps', '6', '--ppo-batch-size', '8', '--ppo-mini-batch-size', '8',
    '--ppo-ppo-epochs', '1', '--ppo-max-new-tokens', '10', '--ppo-checkpoint-every', '2', '--json',
  ];
  const whole = join(dir, 'whole');
  const uninterrupted = await runHhkit(args(whole), { timeoutMs: 90_000 });
  assert.equal(uninterrupted.code, 0, uninterrupted.stderr);

  const out = join(dir, 'killed');
  const rng = mulberry32(1409);
  const plan: KillPoint[] = [
    { at: 'stderr', line: /^round 0: pm…/, delayMs: Math.floor(rng() * 150) },
    // step 6 is a PPO step only (the PMs take 3): round 0's PPO has taken OUT/checkpoint to its last step,
    // but the round's state does not record the stage yet (the rerun resumes a finished PPO run)
    { at: 'pause', phase: 'prune', step: 6 },
    // round 1's collection, once its first comparison is stored (the progress bar's first line)
    { at: 'stderr', line: /^collect r1 /, delayMs: Math.floor(rng() * 40) },
    { at: 'created', dir: out, prefix: '.state.json.tmp-', nth: 1 },
    { at: 'created', dir: join(out, 'rounds', '1', 'pm', 'checkpoints'), prefix: '.step-', nth: 2 },
    {
      at: 'lines',
      file: join(out, 'rounds', '1', 'ppo', 'metrics.jsonl'),
      match: /"type":"step"/,
      lines: 2 + Math.floor(rng() * 3),
      delayMs: Math.floor(rng() * 30),
    },
  ];
  const { kills, final } = await killAndResume(args(out), args(out), plan, 90_000);
  const story = killReport(kills);

  // Every PM and policy checkpoint of both rounds (the step folders kept, OUT/checkpoint's target) and the
  // frozen snapshots, bit for bit.
  for (const sub of ['rounds', 'models'])
    assert.deepEqual(
      differingFiles(join(whole, sub), join(out, sub), (n) => n.endsWith('.safetensors')),
      [],
      `${sub}\n${story}`,
    );
  // The same comparisons (the exports the PMs trained on), the same stage results and the same table.
  assert.deepEqual(
    differingFiles(join(whole, 'data'), join(out, 'data'), () => true),
    [],
    story,
  );
  assert.deepEqual(stateOf(out), stateOf(whole), story);
  const a = lastJson(uninterrupted.stdout);
  const b = lastJson(final.stdout);
  assert.deepEqual(b['rows'], a['rows'], story);
  assert.deepEqual(b['elo'], a['elo'], story);
});
