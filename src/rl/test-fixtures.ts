// Shared by the rl tests: a tokenizer trained on a few dialogues and a tiny GPT checkpoint that uses it.
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveCheckpoint } from '../nn/checkpoint.ts';
import { GPT } from '../nn/gpt.ts';
import { Tokenizer } from '../tokenizer/index.ts';

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
