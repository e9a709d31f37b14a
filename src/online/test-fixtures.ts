// Shared by the online tests: a tiny world (a few hundred items) and a tiny random GPT policy with a BPE
// trained on the world's corpus — enough to run every stage of a round in seconds.
import { mkdtempSync, readFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { saveCheckpoint } from '../nn/checkpoint.ts';
import { GPT } from '../nn/gpt.ts';
import { Tokenizer } from '../tokenizer/index.ts';
import { generateWorld } from '../world/index.ts';

export interface TinyOnline {
  dir: string;
  world: string;
  init: string;
}

/** A temp folder with a tiny world and a tiny policy checkpoint (kind 'lm', with training.lr for the PM). */
export async function tinyOnline(seed = 1): Promise<TinyOnline> {
  const dir = mkdtempSync(join(tmpdir(), 'hhkit-online-'));
  const world = join(dir, 'world');
  await generateWorld({
    out: world,
    seed,
    size: 'small',
    counts: {
      pretrainDialogues: 300,
      pretrainForum: 10,
      forumThreads: 10,
      helpfulTrain: 48,
      helpfulTest: 16,
      harmlessTrain: 24,
      harmlessTest: 8,
      rlPrompts: 100,
      oodHarmful: 2,
      oodBenign: 2,
      calibrationPairs: 60,
    },
  });
  const texts = readFileSync(join(world, 'pretrain.jsonl'), 'utf8')
    .trim()
    .split('\n')
    .map((l) => (JSON.parse(l) as { text: string }).text);
  const tokenizer = Tokenizer.train(texts, { vocabSize: 400 });
  const tokenizerPath = join(dir, 'tokenizer.json');
  tokenizer.save(tokenizerPath);
  const model = new GPT(
    { nLayer: 1, nHead: 2, nEmbd: 32, nPositions: 160, vocabSize: tokenizer.vocabSize, dropout: 0 },
    { seed },
  );
  const init = join(dir, 'init');
  saveCheckpoint(init, { model, meta: { kind: 'lm', lineage: [], training: { lr: 1e-2 } }, tokenizerPath });
  for (const p of model.parameters()) p.dispose();
  return { dir, world, init };
}
