// The PM's likelihood feature: the number it computes (against a by-hand log-softmax of the frozen LM),
// padding-independence, saving and loading, the clear errors, and that its weight is learned from
// comparisons when the LM's likelihood is what separates chosen from rejected.
import assert from 'node:assert/strict';
import { mkdtempSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { test } from 'node:test';
import { noGrad, tensor, tidy } from '../engine/index.ts';
import { loadCheckpoint, saveCheckpoint } from '../nn/checkpoint.ts';
import { GPT } from '../nn/gpt.ts';
import { tMeanInterval, welchDifference } from '../eval/student.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { encodeTranscripts, padSequences } from './batch.ts';
import { resolvePMTrainConfig } from './config.ts';
import type { TaskedComparison } from './data.ts';
import { type ExperimentContext, pmpExperiment, runPM, sizeExperiment } from './experiments.ts';
import { LikelihoodFeature } from './likelihood.ts';
import { likelihoodTokens, loadPreferenceModel, PreferenceModel, savePreferenceModel } from './model.ts';
import { trainPreferenceModel } from './train.ts';

const WORDS = ['apple', 'river', 'stone', 'cloud', 'green', 'music', 'paper', 'light', 'table', 'zebra'];

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

const phrase = (rand: () => number, k: number) =>
  Array.from({ length: k }, () => WORDS[Math.floor(rand() * WORDS.length)]!).join(' ');

function tokenizer(): Tokenizer {
  const rand = rng(7);
  const texts = Array.from(
    { length: 200 },
    () => `\n\nHuman: ${phrase(rand, 3)}?\n\nAssistant: ${phrase(rand, 5)}.`,
  );
  return Tokenizer.train(texts, { vocabSize: 300 });
}

const tinyGPT = (tok: Tokenizer, seed: number, nEmbd = 16) =>
  new GPT(
    { nLayer: 1, nHead: 2, nEmbd, nPositions: 48, vocabSize: tok.vocabSize, dropout: 0 },
    { seed },
  ).eval();

/** The feature by hand for one unpadded sequence: mean of log p(response token) and log p(stop), the response
 *  being what follows the LAST Assistant marker (the multi-turn row below checks that). */
function byHand(lm: GPT, ids: number[], assistantId: number, stopIds: number[]): number {
  return noGrad(() =>
    tidy(() => {
      const x = tensor(BigInt64Array.from(ids, BigInt), { shape: [1, ids.length] });
      const logp = lm.forward(x).logits.logSoftmax(-1).squeeze(0); // (T, V)
      const rows = logp.toArray() as number[][];
      const end = ids.length - 1; // END_OF_CONTEXT
      const marker = ids.lastIndexOf(assistantId);
      const start = marker >= 0 ? marker + 1 : 1;
      let sum = 0;
      for (let t = start; t < end; t++) sum += rows[t - 1]![ids[t]!]!;
      const stop = Math.log(stopIds.reduce((a, id) => a + Math.exp(rows[end - 1]![id]!), 0));
      return (sum + stop) / (end - start + 1);
    }),
  );
}

test('likelihood feature: the frozen LM’s mean log-prob per response token, stop included; any padding', async () => {
  const tok = tokenizer();
  const tokens = likelihoodTokens(tok, 'test');
  assert.deepEqual(tokens.stopIds, [tok.eosId, tok.humanTurnId]);
  const lm = tinyGPT(tok, 5);
  const feature = new LikelihoodFeature(lm, tokens);
  const texts = [
    '\n\nHuman: apple river?\n\nAssistant: stone cloud green.',
    '\n\nHuman: one?\n\nAssistant: two.\n\nHuman: three music paper light?\n\nAssistant: table',
    '\n\nHuman: empty?\n\nAssistant:',
    'no turn markers at all, just text',
  ];
  const { ids } = await encodeTranscripts(tok, texts, 48);
  const expected = ids.map((s) => byHand(lm, s, tokens.assistantTurnId, tokens.stopIds));
  for (const side of ['right', 'left'] as const) {
    const got = noGrad(() =>
      tidy(() =>
        Array.from(feature.feature(padSequences(ids, tok.padId, side)).toTypedArray() as Float32Array),
      ),
    );
    for (const [i, g] of got!.entries())
      assert.ok(Math.abs(g - expected[i]!) < 1e-4, `${side} row ${i}: ${g} vs ${expected[i]}`);
  }
});

test('a PM with the feature: score = head + w·feature; saved and loaded with its frozen LM; clear errors', async () => {
  const tok = tokenizer();
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-lik-'));
  const family = {
    family: 'gpt2' as const,
    config: { nLayer: 1, nHead: 2, nEmbd: 16, nPositions: 48, vocabSize: tok.vocabSize, dropout: 0 },
  };
  const plain = PreferenceModel.fresh(family, 3).eval();
  const pm = plain.withLikelihood(tinyGPT(tok, 9), likelihoodTokens(tok, 'test')).eval();
  pm.likelihood!.loadStateDict({ weight: tensor([0.5]) });
  const { ids } = await encodeTranscripts(
    tok,
    ['\n\nHuman: a?\n\nAssistant: river stone.', '\n\nHuman: b?\n\nAssistant:'],
    48,
  );
  const batch = padSequences(ids, tok.padId);
  const [withF, head, feat] = noGrad(() =>
    tidy(() =>
      [pm.scores(batch), plain.scores(batch), pm.likelihood!.feature(batch)].map(
        (t) => t.toArray() as number[],
      ),
    ),
  );
  for (const [i, s] of withF!.entries()) assert.ok(Math.abs(s - (head![i]! + 0.5 * feat![i]!)) < 1e-5);
  // the weight is a parameter (trained), the frozen LM is not
  assert.ok(pm.namedParameters().some(([n]) => n === 'likelihood.weight'));
  assert.ok(pm.namedParameters().every(([n]) => !n.includes('likelihood.lm')));

  const tokPath = join(dir, 'tok.json');
  tok.save(tokPath);
  savePreferenceModel(join(dir, 'pm'), pm, { kind: 'pm', lineage: [] }, tokPath);
  const meta = JSON.parse(readFileSync(join(dir, 'pm', 'hhkit.json'), 'utf8'));
  assert.equal(meta.likelihood.assistantTurnId, tok.assistantTurnId);
  const { pm: back } = loadPreferenceModel(join(dir, 'pm'));
  const again = noGrad(() => tidy(() => back.eval().scores(batch).toArray() as number[]));
  for (const [i, s] of again!.entries())
    assert.ok(Math.abs(s - withF![i]!) < 1e-5, `loaded ${s} vs ${withF![i]}`);
  // a folder whose hhkit.json names the feature but whose weights lack it: one clear error
  savePreferenceModel(join(dir, 'plain'), plain, { kind: 'pm', lineage: [] }, tokPath);
  const broken = JSON.parse(readFileSync(join(dir, 'plain', 'hhkit.json'), 'utf8'));
  writeFileSync(join(dir, 'plain', 'hhkit.json'), JSON.stringify({ ...broken, likelihood: meta.likelihood }));
  assert.throws(
    () => loadPreferenceModel(join(dir, 'plain')),
    /names a likelihood feature but model\.safetensors lacks/,
  );
  // a tokenizer without turn markers cannot find the response
  const bare = Tokenizer.train(['plain words only'], { vocabSize: 280, turnMarkers: false });
  assert.throws(() => likelihoodTokens(bare, 'bare.json'), /turn markers/);
  for (const m of [pm, back]) m.dispose();
});

test('PM training learns the feature’s weight when the LM’s likelihood is what the comparisons reward', async () => {
  const tok = tokenizer();
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-likt-'));
  // A random LM made opinionated: its final norm's gain ×20 spreads its log-probabilities apart.
  const sharp = tinyGPT(tok, 11);
  const sd = sharp.stateDict();
  sharp.loadStateDict({ ...sd, 'transformer.ln_f.weight': sd['transformer.ln_f.weight']!.mul(20) });
  const lmDir = join(dir, 'lm');
  tok.save(join(dir, 'tok.json'));
  saveCheckpoint(lmDir, {
    model: sharp,
    meta: { kind: 'lm', lineage: [], training: { lr: 2e-2 } },
    tokenizerPath: join(dir, 'tok.json'),
  });
  // Labels from the LM itself: of two random replies, the one it finds likelier is chosen. A trunk must
  // learn that from scratch; the feature gives it in one number.
  const { model: judge } = loadCheckpoint(lmDir);
  const oracle = new LikelihoodFeature(judge, likelihoodTokens(tok, 'test'));
  const rand = rng(3);
  const make = async (n: number): Promise<TaskedComparison[]> => {
    const pairs = Array.from({ length: n }, () => {
      const prompt = `\n\nHuman: ${phrase(rand, 2)}?\n\nAssistant:`;
      return [`${prompt} ${phrase(rand, 4)}.`, `${prompt} ${phrase(rand, 4)}.`] as const;
    });
    const { ids } = await encodeTranscripts(tok, pairs.flat(), 48);
    const f = noGrad(() => tidy(() => oracle.feature(padSequences(ids, tok.padId)).toArray() as number[]));
    return pairs.map(([a, b], i) => {
      const aWins = f[2 * i]! > f[2 * i + 1]!;
      return { record: { chosen: aWins ? a : b, rejected: aWins ? b : a }, task: 'helpful' as const };
    });
  };
  const train = await make(480);
  const held = await make(160);
  const run = (name: string, extra: Record<string, unknown>) =>
    trainPreferenceModel(
      resolvePMTrainConfig('finetune', {
        data: '(lm-labelled)',
        out: join(dir, name),
        init: lmDir,
        batchSize: 16,
        steps: 60,
        lrMultiplier: 0.1,
        warmupSteps: 5,
        checkpointEvery: 1000,
        ...extra,
      }),
      { tokenizer: tok, train, eval: held },
    );
  const plain = await run('plain', {});
  const withFeature = await run('feature', { likelihoodLm: lmDir });
  const metrics = readFileSync(join(dir, 'feature', 'metrics.jsonl'), 'utf8')
    .trim()
    .split('\n');
  const w = JSON.parse(metrics.at(-1)!).likelihoodWeight as number;
  assert.ok(w > 0.5, `learned weight ${w}`);
  assert.ok(
    withFeature.evalAccuracy >= 0.8,
    `held-out accuracy with the feature ${withFeature.evalAccuracy}`,
  );
  assert.ok(
    withFeature.evalAccuracy >= plain.evalAccuracy + 0.1,
    `with ${withFeature.evalAccuracy} vs without ${plain.evalAccuracy}`,
  );
  // finetuning from it keeps the feature (and its learned weight) without naming the LM again …
  const { pm: inherited } = loadPreferenceModel(withFeature.checkpoint);
  assert.ok(Math.abs(inherited.likelihood!.weight.item() - w) < 1e-6);
  inherited.dispose();
  // … and naming one again on such an init is refused
  await assert.rejects(
    run('twice', { init: withFeature.checkpoint, likelihoodLm: lmDir }),
    /already has a likelihood feature/,
  );
});

/**
 * What the experiment tests start from: a tokenizer, a tiny LM checkpoint (seed `lmSeed`) in a fresh folder,
 * and helpful pairs whose chosen reply is the longer one (drawn from seed `pairSeed`).
 */
function experimentSetup(prefix: string, lmSeed: number, pairSeed: number) {
  const tok = tokenizer();
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tok.save(join(dir, 'tok.json'));
  const lmDir = join(dir, 'lm');
  saveCheckpoint(lmDir, {
    model: tinyGPT(tok, lmSeed),
    meta: { kind: 'lm', lineage: [], training: { lr: 2e-2 } },
    tokenizerPath: join(dir, 'tok.json'),
  });
  const rand = rng(pairSeed);
  const pairs = (n: number): TaskedComparison[] =>
    Array.from({ length: n }, () => {
      const prompt = `\n\nHuman: ${phrase(rand, 2)}?\n\nAssistant:`;
      return {
        record: { chosen: `${prompt} ${phrase(rand, 4)}.`, rejected: `${prompt} ${phrase(rand, 2)}.` },
        task: 'helpful' as const,
      };
    });
  return { tok, dir, lmDir, pairs };
}

test('pm experiments give every PM the feature of the LM it starts from; a PM finetuned after PMP inherits it', async () => {
  const { tok, dir, lmDir, pairs } = experimentSetup('hhkit-likx-', 5, 9);
  const data = {
    helpfulTrain: pairs(32),
    harmlessTrain: [],
    helpfulTest: pairs(8),
    harmlessTest: [],
    pmp: pairs(32),
  };
  const ctx = (likelihood: boolean): ExperimentContext => ({
    out: join(dir, likelihood ? 'on' : 'off'),
    data,
    tokenizer: tok,
    seed: 1,
    lrMultiplier: 0.1,
    pmpLrMultiplier: 0.1,
    likelihood,
    overrides: { batchSize: 8, checkpointEvery: 1000 },
  });
  const hasFeature = (out: string) => {
    const { pm } = loadPreferenceModel(join(out, 'checkpoint'));
    const yes = pm.likelihood !== null;
    pm.dispose();
    return yes;
  };
  const on = ctx(true);
  await runPM(on, 'pmp', { init: lmDir, train: data.pmp, phase: 'pmp' });
  await runPM(on, 'from-lm', { init: lmDir, train: data.helpfulTrain, phase: 'finetune' });
  // From PMP: no second likelihoodLm (that would be a ConfigError); the feature comes with the init.
  await runPM(on, 'from-pmp', {
    init: join(on.out, 'pmp', 'checkpoint'),
    train: data.helpfulTrain,
    phase: 'finetune',
  });
  for (const name of ['pmp', 'from-lm', 'from-pmp'])
    assert.ok(hasFeature(join(on.out, name)), `${name} has the feature`);
  const off = ctx(false);
  await runPM(off, 'from-lm', { init: lmDir, train: data.helpfulTrain, phase: 'finetune' });
  assert.equal(hasFeature(join(off.out, 'from-lm')), false, 'likelihood off: a plain PM');
});

test('the PMP experiment draws fresh comparisons per repeat and judges the mean gain by its interval', async () => {
  const { tok, dir, lmDir, pairs } = experimentSetup('hhkit-pmprep-', 6, 4);
  const data = {
    helpfulTrain: pairs(40),
    harmlessTrain: [],
    helpfulTest: pairs(8),
    harmlessTest: [],
    pmp: pairs(16),
  };
  const ctx: ExperimentContext = {
    out: dir,
    data,
    tokenizer: tok,
    seed: 3,
    lrMultiplier: 0.1,
    pmpLrMultiplier: 0.1,
    overrides: { batchSize: 8, checkpointEvery: 1000 },
  };
  const r = await pmpExperiment(ctx, lmDir, [16], 2);
  assert.deepEqual(
    r.rows.map((row) => `${row.name}/${row['draw']}`),
    ['nopmp-n16/0', 'pmp-n16/0', 'nopmp-n16-r1/1', 'pmp-n16-r1/1'],
  );
  // each draw is its own sample of the 40 training comparisons, trained with its own seed
  const seedOf = (name: string) =>
    JSON.parse(readFileSync(join(dir, name, 'checkpoint', 'hhkit.json'), 'utf8'));
  assert.notDeepEqual(seedOf('nopmp-n16')['training']['seed'], seedOf('nopmp-n16-r1')['training']['seed']);
  const m = /over 2 draw\(s\) = ([+-][\d.]+) pts \[([+-][\d.]+), ([+-][\d.]+)\] at n=16/.exec(r.verdict);
  assert.ok(m, r.verdict);
  const [mean, lower, upper] = m.slice(1).map(Number) as [number, number, number];
  const gain = (i: number) =>
    100 * (r.rows[2 * i + 1]!.goldAccuracy || r.rows[2 * i + 1]!.accuracy) -
    100 * (r.rows[2 * i]!.goldAccuracy || r.rows[2 * i]!.accuracy);
  assert.ok(Math.abs(mean - (gain(0) + gain(1)) / 2) < 0.06, `${mean} vs draws ${gain(0)}, ${gain(1)}`);
  assert.ok(lower <= mean && mean <= upper);
  assert.equal(r.holds, lower > 0);
  // the interval is the paired t over the draws' gains, not a bootstrap of them
  const t = tMeanInterval([gain(0) / 100, gain(1) / 100]);
  assert.ok(r.value, 'a value');
  for (const k of ['value', 'lower', 'upper'] as const) assert.ok(Math.abs(r.value[k] - t[k]) < 1e-9, k);
  // one draw measures no spread: never judged to hold, whatever its sign
  const one = await pmpExperiment(ctx, lmDir, [16], 1);
  assert.equal(one.holds, false);
  assert.match(one.verdict, /one draw: not judged/);
});

test('the size experiment trains each size with its own seeds, reuses finished runs, and judges the mean gain by Welch', async () => {
  const { tok, dir, lmDir, pairs } = experimentSetup('hhkit-sizerep-', 7, 5);
  const wideDir = join(dir, 'lm-wide');
  saveCheckpoint(wideDir, {
    model: tinyGPT(tok, 8, 32),
    meta: { kind: 'lm', lineage: [], training: { lr: 2e-2 } },
    tokenizerPath: join(dir, 'tok.json'),
  });
  const data = {
    helpfulTrain: pairs(24),
    harmlessTrain: [],
    helpfulTest: pairs(40),
    harmlessTest: [],
    pmp: [],
  };
  const ctx: ExperimentContext = {
    out: dir,
    data,
    tokenizer: tok,
    seed: 2,
    lrMultiplier: 0.1,
    pmpLrMultiplier: 0.1,
    overrides: { batchSize: 8, checkpointEvery: 1000 },
  };
  const lms = [
    { name: 'wide', checkpoint: wideDir },
    { name: 'narrow', checkpoint: lmDir },
  ];
  const acc = (row: { goldAccuracy: number; accuracy: number }) => row.goldAccuracy || row.accuracy;
  // One run per size: a point, no interval, and the names of the experiment before it had repeats.
  const one = await sizeExperiment(ctx, lms, 1);
  assert.deepEqual(
    one.rows.map((row) => row.name),
    ['size-narrow', 'size-wide'],
  );
  assert.equal(one.value?.lower, one.value?.upper);
  assert.equal(one.holds, false, 'one run per size is not judged');
  assert.match(one.verdict, /one run each: not judged/);
  assert.doesNotMatch(one.verdict, /\[/);
  const trained = (name: string) => statSync(join(dir, name, 'checkpoint', 'model.safetensors')).mtimeMs;
  const firstRuns = ['size-narrow', 'size-wide'].map(trained);

  const r = await sizeExperiment(ctx, lms, 3);
  // smallest first, each size's runs together; the first run is the one-run experiment's, reused
  assert.deepEqual(
    r.rows.map((row) => `${row.name}/${row['draw']}`),
    ['size-narrow', 'size-narrow-r1', 'size-narrow-r2', 'size-wide', 'size-wide-r1', 'size-wide-r2'].map(
      (n, i) => `${n}/${i % 3}`,
    ),
  );
  assert.deepEqual(['size-narrow', 'size-wide'].map(trained), firstRuns, 'the first runs were not retrained');
  assert.deepEqual(r.rows.filter((row) => row['draw'] === 0).map(acc), one.rows.map(acc));
  const seedOf = (name: string) =>
    JSON.parse(readFileSync(join(dir, name, 'checkpoint', 'hhkit.json'), 'utf8'))['training']['seed'];
  assert.deepEqual(['size-wide', 'size-wide-r1', 'size-wide-r2'].map(seedOf), [2, 3, 4]);
  const narrow = r.rows.slice(0, 3).map(acc);
  const wide = r.rows.slice(3).map(acc);
  assert.ok(new Set([...narrow, ...wide]).size > 2, `the seeds move the PMs: ${narrow} / ${wide}`);
  const mean = (xs: number[]) => xs.reduce((a, b) => a + b, 0) / xs.length;
  assert.deepEqual(
    r.points?.map((p) => [p.name, p.accuracy]),
    [
      ['narrow', mean(narrow)],
      ['wide', mean(wide)],
    ],
  );
  // the interval is Welch's over the runs, not a bootstrap of them
  const w = welchDifference(narrow, wide);
  assert.ok(r.value, 'a value');
  for (const k of ['value', 'lower', 'upper'] as const) assert.ok(Math.abs(r.value[k] - w[k]) < 1e-12, k);
  assert.ok(r.value.lower < r.value.value && r.value.value < r.value.upper, JSON.stringify(r.value));
  assert.equal(r.holds, mean(wide) >= mean(narrow) - 0.005 && w.value > 0.01 && w.lower > 0, r.verdict);
  assert.match(r.verdict, /mean of 3 runs each[;)].* [+-]\d+\.\d pts \[[+-]\d+\.\d, [+-]\d+\.\d\]/);
});
