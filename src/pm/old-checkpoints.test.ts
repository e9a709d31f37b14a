// Checkpoints written by an earlier hhkit (5cf8bca, the last version before the model interface and the
// other families): a supervised LM, a preference model and a PPO policy with its value head, each with the
// logits or scores that version computed from them (test/fixtures/nn/hhkit-5cf8bca/expected.json, written by
// that checkout). Today's loaders must read them and compute the same numbers.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { fileURLToPath } from 'node:url';
import { noGrad, tensor, tidy } from '../engine/index.ts';
import { loadCheckpoint } from '../nn/checkpoint.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { loadPreferenceModel } from './model.ts';
import { scoreTranscripts } from './score.ts';

const dir = fileURLToPath(new URL('../../test/fixtures/nn/hhkit-5cf8bca', import.meta.url));
const expected = JSON.parse(readFileSync(join(dir, 'expected.json'), 'utf8')) as {
  prompt: string;
  ids: number[];
  sftLogits: number[];
  ppoLogits: number[];
  transcripts: string[];
  pmScores: number[];
};
const maxAbs = (a: readonly number[], b: readonly number[]): number =>
  a.reduce((m, v, i) => Math.max(m, Math.abs(v - b[i]!)), 0);

const lastLogits = (checkpoint: string): { logits: number[]; extra: string[]; kind: string | undefined } => {
  const loaded = loadCheckpoint(checkpoint);
  const logits = noGrad(() =>
    tidy(() => {
      const ids = tensor(BigInt64Array.from(expected.ids.map(BigInt)), { shape: [1, expected.ids.length] });
      const out = loaded.model.forward(ids).logits;
      return Array.from(out.select(1, expected.ids.length - 1).toTypedArray() as Float32Array);
    }),
  );
  return { logits, extra: Object.keys(loaded.extra).sort(), kind: loaded.meta?.kind };
};

test('an earlier version’s LM and PPO policy load and give its logits; the policy keeps its value head', async () => {
  const tok = Tokenizer.fromFile(join(dir, 'sft', 'tokenizer.json'));
  assert.deepEqual(
    await tok.encode(expected.prompt, { allowSpecial: false }),
    expected.ids,
    'its tokenizer reads the same',
  );
  const sft = lastLogits(join(dir, 'sft'));
  assert.equal(sft.logits.length, expected.sftLogits.length);
  assert.ok(
    maxAbs(sft.logits, expected.sftLogits) < 1e-4,
    `sft logits differ by ${maxAbs(sft.logits, expected.sftLogits)}`,
  );
  const ppo = lastLogits(join(dir, 'ppo'));
  assert.equal(ppo.kind, 'policy');
  assert.deepEqual(ppo.extra, ['value_head.bias', 'value_head.weight']);
  assert.ok(
    maxAbs(ppo.logits, expected.ppoLogits) < 1e-4,
    `ppo logits differ by ${maxAbs(ppo.logits, expected.ppoLogits)}`,
  );
  assert.ok(
    maxAbs(ppo.logits, sft.logits) > 1e-4,
    'PPO moved the policy: the two checks are not the same one',
  );
});

test('an earlier version’s preference model loads and scores transcripts as it did', async () => {
  const loaded = loadPreferenceModel(join(dir, 'pm'));
  const pm = loaded.pm.eval();
  const tok = Tokenizer.fromFile(join(dir, 'pm', 'tokenizer.json'));
  const scores = await scoreTranscripts(pm, tok, expected.transcripts);
  assert.ok(maxAbs(scores, expected.pmScores) < 1e-4, `scores ${scores} vs ${expected.pmScores}`);
});
