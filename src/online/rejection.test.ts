import assert from 'node:assert/strict';
import { existsSync, readFileSync, rmSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { loadCheckpoint } from '../nn/checkpoint.ts';
import { bestOfN } from '../rl/best-of-n.ts';
import type { RewardFn } from '../rl/rollout.ts';
import { tinyPolicy } from '../rl/test-fixtures.ts';
import { rejectionFinetune } from './rejection.ts';

/**
 * The toy reward: the share of ASCII letters among a response's characters (over at least 8). The random tiny
 * policy writes mostly byte-level pieces; text re-encodes to the same tokens, so what the selection kept is
 * what the finetuning sees (a count of one letter was too rare a target: seeds 1–3 of the fixture learned it
 * from 24 kept samples barely or not at all).
 */
const letters: RewardFn = (_prompts, responses) =>
  responses.map((r) => [...r].filter((ch) => /[a-z]/i.test(ch)).length / Math.max(8, [...r].length));

/** Mean reward of one sample per prompt from the policy at `dir` (a fixed sampling seed). */
async function meanReward(dir: string, fx: ReturnType<typeof tinyPolicy>) {
  const { model } = loadCheckpoint(dir);
  try {
    const r = await bestOfN(model.eval(), fx.tokenizer, fx.prompts, {
      ns: [1],
      reward: letters,
      maxNewTokens: 8,
      seed: 99,
    });
    return r.rows[0]!.reward;
  } finally {
    for (const p of model.parameters()) p.dispose();
  }
}

test('rejection-sampling finetuning: the policy learns what best-of-16 by the reward kept; a rerun resumes', async () => {
  const fx = tinyPolicy(1);
  const out = join(fx.dir, 'rs');
  const options = {
    init: fx.init,
    tokenizer: fx.tokenizer,
    prompts: fx.prompts,
    reward: () => ({ reward: letters, dispose: () => {} }),
    n: 16,
    epochs: 70,
    lr: 1e-2,
    batchSize: 8,
    maxNewTokens: 8,
    seed: 1,
    out,
  };
  const first = await rejectionFinetune(options);
  const kept = readFileSync(join(out, 'samples.jsonl'), 'utf8').trim().split('\n');
  assert.equal(kept.length, fx.prompts.length);
  for (const [i, line] of kept.entries())
    assert.ok((JSON.parse(line) as { text: string }).text.startsWith(fx.prompts[i]!), `line ${i + 1}`);
  // The selection: best-of-16 holds more letters than the first sample.
  const s = first.selection;
  assert.equal(s.n, 16);
  assert.ok(s.reward.kept > s.reward.first + 0.15, JSON.stringify(s.reward));
  assert.ok(Math.abs(s.kl - (Math.log(16) - 15 / 16)) < 1e-12);
  // The finetuned policy's own samples (another seed than the selection's) hold more letters than the
  // initial policy's: the finetuning learned what the selection kept, by a margin (seed 1: 0.364 → 0.575;
  // seeds 2–5 of the fixture 0.59–0.68).
  const before = await meanReward(fx.init, fx);
  const after = await meanReward(first.checkpoint, fx);
  assert.ok(after > before + 0.1, `letters ${before.toFixed(3)} → ${after.toFixed(3)}`);

  // A rerun reads the selection back (a reward that would fail is never called) and finds the finetuning done.
  const again = await rejectionFinetune({
    ...options,
    reward: () => {
      throw new Error('the selection was redone');
    },
  });
  assert.equal(again.checkpoint, first.checkpoint);
  assert.deepEqual(again.selection, first.selection);
  // A rerun asking for another selection is refused, naming both, instead of finetuning on the old one.
  await assert.rejects(
    rejectionFinetune({ ...options, n: 8 }),
    /made with n 16 on 24 prompts, asked for n 8/,
  );
  // Without the selection's marker, the selection runs again (samples.jsonl alone is not a finished one).
  rmSync(join(out, 'selection.json'));
  await assert.rejects(
    rejectionFinetune({
      ...options,
      reward: () => {
        throw new Error('selection ran');
      },
    }),
    /selection ran/,
  );
  assert.ok(existsSync(join(out, 'samples.jsonl')));
});
