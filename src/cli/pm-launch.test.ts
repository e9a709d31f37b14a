// Data-parallel preference-model training on CPU: `hhkit launch --nproc 2 -- pm train` (c10d gloo on
// loopback) with batch B takes the same steps as one process with batch 2B, λ ≠ 1 on harmless data
// included, and only rank 0 writes metrics and reports; a launched run resumes bit for bit.
import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { cat, loadSafetensors, type Tensor } from '../engine/index.ts';
import { hhLines, tinyLMCheckpoint } from '../pm/test-fixtures.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { lastJson, runHhkit } from './test-cli.ts';

/** Every tensor of a checkpoint folder's safetensors files, by file and name. */
function checkpointTensors(dir: string): Map<string, ReturnType<typeof loadSafetensors>['tensors'][string]> {
  const out = new Map<string, ReturnType<typeof loadSafetensors>['tensors'][string]>();
  for (const file of readdirSync(dir)
    .filter((f) => f.endsWith('.safetensors'))
    .sort()) {
    for (const [name, t] of Object.entries(loadSafetensors(join(dir, file)).tensors))
      out.set(`${file}:${name}`, t);
  }
  return out;
}

/**
 * The parts of tensors the pairwise loss cannot see, as [from, to) along dim 0: the head's bias and the
 * final LayerNorm's shift (read only through the head) add the same constant to both scores of a pair,
 * and the attention's key bias adds q·b_k to every key of a query, which softmax ignores. Their gradient
 * is exactly 0, so what reaches AdamW is rounding noise (~1e-9), which its normalised step turns into
 * moves of up to ~lr/10 per step — in a 1-process run too, with noise that depends on the order of float
 * sums. They differ between any two batch layouts and say nothing about data-parallel equivalence.
 */
const LOSS_NULL_SPACE: Record<string, (size: number) => [number, number]> = {
  'model.safetensors:score.bias': (n) => [0, n],
  'model.safetensors:transformer.ln_f.bias': (n) => [0, n],
  'model.safetensors:transformer.h.0.attn.c_attn.bias': (n) => [n / 3, (2 * n) / 3], // (q | k | v)
};

/** max |a − b| outside the loss's null space (see LOSS_NULL_SPACE); 0 when nothing is visible. */
function visibleDifference(name: string, a: Tensor, b: Tensor): number {
  const diff = a.sub(b).abs().flatten();
  const nullRange = LOSS_NULL_SPACE[name];
  if (!nullRange) return diff.max().item();
  const n = diff.size(0);
  const [from, to] = nullRange(n);
  const parts = [diff.narrow(0, 0, from), diff.narrow(0, to, n - to)].filter((p) => p.size(0) > 0);
  return parts.length === 0 ? 0 : cat(parts).max().item();
}

