// --device and --precision on the RL commands: help, refusals (exit 2), and bf16 runs through the CLI on a
// tiny world (a PM reward included). The objectives' margins under bf16 are tested in src/rl/precision.test.ts.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { builtWithCuda, cudaAvailable } from '../engine/index.ts';
import { hardwareDocs } from '../train/config.ts';
import { command as bestOfN } from './best-of-n.ts';
import { tinyWorldLM } from '../online/test-fixtures.ts';
import { command as distill } from './distill.ts';
import { command as ppo } from './ppo.ts';
import { pmReward } from './rl-common.ts';
import { runHhkit } from './test-cli.ts';

test('distill, ppo and best-of-n document --device and --precision in --help', () => {
  for (const [name, c] of [
    ['distill', distill],
    ['ppo', ppo],
    ['best-of-n', bestOfN],
  ] as const) {
    for (const [key, doc] of Object.entries(hardwareDocs)) {
      const line = c.help.split('\n').find((l) => l.trimStart().startsWith(`--${key} `));
      assert.ok(line?.includes(doc), `${name} --help: ${line}`);
    }
  }
});

test('--device cuda without a usable GPU and --precision fp16 exit 2 with the reason', async () => {
  // A world folder that exists, so the first thing wrong is the device or the precision.
  const base = ['--world', tmpdir(), '--out', join(tmpdir(), 'never-written')];
  const runs = await Promise.all([
    runHhkit(['distill', '--init', 'lm', ...base, '--device', 'cuda']),
    runHhkit(['ppo', '--init', 'lm', '--reward', 'gold', ...base, '--device', 'cuda']),
    runHhkit(['best-of-n', '--policy', 'lm', '--reward', 'gold', '--world', tmpdir(), '--device', 'cuda']),
    runHhkit(['ppo', '--init', 'lm', '--reward', 'gold', ...base, '--precision', 'fp16']),
  ]);
  const fp16 = runs.pop()!;
  assert.equal(fp16.code, 2, fp16.stderr);
  assert.match(fp16.stderr, /ppo: precision expects 'fp32' or 'bf16', got "fp16"/);
  if (!cudaAvailable()) {
    const why = builtWithCuda()
      ? /device cuda: no GPU is visible/
      : /device cuda: this hhkit addon was built against a CPU-only libtorch/;
    for (const r of runs) {
      assert.equal(r.code, 2, r.stderr);
      assert.match(r.stderr, why);
    }
  }
});

test('hhkit distill → ppo (PM reward) → best-of-n with --precision bf16: float32 checkpoints, KL to the teacher falls', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-rlbf16-'));
  const { world, lm, texts } = await tinyWorldLM(dir, {
    worldSeed: 5,
    lmSeed: 2,
    counts: {
      pretrainDialogues: 150,
      pretrainForum: 5,
      forumThreads: 5,
      helpfulTrain: 10,
      helpfulTest: 10,
      harmlessTrain: 5,
      harmlessTest: 5,
      rlPrompts: 100,
      rlHeldOut: 64,
      oodHarmful: 2,
      oodBenign: 2,
      calibrationPairs: 10,
    },
  });

  // The LM with a fresh scalar head stands in for a PM: its bf16 scores match fp32 to bf16's rounding.
  const prompts = texts.slice(0, 6);
  const bf16Scores = await (await pmReward(lm, { device: 'cpu', precision: 'bf16' })).reward(prompts, []);
  const fp32Scores = await (await pmReward(lm, { device: 'cpu', precision: 'fp32' })).reward(prompts, []);
  const gap = Math.max(...bf16Scores.map((s, i) => Math.abs(s - fp32Scores[i]!)));
  const spread = Math.max(...fp32Scores) - Math.min(...fp32Scores);
  assert.ok(gap > 0 && gap < 0.1 * spread + 1e-3, `bf16 vs fp32 PM scores: gap ${gap}, spread ${spread}`);

  const logs: string[] = [];
  const [log, error] = [console.log, console.error];
  console.log = (line: string) => logs.push(line);
  console.error = () => {};
  try {
    const d = join(dir, 'distill');
    // biome-ignore format: option/value pairs
    assert.equal(await distill.run([
      '--init', lm, '--world', world, '--out', d, '--steps', '6', '--dialogues', '80', '--eval-examples', '16',
      '--eval-prompts', '4', '--max-new-tokens', '8', '--top-k', '10', '--lr', '3e-3', '--checkpoint-every', '3',
      '--device', 'cpu', '--precision', 'bf16', '--json',
    ]), 0);
    const report = JSON.parse(logs.at(-1)!) as { klBefore: number; klAfter: number; checkpoint: string };
    assert.ok(report.klAfter < report.klBefore, `KL ${report.klBefore} → ${report.klAfter}`);
    const header = (path: string) => readFileSync(path).subarray(0, 4096).toString();
    assert.doesNotMatch(header(join(report.checkpoint, 'model.safetensors')), /"dtype":"(BF16|F16)"/);
    const hhkit = JSON.parse(readFileSync(join(report.checkpoint, 'hhkit.json'), 'utf8')) as {
      training: Record<string, unknown>;
    };
    assert.equal(hhkit.training['precision'], 'bf16');

    const p = join(dir, 'ppo');
    // biome-ignore format: option/value pairs
    assert.equal(await ppo.run([
      '--init', d, '--world', world, '--reward', lm, '--out', p, '--steps', '2', '--batch-size', '8',
      '--mini-batch-size', '4', '--max-new-tokens', '8', '--eval-every', '2', '--eval-prompts', '4',
      '--precision', 'bf16', '--json',
    ]), 0);
    const summary = JSON.parse(logs.at(-1)!) as { checkpoint: string; lastStep: Record<string, number> };
    for (const key of ['reward', 'kl', 'valueLoss', 'policyLoss', 'entropy'])
      assert.ok(Number.isFinite(summary.lastStep[key]), `${key} ${summary.lastStep[key]}`);
    assert.match(header(join(summary.checkpoint, 'model.safetensors')), /"dtype":"F32"/);
    assert.doesNotMatch(header(join(summary.checkpoint, 'model.safetensors')), /"dtype":"(BF16|F16)"/);

    // biome-ignore format: option/value pairs
    assert.equal(await bestOfN.run([
      '--policy', p, '--world', world, '--reward', lm, '--prompts', '2', '--ns', '1,4', '--max-new-tokens', '8',
      '--precision', 'bf16', '--json',
    ]), 0);
    const bon = JSON.parse(logs.at(-1)!) as { rows: { n: number; reward: number }[] };
    assert.ok(bon.rows[1]!.reward >= bon.rows[0]!.reward, 'best of 4 by the PM ≥ best of 1');
  } finally {
    console.log = log;
    console.error = error;
  }
});
