// Data-parallel PPO on CPU (c10d gloo on loopback): `hhkit launch --nproc 2 -- ppo` shards the rollouts
// and finishes with the ranks' weights in agreement; and PPO's update on given rollouts, split over 2 ranks,
// ends with the same weights as one process on all of them (src/rl/ppo-update.fixture.ts).
import assert from 'node:assert/strict';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { loadSafetensors } from '../engine/index.ts';
import { tinyPolicy } from '../rl/test-fixtures.ts';
import { freePort, rankEnv, runChild } from '../util/child.ts';
import { lastJson, runHhkit } from './test-cli.ts';

/** A world folder with just what `hhkit ppo --reward gold` reads: rl-prompts.jsonl. */
function tinyWorld(dir: string, prompts: readonly string[]): string {
  const world = join(dir, 'world');
  mkdirSync(world, { recursive: true });
  const rows = [
    ...prompts.map((prompt) => ({ prompt, source: 'generated' })),
    ...['Reverse the word cat.', 'What is 2 + 5?', 'Name a red fruit.', 'Spell dog.'].map((q) => ({
      prompt: `\n\nHuman: ${q}\n\nAssistant:`,
      source: 'static',
    })),
  ];
  writeFileSync(join(world, 'rl-prompts.jsonl'), `${rows.map((r) => JSON.stringify(r)).join('\n')}\n`);
  return world;
}

test('hhkit launch --nproc 2 -- ppo: sharded rollouts, rank 0 logs and checkpoints, weights agree, resumes', async () => {
  const fx = tinyPolicy(3);
  const world = tinyWorld(fx.dir, fx.prompts);
  const out = join(fx.dir, 'ppo');
  // biome-ignore format: option/value pairs read best on few lines
  const ppo = (steps: number, extra: string[] = []) => [
    'launch', '--nproc', '2', '--threads', '1', '--',
    'ppo', '--init', fx.init, '--world', world, '--reward', 'gold', '--out', out,
    '--steps', String(steps), '--batch-size', '8', '--mini-batch-size', '4', '--ppo-epochs', '2',
    '--max-new-tokens', '8', '--eval-every', '2', '--eval-prompts', '4', '--checkpoint-every', '2',
    '--json', ...extra,
  ];
  const first = await runHhkit(ppo(2));
  assert.equal(first.code, 0, first.stderr);
  assert.match(first.stderr, /launch: rank 1 of 2 started/);
  assert.match(first.stderr, /data-parallel: 2 processes, 4 of the 8 prompts per step each/);
  const a = lastJson(first.stdout);
  assert.equal(a['worldSize'], 2);
  assert.equal(a['steps'], 2);
  assert.ok((a['drift'] as number) < 1e-4, `drift ${a['drift']}`);
  assert.equal(a['drift'], 0, 'identical summed gradients leave identical weights');
  assert.ok(existsSync(join(out, 'checkpoint', 'hhkit.json')));
  assert.ok(existsSync(join(out, 'checkpoint', 'ppo-optimizer.safetensors')));
  // Resume from rank 0's checkpoint on both ranks.
  const second = await runHhkit(ppo(3, ['--resume']));
  assert.equal(second.code, 0, second.stderr);
  const b = lastJson(second.stdout);
  assert.equal(b['resumedFrom'], 2);
  assert.equal(b['worldSize'], 2);
  assert.equal(b['drift'], 0);
  const lastStep = b['lastStep'] as Record<string, number>;
  assert.ok(Number.isFinite(lastStep['reward']) && Number.isFinite(lastStep['valueLoss']));
  // One line per step and eval, written by rank 0 alone (the eval at step 0, 2 and the end).
  const lines = readFileSync(join(out, 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as { type: string; step: number });
  assert.deepEqual(
    lines.map((l) => `${l.type} ${l.step}`),
    ['eval 0', 'step 1', 'step 2', 'eval 2', 'step 3', 'eval 3'],
  );
  // Global batch sizes that do not split over the ranks are refused, naming the rule.
  const bad = await runHhkit(ppo(1, ['--batch-size', '7', '--out', join(fx.dir, 'bad')]));
  assert.notEqual(bad.code, 0);
  assert.match(
    bad.stderr,
    /batchSize \(7\) and miniBatchSize \(4\) .* divisible by the number of processes \(2\)/,
  );
});

const fixture = fileURLToPath(new URL('../rl/ppo-update.fixture.ts', import.meta.url));

interface FixtureRun {
  code: number | null;
  result: Record<string, unknown>;
  stderr: string;
}

/** Runs the update fixture on `n` processes (n = 1: no process group); `env` may set HHKIT_DIST_TIMEOUT. */
async function runFixture(n: number, env: Record<string, string>, timeoutMs = 90_000): Promise<FixtureRun[]> {
  const port = await freePort();
  const ranks = Array.from({ length: n }, async (_, rank) => {
    const dist = n > 1 ? rankEnv(rank, n, port) : {};
    const r = await runChild(process.execPath, ['--import', 'tsx', fixture], {
      env: { ...process.env, HHKIT_DIST_TIMEOUT: '60', ...env, ...dist, HHKIT_NUM_THREADS: '1' },
      timeoutMs,
    });
    const line = r.stdout.trim().split('\n').at(-1) ?? '';
    return { code: r.code, result: line.startsWith('{') ? JSON.parse(line) : {}, stderr: r.stderr };
  });
  return Promise.all(ranks);
}

test('PPO update on given rollouts: 2 ranks × 4 rows = 1 process × 8 rows (same minibatches)', async () => {
  const fx = tinyPolicy(4);
  const env = { INIT: fx.init, PROMPTS: JSON.stringify(fx.prompts) };
  const [one] = await runFixture(1, { ...env, OUT: join(fx.dir, 'one') });
  const two = await runFixture(2, { ...env, OUT: join(fx.dir, 'two') });
  for (const r of [one!, ...two]) assert.equal(r.code, 0, r.stderr);
  assert.equal(two[0]!.result['drift'], 0);
  const reference = loadSafetensors(join(fx.dir, 'one-rank0.safetensors')).tensors;
  const initial = loadSafetensors(join(fx.init, 'model.safetensors')).tensors;
  let moved = 0;
  for (const [name, t] of Object.entries(initial))
    moved = Math.max(moved, t.sub(reference[name]!).abs().max().item());
  assert.ok(moved > 1e-3, `the update moved the weights (by at most ${moved})`);
  for (const rank of [0, 1]) {
    const w = loadSafetensors(join(fx.dir, `two-rank${rank}.safetensors`)).tensors;
    assert.deepEqual(Object.keys(w).sort(), Object.keys(reference).sort());
    let worst = 0;
    for (const [name, t] of Object.entries(reference))
      worst = Math.max(worst, t.sub(w[name]!).abs().max().item());
    assert.ok(
      worst < 1e-5,
      `rank ${rank}: largest parameter difference to one process ${worst} (moved ${moved})`,
    );
  }
  // The logged statistics are the global minibatch's, on every rank.
  const stats = (r: FixtureRun) => r.result['stats'] as Record<string, number>[];
  for (const rank of [0, 1]) {
    stats(two[rank]!).forEach((s, step) => {
      for (const [key, v] of Object.entries(s)) {
        const want = stats(one!)[step]![key]!;
        assert.ok(Math.abs(v - want) < 1e-5, `rank ${rank} step ${step + 1} ${key}: ${v} vs ${want}`);
      }
    });
  }
});

test('a NaN score on one rank stops every rank with TrainingDivergenceError (nobody waits on a collective)', async () => {
  const fx = tinyPolicy(4);
  const env = { INIT: fx.init, PROMPTS: JSON.stringify(fx.prompts), SCENARIO: 'nan' };
  const two = await runFixture(2, { ...env, OUT: join(fx.dir, 'nan') });
  for (const r of two) {
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.result['error'], 'TrainingDivergenceError', JSON.stringify(r.result));
    assert.match(r.result['message'] as string, /ppo step 1: the loss is NaN/);
  }
});