test('pm train: 2 gloo processes × batch 4 end with the same weights as 1 process × batch 8', async () => {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-pmlaunch-'));
  const files: Record<string, string[]> = {
    'helpful-train.jsonl': hhLines('helpful', 40, 0),
    // Arithmetic lines in the harmless file too (their task comes from the file name), so the
    // length-grouped batches mix both tasks and λ weighs comparisons within a batch.
    'harmless-train.jsonl': [...hhLines('harmless', 12, 0), ...hhLines('helpful', 12, 50)],
    'helpful-test.jsonl': hhLines('helpful', 8, 100),
  };
  for (const [name, lines] of Object.entries(files)) writeFileSync(join(dir, name), `${lines.join('\n')}\n`);
  const texts = Object.values(files)
    .flat()
    .flatMap((l) => {
      const r = JSON.parse(l) as { chosen: string; rejected: string };
      return [r.chosen, r.rejected];
    });
  const lmDir = tinyLMCheckpoint(dir, Tokenizer.train(texts, { vocabSize: 300 }), { nPositions: 48 });
  // biome-ignore format: option/value pairs read best on few lines
  const common = [
    '--init', lmDir, '--data', `${join(dir, 'helpful-train.jsonl')},${join(dir, 'harmless-train.jsonl')}`,
    '--eval', join(dir, 'helpful-test.jsonl'), '--harmless-weight', '2.5', '--steps', '6',
    '--lr-multiplier', '0.1', '--warmup-steps', '2', '--checkpoint-every', '3', '--json',
  ];
  const one = join(dir, 'one');
  const two = join(dir, 'two');
  const single = await runHhkit(['pm', 'train', ...common, '--out', one, '--batch-size', '8']);
  assert.equal(single.code, 0, single.stderr);
  // biome-ignore format: a command line
  const launched = await runHhkit([
    'launch', '--nproc', '2', '--threads', '1', '--',
    'pm', 'train', ...common, '--out', two, '--batch-size', '4',
  ]);
  assert.equal(launched.code, 0, launched.stderr);
  assert.match(launched.stderr, /launch: rank 1 of 2 started/);
  assert.match(launched.stderr, /data-parallel: 2 processes, 4 comparisons each per step \(global batch 8\)/);
  assert.equal((launched.stderr.match(/^data: /gm) ?? []).length, 1, 'only rank 0 reports');
  const drifts = [...launched.stderr.matchAll(/ranks' weights drift (\S+)\)/g)].map((m) => Number(m[1]));
  assert.deepEqual(drifts.length, 2, 'a drift check at steps 3 and 6');
  assert.ok(
    drifts.every((d) => d < 1e-6),
    `the ranks' weights agree: ${drifts}`,
  );

  const a = lastJson(single.stdout);
  const b = lastJson(launched.stdout);
  assert.equal(a['worldSize'], 1);
  assert.equal(b['worldSize'], 2);
  assert.equal(b['steps'], 6);
  assert.equal(b['comparisons'], 64);
  for (const key of ['firstLoss', 'lastLoss', 'evalLoss']) {
    assert.ok(Math.abs((a[key] as number) - (b[key] as number)) < 2e-4, `${key}: ${a[key]} vs ${b[key]}`);
  }
  assert.ok((b['lastLoss'] as number) < (b['firstLoss'] as number), 'the loss fell');

  const wa = checkpointTensors(join(one, 'checkpoint'));
  const wb = checkpointTensors(join(two, 'checkpoint'));
  // Two processes' trainer state holds rank 1's generator too (train/state.ts), for a bit-exact resume.
  assert.ok(wb.delete('trainer-state.safetensors:rng.cpu.1'), "rank 1's generator state is saved");
  assert.deepEqual([...wb.keys()].sort(), [...wa.keys()].sort());
  const init = checkpointTensors(lmDir);
  let worst = 0;
  let worstName = '';
  let moved = 0;
  const unseen: string[] = [];
  for (const [name, t] of wa) {
    const diff = visibleDifference(name, t, wb.get(name)!);
    if (diff > worst) [worst, worstName] = [diff, name];
    if (name in LOSS_NULL_SPACE)
      unseen.push(`${name} ${t.sub(wb.get(name)!).abs().max().item().toExponential(2)}`);
    const before = init.get(name);
    if (before) moved = Math.max(moved, t.sub(before).abs().max().item());
  }
  console.error(
    `pm-launch: max |Δ| over ${wa.size} tensors (outside the loss's null space) ${worst} in ${worstName}; ` +
      `largest move from the LM ${moved}; whole-tensor |Δ| where the loss is blind: ${unseen.join(', ')}`,
  );
  assert.equal(unseen.length, Object.keys(LOSS_NULL_SPACE).length, 'the null-space tensors exist');
  assert.ok(worst < 2e-5, `largest difference ${worst} in ${worstName}`);
  assert.ok(moved > 100 * 2e-5, `training moved the weights (by ${moved}), so agreeing is not trivial`);

  // One metrics line per step, written by rank 0 alone, with the global batch's tokens and accuracy.
  const metrics = (out: string) =>
    readFileSync(join(out, 'metrics.jsonl'), 'utf8')
      .trim()
      .split('\n')
      .map((l) => JSON.parse(l) as Record<string, number>);
  const ma = metrics(one);
  const mb = metrics(two);
  assert.deepEqual(
    mb.map((m) => m['step']),
    [1, 2, 3, 4, 5, 6],
  );
  for (const [i, m] of mb.entries()) {
    // The loss and the gradient's norm before clipping: a wrong normaliser (e.g. each rank's own mean,
    // 2× the gradient) shows here even where AdamW's scale-free step and clipping would hide it.
    for (const key of ['loss', 'gradNorm']) {
      const [x, y] = [ma[i]![key]!, m[key]!];
      assert.ok(Math.abs(x - y) <= 1e-4 * Math.abs(x), `step ${i + 1} ${key}: ${x} vs ${y}`);
    }
    assert.equal(m['tokens'], ma[i]!['tokens'], `step ${i + 1}: tokens over the global batch`);
    assert.equal(m['accuracy'], ma[i]!['accuracy'], `step ${i + 1}: accuracy over the global batch`);
  }

  // A resume must keep the global batch: 2 × 8 is refused on a 2 × 4 run.
  // biome-ignore format: a command line
  const launch2 = (extra: string[]) => runHhkit([
    'launch', '--nproc', '2', '--threads', '1', '--', 'pm', 'train', ...common, '--out', two, ...extra,
  ]);
  const refused = await launch2(['--batch-size', '8', '--resume']);
  assert.notEqual(refused.code, 0);
  assert.match(
    refused.stderr,
    /cannot resume with a different global batch: batchSize 4 × 2 process\(es\) → 8 × 2/,
  );
  // "Crash" after step 3, then resume on 2 processes: every rank restores the step-3 state and the run
  // ends bit-identical to the uninterrupted one, metrics included.
  rmSync(join(two, 'checkpoints', 'step-000006'), { recursive: true });
  rmSync(join(two, 'checkpoint'));
  symlinkSync(join('checkpoints', 'step-000003'), join(two, 'checkpoint'));
  const resumed = await launch2(['--batch-size', '4', '--resume']);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.equal(lastJson(resumed.stdout)['resumedFrom'], 3);
  const wr = checkpointTensors(join(two, 'checkpoint'));
  for (const [name, t] of wb) {
    assert.equal(t.sub(wr.get(name)!).abs().max().item(), 0, `${name} differs after the resume`);
  }
  const withoutSeconds = (ms: Record<string, number>[]) => ms.map(({ seconds: _s, ...rest }) => rest);
  assert.deepEqual(withoutSeconds(metrics(two)), withoutSeconds(mb));
});
