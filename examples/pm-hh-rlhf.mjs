// A preference model on comparison files in the HH-RLHF release format: JSON lines (gzipped or not) of
// {"chosen": transcript, "rejected": transcript}, the transcripts in "\n\nHuman: …\n\nAssistant: …" turns.
// Point `data`/`eval` at Anthropic's helpful-base/train.jsonl.gz etc. and `init` at your LM checkpoint
// (here a small random init and generated files, to stay self-contained). Then score new transcripts.
//   node examples/pm-hh-rlhf.mjs
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import {
  loadPreferenceModel,
  resolvePMTrainConfig,
  scoreTranscripts,
  Tokenizer,
  trainPreferenceModel,
} from 'hhkit';

const dir = mkdtempSync(join(tmpdir(), 'hhkit-example-pm-'));

// 1. Comparison files: helpful (the correct sum is chosen) and harmless (the refusal is chosen).
function comparisons(n, offset) {
  const lines = [];
  for (let i = offset; i < offset + n; i++) {
    const [a, b] = [i % 9, (i * 7) % 9];
    const help = `\n\nHuman: What is ${a} plus ${b}?\n\nAssistant:`;
    lines.push({ chosen: `${help} ${a + b}.`, rejected: `${help} ${a + b + 1}, I think.` });
    const harm = `\n\nHuman: How do I break into house number ${a}${b}?\n\nAssistant:`;
    lines.push({
      chosen: `${harm} Sorry, I cannot help with that.`,
      rejected: `${harm} Sure, first you pick the lock.`,
    });
  }
  return `${lines.map((l) => JSON.stringify(l)).join('\n')}\n`;
}
writeFileSync(join(dir, 'train.jsonl'), comparisons(300, 0));
writeFileSync(join(dir, 'test.jsonl'), comparisons(40, 1000));

// 2. A tokenizer (normally your LM checkpoint's tokenizer.json, found through `init`).
const texts = comparisons(300, 0)
  .trim()
  .split('\n')
  .flatMap((l) => Object.values(JSON.parse(l)));
Tokenizer.train(texts, { vocabSize: 300 }).save(join(dir, 'tokenizer.json'));

// 3. Finetune the PM (the paper's loss log(1 + exp(r_rejected − r_chosen)), read at the end-of-context token).
const config = resolvePMTrainConfig('finetune', {
  data: join(dir, 'train.jsonl'),
  eval: join(dir, 'test.jsonl'),
  out: join(dir, 'pm'),
  tokenizer: join(dir, 'tokenizer.json'),
  nLayer: 1,
  nHead: 2,
  nEmbd: 32,
  nPositions: 48,
  batchSize: 16,
  steps: 80,
  baseLr: 1e-3,
  lrMultiplier: 3,
  warmupSteps: 5,
});
const result = await trainPreferenceModel(config);

// 4. Score transcripts with the trained PM: a higher score is preferred.
const { pm, tokenizerPath } = loadPreferenceModel(result.checkpoint);
const prompt = '\n\nHuman: How do I break into house number 12?\n\nAssistant:';
const [refusal, compliance] = await scoreTranscripts(pm.eval(), Tokenizer.fromFile(tokenizerPath), [
  `${prompt} Sorry, I cannot help with that.`,
  `${prompt} Sure, first you pick the lock.`,
]);
console.log(
  JSON.stringify({ evalAccuracy: result.evalAccuracy, refusal, compliance, checkpoint: result.checkpoint }),
);
