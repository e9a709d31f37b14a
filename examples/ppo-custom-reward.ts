// PPO with your own reward function, written in TypeScript (TRL's "custom reward" example in hhkit).
// A reward is any (prompts, responses) => number[] (or a Promise of one): a preference model, a rule, a
// call to a service. Here: the share of the response that is the letter Q, which a tiny, freshly
// initialised GPT learns to write within a few dozen PPO steps, while the KL penalty keeps it near its start.
//   node examples/ppo-custom-reward.ts        (Node ≥ 22.18 strips the types; or: npx tsx examples/…)
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  defaultPPOConfig,
  GPT,
  type PPOConfig,
  type RewardFn,
  saveCheckpoint,
  Tokenizer,
  trainPPO,
} from 'hhkit';

const dir = mkdtempSync(join(tmpdir(), 'hhkit-example-ppo-'));

// 1. A policy to start from: a tokenizer and a tiny GPT checkpoint (normally your distilled LM's folder).
const prompts = Array.from(
  { length: 24 },
  (_, i) => `\n\nHuman: What is ${i % 10} plus ${(i * 3) % 10}?\n\nAssistant:`,
);
const tokenizer = Tokenizer.train(
  prompts.map((p, i) => `${p} It is ${i}. Quiet queue, quick quiz.`),
  { vocabSize: 300 },
);
tokenizer.save(join(dir, 'tokenizer.json'));
const model = new GPT(
  { nLayer: 1, nHead: 2, nEmbd: 32, nPositions: 48, vocabSize: tokenizer.vocabSize, dropout: 0 },
  { seed: 1 },
);
const init = join(dir, 'init');
saveCheckpoint(init, {
  model,
  meta: { kind: 'lm', lineage: [] },
  tokenizerPath: join(dir, 'tokenizer.json'),
});

// 2. The reward: typed, plain TypeScript.
const qReward: RewardFn = (_prompts, responses) =>
  responses.map((r) => [...r].filter((ch) => ch === 'Q').length / Math.max(8, r.length));

// 3. PPO: the paper's defaults, made small (16 prompts a step, 8-token responses).
const config: PPOConfig = {
  ...defaultPPOConfig,
  out: join(dir, 'ppo'),
  steps: 60,
  batchSize: 16,
  miniBatchSize: 8,
  maxNewTokens: 8,
  lr: 5e-3,
  klCoef: 0.02,
  evalEvery: 0,
  checkpointEvery: 60,
};
const rewards: number[] = [];
const result = await trainPPO({
  config,
  init,
  tokenizer,
  prompts,
  reward: qReward,
  onEvent: (e) => {
    if (e.type === 'step') rewards.push(e.metrics.reward);
  },
});
const mean = (xs: number[]): number => xs.reduce((a, b) => a + b, 0) / xs.length;
console.log(
  JSON.stringify({
    firstReward: mean(rewards.slice(0, 3)),
    lastReward: mean(rewards.slice(-10)),
    kl: result.lastStep?.kl,
    checkpoint: result.checkpoint,
  }),
);
