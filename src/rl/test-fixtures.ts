// Shared by the rl tests: a tokenizer trained on a few dialogues and a tiny GPT checkpoint that uses it.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveCheckpoint } from '../nn/checkpoint.ts';
import { GPT } from '../nn/gpt.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { type DistillConfig, defaultDistillConfig } from './distill.ts';
import { defaultPPOConfig, type PPOConfig } from './ppo-config.ts';

export interface TinyPolicy {
  dir: string;
  /** The checkpoint folder of the initial policy. */
  init: string;
  tokenizer: Tokenizer;
  prompts: string[];
}

/** A fresh temp folder holding a seeded tiny GPT checkpoint (kind 'lm') and its tokenizer. */
export function tinyPolicy(seed = 1): TinyPolicy {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-rl-'));
  const prompts = Array.from(
    { length: 24 },
    (_, i) => `\n\nHuman: What is ${i % 10} plus ${(i * 3) % 10}?\n\nAssistant:`,
  );
  const texts = prompts.map((p, i) => `${p} It is ${i}. Quiet queue, quick quiz.`);
  const tokenizer = Tokenizer.train(texts, { vocabSize: 300 });
  const tokenizerPath = join(dir, 'tokenizer.json');
  tokenizer.save(tokenizerPath);
  const model = new GPT(
    { nLayer: 1, nHead: 2, nEmbd: 32, nPositions: 48, vocabSize: tokenizer.vocabSize, dropout: 0 },
    { seed },
  );
  const init = join(dir, 'init');
  saveCheckpoint(init, { model, meta: { kind: 'lm', lineage: [] }, tokenizerPath });
  for (const p of model.parameters()) p.dispose();
  return { dir, init, tokenizer, prompts };
}

/** Reward: the fraction of the response's characters that are 'Q' — a toy PM that a policy can learn fast. */
export const letterReward =
  (letter = 'Q') =>
  (_prompts: string[], responses: string[]): number[] =>
    responses.map((r) =>
      r.length === 0 ? 0 : [...r].filter((ch) => ch === letter).length / Math.max(8, r.length),
    );

/** PPO on the tiny policy: 40 steps of 16 prompts, 8-token responses (the toy-reward tests' settings). */
export const toyPPOConfig = (out: string, overrides: Partial<PPOConfig> = {}): PPOConfig => ({
  ...defaultPPOConfig,
  out,
  steps: 40,
  batchSize: 16,
  miniBatchSize: 8,
  ppoEpochs: 2,
  maxNewTokens: 8,
  lr: 5e-3,
  klCoef: 0.02,
  evalEvery: 0,
  checkpointEvery: 10,
  ...overrides,
});

/** Context distillation of the tiny policy: 40 steps of 8, teacher top-8. */
export const toyDistillConfig = (out: string, overrides: Partial<DistillConfig> = {}): DistillConfig => ({
  ...defaultDistillConfig,
  out,
  steps: 40,
  batchSize: 8,
  lr: 3e-3,
  topK: 8,
  maxTokens: 24,
  evalExamples: 16,
  maxNewTokens: 6,
  checkpointEvery: 20,
  ...overrides,
});
