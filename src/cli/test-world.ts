// Shared by the RL CLI tests: a tiny generated world and a random 1-layer LM checkpoint on its tokenizer.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { saveCheckpoint } from '../nn/checkpoint.ts';
import { GPT } from '../nn/gpt.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { generateWorld, type WorldCounts } from '../world/index.ts';

export interface TinyWorldLM {
  world: string;
  /** The LM checkpoint folder (kind 'lm', with tokenizer.json). */
  lm: string;
  /** The world's pretraining transcripts. */
  texts: string[];
}

/** Writes DIR/world (the small preset with `counts`), DIR/tokenizer.json (vocab 400) and DIR/lm. */
export async function tinyWorldLM(
  dir: string,
  opts: { worldSeed: number; lmSeed: number; counts: Partial<WorldCounts> },
): Promise<TinyWorldLM> {
  const world = join(dir, 'world');
  await generateWorld({ out: world, seed: opts.worldSeed, size: 'small', counts: opts.counts });
  const texts = readFileSync(join(world, 'pretrain.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { text: string }).text);
  const tokenizer = Tokenizer.train(texts, { vocabSize: 400 });
  tokenizer.save(join(dir, 'tokenizer.json'));
  const lm = join(dir, 'lm');
  const model = new GPT(
    { nLayer: 1, nHead: 2, nEmbd: 32, nPositions: 160, vocabSize: tokenizer.vocabSize, dropout: 0 },
    { seed: opts.lmSeed },
  );
  saveCheckpoint(lm, {
    model,
    meta: { kind: 'lm', lineage: [] },
    tokenizerPath: join(dir, 'tokenizer.json'),
  });
  for (const p of model.parameters()) p.dispose();
  return { world, lm, texts };
}
