// Shared by the online tests: a tiny world (a few hundred items) and a tiny random GPT policy with a BPE
// trained on the world's corpus — enough to run every stage of a round in seconds.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveCheckpoint } from '../nn/checkpoint.ts';
import { GPT } from '../nn/gpt.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { generateWorld, type WorldCounts } from '../world/index.ts';

export interface TinyOnline {
  dir: string;
  world: string;
  init: string;
}

/** A temp folder with a tiny world and a tiny policy checkpoint (kind 'lm', with training.lr for the PM). */
export async function tinyOnline(seed = 1): Promise<TinyOnline> {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-online-'));
  const { world, lm } = await tinyWorldLM(dir, {
    worldSeed: seed,
    lmSeed: seed,
    lr: 1e-2,
    counts: {
      pretrainDialogues: 300,
      pretrainForum: 10,
      forumThreads: 10,
      helpfulTrain: 48,
      helpfulTest: 16,
      harmlessTrain: 24,
      harmlessTest: 8,
      rlPrompts: 100,
      rlHeldOut: 64,
      oodHarmful: 2,
      oodBenign: 2,
      calibrationPairs: 60,
    },
  });
  return { dir, world, init: lm };
}

/** World counts small enough for an end-to-end CLI test through SFT, PM, PPO and serve. */
export const e2eWorldCounts: Partial<WorldCounts> = {
  pretrainDialogues: 200,
  pretrainForum: 10,
  forumThreads: 10,
  helpfulTrain: 32,
  helpfulTest: 8,
  harmlessTrain: 16,
  harmlessTest: 8,
  rlPrompts: 40,
  rlHeldOut: 8,
  oodHarmful: 2,
  oodBenign: 2,
  calibrationPairs: 8,
};

export interface TinyWorldLM {
  world: string;
  /** The LM checkpoint folder (kind 'lm', with tokenizer.json). */
  lm: string;
  /** The world's pretraining transcripts. */
  texts: string[];
}

/**
 * Writes DIR/world (the small preset with `counts`), DIR/tokenizer.json (vocab 400) and DIR/lm, a random
 * 1-layer GPT; `lr` is recorded as its training lr (what a PM started from it scales).
 */
export async function tinyWorldLM(
  dir: string,
  opts: { worldSeed: number; lmSeed: number; counts: Partial<WorldCounts>; lr?: number },
): Promise<TinyWorldLM> {
  const world = join(dir, 'world');
  await generateWorld({ out: world, seed: opts.worldSeed, size: 'small', counts: opts.counts });
  const texts = readFileSync(join(world, 'pretrain.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { text: string }).text);
  const tokenizer = Tokenizer.train(texts, { vocabSize: 400 });
  const tokenizerPath = join(dir, 'tokenizer.json');
  tokenizer.save(tokenizerPath);
  const lm = join(dir, 'lm');
  const model = new GPT(
    { nLayer: 1, nHead: 2, nEmbd: 32, nPositions: 160, vocabSize: tokenizer.vocabSize, dropout: 0 },
    { seed: opts.lmSeed },
  );
  const training = opts.lr === undefined ? {} : { training: { lr: opts.lr } };
  saveCheckpoint(lm, { model, meta: { kind: 'lm', lineage: [], ...training }, tokenizerPath });
  for (const p of model.parameters()) p.dispose();
  return { world, lm, texts };
}