test('a NaN loss on rank 1 only: both ranks agree before backward and stop together (no bucket mismatch, no hang)', async () => {
  const fx = tinyPolicy(4);
  // Rank 1's loss (not its scores: those would reach rank 0 through whitening) is NaN at update step 2.
  // Without the agreement, rank 1 skipped the backward and its next all-reduce met rank 0's gradient
  // bucket: a size mismatch, or a wait until the timeout (20 s here; the kill after 60 s).
  const env = {
    INIT: fx.init,
    PROMPTS: JSON.stringify(fx.prompts),
    OUT: join(fx.dir, 'nan-loss'),
    HHKIT_TEST_NONFINITE: '2@1',
    HHKIT_DIST_TIMEOUT: '20',
  };
  const two = await runFixture(2, env, 60_000);
  for (const [rank, r] of two.entries()) {
    assert.equal(r.code, 0, `rank ${rank} exited ${r.code}: ${r.stderr}`);
    assert.equal(r.result['error'], 'TrainingDivergenceError', `rank ${rank}: ${JSON.stringify(r.result)}`);
    const mine = rank === 1 ? ', rank 1 among them' : '';
    assert.ok(
      (r.result['message'] as string).startsWith(
        `ppo step 2: the loss is NaN (on 1 of 2 ranks${mine}); training stopped before the update. The last good checkpoint is nowhere `,
      ),
      `rank ${rank}: ${r.result['message']}`,
    );
  }
});
